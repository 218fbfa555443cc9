package canary

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/tooltest"
)

const testTimeout = 2 * time.Second

// dialer connects as ackprobe does: reconnecting for ever, every request
// bounded by the timeout.
func dialer(url string) func(context.Context) (*Conn, error) {
	return func(context.Context) (*Conn, error) {
		nc, err := nats.Connect(url, nats.Timeout(testTimeout), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			return nil, err
		}
		js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(testTimeout))
		if err != nil {
			nc.Close()
			return nil, err
		}
		return &Conn{NC: nc, JS: js, Close: nc.Close, Server: func() doc.ServerInfo {
			return doc.ServerInfo{URL: nc.ConnectedUrlRedacted(), Name: nc.ConnectedServerName(), Version: nc.ConnectedServerVersion()}
		}}, nil
	}
}

// running is a canary running in the background.
type running struct {
	c    *Canary
	stop context.CancelFunc
	done chan struct{}
	left []probe.Leftover
	err  error

	mu     sync.Mutex
	rounds []Outcome
	// between, when set, runs once after the next round ends, before the
	// round after it can start.
	between func()
}

// betweenRounds runs f between two rounds and waits for it to have run.
func (r *running) betweenRounds(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	r.mu.Lock()
	r.between = func() { f(); close(done) }
	r.mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("no round ended")
	}
}

func start(t *testing.T, url string, edit func(*Config)) *running {
	t.Helper()
	cfg := probe.DefaultConfig(modes...)
	cfg.Count, cfg.AckWait, cfg.Timeout = 5, 2*time.Second, testTimeout
	r := &running{done: make(chan struct{})}
	conf := Config{Probe: cfg, Interval: 20 * time.Millisecond, Dial: dialer(url),
		OnRound: func(o Outcome, _ string) {
			r.mu.Lock()
			r.rounds = append(r.rounds, o)
			f := r.between
			r.between = nil
			r.mu.Unlock()
			if f != nil {
				f()
			}
		}}
	if edit != nil {
		edit(&conf)
	}
	c, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		r.left, r.err = c.Run(ctx, 3*testTimeout)
	}()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// shutdown stops the canary and checks that it stopped within three
// timeouts.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
	case <-time.After(3*testTimeout + time.Second):
		t.Fatalf("the canary did not stop within %s", 3*testTimeout)
	}
}

// count returns the rounds seen so far with verdicts in the given set, and
// the last round.
func (r *running) count(verdicts ...string) (int, Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.rounds {
		for _, v := range verdicts {
			if o.Verdict() == v {
				n++
			}
		}
	}
	var last Outcome
	if len(r.rounds) > 0 {
		last = r.rounds[len(r.rounds)-1]
	}
	return n, last
}

// ctxFor is a context that ends after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// okRounds waits for n more rounds that finished (ok or warn).
func (r *running) okRounds(t *testing.T, n int) {
	t.Helper()
	before, _ := r.count(VerdictOK, VerdictWarn)
	waitFor(t, 30*time.Second, "rounds that finished", func() bool {
		got, last := r.count(VerdictOK, VerdictWarn)
		if last.Verdict() == VerdictFailed {
			t.Fatalf("round %d failed: %+v", last.Round, last.Result.Findings)
		}
		return got >= before+n
	})
}

