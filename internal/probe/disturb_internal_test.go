package probe

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// TestConnWatchSilence: a server that answers neither a request nor a
// PING is silent, and lost once silent for the budget; an answer in
// between forgets the silence, so a probe that lives on (the canary) is
// not called lost for a silence long past.
func TestConnWatchSilence(t *testing.T) {
	s := natstest.RunServer(t)
	nc, _ := natstest.Connect(t, s.ClientURL())
	var w connWatch
	w.init(nc, "nats://test", time.Second, 100*time.Millisecond)
	clock := time.Unix(1000, 0)
	w.now = func() time.Time { return clock }
	frozen := true
	w.flush = func() error {
		if frozen {
			return context.DeadlineExceeded
		}
		return nil
	}
	w.check(context.DeadlineExceeded) // a request timed out, and the PING too
	clock = clock.Add(500 * time.Millisecond)
	if err := w.lost(); err != nil {
		t.Fatalf("lost after half the budget: %v", err)
	}
	w.answered() // the server answered something after all
	frozen = false
	clock = clock.Add(5 * time.Second)
	if err := w.lost(); err != nil {
		t.Fatalf("a silence that ended was held against the connection: %v", err)
	}
	frozen = true
	w.check(errors.Join(context.DeadlineExceeded))
	clock = clock.Add(2 * time.Second)
	var lost *ConnectionLostError
	if err := w.lost(); !errors.As(err, &lost) {
		t.Fatalf("silent for twice the budget: %v", err)
	}
	w.answered()
	if err := w.lost(); err != nil {
		t.Fatalf("after an answer: %v", err)
	}
}
