package connect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// inboxConf has a user who may subscribe only under _PROBE_INBOX.
const inboxConf = `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A: { jetstream: enabled, users: [{user: u, password: p, permissions: {
    publish: {allow: ["$JS.API.>", "$JS.ACK.>", "probe.>"]},
    subscribe: {allow: ["_PROBE_INBOX.>"]}
  }}] }
}
`

// useJetStream makes every kind of request whose reply subject nats.go
// chooses: JetStream API requests, a core request, a synchronous and an
// asynchronous publish, a fetch, a standard ack and a DoubleAck.
func useJetStream(ctx context.Context, c *Conn) error {
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("account info: %w", err)
	}
	if _, err := c.NC.RequestWithContext(ctx, "$JS.API.INFO", nil); err != nil {
		return fmt.Errorf("core request: %w", err)
	}
	st, err := c.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"probe.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if _, err := c.JS.Publish(ctx, "probe.1", []byte("1")); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	f, err := c.JS.PublishAsync("probe.2", []byte("2"))
	if err != nil {
		return fmt.Errorf("publish async: %w", err)
	}
	select {
	case <-f.Ok():
	case err := <-f.Err():
		return fmt.Errorf("publish async: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("publish async: %w", ctx.Err())
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return fmt.Errorf("create consumer: %w", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchContext(ctx))
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil || len(msgs) != 2 {
		return fmt.Errorf("fetch: %d messages, %v", len(msgs), err)
	}
	if err := msgs[0].Ack(); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	if err := msgs[1].DoubleAck(ctx); err != nil {
		return fmt.Errorf("double ack: %w", err)
	}
	return nil
}

// TestInboxPrefix: with --inbox-prefix every reply subject is under it, so
// a user who may subscribe only there uses JetStream fully; without it the
// first refusal of _INBOX arrives at once through Watch. The prefix is
// taken from a context's inbox_prefix too.
func TestInboxPrefix(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, inboxConf)
	ctxFile := filepath.Join(t.TempDir(), "probe.json")
	if err := os.WriteFile(ctxFile, fmt.Appendf(nil, `{"url": %q, "user": "u", "password": "p", "inbox_prefix": "_PROBE_INBOX"}`, s.ClientURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	fromContext := Options{Context: ctxFile}
	if err := fromContext.ApplyContext(""); err != nil || fromContext.InboxPrefix != "_PROBE_INBOX" {
		t.Fatalf("context: %v %+v", err, fromContext)
	}
	for name, o := range map[string]Options{
		"flag":    {Servers: s.ClientURL(), User: "u", Password: "p", InboxPrefix: "_PROBE_INBOX"},
		"context": fromContext,
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, o)
			ctx, stop := c.Watch(context.Background())
			defer stop()
			call, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := useJetStream(call, c); err != nil {
				t.Fatalf("%v (cause %v)", err, context.Cause(ctx))
			}
			if c.Denied() != nil || c.AsyncError() != nil {
				t.Errorf("refused: %v %v", c.Denied(), c.AsyncError())
			}
			if err := c.JS.DeleteStream(call, "P"); err != nil {
				t.Fatal(err)
			}
		})
	}

	c := dial(t, Options{Servers: s.ClientURL(), User: "u", Password: "p"})
	ctx, stop := c.Watch(context.Background())
	defer stop()
	began := time.Now()
	call, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := useJetStream(call, c)
	var pe *PermissionError
	if !errors.As(c.Wrap(err), &pe) || pe.Op != "subscribe" || !strings.HasPrefix(pe.Subject, "_INBOX.") {
		t.Errorf("without the prefix: %v", c.Wrap(err))
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestNoContext ignores the selected context.
func TestNoContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "nats", "context"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats", "context", "sel.json"), []byte(`{"url": "nats://selected:4222"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nats", "context.txt"), []byte("sel"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{}
	if err := o.ApplyContext(dir); err != nil || o.ContextName != "sel" || o.Servers != "nats://selected:4222" {
		t.Fatalf("selected: %v %+v", err, o)
	}
	o = Options{NoContext: true, Context: "sel"}
	if err := o.ApplyContext(dir); err != nil || o.ContextName != "" || o.Servers != "" || !o.UsesEmbedded() {
		t.Errorf("--no-context: %v %+v", err, o)
	}
}

// TestAPIPrefix reaches JetStream imported from another account under a
// prefix, as a context's jetstream_api_prefix says.
func TestAPIPrefix(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  JS:  { jetstream: enabled, users: [{user: js, password: p}], exports: [{service: "$JS.API.>"}] }
  APP: { users: [{user: app, password: p}], imports: [{service: {account: JS, subject: "$JS.API.>"}, to: "JS.JS.API.>"}] }
}
`)
	file := filepath.Join(t.TempDir(), "app.json")
	if err := os.WriteFile(file, fmt.Appendf(nil, `{"url": %q, "user": "app", "password": "p", "jetstream_api_prefix": "JS.JS.API"}`, s.ClientURL()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	plain := dial(t, Options{Servers: s.ClientURL(), User: "app", Password: "p", Timeout: 500 * time.Millisecond})
	if _, err := plain.JS.AccountInfo(ctx); err == nil {
		t.Fatal("APP has JetStream of its own")
	}
	o := Options{Context: file}
	if err := o.ApplyContext(""); err != nil || o.APIPrefix != "JS.JS.API" {
		t.Fatalf("%v %+v", err, o)
	}
	c := dial(t, o)
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		t.Errorf("through the prefix: %v", err)
	}
	if got := c.JS.Options().APIPrefix; !strings.HasPrefix(got, "JS.JS.API") {
		t.Errorf("API prefix %q", got)
	}
}
