package probe_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/faults"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// runFaulty probes through the fault proxy in front of a fresh server.
func runFaulty(t *testing.T, fc faults.Config, modes ...probe.Mode) *probe.Result {
	t.Helper()
	s := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fcCopy := fc
	conn, err := connect.Connect(ctx, connect.Options{Servers: s.ClientURL(), Timeout: 2 * time.Second, Faults: &fcCopy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg := probe.DefaultConfig(modes...)
	cfg.Count = 100
	cfg.AckWait = 500 * time.Millisecond
	cfg.AckTimeout = 100 * time.Millisecond
	cfg.Retries = 10
	cfg.Timeout = 2 * time.Second
	cfg.CollectRedeliveries = true
	cfg.AckFrames = func() (int64, int64) {
		st := conn.Proxy.Stats()
		return st.AckFrames, st.AcksDropped + st.AcksCut
	}
	res, err := probe.Run(ctx, conn.NC, conn.JS, cfg)
	if res != nil {
		b, _ := json.MarshalIndent(res.Modes, "", " ")
		t.Logf("problems %v notes %v\n%s", res.Problems, res.Notes, b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDropAcks(t *testing.T) {
	t.Parallel()
	res := runFaulty(t, faults.Config{DropRate: 0.2, Seed: 7}, probe.Standard, probe.Confirmed)
	std, conf := res.Mode(probe.Standard), res.Mode(probe.Confirmed)
	if *std.AcksLost == 0 || std.Redelivered == 0 || std.RedeliveredMessages == 0 {
		t.Errorf("standard: lost %d, redelivered %d", *std.AcksLost, std.Redelivered)
	}
	if *conf.AcksLost == 0 || conf.Retries == 0 || conf.Timeouts == 0 {
		t.Errorf("confirmed: lost %d, retries %d, timeouts %d", *conf.AcksLost, conf.Retries, conf.Timeouts)
	}
	if conf.Redelivered != 0 || conf.Errors != 0 || conf.AckedOnce != 100 {
		t.Errorf("confirmed: redelivered %d errors %d acked once %d", conf.Redelivered, conf.Errors, conf.AckedOnce)
	}
	if !res.OK {
		t.Errorf("problems: %v", res.Problems)
	}
}

// TestCutConnection severs the connection after the 30th ack frame: standard
// acks in flight are lost and come back as redeliveries; a confirmed ack
// whose reply was lost times out and is sent again, and nothing is
// redelivered after an ack.
func TestCutConnection(t *testing.T) {
	t.Parallel()
	t.Run("standard", func(t *testing.T) {
		t.Parallel()
		res := runFaulty(t, faults.Config{CutAfter: 30}, probe.Standard)
		m := res.Modes[0]
		if res.Faults != nil {
			t.Errorf("the probe does not fill Faults; the command does")
		}
		if *m.AcksLost == 0 || m.RedeliveredAfterAck == 0 || m.AckedOnce+m.RedeliveredMessages != 100 {
			t.Errorf("standard after a cut: lost %d, redelivered after ack %d, acked once %d", *m.AcksLost, m.RedeliveredAfterAck, m.AckedOnce)
		}
	})
	t.Run("confirmed", func(t *testing.T) {
		t.Parallel()
		res := runFaulty(t, faults.Config{CutAfter: 30}, probe.Confirmed)
		m := res.Modes[0]
		if m.Retries == 0 || m.Errors != 0 || m.RedeliveredAfterAck != 0 || m.Acks != 100 {
			t.Errorf("confirmed after a cut: retries %d errors %d redelivered after ack %d acks %d", m.Retries, m.Errors, m.RedeliveredAfterAck, m.Acks)
		}
		if !res.OK {
			t.Errorf("problems: %v", res.Problems)
		}
	})
}

// TestGiveUp drops every ack: the confirmed run stops after a bounded
// number of failures instead of timing out on every message, and fails
// the check.
func TestGiveUp(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connect.Connect(ctx, connect.Options{Servers: s.ClientURL(), Timeout: 2 * time.Second, Faults: &faults.Config{DropRate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.Count = 1000
	cfg.AckTimeout = 20 * time.Millisecond
	cfg.Retries = 1
	start := time.Now()
	res, err := probe.Run(ctx, conn.NC, conn.JS, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Modes[0]
	if !m.GaveUp || m.Acks != 0 || m.Errors < 10 || m.Errors > 20 || res.OK {
		t.Errorf("gave up %v, acks %d, errors %d, ok %v, problems %v", m.GaveUp, m.Acks, m.Errors, res.OK, res.Problems)
	}
	t.Logf("gave up after %s", time.Since(start))
}
