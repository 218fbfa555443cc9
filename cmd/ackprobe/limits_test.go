package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestLimits runs the probe against a server and accounts with JetStream
// limits: what can be fitted is fitted, and said; what cannot is refused
// with one line naming the limit, exit 2, and nothing created.
func TestLimits(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 8MB, max_file_store: 8MB }
accounts {
  SMALL: { jetstream: {max_mem: 4MB, max_file: 4MB, max_ack_pending: 10}, users: [{user: s, password: right}] }
  WIDE:  { jetstream: enabled, users: [{user: w, password: right}] }
}
`)
	url := srv.ClientURL()
	nothingLeft := func(t *testing.T, user string) {
		t.Helper()
		_, js := natstest.Connect(t, url, nats.UserInfo(user, "right"))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for name := range js.StreamNames(ctx).Name() {
			t.Errorf("stream %s left behind", name)
		}
	}

	// The account SMALL's cases run one after the other: each checks that
	// it left the account without streams.
	t.Run("max_ack_pending fitted", func(t *testing.T) {
		r := ackprobe(t, nil, "compare", "-s", url, "--user", "s", "--password", "right", "-n", "200", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		res := decode(t, r.stdout)
		if res.MaxAckPending != 10 {
			t.Errorf("max ack pending %d, want the account's 10", res.MaxAckPending)
		}
		fitted := false
		for _, f := range res.Findings {
			fitted = fitted || f.Code == probe.CodeFittedToLimits && strings.Contains(f.Message, "max_ack_pending")
		}
		if !fitted {
			t.Errorf("the fit is not said: %+v", res.Findings)
		}
		for _, m := range res.Modes {
			if m.Acks != 200 || m.Errors != 0 {
				t.Errorf("%s: acks %d errors %d", m.Mode, m.Acks, m.Errors)
			}
		}
		nothingLeft(t, "s")
	})

	refused := []struct {
		name string
		args []string
		user string
		msg  string
	}{
		{"--max-ack-pending above the account's", []string{"--max-ack-pending", "11"}, "s", "max_ack_pending of 10"},
		{"count past the account's memory", []string{"-n", "100000"}, "s", "max_memory"},
		{"count past the server's memory", []string{"-n", "2147483648"}, "w", "max_mem"},
		{"names past the protocol line", []string{"--subject", "a." + strings.Repeat("x", 4000)}, "w", "protocol line limit"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			began := time.Now()
			r := ackprobe(t, nil, append([]string{"compare", "-s", url, "--user", c.user, "--password", "right", "--no-color"}, c.args...)...)
			if r.code != exitCannotRun {
				t.Errorf("exit %d, want 2 (stdout %q)", r.code, r.stdout)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ackprobe: ") || !strings.Contains(lines[0], c.msg) {
				t.Errorf("stderr %q, want one line with %q", r.stderr, c.msg)
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			nothingLeft(t, c.user)
		})
	}
}
