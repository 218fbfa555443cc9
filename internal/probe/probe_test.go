package probe_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

func TestClassicScenario(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	res, err := probe.Run(context.Background(), nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", b)
	if !res.OK {
		t.Fatalf("problems: %v", res.Problems)
	}
	std, conf := res.Mode(probe.Standard), res.Mode(probe.Confirmed)
	want := func(m *probe.ModeResult, step int, name string, pending uint64) {
		t.Helper()
		st := m.Steps[step]
		if st.Step != name || st.NumPending != pending {
			t.Errorf("%s step %d = %+v, want %s pending %d", m.Mode, step, st, name, pending)
		}
	}
	if len(std.Steps) != 3 || len(conf.Steps) != 3 {
		t.Fatalf("steps: %d %d", len(std.Steps), len(conf.Steps))
	}
	want(std, 0, "start", 2)
	want(std, 1, "received", 1)
	want(std, 2, "acked", 1)
	want(conf, 0, "start", 1)
	want(conf, 1, "received", 0)
	want(conf, 2, "acked", 0)
	if std.Steps[1].NumAckPending != 1 || conf.Steps[1].NumAckPending != 1 {
		t.Errorf("received ack-pending: %d %d", std.Steps[1].NumAckPending, conf.Steps[1].NumAckPending)
	}
	if conf.Steps[2].NumAckPending != 0 {
		t.Errorf("confirmed ack still pending after DoubleAck: %+v", conf.Steps[2])
	}
	// The stream is gone afterwards.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, res.Stream); err != jetstream.ErrStreamNotFound {
		t.Errorf("stream %s after the probe: %v", res.Stream, err)
	}
}
