// Package natstest starts real nats-servers for tests: in-process, as a
// separate process built from the pinned nats-server module, or as a
// cluster on loopback. Everything it starts is stopped by t.Cleanup.
package natstest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options returns in-process server options with JetStream on a random
// loopback port and a test-owned store.
func Options(t testing.TB) *server.Options {
	t.Helper()
	return &server.Options{
		Host:               "127.0.0.1",
		Port:               -1,
		HTTPPort:           -1,
		JetStream:          true,
		StoreDir:           t.TempDir(),
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  256 << 20,
		NoLog:              true,
		NoSigs:             true,
	}
}

// RunServer starts an in-process JetStream server listening on loopback.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerWith(t, Options(t))
}

// RunServerWith starts an in-process server with the given options.
func RunServerWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("natstest: server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens a client connection to url, closed by t.Cleanup, and a
// JetStream handle on it.
func Connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// RunServerConf starts an in-process server from nats-server configuration
// text (accounts, users, permissions, limits). "$STORE" in the text is
// replaced with a test-owned JetStream store directory.
func RunServerConf(t testing.TB, conf string) *server.Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "server.conf")
	conf = strings.ReplaceAll(conf, "$STORE", strconv.Quote(filepath.Join(dir, "js")))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("natstest: server config: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	return RunServerWith(t, opts)
}

// Fetch receives n messages from c within 3s and returns them unacked; it
// fails the test when fewer come.
func Fetch(t testing.TB, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("fetched %d of %d: %v", len(out), n, batch.Error())
	}
	return out
}
