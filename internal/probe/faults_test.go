package probe_test

import (
	"context"
	"encoding/json"
	"slices"
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
	cfg.AckWait = time.Second
	cfg.AckTimeout = 100 * time.Millisecond
	cfg.Retries = 10
	cfg.Timeout = 2 * time.Second
	cfg.CollectRedeliveries = true
	cfg.Faults = &probe.FaultInjection{DropRate: fc.DropRate, CutAfter: fc.CutAfter, Stats: func() probe.FaultStats {
		st := conn.Proxy.Stats()
		return probe.FaultStats{AckFrames: st.AckFrames, AcksDropped: st.AcksDropped, AcksCut: st.AcksCut, Cuts: st.Cuts, Connections: st.Connections}
	}}
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
	// Only a message held past AckWait on a loaded machine may come back,
	// before its ack; never one after.
	if conf.RedeliveredAfterAck != 0 || conf.RedeliveredMessages != conf.RedeliveredBeforeAck || conf.Errors != 0 || conf.AckedOnce != 100-conf.RedeliveredMessages {
		t.Errorf("confirmed: redelivered %d (before ack %d, after %d) errors %d acked once %d", conf.Redelivered, conf.RedeliveredBeforeAck, conf.RedeliveredAfterAck, conf.Errors, conf.AckedOnce)
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
		if f := res.Faults; f == nil || f.CutAfter != 30 || f.Cuts != 1 || f.AckFrames < 30 {
			t.Fatalf("faults %+v", f)
		}
		// Every ack frame the proxy counted is the mode's own: the cut
		// came after the mode's 30th ack, not the setup's.
		if *m.AckFrames != res.Faults.AckFrames {
			t.Errorf("the mode sent %d ack frames, the proxy saw %d", *m.AckFrames, res.Faults.AckFrames)
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

// TestLostDelivery takes one of the probe's messages away from it in the
// middle of a run, through another connection that fetches it and never
// acks, as a delivery lost in a leader change would be. The probe must
// wait for the redelivery after AckWait, ack it as its mode does, and say
// what happened (lost_delivery, info), without calling it an ack failure.
// In a compare run the second mode's messages are stored only once the
// first mode has settled, so the first mode's wait cannot take them.
func TestLostDelivery(t *testing.T) {
	t.Parallel()
	for name, modes := range map[string][]probe.Mode{
		"standard": {probe.Standard}, "confirmed": {probe.Confirmed}, "compare": {probe.Standard, probe.Confirmed},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mode := modes[0]
			s := natstest.RunServer(t)
			nc, js := natstest.Connect(t, s.ClientURL())
			_, thief := natstest.Connect(t, s.ClientURL())
			cfg := probe.DefaultConfig(modes...)
			cfg.ID = "LOST"
			cfg.Count = 1000
			cfg.AckWait = time.Second
			cfg.Timeout = 2 * time.Second
			var stolen uint64
			cfg.Progress = func(pr probe.Progress) {
				if stolen != 0 || pr.Phase != "ack" || pr.Mode != mode || pr.Done == 0 {
					return
				}
				cons, err := thief.Consumer(context.Background(), "ACKPROBE_LOST", "ACKPROBE_LOST")
				if err != nil {
					t.Errorf("thief: %v", err)
					return
				}
				batch, err := cons.FetchNoWait(1)
				if err != nil {
					t.Errorf("thief: %v", err)
					return
				}
				for msg := range batch.Messages() {
					md, _ := msg.Metadata()
					stolen = md.Sequence.Stream
				}
			}
			res, err := probe.Run(context.Background(), nc, js, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if stolen == 0 {
				t.Fatal("the thief got no message: the probe had every message in hand after its first batch")
			}
			m := res.Modes[0]
			b, _ := json.Marshal(res.Findings)
			t.Logf("stole stream seq %d; classes %+v findings %s", stolen, m.Classes, b)
			// On a loaded machine a held message may also outlast AckWait:
			// that is counted apart, as redelivered before its ack.
			c := m.Classes
			if m.Acks != cfg.Count || m.Errors != 0 || c.LostDelivery != 1 || m.LostDeliveries != 1 || c.RedeliveredAfterConfirmedAck != 0 || c.LostStandardAck != 0 || m.AckedOnce != cfg.Count-m.RedeliveredMessages {
				t.Errorf("%s: %+v", mode, m)
			}
			for _, other := range res.Modes[1:] {
				if other.Acks != cfg.Count || other.Errors != 0 || other.Classes.LostDelivery != 0 || other.Classes.RedeliveredAfterConfirmedAck != 0 {
					t.Errorf("%s, after the first mode lost a delivery: %+v", other.Mode, other)
				}
			}
			final := res.Modes[len(res.Modes)-1]
			if last := final.Steps[len(final.Steps)-1]; last.NumAckPending != 0 || last.NumPending != 0 {
				t.Errorf("not every message ended acked: %+v", last)
			}
			want := probe.Finding{Code: probe.CodeLostDelivery, Mode: mode, Severity: probe.SeverityInfo, Count: 1}
			if !slices.ContainsFunc(res.Findings, func(f probe.Finding) bool { f.Message = ""; return f == want }) {
				t.Errorf("findings lack %+v", want)
			}
			if !res.OK {
				t.Errorf("a lost delivery is not an ack failure: %v", res.Problems)
			}
		})
	}
}
