package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/inspect"
	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

// inspectServer is a server with some state, set up through the JetStream
// API:
//
//	ORDERS (10 messages)  worker   3 delivered, not acked
//	                      retry    2 delivered, redelivered after a 100ms ack wait
//	                      paused   paused for an hour
//	                      idle     nothing delivered
//	ACKPROBE_T            marked as ackprobe's, with an ackprobe consumer
type inspectServer struct {
	url string
	js  jetstream.JetStream
}

func newInspectServer(t *testing.T) *inspectServer {
	t.Helper()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx := inspectCtx(t)
	mark := map[string]string{marks.Owner: "ackprobe"}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage},
		{Name: "ACKPROBE_T", Subjects: []string{"ackprobe.t"}, Storage: jetstream.MemoryStorage, Metadata: mark},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	is := &inspectServer{url: s.ClientURL(), js: js}
	is.consumer(t, "ACKPROBE_T", jetstream.ConsumerConfig{Durable: "ACKPROBE_T", AckPolicy: jetstream.AckExplicitPolicy, Metadata: mark})
	is.publish(t, 10)
	is.fetch(t, is.consumer(t, "ORDERS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour /* outlives any test run: no ack-wait-expired */}), 3)
	// While it holds two, MaxAckPending 2 keeps the server from
	// delivering new messages: the second fetch can only be answered by
	// the redelivery of the same two, whenever the server's timer fires.
	// Then it gets the usual 1,000.
	retryCfg := jetstream.ConsumerConfig{Durable: "retry", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 100 * time.Millisecond, MaxAckPending: 2}
	retry := is.consumer(t, "ORDERS", retryCfg)
	is.fetch(t, retry, 2)
	waitAckWait(t, retry, 100*time.Millisecond)
	is.fetch(t, retry, 2) // the same two again: redelivered
	retryCfg.MaxAckPending = 1000
	if _, err := js.UpdateConsumer(ctx, "ORDERS", retryCfg); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	is.consumer(t, "ORDERS", jetstream.ConsumerConfig{Durable: "paused", AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: &until})
	is.consumer(t, "ORDERS", jetstream.ConsumerConfig{Durable: "idle", AckPolicy: jetstream.AckExplicitPolicy})
	return is
}

// waitAckWait waits until the consumer's last delivery is older than its
// ack wait, by the server's clock.
func waitAckWait(t *testing.T, c jetstream.Consumer, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ci, err := c.Info(inspectCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		if ci.Delivered.Last != nil && ci.TimeStamp.Sub(*ci.Delivered.Last) > wait+20*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the ack wait did not pass")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inspectCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (is *inspectServer) consumer(t *testing.T, stream string, cfg jetstream.ConsumerConfig) jetstream.Consumer {
	t.Helper()
	c, err := is.js.CreateConsumer(inspectCtx(t), stream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (is *inspectServer) publish(t *testing.T, n int) {
	t.Helper()
	for range n {
		if _, err := is.js.Publish(inspectCtx(t), "orders.new", []byte("order")); err != nil {
			t.Fatal(err)
		}
	}
}

func (is *inspectServer) fetch(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++
	}
	if got != n {
		t.Fatalf("fetched %d of %d", got, n)
	}
}

// infos reads every consumer's info directly from the server; the figures
// that move with the clock alone (the server's ts, the pause remaining) are
// zeroed.
func (is *inspectServer) infos(t *testing.T) map[string]jetstream.ConsumerInfo {
	t.Helper()
	ctx := inspectCtx(t)
	out := map[string]jetstream.ConsumerInfo{}
	for _, stream := range []string{"ORDERS", "ACKPROBE_T"} {
		st, err := is.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			c := *ci
			c.TimeStamp, c.PauseRemaining = time.Time{}, 0
			out[stream+"/"+c.Name] = c
		}
		if l.Err() != nil {
			t.Fatal(l.Err())
		}
	}
	return out
}

func decodeSnapshot(t *testing.T, s string) inspect.Snapshot {
	t.Helper()
	var snap inspect.Snapshot
	if err := json.Unmarshal([]byte(s), &snap); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, s)
	}
	return snap
}

