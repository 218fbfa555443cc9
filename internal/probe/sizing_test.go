package probe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestStreamHoldsRound runs rounds on a file stream with a long name, so
// long headers: the max_bytes ackprobe gives the stream holds a whole
// round's messages (none dropped to make room), and round after round the
// older rounds' messages, not the current one's, go.
func TestStreamHoldsRound(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Count, cfg.Storage = 3000, "file"
	cfg.Stream = "ACKPROBE_" + strings.Repeat("LONG_STREAM_NAME_", 12)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := probe.Open(ctx, nc, js, cfg)
	if p != nil {
		defer p.Close(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		res, err := p.Round(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, m := range res.Modes {
			if m.Acks != cfg.Count {
				t.Errorf("round %d %s: %d acks, want %d", round, m.Mode, m.Acks, cfg.Count)
			}
		}
		st, err := js.Stream(ctx, cfg.Stream)
		if err != nil {
			t.Fatal(err)
		}
		si := st.CachedInfo()
		if si.State.Bytes > uint64(si.Config.MaxBytes) || si.Config.MaxBytes <= 0 {
			t.Fatalf("round %d: stream holds %d bytes of max_bytes %d", round, si.State.Bytes, si.Config.MaxBytes)
		}
		// The round's messages are all there: the older rounds' went.
		if want := uint64(2 * cfg.Count); si.State.Msgs < want {
			t.Errorf("round %d: stream holds %d messages, want at least this round's %d", round, si.State.Msgs, want)
		}
		t.Logf("round %d: %d messages, %d of %d bytes", round, si.State.Msgs, si.State.Bytes, si.Config.MaxBytes)
	}
}

// TestDroppedMessagesLoud keeps a probe stream of ackprobe's whose limits
// drop this run's messages as they are stored (max_msgs, discard old): the
// run ends with an error naming the limits, not with a wait for messages
// that cannot come.
func TestDroppedMessagesLoud(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "KEPT", Subjects: []string{"ackprobe.kept"}, Storage: jetstream.MemoryStorage,
		MaxMsgs: 10, Discard: jetstream.DiscardOld,
		Metadata: map[string]string{marks.Owner: marks.OwnerValue, marks.Subject: "ackprobe.kept", marks.Keep: "true"},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.Stream, cfg.Count = "KEPT", 50
	start := time.Now()
	_, err := probe.Run(ctx, nc, js, cfg)
	if err == nil || !strings.Contains(err.Error(), "no longer holds this round's messages") || !strings.Contains(err.Error(), "max_msgs 10") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > cfg.Timeout*3 {
		t.Errorf("the error took %s", d)
	}
}
