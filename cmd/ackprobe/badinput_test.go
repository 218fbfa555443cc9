package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// badInputServers starts what the bad-input cases need: a JetStream server
// with a user's stream and consumer, one without JetStream, and one with
// accounts for wrong passwords, denied permissions and exhausted limits.
func badInputServers(t *testing.T) (js, noJS, accounts string) {
	t.Helper()
	s := natstest.RunServer(t)
	_, jsc := natstest.Connect(t, s.ClientURL())
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	st, err := jsc.CreateStream(ctx, jetstream.StreamConfig{Name: "USERS", Subjects: []string{"users.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "THEIRS", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "users.signup"}); err != nil {
		t.Fatal(err)
	}

	o := natstest.Options(t)
	o.JetStream = false
	plain := natstest.RunServerWith(t, o)

	acc := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A: { jetstream: enabled, users: [{user: a, password: right}] }
  P: { jetstream: enabled, users: [{user: p, password: right, permissions: {publish: {deny: ["$JS.API.>"]}}}] }
  L: { jetstream: {max_mem: 16MB, max_file: 16MB, max_streams: 1}, users: [{user: l, password: right}] }
}
`)
	_, ljs := natstest.Connect(t, acc.ClientURL(), nats.UserInfo("l", "right"))
	if _, err := ljs.CreateStream(ctx, jetstream.StreamConfig{Name: "ONLY", Subjects: []string{"only"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), plain.ClientURL(), acc.ClientURL()
}

// TestBadInput runs the built binary for every kind of bad input and
// asserts exit code 2, one line on stderr with the "ackprobe: " prefix and
// the gist of the advice, within a few seconds.
func TestBadInput(t *testing.T) {
	t.Parallel()
	jsURL, noJS, accounts := badInputServers(t)
	dead := natstest.RefusedURL(t)
	missing := filepath.Join(t.TempDir(), "missing")

	cases := []struct {
		name string
		args []string
		msg  string
		env  []string
	}{
		{"not listening", []string{"compare", "-s", dead}, "is nats-server running", nil},
		{"no such host", []string{"compare", "-s", "nats://nosuchhost.invalid:4222"}, "cannot connect", nil},
		{"no JetStream", []string{"compare", "-s", noJS}, "JetStream", nil},
		{"wrong password", []string{"compare", "-s", accounts, "--user", "a", "--password", "wrong"}, "authorization failed", nil},
		{"missing creds", []string{"compare", "-s", jsURL, "--creds", missing}, "creds file", nil},
		{"missing nkey", []string{"compare", "-s", jsURL, "--nkey", missing}, "nkey file", nil},
		{"missing tls ca", []string{"compare", "-s", jsURL, "--tlsca", missing}, "tlsca file", nil},
		{"missing tls cert", []string{"compare", "-s", jsURL, "--tlscert", missing, "--tlskey", missing}, "tlscert file", nil},
		{"permission denied", []string{"compare", "-s", accounts, "--user", "p", "--password", "right", "--timeout", "1s"}, "permission", nil},
		{"max streams", []string{"compare", "-s", accounts, "--user", "l", "--password", "right"}, "max_streams is 1 and it has 1 stream(s)", nil},
		{"replicas without cluster", []string{"compare", "-s", jsURL, "--replicas", "3"}, "needs a JetStream cluster", nil},
		{"per-node on a single server", []string{"compare", "-s", jsURL, "--per-node"}, "needs a JetStream cluster", nil},
		{"per-node of an R1 stream", []string{"ack", "-s", jsURL, "--per-node", "--replicas", "1"}, "--replicas 1 has one server only", nil},
		{"subject not covered", []string{"compare", "-s", jsURL, "--stream", "USERS", "--subject", "orders.x"}, "not covered by stream", nil},
		{"subject of the user's consumer", []string{"compare", "-s", jsURL, "--stream", "USERS", "--subject", "users.signup"}, "THEIRS", nil},
		{"consumer not ackprobe's", []string{"compare", "-s", jsURL, "--stream", "USERS", "--subject", "users.probe", "--consumer", "THEIRS"}, "ackprobe inspect USERS THEIRS", nil},
		{"unknown context", []string{"compare", "--context", "nosuchcontext"}, `nats context "nosuchcontext" does not exist`, nil},
		{"context file missing", []string{"compare", "--context", missing + ".json"}, "nats context", nil},
		{"unparsable url", []string{"compare", "-s", "nats://host:port:x"}, "--server", nil},
		{"url scheme", []string{"compare", "-s", "https://example.com"}, "unknown scheme", nil},
		{"count zero", []string{"compare", "-n", "0"}, "--count must be at least 1", nil},
		{"count negative", []string{"ack", "-n", "-5"}, "--count must be at least 1", nil},
		{"count not a number", []string{"compare", "-n", "ten"}, `-n/--count "ten" is not a whole number`, nil},
		{"concurrency zero", []string{"compare", "--concurrency", "0"}, "--concurrency", nil},
		{"concurrency not a number", []string{"compare", "--concurrency", "1.5"}, `--concurrency "1.5" is not a whole number`, nil},
		{"replicas zero", []string{"compare", "--replicas", "0"}, "--replicas", nil},
		{"replicas negative", []string{"compare", "--replicas", "-3"}, "--replicas", nil},
		{"bad duration", []string{"compare", "--ack-wait", "30"}, `--ack-wait "30" is not a duration`, nil},
		{"negative duration", []string{"compare", "--ack-wait", "-1s"}, "--ack-wait must be at least 1ms", nil},
		{"ack wait below 1ms", []string{"compare", "--ack-wait", "500us"}, "--ack-wait must be at least 1ms", nil},
		{"threshold without confirmed acks", []string{"ack", "--mode", "standard", "--max-ack-latency", "1us"}, "measure confirmed acks", nil},
		{"rate without confirmed acks", []string{"ack", "--mode", "standard", "--min-rate", "1"}, "measure confirmed acks", nil},
		{"bad timeout", []string{"compare", "--timeout", "fast"}, `--timeout "fast" is not a duration`, nil},
		{"unknown mode", []string{"ack", "--mode", "sync"}, "unknown ack mode", nil},
		{"unknown storage", []string{"compare", "--storage", "disk"}, "unknown storage", nil},
		{"unknown flag", []string{"compare", "--frob"}, "unknown flag", nil},
		{"unknown command", []string{"frob"}, "unknown command", nil},
		{"stream with a dot", []string{"compare", "--stream", "a.b"}, "not a valid stream name", nil},
		{"stream with a space", []string{"compare", "--stream", "a b"}, "not a valid stream name", nil},
		{"consumer with a wildcard", []string{"compare", "--consumer", "c*"}, "not a valid consumer name", nil},
		{"subject with a wildcard", []string{"compare", "--subject", "a.>"}, "not a valid subject", nil},
		{"subject with an empty token", []string{"compare", "--subject", "a..b"}, "not a valid subject", nil},
		{"reserved subject", []string{"compare", "--subject", "$JS.ACK.x"}, "reserved", nil},
		{"drop rate", []string{"compare", "--drop-acks", "2"}, "--drop-acks", nil},
		{"bad sample", []string{"compare", "--server-sample", "200%"}, "--server-sample", nil},
		{"rate not a number", []string{"compare", "--min-rate", "fast"}, `--min-rate "fast" is not a number`, nil},
		{"rate NaN", []string{"compare", "--min-rate", "NaN"}, "--min-rate must be a rate in acks per second", nil},
		{"bool not a bool", []string{"compare", "--keep=maybe"}, `--keep "maybe" is not true or false`, nil},
		{"retries below -1", []string{"compare", "--retries", "-5"}, "--retries must be -1", nil},
		{"bare IPv6 address", []string{"compare", "-s", ":::"}, "IPv6 address goes in brackets", nil},
		{"NATS_TIMEOUT not a duration", []string{"compare"}, `NATS_TIMEOUT="abc" is not a positive duration`, []string{"NATS_TIMEOUT=abc"}},
		{"completion for an unknown shell", []string{"completion", "tcsh"}, `no script for shell "tcsh"`, nil},
		{"inspect threshold not a number", []string{"inspect", "--redelivery-warn", "x"}, `--redelivery-warn "x" is not a whole number`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			p := start(t, c.env, c.args...)
			code := p.wait(t, 30*time.Second)
			if code != exitCannotRun {
				t.Errorf("exit %d, want 2 (stderr %q)", code, p.stderr.String())
			}
			oneErrorLine(t, p.stderr.String(), c.msg)
			if p.stdout.Len() != 0 {
				t.Errorf("stdout: %q", p.stdout.String())
			}
			if d := time.Since(began); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}
