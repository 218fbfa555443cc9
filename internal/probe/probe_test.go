package probe_test

import (
	"context"
	"encoding/json"
	"sync"
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

// lastLag keeps the last visibility lag of each mode an Observer saw.
type lastLag struct {
	mu   sync.Mutex
	last map[probe.Mode]time.Duration
	n    map[probe.Mode]int
}

func (o *lastLag) AckDuration(probe.Mode, time.Duration)   {}
func (o *lastLag) ServerAckTime(probe.Mode, time.Duration) {}
func (o *lastLag) AckVisibility(m probe.Mode, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last[m] = d
	o.n[m]++
}

// TestSettledIsTheFinalLag: the settled step's "ack applied after" is the
// time the final read-back waited for the last acks to show (the last
// lag measured), not the largest lag of the run's read-backs.
func TestSettledIsTheFinalLag(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	// Until a run's final read-back finds an ack pending (a settled step):
	// most runs of 2,000 standard acks do.
	for try := 1; ; try++ {
		o := &lastLag{last: map[probe.Mode]time.Duration{}, n: map[probe.Mode]int{}}
		cfg := probe.DefaultConfig(probe.Standard)
		cfg.Count, cfg.Observer = 2000, o
		res, err := probe.Run(context.Background(), nc, js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := res.Modes[0]
		last := m.Steps[len(m.Steps)-1]
		if last.Step != "settled" {
			if try == 20 {
				t.Fatalf("no run of 20 ended with a settled step: %+v", m.Steps)
			}
			continue
		}
		want := float64(o.last[probe.Standard].Round(100*time.Nanosecond)) / float64(time.Microsecond)
		if last.VisibleAfterUS != want {
			t.Errorf("settled after %.1fµs, the final read-back's lag was %.1fµs", last.VisibleAfterUS, want)
		}
		t.Logf("try %d: settled after %.1fµs; %d lags measured, largest %.1fµs", try, last.VisibleAfterUS, o.n[probe.Standard], m.Visibility.LagUS.Max)
		return
	}
}
