package probe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// ordered fails unless the percentiles of l are in order and count is n.
func ordered(t *testing.T, what string, l probe.Latency, n int64) {
	t.Helper()
	if l.Count != n {
		t.Errorf("%s: %d samples, want %d", what, l.Count, n)
	}
	if n == 0 {
		return
	}
	if !(0 <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: percentiles out of order: %+v", what, l)
	}
	var inBuckets int64
	for i, b := range l.Buckets {
		inBuckets += b.Count
		if i > 0 && b.UpToUS < l.Buckets[i-1].UpToUS {
			t.Errorf("%s: buckets out of order: %+v", what, l.Buckets)
		}
	}
	if len(l.Buckets) > 0 && inBuckets != n {
		t.Errorf("%s: buckets hold %d samples, want %d", what, inBuckets, n)
	}
}

// checkScaled asserts that every figure of a run with Count > 1 is
// plausible against the server's own state.
func checkScaled(t *testing.T, res *probe.Result, count int) {
	t.Helper()
	if !res.OK {
		t.Fatalf("problems: %v", res.Problems)
	}
	if !strings.HasPrefix(res.ServerSampling, "on") {
		t.Errorf("server sampling: %s", res.ServerSampling)
	}
	for _, m := range res.Modes {
		if m.Acks != count || m.Errors != 0 || m.Redelivered != 0 {
			t.Errorf("%s: acks %d errors %d redelivered %d", m.Mode, m.Acks, m.Errors, m.Redelivered)
		}
		ordered(t, string(m.Mode)+" ack latency", m.AckLatencyUS, int64(count))
		if m.AcksPerSec <= 0 {
			t.Errorf("%s: acks/s %v", m.Mode, m.AcksPerSec)
		}
		v := m.Visibility
		if v.ReadBacks < 1 || v.ReadBacks > count || v.StaleReads > v.ReadBacks || v.NotVisible != 0 {
			t.Errorf("%s: visibility %+v", m.Mode, v)
		}
		ordered(t, string(m.Mode)+" lag", v.LagUS, int64(v.StaleReads))
		if m.Server == nil || m.Server.Events != int64(count) {
			t.Errorf("%s: server view %+v, want %d events", m.Mode, m.Server, count)
		} else {
			ordered(t, string(m.Mode)+" server ack time", m.Server.AckTimeUS, int64(count))
			if m.Server.TransitUS.Count == 0 || m.Server.TransitUS.P50 > m.Server.AckTimeUS.P50 {
				t.Errorf("%s: transit %+v beyond ack time %+v", m.Mode, m.Server.TransitUS, m.Server.AckTimeUS)
			}
		}
		first, last := m.Steps[0], m.Steps[len(m.Steps)-1]
		// Each mode's messages are stored when it starts, after the mode
		// before settled.
		if first.Step != "start" || first.NumPending != uint64(count) || first.NumAckPending != 0 {
			t.Errorf("%s: start %+v", m.Mode, first)
		}
		// At the end the server shows every ack applied: nothing pending,
		// and on R1 the ack floor at the last delivered message (on R3 the
		// floor moves only as the acks commit, after num_ack_pending).
		floorOK := last.AckFloorStreamSeq == last.DeliveredStreamSeq || res.Replicas > 1 && last.AckFloorStreamSeq < last.DeliveredStreamSeq
		if last.NumPending != 0 || last.NumAckPending != 0 || !floorOK {
			t.Errorf("%s: last step %+v", m.Mode, last)
		}
	}
	if c := res.Mode(probe.Confirmed); c != nil && c.Visibility.StaleReads != 0 {
		t.Errorf("confirmed acks read back stale: %+v", c.Visibility)
	}
}

func TestScaledCompare(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Count = 600
	res, err := probe.Run(context.Background(), nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkScaled(t, res, cfg.Count)
}

func TestPipelinedConfirmedAcks(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.Count = 1000
	cfg.Concurrency = 16
	res, err := probe.Run(context.Background(), nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkScaled(t, res, cfg.Count)
}

func TestThresholds(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cases := []struct {
		name string
		th   probe.Thresholds
		fail string
	}{
		{"latency held", probe.Thresholds{MaxAckLatency: time.Minute}, ""},
		{"latency breached", probe.Thresholds{MaxAckLatency: time.Nanosecond}, "--max-ack-latency breached"},
		{"rate held", probe.Thresholds{MinRate: 1}, ""},
		{"rate breached", probe.Thresholds{MinRate: 1e12}, "--min-rate breached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := probe.DefaultConfig(probe.Confirmed)
			cfg.Count = 50
			cfg.Thresholds = c.th
			res, err := probe.Run(context.Background(), nc, js, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.fail == "" {
				if !res.OK {
					t.Errorf("problems: %v", res.Problems)
				}
				return
			}
			if res.OK || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], c.fail) {
				t.Errorf("ok=%v problems=%v, want %q", res.OK, res.Problems, c.fail)
			}
		})
	}
}

// TestServerViewDenied runs as a user who may not subscribe to the metric
// events: the probe still runs and says the server's view is unavailable.
func TestServerViewDenied(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A {
    jetstream: enabled
    users: [{user: probe, password: secret, permissions: {subscribe: {deny: ["$JS.EVENT.>"]}}}]
  }
}
`)
	nc, js := natstest.Connect(t, s.ClientURL(), nats.UserInfo("probe", "secret"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Count = 20
	res, err := probe.Run(context.Background(), nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Errorf("problems: %v", res.Problems)
	}
	if !strings.Contains(res.ServerSampling, "unavailable") || !strings.Contains(res.ServerSampling, "permissions") {
		t.Errorf("server sampling = %q", res.ServerSampling)
	}
	for _, m := range res.Modes {
		if m.Server != nil || m.Acks != cfg.Count {
			t.Errorf("%s: server view %+v acks %d", m.Mode, m.Server, m.Acks)
		}
	}
}
