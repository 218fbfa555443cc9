package connect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

func TestParsePermission(t *testing.T) {
	t.Parallel()
	viol := func(text string) error { return fmt.Errorf("%w: %s", nats.ErrPermissionViolation, text) }
	for _, c := range []struct {
		err                error
		op, subject, queue string
	}{
		{viol(`Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.S.C.a.b"`), "publish", "$JS.API.CONSUMER.CREATE.S.C.a.b", ""},
		{viol(`Permissions Violation for Subscription to "_INBOX.abc.*"`), "subscribe", "_INBOX.abc.*", ""},
		{viol(`Permissions Violation for Subscription to "q.>" using queue "workers"`), "subscribe", "q.>", "workers"},
		{viol(`Permissions Violation for Subscription to "a.b" (sid "7")`), "subscribe", "a.b", ""},
		{viol(`Permissions Violation for Subscription to "a.b.c", too many tokens`), "subscribe", "a.b.c", ""},
		{viol(`Permissions Violation for Publish with Reply of "_R_.x"`), "publish with reply", "_R_.x", ""},
		{viol(`Permissions Violation for Publish to "quote\"d"`), "publish", `quote"d`, ""},
		{viol(`Permissions Violation for something new`), "", "", ""},
	} {
		pe := parsePermission(c.err)
		if pe == nil || pe.Op != c.op || pe.Subject != c.subject || pe.Queue != c.queue || !errors.Is(pe, nats.ErrPermissionViolation) {
			t.Errorf("%v: %+v", c.err, pe)
		}
	}
	if pe := parsePermission(nats.ErrMaxSubscriptionsExceeded); pe != nil {
		t.Errorf("not a violation: %+v", pe)
	}
	pe := parsePermission(viol(`Permissions Violation for Publish to "$JS.API.INFO"`))
	if got := pe.Error(); got != "publish permission to $JS.API.INFO denied" {
		t.Errorf("Error() = %q", got)
	}
}

// deniedConf has a user who may not create streams nor subscribe to
// JetStream events.
const deniedConf = `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A: { jetstream: enabled, users: [{user: u, password: p, permissions: {
    publish: {deny: ["$JS.API.STREAM.CREATE.>"]},
    subscribe: {deny: ["$JS.EVENT.>"]}
  }}] }
}
`

func dial(t *testing.T, o Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	c, err := Connect(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitAsync waits until the connection's error handler has seen an error.
func waitAsync(t *testing.T, c *Conn) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.AsyncError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no asynchronous error arrived")
		}
		time.Sleep(time.Millisecond)
	}
	return c.AsyncError()
}

// TestWatchFailsFast: a refused JetStream API request returns at once
// under Watch, with the refusal as the cause, not after its timeout; a
// refused optional subscription cancels nothing.
func TestWatchFailsFast(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, deniedConf)
	c := dial(t, Options{Servers: s.ClientURL(), User: "u", Password: "p"})
	ctx, stop := c.Watch(context.Background(), "$JS.EVENT.METRIC.>")
	defer stop()

	sub, err := c.NC.Subscribe("$JS.EVENT.METRIC.CONSUMER.ACK.S.C", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(waitAsync(t, c), nats.ErrPermissionViolation) {
		t.Fatalf("async %v", c.AsyncError())
	}
	if ctx.Err() != nil || c.Denied() != nil {
		t.Fatalf("an optional subscription was fatal: %v %v", context.Cause(ctx), c.Denied())
	}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("account info: %v", err)
	}

	began := time.Now()
	call, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = c.JS.CreateStream(call, jetstream.StreamConfig{Name: "X", Subjects: []string{"x"}})
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("the refused request took %s", d)
	}
	var pe *PermissionError
	if !errors.As(context.Cause(ctx), &pe) || pe.Op != "publish" || pe.Subject != "$JS.API.STREAM.CREATE.X" {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("create: %v", err)
	}
	wrapped := c.Wrap(err)
	var st *StateError
	if !errors.As(wrapped, &pe) || !errors.As(wrapped, &st) || st.Lost() || st.Clustered() || pe.Subject != "$JS.API.STREAM.CREATE.X" {
		t.Errorf("wrapped %v: %+v", wrapped, st)
	}
	if c.Wrap(wrapped) != wrapped || c.Wrap(nil) != nil {
		t.Error("Wrap is not idempotent")
	}

	// A later watch, as cleanup takes, is not cancelled by the refusal
	// before it, but by the next one; Wrap still names the first.
	later, stopLater := c.Watch(context.Background())
	defer stopLater()
	if _, err := c.JS.AccountInfo(later); err != nil || later.Err() != nil {
		t.Fatalf("later watch: %v %v", err, context.Cause(later))
	}
	call, cancel = context.WithTimeout(later, 30*time.Second)
	defer cancel()
	began = time.Now()
	_, err = c.JS.CreateStream(call, jetstream.StreamConfig{Name: "Y", Subjects: []string{"y"}})
	if d := time.Since(began); d > 2*time.Second || !errors.As(context.Cause(later), &pe) || pe.Subject != "$JS.API.STREAM.CREATE.Y" {
		t.Errorf("later watch after %s: %v", d, context.Cause(later))
	}
	if !errors.As(c.Wrap(err), &pe) || pe.Subject != "$JS.API.STREAM.CREATE.X" {
		t.Errorf("Wrap names %v, want the first refusal", pe)
	}
}

// TestWatchClosed: a connection the server closes cancels the watch with a
// *ClosedError. A subject longer than the server's max_control_line (4 KB)
// makes it close the connection, as a 4,000-character --subject would.
func TestWatchClosed(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	c := dial(t, Options{Servers: s.ClientURL()})
	ctx, stop := c.Watch(context.Background())
	defer stop()
	began := time.Now()
	call, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := c.NC.RequestWithContext(call, strings.Repeat("s", 5000), nil)
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	// nats.go fails the pending request itself as it closes; the closed
	// handler that cancels the watch runs just after.
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("the watch was not cancelled (request: %v)", err)
	}
	var ce *ClosedError
	if !errors.As(context.Cause(ctx), &ce) || ce.Err == nil {
		t.Fatalf("cause %v (request: %v)", context.Cause(ctx), err)
	}
	var st *StateError
	if w := c.Wrap(err); !errors.As(w, &st) || !st.Lost() || !errors.As(w, &ce) {
		t.Errorf("wrapped %v %+v", w, st)
	}
}

// TestWrapReconnecting: a request that failed while the server was gone
// says so.
func TestWrapReconnecting(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	c := dial(t, Options{Servers: s.ClientURL(), Timeout: 200 * time.Millisecond})
	s.Shutdown()
	s.WaitForShutdown()
	deadline := time.Now().Add(10 * time.Second)
	for c.NC.Status() != nats.RECONNECTING {
		if time.Now().After(deadline) {
			t.Fatalf("status %v", c.NC.Status())
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.JS.AccountInfo(ctx)
	var st *StateError
	if w := c.Wrap(err); err == nil || !errors.As(w, &st) || !st.Lost() || st.Status != nats.RECONNECTING || st.URL != s.ClientURL() {
		t.Errorf("wrapped %v: %+v", w, st)
	}
}