// TestInspectJSONFigures compares every figure of inspect --json with the
// consumer info read directly, checks the contract's keys, and that
// inspecting (all views, JSON and tables) changed nothing on the server.
func TestInspectJSONFigures(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	before := is.infos(t)

	r := ackprobe(t, nil, "inspect", "--json", "-s", is.url)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	snap := decodeSnapshot(t, r.stdout)
	if len(snap.Streams) != 2 || snap.Summary.Consumers != 5 {
		t.Fatalf("streams %d consumers %d", len(snap.Streams), snap.Summary.Consumers)
	}
	for _, st := range snap.Streams {
		for _, c := range st.Consumers {
			want, ok := before[st.Name+"/"+c.Name]
			if !ok {
				t.Errorf("unexpected consumer %s/%s", st.Name, c.Name)
				continue
			}
			got := []any{c.NumPending, c.NumAckPending, c.NumRedelivered, c.NumWaiting, c.Delivered.StreamSeq, c.Delivered.ConsumerSeq, c.AckFloor.StreamSeq, c.AckFloor.ConsumerSeq, c.MaxAckPending, c.Paused}
			exp := []any{want.NumPending, want.NumAckPending, want.NumRedelivered, want.NumWaiting, want.Delivered.Stream, want.Delivered.Consumer, want.AckFloor.Stream, want.AckFloor.Consumer, want.Config.MaxAckPending, want.Paused}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("%s/%s: inspect %v, server %v", st.Name, c.Name, got, exp)
			}
		}
	}
	orders := snap.Stream("ORDERS")
	if orders.Messages != 10 || orders.Ackprobe || !snap.Stream("ACKPROBE_T").Ackprobe || !snap.Stream("ACKPROBE_T").Consumers[0].Ackprobe {
		t.Errorf("ORDERS %+v, ownership marks wrong", orders)
	}
	if c := orders.Consumer("retry"); c.Health.Status != inspect.Warn || c.Health.Reasons[0].Rule != "redelivery" {
		t.Errorf("retry health %+v", c.Health)
	}
	if c := orders.Consumer("paused"); !c.Paused || c.Health.Reasons[0].Rule != "paused" {
		t.Errorf("paused %+v", c)
	}

	// The contract's keys, by name.
	var doc struct {
		Streams []map[string]json.RawMessage `json:"streams"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "messages", "consumers"} {
		if _, ok := doc.Streams[0][k]; !ok {
			t.Errorf("stream lacks %q", k)
		}
	}
	var cs []map[string]any
	if err := json.Unmarshal(doc.Streams[1]["consumers"], &cs); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "num_pending", "num_ack_pending", "num_redelivered", "num_waiting"} {
		if _, ok := cs[0][k]; !ok {
			t.Errorf("consumer lacks %q", k)
		}
	}

	for _, args := range [][]string{
		{"inspect", "--no-color"},
		{"inspect", "ORDERS", "--json"},
		{"inspect", "ORDERS", "--no-color"},
		{"inspect", "ORDERS", "retry", "--json"},
		{"inspect", "ORDERS", "worker", "--no-color"},
	} {
		if r := ackprobe(t, nil, append(args, "-s", is.url)...); r.code != 0 {
			t.Errorf("%v: exit %d: %s", args, r.code, r.stderr)
		}
	}
	if after := is.infos(t); !reflect.DeepEqual(before, after) {
		t.Errorf("inspect changed consumer state:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestInspectTable checks the table's cells against the server's figures.
func TestInspectTable(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	want := is.infos(t)
	r := ackprobe(t, nil, "inspect", "--no-color", "-s", is.url)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rows := tableRows(r.stdout)
	if !hasRow(rows, []string{"ORDERS", "4 consumers", "10"}) || !hasRow(rows, []string{"ACKPROBE_T", "1 consumer", "0"}) {
		t.Errorf("stream rows missing:\n%s", r.stdout)
	}
	for _, name := range []string{"worker", "retry", "paused", "idle"} {
		ci := want["ORDERS/"+name]
		cells := []string{"", name, "", "",
			fmt.Sprint(ci.NumPending), fmt.Sprintf("%d / 1,000", ci.NumAckPending), fmt.Sprint(ci.NumRedelivered), fmt.Sprint(ci.NumWaiting)}
		if !hasRow(rows, cells) {
			t.Errorf("no row %q in:\n%s", cells, r.stdout)
		}
	}
	for _, w := range [][]string{
		{"", "worker", "", "", "7", "3 / 1,000", "0", "0"},
		{"", "retry", "", "", "8", "2 / 1,000", "2", "0"},
		{"", "idle", "", "", "10", "0 / 1,000", "0", "0", "-", "-", "ok"},
		{"", "ACKPROBE_T", "", "", "0", "0 / 1,000", "0", "0", "-", "-", "ok", "ackprobe's"},
	} {
		if !hasRow(rows, w) {
			t.Errorf("no row %q in:\n%s", w, r.stdout)
		}
	}
	for _, row := range rows {
		switch {
		case len(row) < 12:
		case row[1] == "worker" && !strings.HasPrefix(row[8], "3 · "):
			t.Errorf("worker delivered cell %q", row[8])
		case row[1] == "retry" && (row[10] != "warn" || !strings.HasPrefix(row[8], "2 · ")):
			t.Errorf("retry row %q", row)
		case row[1] == "paused" && (row[10] != "warn" || !strings.HasPrefix(row[11], "paused ")):
			t.Errorf("paused row %q", row)
		}
	}
	for _, s := range []string{"! ORDERS › retry: 2 messages redelivered", "! ORDERS › paused: paused for another", "WARN: 2 of 5 consumers worth a look, none critical"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("no %q in:\n%s", s, r.stdout)
		}
	}
}

func TestInspectExitCodes(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	cases := []struct {
		name string
		args []string
		code int
		msg  string // on stderr, for exit 2
		out  string // on stdout, otherwise
	}{
		{"all ok or warn", []string{"inspect"}, 0, "", "WARN: 2 of 5"},
		{"redelivery critical", []string{"inspect", "--redelivery-critical", "2"}, 1, "", "CRITICAL: 1 of 5 consumers critical"},
		{"threshold one above the figure", []string{"inspect", "--redelivery-critical", "3"}, 0, "", "WARN"},
		{"unprocessed critical", []string{"inspect", "ORDERS", "idle", "--unprocessed-critical", "10"}, 1, "", "10 messages not yet delivered (critical at 10)"},
		{"json critical", []string{"inspect", "--json", "--outstanding-ack-critical", "3"}, 1, "", `"status": "critical"`},
		{"unknown stream", []string{"inspect", "NOPE"}, 2, `ackprobe: stream "NOPE" not found`, ""},
		{"unknown stream of consumer", []string{"inspect", "NOPE", "worker"}, 2, `ackprobe: stream "NOPE" not found`, ""},
		{"unknown consumer", []string{"inspect", "ORDERS", "nope"}, 2, `ackprobe: consumer "nope" not found on stream "ORDERS"`, ""},
		{"unknown consumer json", []string{"inspect", "ORDERS", "nope", "--json"}, 2, `consumer "nope" not found`, ""},
		{"bad stream name", []string{"inspect", "a.b"}, 2, `ackprobe: stream "a.b" is not a valid stream name`, ""},
		{"bad consumer name", []string{"inspect", "ORDERS", "a*"}, 2, `ackprobe: consumer "a*" is not a valid consumer name`, ""},
		{"empty name", []string{"inspect", ""}, 2, "the stream name is empty", ""},
		{"too many arguments", []string{"inspect", "a", "b", "c"}, 2, "at most a stream and a consumer", ""},
		{"negative threshold", []string{"inspect", "--redelivery-warn", "-1"}, 2, "must not be negative", ""},
		{"share over 100", []string{"inspect", "--ack-pending-share-critical", "150"}, 2, "percentage from 0 to 100", ""},
		{"bad watch", []string{"inspect", "--watch", "1ms"}, 2, "--watch must be at least 10ms", ""},
		{"watch not a duration", []string{"inspect", "--watch", "often"}, 2, "is not a duration", ""},
		{"watch not a duration json", []string{"inspect", "--json", "--watch", "often"}, 2, "is not a duration", ""},
		{"unknown stream json", []string{"inspect", "NOPE", "--json"}, 2, `stream "NOPE" not found`, ""},
		{"bad format", []string{"inspect", "--format", "xml"}, 2, `--format "xml": use text, json, nagios or prometheus`, ""},
		{"json and nagios", []string{"inspect", "--json", "--format", "nagios"}, 2, "--json and --format nagios disagree", ""},
		{"bad sort", []string{"inspect", "--sort", "size"}, 2, `--sort "size": use one of name, pending, ack-pending, redelivered, health`, ""},
		{"bad only", []string{"inspect", "--only", "ok"}, 2, `--only "ok": use warn (warn and critical) or critical`, ""},
		{"format json", []string{"inspect", "--format", "json", "--outstanding-ack-critical", "3"}, 1, "", `"status": "critical"`},
		{"prometheus critical exits 0", []string{"inspect", "--format", "prometheus", "--outstanding-ack-critical", "3"}, 0, "", `ackprobe_consumer_health{cluster="",consumer_name="worker",server_name=`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := ackprobe(t, nil, append(c.args, "--no-color", "-s", is.url)...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.code == 2 {
				lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "ackprobe: ") || !strings.Contains(lines[0], c.msg) {
					t.Errorf("stderr = %q, want one line 'ackprobe: ...%s...'", r.stderr, c.msg)
				}
				if slices.Contains(c.args, "--json") && !slices.Contains(c.args, "--format") {
					// Under --json, one document says so on stdout.
					var doc struct {
						OK    *bool `json:"ok"`
						Error struct {
							ExitCode int    `json:"exit_code"`
							Message  string `json:"message"`
						} `json:"error"`
					}
					if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.OK == nil || *doc.OK || doc.Error.ExitCode != 2 || !strings.Contains(doc.Error.Message, c.msg) {
						t.Errorf("stdout = %q, want the failure document", r.stdout)
					}
				} else if r.stdout != "" {
					t.Errorf("stdout = %q", r.stdout)
				}
				return
			}
			if r.stderr != "" || !strings.Contains(r.stdout, c.out) {
				t.Errorf("stdout lacks %q (stderr %q):\n%s", c.out, r.stderr, r.stdout)
			}
		})
	}
}

// TestInspectMetadataOverride makes a consumer critical through its
// io.nats.monitor metadata alone, as nats server check consumer reads it.
func TestInspectMetadataOverride(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	c := is.consumer(t, "ORDERS", jetstream.ConsumerConfig{Durable: "strict", AckPolicy: jetstream.AckExplicitPolicy,
		Metadata: map[string]string{inspect.MetaOutstandingAckCritical: "1"}})
	is.fetch(t, c, 1)
	r := ackprobe(t, nil, "inspect", "ORDERS", "strict", "--no-color", "-s", is.url)
	if r.code != 1 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.stderr, r.stdout)
	}
	for _, s := range []string{"Consumer ORDERS › strict  CRITICAL", "✗ outstanding-ack: 1 messages ack pending (critical at 1)",
		"threshold from metadata: io.nats.monitor.outstanding-ack-critical=1"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("no %q in:\n%s", s, r.stdout)
		}
	}
	// The flag does not override the metadata: the consumer stays critical.
	if r := ackprobe(t, nil, "inspect", "ORDERS", "strict", "--outstanding-ack-critical", "100", "-s", is.url); r.code != 1 {
		t.Errorf("with the flag: exit %d", r.code)
	}
}

func TestInspectNoJetStream(t *testing.T) {
	t.Parallel()
	o := natstest.Options(t)
	o.JetStream = false
	s := natstest.RunServerWith(t, o)
	r := ackprobe(t, nil, "inspect", "--timeout", "2s", "-s", s.ClientURL())
	if r.code != 2 || !strings.HasPrefix(r.stderr, "ackprobe: ") || !strings.Contains(r.stderr, "JetStream") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestInspectNeedsAServer: a monitoring check that lost its NATS_URL must
// not pass by looking at an empty embedded server; --embedded still does,
// for a demo.
func TestInspectNeedsAServer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"inspect"}, 2, ""},
		{[]string{"inspect", "ORDERS"}, 2, ""},
		{[]string{"inspect", "--json"}, 2, `"exit_code": 2`},
		{[]string{"inspect", "--format", "nagios"}, 3, "UNKNOWN JetStream inspect needs a server to look at"},
		{[]string{"inspect", "--format", "nagios", "ORDERS", "worker"}, 3, "UNKNOWN ORDERS_worker inspect needs a server"},
		{[]string{"inspect", "--format", "prometheus"}, 2, "ackprobe_inspect_up 0"},
	} {
		r := ackprobe(t, map[string]string{}, c.args...)
		if r.code != c.code || r.stderr != "ackprobe: inspect needs a server to look at: give -s URL, NATS_URL or --context (or --embedded for an empty embedded server)\n" ||
			!strings.Contains(r.stdout, c.stdout) || (c.stdout == "") != (r.stdout == "") {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", c.args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestInspectEmbeddedEmpty(t *testing.T) {
	t.Parallel()
	r := ackprobe(t, map[string]string{}, "inspect", "--embedded", "--no-color")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "No streams in this account.") || !strings.Contains(r.stdout, "(embedded)") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "started an embedded nats-server") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr %q", r.stderr)
	}
	r = ackprobe(t, map[string]string{}, "inspect", "--embedded", "--json")
	if snap := decodeSnapshot(t, r.stdout); r.code != 0 || len(snap.Streams) != 0 || !strings.Contains(r.stdout, `"streams": []`) || !snap.OK {
		t.Errorf("exit %d: %s", r.code, r.stdout)
	}
}

// lockedBuffer is written by the command and read by the test meanwhile.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// watch runs inspect --watch until stop returns true for what it printed,
// then cancels it as Ctrl-C would, and returns the exit code and output.
func watch(t *testing.T, tty bool, args []string, stop func(out string) bool) (int, string, string) {
	t.Helper()
	return watchUntil(t, tty, args, func(out, _ string) bool { return stop(out) })
}

// watchUntil is watch with stop also given what was printed on stderr.
func watchUntil(t *testing.T, tty bool, args []string, stop func(out, errOut string) bool) (int, string, string) {
	t.Helper()
	var out, errb lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, streams{stdout: &out, stderr: &errb, stdoutTTY: tty, getenv: func(string) string { return "" }})
	}()
	deadline := time.After(20 * time.Second)
	for !stop(out.String(), errb.String()) {
		select {
		case code := <-done:
			t.Fatalf("ended early with %d: %s\n%s", code, errb.String(), out.String())
		case <-deadline:
			cancel()
			t.Fatalf("no end condition within 20s:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	select {
	case code := <-done:
		return code, out.String(), errb.String()
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after cancel")
	}
	return 0, "", ""
}

// TestInspectWatchJSON publishes between refreshes and checks that a later
// refresh shows the movement.
func TestInspectWatchJSON(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	published := false
	var lines []string
	code, out, errOut := watch(t, false, []string{"inspect", "ORDERS", "--watch", "50ms", "--json", "-s", is.url}, func(out string) bool {
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if out == "" {
			return false
		}
		if !published {
			is.publish(t, 5)
			published = true
		}
		last := lines[len(lines)-1]
		return strings.Contains(last, `"messages":15`) && strings.Contains(last, `"delta"`) && len(lines) >= 2
	})
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d refreshes", len(lines))
	}
	// The publish may land between refreshes or straddle two: each delta
	// must be the difference from the refresh before, and together they
	// must add up to the 5 messages.
	var total, idlePending, workerPending int64
	var prev *inspect.Snapshot
	for i, line := range lines {
		snap := decodeSnapshot(t, line)
		st := snap.Stream("ORDERS")
		if i == 0 {
			if st.Delta != nil {
				t.Errorf("first refresh has a delta")
			}
			prev = &snap
			continue
		}
		idle, worker := st.Consumer("idle"), st.Consumer("worker")
		if st.Delta == nil || idle.Delta == nil || worker.Delta == nil {
			t.Fatalf("refresh %d has no delta", i+1)
		}
		before := prev.Stream("ORDERS")
		if want := int64(st.Messages) - int64(before.Messages); st.Delta.Messages != want {
			t.Errorf("refresh %d: stream delta %+v, messages went %d → %d", i+1, st.Delta, before.Messages, st.Messages)
		}
		if want := int64(idle.NumPending) - int64(before.Consumer("idle").NumPending); idle.Delta.Pending != want {
			t.Errorf("refresh %d: idle delta %+v, pending went %d → %d", i+1, idle.Delta, before.Consumer("idle").NumPending, idle.NumPending)
		}
		total += st.Delta.Messages
		idlePending += idle.Delta.Pending
		workerPending += worker.Delta.Pending
		prev = &snap
	}
	if total != 5 || idlePending != 5 || workerPending != 5 {
		t.Errorf("the refreshes' deltas add up to %d messages, %d and %d pending, not the 5 messages published:\n%s", total, idlePending, workerPending, out)
	}
}

func TestInspectWatchTable(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	args := []string{"inspect", "--watch", "50ms", "--no-color", "-s", is.url}

	// Not a terminal: snapshots one after another, separated by a blank line.
	code, out, _ := watch(t, false, args, func(out string) bool { return strings.Count(out, "ackprobe inspect ") >= 3 })
	if code != 0 || strings.Contains(out, "\x1b[") {
		t.Errorf("exit %d, escapes in piped output: %q", code, out)
	}
	if n := strings.Count(out, "\n\nackprobe inspect "); n < 2 {
		t.Errorf("%d blank-line separated refreshes:\n%s", n, out)
	}
	if !strings.Contains(out, "refresh 2 (Ctrl-C to stop)") || !strings.Contains(out, "Delivered/s") {
		t.Errorf("no second refresh with rates:\n%s", out)
	}

	// A terminal: redrawn in place, the cursor hidden meanwhile and restored
	// at the end, after a final newline.
	code, out, _ = watch(t, true, args, func(out string) bool { return strings.Count(out, "ackprobe inspect ") >= 2 })
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	if !strings.HasPrefix(out, hideCursor+clearScreen+home) || !strings.HasSuffix(out, clearBelow+"\n"+showCursor) {
		t.Errorf("terminal control: starts %q, ends %q", out[:min(len(out), 20)], out[max(0, len(out)-20):])
	}
	if strings.Count(out, home) < 2 {
		t.Errorf("not redrawn in place")
	}

	// The last refresh decides the exit code.
	code, _, _ = watch(t, false, append(args, "--redelivery-critical", "1"), func(out string) bool { return strings.Contains(out, "refresh 2") })
	if code != 1 {
		t.Errorf("critical consumer under --watch: exit %d", code)
	}
}

// TestInspectFlags checks parsing alone, with no server.
func TestInspectFlags(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) (*inspectOptions, error) {
		g := &globalOptions{}
		var got *inspectOptions
		root := &cobra.Command{Use: "ackprobe", SilenceErrors: true, SilenceUsage: true}
		addConnFlags(root.PersistentFlags(), g, func(string) string { return "" })
		root.PersistentFlags().BoolVar(&g.json, "json", false, "")
		root.AddCommand(newInspectCmd(g, streams{}, func(o *inspectOptions) error { got = o; return nil }))
		root.SetArgs(append([]string{"inspect", "-s", "nats://127.0.0.1:4222"}, args...))
		root.SetOut(&bytes.Buffer{})
		err := root.Execute()
		return got, err
	}
	o, err := parse()
	if err != nil || o.stream != "" || o.consumer != "" || o.watch != 0 || o.thresholds != inspect.DefaultThresholds() {
		t.Fatalf("defaults: %+v %v", o, err)
	}
	o, err = parse("ORDERS", "worker", "--watch", "2s", "--redelivery-critical", "5", "--last-ack-critical", "10m",
		"--ack-pending-share-critical", "95", "--waiting-warn", "3", "--unprocessed-critical", "1000", "--last-delivery-warn", "0", "--pinned")
	if err != nil {
		t.Fatal(err)
	}
	th := o.thresholds
	if o.stream != "ORDERS" || o.consumer != "worker" || o.watch != 2*time.Second || th.Critical.Redelivery != 5 ||
		th.Critical.LastAck != 10*time.Minute || th.Critical.AckPendingShare != 95 || th.Warn.Waiting != 3 ||
		th.Critical.Unprocessed != 1000 || th.Warn.LastDelivery != 0 || !th.Pinned || th.Warn.Redelivery != 1 {
		t.Errorf("parsed %+v", o)
	}
}

// TestInspectThresholdFlagsRefused gives every threshold flag of inspect a
// value no rule can use: one line naming the flag and the value, exit 2,
// no usage, before anything is dialed (the URL has no server).
func TestInspectThresholdFlagsRefused(t *testing.T) {
	t.Parallel()
	type bad struct{ flag, value, want string }
	var cases []bad
	n := 0
	newInspectCmd(&globalOptions{}, streams{}, nil).Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.HasSuffix(f.Name, "-warn") && !strings.HasSuffix(f.Name, "-critical") {
			return
		}
		n++
		switch f.Value.Type() {
		case "int":
			cases = append(cases, bad{f.Name, "-1", "must not be negative, got -1"})
		case "duration":
			cases = append(cases, bad{f.Name, "-1s", "must not be negative, got -1s"})
		case "float64":
			cases = append(cases, bad{f.Name, "-1", "must not be negative, got -1"},
				bad{f.Name, "NaN", "must be a number, got NaN"}, bad{f.Name, "+Inf", "must be a number, got +Inf"})
		default:
			t.Errorf("--%s: a threshold of type %s", f.Name, f.Value.Type())
		}
	})
	if n != 26 {
		t.Errorf("%d threshold flags, want 26 (13 rules, warn and critical)", n)
	}
	cases = append(cases, bad{"ack-pending-share-warn", "101", "is a percentage from 0 to 100, got 101"},
		bad{"ack-pending-share-critical", "100.5", "is a percentage from 0 to 100, got 100.5"})
	for _, c := range cases {
		t.Run(c.flag+"="+c.value, func(t *testing.T) {
			t.Parallel()
			line := "ackprobe: --" + c.flag + " " + c.want + "\n"
			r := ackprobe(t, nil, "inspect", "--"+c.flag+"="+c.value, "-s", "nats://127.0.0.1:1")
			if r.code != 2 || r.stderr != line || r.stdout != "" {
				t.Errorf("exit %d\nstdout %q\nstderr %q, want %q", r.code, r.stdout, r.stderr, line)
			}
			// Also as the value after the flag, under --json and --watch.
			r = ackprobe(t, nil, "inspect", "--json", "--watch", "1s", "--"+c.flag, c.value, "-s", "nats://127.0.0.1:1")
			if r.code != 2 || r.stderr != line {
				t.Errorf("--json: exit %d, stderr %q, want %q", r.code, r.stderr, line)
			}
			var doc struct {
				OK    *bool `json:"ok"`
				Error struct {
					ExitCode int    `json:"exit_code"`
					Message  string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.OK == nil || *doc.OK || doc.Error.ExitCode != 2 || doc.Error.Message != strings.TrimSuffix(strings.TrimPrefix(line, "ackprobe: "), "\n") {
				t.Errorf("--json: stdout %q, want the failure document", r.stdout)
			}
		})
	}
}

// watchDoc is what the --watch --json tests read of each line.
type watchDoc struct {
	OK    *bool `json:"ok"`
	Error *struct {
		ExitCode int    `json:"exit_code"`
		Message  string `json:"message"`
	} `json:"error"`
	Server struct {
		URL string `json:"url"`
	} `json:"server"`
	Scope   inspect.Scope     `json:"scope"`
	Taken   time.Time         `json:"taken"`
	Streams []json.RawMessage `json:"streams"`
}

// watchDocs reads --watch --json output: every line is one JSON document
// with "ok"; a failed refresh's holds "error" and no streams.
func watchDocs(t *testing.T, out string) []watchDoc {
	t.Helper()
	var docs []watchDoc
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			if out != "" {
				t.Fatalf("line %d is empty:\n%s", i+1, out)
			}
			continue
		}
		var d watchDoc
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.OK == nil {
			t.Fatalf("line %d is not a JSON document with \"ok\": %v\n%s", i+1, err, line)
		}
		if (d.Error != nil) != (len(d.Streams) == 0) || (d.Error != nil) == *d.OK {
			t.Fatalf("line %d is neither a snapshot nor a failure document:\n%s", i+1, line)
		}
		docs = append(docs, d)
	}
	return docs
}

// failedRefresh matches the stderr line of a failed refresh.
var failedRefresh = regexp.MustCompile(`^ackprobe: refresh (\d+) failed: (.+)$`)

// checkRefreshes checks that the watch printed one document per refresh:
// the Nth line failed exactly when stderr says "refresh N failed", with
// the same message.
func checkRefreshes(t *testing.T, docs []watchDoc, stderr string) {
	t.Helper()
	failed := map[int]string{}
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		m := failedRefresh.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("stderr line %q", line)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		failed[n] = m[2]
	}
	for i, d := range docs {
		msg, ok := failed[i+1]
		switch {
		case d.Error == nil && ok:
			t.Errorf("refresh %d failed (%s), but its line is a snapshot", i+1, msg)
		case d.Error != nil && !ok:
			t.Errorf("line %d is a failure document, but stderr says nothing of refresh %d", i+1, i+1)
		case d.Error != nil && (d.Error.ExitCode != 2 || d.Error.Message != msg || d.Server.URL == "" || d.Taken.IsZero()):
			t.Errorf("refresh %d: failure document %+v, stderr %q", i+1, d, msg)
		}
		delete(failed, i+1)
	}
	if len(failed) > 0 {
		t.Errorf("refreshes that failed without a document: %v", failed)
	}
}

// TestInspectWatchServerGoesAway stops the server under inspect --watch:
// every refresh still prints one JSON document on one line, the failed
// ones the failure document; the watch keeps going and recovers when the
// server is back, and ends with the exit code of its last refresh.
func TestInspectWatchServerGoesAway(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	_, js := natstest.Connect(t, srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	ctx := inspectCtx(t)
	// A file stream: still there after the restart.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	args := []string{"inspect", "--json", "--watch", "50ms", "--timeout", "500ms", "-s", srv.URL}
	count := func(out string, ok bool) int {
		n := 0
		for _, d := range watchDocs(t, out) {
			if *d.OK == ok {
				n++
			}
		}
		return n
	}

	// Up, down for a few refreshes, up again: exit 0, the last refresh
	// being good.
	phase := 0
	code, out, errOut := watch(t, false, args, func(out string) bool {
		switch {
		case phase == 0 && count(out, true) >= 2:
			srv.Stop()
			phase = 1
		case phase == 1 && count(out, false) >= 3:
			srv.Start()
			phase = 2
		case phase == 2:
			docs := watchDocs(t, out)
			return *docs[len(docs)-1].OK && count(out, false) >= 3
		}
		return false
	})
	docs := watchDocs(t, out)
	checkRefreshes(t, docs, errOut)
	if code != 0 || count(out, false) < 3 || !*docs[0].OK || !*docs[len(docs)-1].OK {
		t.Fatalf("exit %d, want 0 after the server came back\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, d := range docs {
		if d.Error != nil && !strings.Contains(d.Error.Message, "lost the connection to "+srv.URL) {
			t.Errorf("failure message %q", d.Error.Message)
		}
	}

	// Down at the end: the last refresh failed, exit 2, whether the
	// output is JSON or text.
	for _, format := range []string{"json", "text"} {
		if !srv.Running() {
			srv.Start()
		}
		args := []string{"inspect", "ORDERS", "--format", format, "--watch", "50ms", "--timeout", "500ms", "-s", srv.URL}
		code, out, errOut := watchUntil(t, false, args, func(out, errOut string) bool {
			if srv.Running() && strings.Count(out, "\n") >= 2 {
				srv.Stop()
			}
			return !srv.Running() && strings.Count(errOut, "\n") >= 2
		})
		if code != 2 {
			t.Errorf("--format %s, server gone: exit %d, want 2\nstdout %s\nstderr %s", format, code, out, errOut)
		}
		if format == "json" {
			docs := watchDocs(t, out)
			checkRefreshes(t, docs, errOut)
			if last := docs[len(docs)-1]; last.Error == nil || last.Scope.Stream != "ORDERS" {
				t.Errorf("last document %+v", last)
			}
			continue
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		for _, line := range lines {
			if !failedRefresh.MatchString(line) {
				t.Errorf("text: stderr line %q", line)
			}
		}
		if strings.Contains(out, "{") {
			t.Errorf("text: JSON on stdout:\n%s", out)
		}
	}
}

// TestInspectWatchFirstRefresh: a watch whose first look fails ends at
// once, as a single look does, and one interrupted before its first
// refresh ended says so; under --json each in one document on one line.
func TestInspectWatchFirstRefresh(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	r := ackprobe(t, nil, "inspect", "NOPE", "--json", "--watch", "50ms", "-s", is.url)
	docs := watchDocs(t, r.stdout)
	want := `stream "NOPE" not found`
	if r.code != 2 || len(docs) != 1 || docs[0].Error == nil || docs[0].Error.Message != want || docs[0].Scope.Stream != "NOPE" ||
		r.stderr != "ackprobe: "+want+"\n" {
		t.Errorf("unknown stream: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// No server: the connection fails before the first refresh.
	r = ackprobe(t, nil, "inspect", "--json", "--watch", "50ms", "-s", "nats://127.0.0.1:1")
	if docs := watchDocs(t, r.stdout); r.code != 2 || len(docs) != 1 || docs[0].Error == nil || !strings.Contains(docs[0].Error.Message, "cannot connect") {
		t.Errorf("no server: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}

	// A JetStream API that never answers (a subscriber that does not
	// reply, under --js-api-prefix): Ctrl-C during the first refresh.
	nc, _ := natstest.Connect(t, is.url)
	asked := make(chan struct{}, 1)
	sub, err := nc.Subscribe("silent.api.>", func(*nats.Msg) {
		select {
		case asked <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var out, errb lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"inspect", "--json", "--watch", "50ms", "--timeout", "1m", "--js-api-prefix", "silent.api", "-s", is.url},
			streams{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	select {
	case <-asked:
	case code := <-done:
		t.Fatalf("ended with %d before asking: %s", code, errb.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no JetStream API request within 20s")
	}
	cancel()
	select {
	case code := <-done:
		docs := watchDocs(t, out.String())
		if code != 130 || len(docs) != 1 || docs[0].Error == nil || docs[0].Error.ExitCode != 130 || errb.String() != "ackprobe: interrupted\n" {
			t.Errorf("interrupted: exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after cancel")
	}
}

// TestInspectWatchWithoutEventPermission: an account that may not
// subscribe to $JS.EVENT.> is still watched, and told what inspect cannot
// count, rather than failing every refresh.
func TestInspectWatchWithoutEventPermission(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, `
listen: 127.0.0.1:-1
jetstream { store_dir: $STORE }
accounts { A { jetstream: enabled, users: [
	{user: watcher, password: w, permissions: { subscribe: { deny: ["$JS.EVENT.>"] } } },
	{user: admin, password: a}
] } }
`)
	_, js := natstest.Connect(t, "nats://admin:a@"+s.Addr().String())
	if _, err := js.CreateStream(inspectCtx(t), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(inspectCtx(t), "ORDERS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := watch(t, false, []string{"inspect", "--json", "--watch", "50ms", "-s", "nats://watcher:w@" + s.Addr().String()},
		func(out string) bool { return strings.Count(out, "\n") >= 2 })
	docs := watchDocs(t, out)
	if code != 0 || errOut != "" || !*docs[1].OK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	snap := decodeSnapshot(t, strings.Split(out, "\n")[1])
	if d := snap.Stream("ORDERS").Consumer("worker").Delta; d == nil || !strings.Contains(d.EventsUnavailable, "$JS.EVENT") {
		t.Errorf("second refresh's delta %+v", d)
	}
}

// TestUnrecoverable: a watch stops only on failures that no later refresh
// can get past.
func TestUnrecoverable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&connect.StateError{Err: context.Canceled, Denied: &connect.PermissionError{Op: "publish", Subject: "$JS.API.STREAM.LIST"}}, true},
		{&connect.StateError{Err: context.Canceled, Closed: &connect.ClosedError{}}, true},
		{&connect.StateError{Err: context.DeadlineExceeded, Status: nats.RECONNECTING}, false},
		{fmt.Errorf("list streams: %w", context.DeadlineExceeded), false},
		{&inspect.NotFoundError{Stream: "ORDERS"}, false},
		{fmt.Errorf("list streams: %w", &jetstream.APIError{Code: 503, ErrorCode: 10008}), false},
	} {
		if got := unrecoverable(c.err); got != c.want {
			t.Errorf("unrecoverable(%v) = %v", c.err, got)
		}
	}
}
