package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// whenAcking returns once the probe's consumer on the server at url
// exists and has delivered at least n messages.
func whenAcking(t *testing.T, url string, n uint64) {
	t.Helper()
	_, js := natstest.Connect(t, url)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := ctxTimeout(time.Second)
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			if !strings.HasPrefix(name, "ACKPROBE_") {
				continue
			}
			if c, err := js.Consumer(ctx, name, name); err == nil && c.CachedInfo().Delivered.Stream >= n {
				cancel()
				return
			}
		}
		cancel()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the probe did not get going")
}

// TestServerDiesDuringConfirmedAcks kills the only server while confirmed
// acks run: a dead server is not a failed check. ackprobe ends with exit 2
// within five request timeouts, says it lost the connection, and names
// what it could not remove with the command that removes it.
func TestServerDiesDuringConfirmedAcks(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	const timeout = time.Second
	p := start(t, nil, "ack", "--mode", "confirmed", "-s", srv.URL, "-n", "200000", "--timeout", timeout.String(), "--no-color")
	whenAcking(t, srv.URL, 2000)
	srv.Stop()
	killed := time.Now()
	code := p.wait(t, 60*time.Second)
	took := time.Since(killed)
	stderr := p.stderr.String()
	t.Logf("exit %d after %s:\n%s", code, took.Round(time.Millisecond), stderr)
	if code != exitCannotRun {
		t.Errorf("exit %d, want %d", code, exitCannotRun)
	}
	if took > 5*timeout {
		t.Errorf("took %s after the server died, more than 5 × --timeout", took)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if !strings.Contains(lines[0], "lost the connection") {
		t.Errorf("first line: %q", lines[0])
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "could not clean up stream") || !strings.Contains(lines[1], "nats stream rm ACKPROBE_") {
		t.Errorf("what was left is not named with its command:\n%s", stderr)
	}
}

// TestWholeClusterDies kills every node of a cluster mid-run: one JSON
// document under --json (ok false, the error, what was left), one error
// line; once the cluster is back, cleanup says it skips the minutes-old
// leftover by default, and with --older-than 0s removes it and nothing of
// the user's.
func TestWholeClusterDies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of nats-server processes")
	}
	t.Parallel()
	c := natstest.RunClusterProcesses(t, 3)
	nc, js := natstest.Connect(t, c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	user := jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage, Replicas: 3}
	if _, err := js.CreateStream(ctx, user); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "orders.1", []byte("order")); err != nil {
		t.Fatal(err)
	}

	p := start(t, nil, "compare", "-s", c.URLs(), "--replicas", "3", "--storage", "file", "-n", "200000", "--timeout", "1s", "--json")
	whenAcking(t, c.Nodes[0].URL, 1000)
	for _, n := range c.Nodes {
		n.Stop()
	}
	code := p.wait(t, 60*time.Second)
	if code != exitCannotRun {
		t.Errorf("exit %d, want %d\n%s", code, exitCannotRun, p.stderr.String())
	}
	var doc failureDoc
	if err := json.Unmarshal(p.stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, p.stdout.String())
	}
	if doc.OK || doc.Error.ExitCode != 2 || !strings.Contains(doc.Error.Message, "lost the connection") ||
		len(doc.Leftovers) != 1 || doc.Leftovers[0].Stream != doc.Stream || doc.Leftovers[0].Command != "nats stream rm "+doc.Stream+" -f" {
		t.Errorf("document: %+v", doc)
	}
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "ackprobe: ") || !strings.Contains(lines[0], "lost the connection") {
		t.Errorf("stderr: %q", p.stderr.String())
	}

	for _, n := range c.Nodes {
		n.Start()
	}
	c.WaitReady(60 * time.Second)
	// With the default --older-than the minutes-old leftover is skipped,
	// and said to be, with what to pass.
	r := ackprobe(t, nil, "cleanup", "-s", c.URLs(), "--json")
	var skipped struct {
		Found   []probe.Orphan  `json:"found"`
		Skipped []probe.Skipped `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &skipped); err != nil || r.code != 0 {
		t.Fatalf("cleanup: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(skipped.Found) != 0 || len(skipped.Skipped) != 1 || skipped.Skipped[0].Stream != doc.Stream {
		t.Errorf("cleanup with the default --older-than: found %+v, skipped %+v", skipped.Found, skipped.Skipped)
	}
	r = ackprobe(t, nil, "cleanup", "-s", c.URLs(), "--no-color")
	if !strings.Contains(r.stdout, "1 skipped: ") || !strings.Contains(r.stdout, "pass --older-than 0s to remove it too") {
		t.Errorf("cleanup does not say what it skipped:\n%s%s", r.stdout, r.stderr)
	}
	// Listed, not removed, without --force and without a terminal.
	r = ackprobe(t, nil, "cleanup", "-s", c.URLs(), "--older-than", "0s", "--json")
	var listed struct {
		Found   []probe.Orphan `json:"found"`
		Removed []probe.Orphan `json:"removed"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || r.code != 0 {
		t.Fatalf("cleanup: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(listed.Found) != 1 || listed.Found[0].Stream != doc.Stream || len(listed.Removed) != 0 {
		lctx, lcancel := ctxTimeout(10 * time.Second)
		for n := range js.StreamNames(lctx).Name() {
			t.Logf("stream after the restart: %s", n)
		}
		lcancel()
		t.Logf("probe stderr:\n%s", p.stderr.String())
		t.Errorf("cleanup listed %+v, removed %+v\n%s\n%s", listed.Found, listed.Removed, r.stdout, r.stderr)
	}
	r = ackprobe(t, nil, "cleanup", "-s", c.URLs(), "--older-than", "0s", "--force", "--no-color")
	if r.code != 0 || !strings.Contains(r.stdout, "removed stream "+doc.Stream) {
		t.Errorf("cleanup --force: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ctx2, cancel2 := ctxTimeout(30 * time.Second)
	defer cancel2()
	if _, err := js.Stream(ctx2, doc.Stream); err != jetstream.ErrStreamNotFound {
		t.Errorf("probe stream after cleanup: %v", err)
	}
	st, err := js.Stream(ctx2, "ORDERS")
	if err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Errorf("the user's stream after cleanup: %v", err)
	}
	_ = nc
}