// nothingLeft checks that the server holds no stream at all.
func nothingLeft(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var left []string
	for n := range names.Name() {
		left = append(left, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("streams left on the server: %v", left)
	}
}

func TestRunRounds(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	r := start(t, s.ClientURL(), nil)
	r.okRounds(t, 5)

	m := r.c.Metrics()
	if v, _ := value(t, m, MetricAcks, "mode", "confirmed"); v < 25 {
		t.Errorf("confirmed acks counted: %g, want at least 25", v)
	}
	if v, _ := value(t, m, MetricAckDuration, "mode", "confirmed"); v < 25 {
		t.Errorf("confirmed ack durations observed: %g, want at least 25", v)
	}
	if v, _ := value(t, m, MetricServerAckTime, "mode", "confirmed"); v == 0 {
		t.Error("no server ack time observed: the consumer samples every ack")
	}
	mustValue(t, m, 1, MetricUp)
	if !r.c.History().Ready() {
		t.Error("not ready after rounds that reached the server")
	}
	// What the canary set up, with the marks and limits a killed canary
	// relies on.
	cfg := r.c.ProbeConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, "ACKPROBE_"+cfg.ID, "ACKPROBE_"+cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.InactiveThreshold; got != cfg.InactiveThreshold || got < 30*time.Second {
		t.Errorf("consumer inactive threshold %s, want %s (at least 30s)", got, cfg.InactiveThreshold)
	}
	st, err := js.Stream(ctx, "ACKPROBE_"+cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != cfg.MaxAge || got < time.Minute {
		t.Errorf("stream max age %s, want %s", got, cfg.MaxAge)
	}

	r.shutdown(t)
	if r.err != nil || len(r.left) > 0 {
		t.Errorf("Run: %v, left %v", r.err, r.left)
	}
	nothingLeft(t, js)
}

// TestPromtoolCheckMetrics lints the canary's real /metrics output, after
// real rounds, with Prometheus's own promtool.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	promtool := tooltest.Path(t, "promtool", "apt-get install -y prometheus")
	s := natstest.RunServer(t)
	r := start(t, s.ClientURL(), nil)
	r.okRounds(t, 3)
	srv := httptest.NewServer(r.c.Handler())
	defer srv.Close()
	_, body := get(t, srv, PathMetrics, "")
	for _, name := range []string{MetricAcks, MetricAckDuration + "_bucket", MetricServerAckTime + "_bucket", MetricProbeInfo} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// TestRecreatesWhatVanished deletes the canary's consumer, then its stream,
// while it runs: it sets them up again and goes on. Each is deleted
// between two rounds (OnRound runs before the next round starts), as an
// operator would; a stream deleted during a round's publish would cost
// that round the probe's whole retry budget, 15s, before it errors.
func TestRecreatesWhatVanished(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	r := start(t, s.ClientURL(), nil)
	r.okRounds(t, 2)
	name := "ACKPROBE_" + r.c.ProbeConfig().ID
	m := r.c.Metrics()

	start := time.Now()
	r.betweenRounds(t, func() {
		if err := js.DeleteConsumer(ctxFor(t, 5*time.Second), name, name); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 30*time.Second, "the consumer set up again", func() bool { v, _ := value(t, m, MetricRecreated); return v >= 1 })
	r.okRounds(t, 1)
	t.Logf("consumer deleted: set up again and a round finished in %s", time.Since(start))

	start = time.Now()
	r.betweenRounds(t, func() {
		if err := js.DeleteStream(ctxFor(t, 5*time.Second), name); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, 30*time.Second, "the stream set up again", func() bool { v, _ := value(t, m, MetricRecreated); return v >= 2 })
	r.okRounds(t, 1)
	t.Logf("stream deleted: set up again and a round finished in %s", time.Since(start))
	if n, _ := r.count(VerdictError); n != 2 {
		t.Errorf("%d rounds counted as errors, want 2: the vanished consumer's and the vanished stream's", n)
	}
	if _, err := js.Stream(ctxFor(t, 5*time.Second), name); err != nil {
		t.Errorf("the stream was not set up again: %v", err)
	}
	r.shutdown(t)
	if r.err != nil || len(r.left) > 0 {
		t.Errorf("Run: %v, left %v", r.err, r.left)
	}
	nothingLeft(t, js)
}

// TestUnreachable runs a canary against a port that refuses connections:
// every round is an error, counted, and none is fatal.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	r := start(t, natstest.RefusedURL(t), nil)
	waitFor(t, 10*time.Second, "three rounds", func() bool { n, _ := r.count(VerdictError); return n >= 3 })
	_, last := r.count()
	if kind := ErrorKind(last.Err); kind != ErrorConnect {
		t.Errorf("error kind %s (%v), want connect", kind, last.Err)
	}
	if r.c.History().Ready() {
		t.Error("ready without ever reaching the server")
	}
	if st, _ := r.c.History().Overall(time.Now()); st != StatusFailing {
		t.Errorf("status %s, want failing", st)
	}
	m := r.c.Metrics()
	mustValue(t, m, 0, MetricUp)
	if v, _ := value(t, m, MetricRounds, "result", ResultError); v < 3 {
		t.Errorf("error rounds %g", v)
	}
	r.shutdown(t)
	if r.err != nil || len(r.left) > 0 {
		t.Errorf("Run: %v, left %v", r.err, r.left)
	}
}

// TestRefusedAtStart: a user's stream whose consumer would receive the
// probe messages is refused before any round, and Run says so instead of
// retrying for ever.
func TestRefusedAtStart(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	r := start(t, s.ClientURL(), func(c *Config) { c.Probe.Stream, c.Probe.Subject = "ORDERS", "orders.ackprobe" })
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if ErrorKind(r.err) != ErrorRefused {
		t.Errorf("Run: %v, want a refusal", r.err)
	}
	if n, _ := r.count(); n != 0 {
		t.Errorf("%d rounds reported", n)
	}
}

// TestTwoCanaries runs two canaries on one account at once: each has its
// own stream and consumer, and neither disturbs the other.
func TestTwoCanaries(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	a := start(t, s.ClientURL(), nil)
	b := start(t, s.ClientURL(), nil)
	a.okRounds(t, 5)
	b.okRounds(t, 5)
	if a.c.ProbeConfig().ID == b.c.ProbeConfig().ID {
		t.Fatal("two canaries with one id")
	}
	for _, r := range []*running{a, b} {
		if n, last := r.count(VerdictError, VerdictFailed); n > 0 {
			t.Errorf("canary %s: %d rounds did not finish cleanly, last %v", r.c.ProbeConfig().ID, n, last.Err)
		}
	}
	a.shutdown(t)
	b.shutdown(t)
	nothingLeft(t, js)
}

// TestPerNodeCanary: with --per-node, each round is led by the next server
// of the probe stream's peer set, and the node metrics name the server.
func TestPerNodeCanary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	_, js := natstest.Connect(t, c.URLs())
	r := start(t, c.URLs(), func(conf *Config) {
		conf.Probe.PerNode = true
		conf.Interval = 50 * time.Millisecond
	})
	m := r.c.Metrics()
	waitFor(t, 90*time.Second, "an ok round led by each server", func() bool {
		for _, n := range []string{"n1", "n2", "n3"} {
			if v, _ := value(t, m, MetricNodeRounds, "consumer_leader", n, "result", ResultOK); v < 1 {
				return false
			}
		}
		return true
	})
	for _, n := range []string{"n1", "n2", "n3"} {
		if v, _ := value(t, m, MetricNodeAckDuration, "mode", "confirmed", "consumer_leader", n); v < 5 {
			t.Errorf("%s: %g confirmed ack durations, want at least a round's", n, v)
		}
	}
	r.mu.Lock()
	for _, o := range r.rounds {
		if o.Result != nil && len(o.Result.Nodes) == 1 && o.Result.Nodes[0].LedWholeRound {
			if got := leaderOf(o.Result); got != o.Result.Nodes[0].Server {
				t.Errorf("round %d meant for %s was led by %s", o.Round, o.Result.Nodes[0].Server, got)
			}
		}
		// The servers take turns by name, whoever led before.
		if o.Result != nil && len(o.Result.Nodes) == 1 {
			if want := fmt.Sprintf("n%d", (o.Round-1)%3+1); o.Result.Nodes[0].Server != want {
				t.Errorf("round %d was meant for %s, want %s (the servers in turn)", o.Round, o.Result.Nodes[0].Server, want)
			}
		}
	}
	r.mu.Unlock()
	r.shutdown(t)
	if r.err != nil || len(r.left) > 0 {
		t.Errorf("Run: %v, left %v", r.err, r.left)
	}
	nothingLeft(t, js)
}

// TestStatusShowsOutage stops the nats-server process under a running
// canary: /status and ackprobe_up show the outage while the round that
// met it is still waiting (before it ends), and recover once the server
// is back and the canary reconnects.
func TestStatusShowsOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a nats-server process")
	}
	t.Parallel()
	s := natstest.RunServerProcess(t)
	r := start(t, s.URL, func(conf *Config) { conf.Interval = 100 * time.Millisecond })
	r.okRounds(t, 2)
	m := r.c.Metrics()
	up := func() float64 {
		v, _ := value(t, m, MetricUp)
		return v
	}
	if st := r.c.History().Status(time.Now()); !st.Up || !st.Connected || up() != 1 {
		t.Fatalf("before the outage: up %v connected %v ackprobe_up %g", st.Up, st.Connected, up())
	}
	before, _ := r.count(VerdictOK, VerdictWarn, VerdictFailed, VerdictError)
	s.Stop()
	stopped := time.Now()
	waitFor(t, DisconnectGrace+5*time.Second, "/status to show the outage", func() bool {
		st := r.c.History().Status(time.Now())
		return !st.Up && !st.Connected && st.DisconnectedSince != nil && st.Status != StatusOK && up() == 0 &&
			strings.Contains(st.Reason, "not connected to the server")
	})
	t.Logf("outage shown %s after the server stopped; %d round(s) ended meanwhile", time.Since(stopped).Round(time.Millisecond), func() int {
		n, _ := r.count(VerdictOK, VerdictWarn, VerdictFailed, VerdictError)
		return n - before
	}())
	s.Start()
	waitFor(t, 60*time.Second, "up again", func() bool {
		st := r.c.History().Status(time.Now())
		return st.Up && st.Connected && st.DisconnectedSince == nil && up() == 1
	})
	r.okRounds(t, 1)
}
