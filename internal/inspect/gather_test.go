package inspect

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fixture is an account with some state, set up through the JetStream API:
//
//	ORDERS (10 messages)  worker   3 delivered, not acked
//	                      retry    2 delivered, redelivered after a 100ms ack wait
//	                      paused   paused for an hour
//	                      idle     nothing delivered
//	EMPTY                 no consumers
//	ACKPROBE_T            marked as ackprobe's, with an ackprobe consumer
func fixture(t *testing.T) jetstream.JetStream {
	t.Helper()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx := testCtx(t)
	mustStream(t, js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage})
	mustStream(t, js, jetstream.StreamConfig{Name: "EMPTY", Subjects: []string{"empty.>"}, Storage: jetstream.MemoryStorage})
	mark := map[string]string{marks.Owner: "ackprobe"}
	mustStream(t, js, jetstream.StreamConfig{Name: "ACKPROBE_T", Subjects: []string{"ackprobe.t"}, Storage: jetstream.MemoryStorage, Metadata: mark})
	mustConsumer(t, js, "ACKPROBE_T", jetstream.ConsumerConfig{Durable: "ACKPROBE_T", AckPolicy: jetstream.AckExplicitPolicy, Metadata: mark})
	publish(t, js, "orders.new", 10)

	worker := mustConsumer(t, js, "ORDERS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour /* outlives any test run: no ack-wait-expired */})
	fetch(t, worker, 3)
	// While it holds two, MaxAckPending 2 keeps the server from
	// delivering new messages: the second fetch can only be answered by
	// the redelivery of the same two, whenever the server's timer fires.
	// Then it gets the usual 1,000.
	retryCfg := jetstream.ConsumerConfig{Durable: "retry", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 100 * time.Millisecond, MaxAckPending: 2}
	retry := mustConsumer(t, js, "ORDERS", retryCfg)
	fetch(t, retry, 2)
	eventually(t, "the ack wait to pass", func() bool {
		ci, err := retry.Info(ctx)
		return err == nil && ci.TimeStamp.Sub(*ci.Delivered.Last) > 120*time.Millisecond
	})
	fetch(t, retry, 2) // the same two again: redelivered
	retryCfg.MaxAckPending = 1000
	if _, err := js.UpdateConsumer(ctx, "ORDERS", retryCfg); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	mustConsumer(t, js, "ORDERS", jetstream.ConsumerConfig{Durable: "paused", AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: &until})
	mustConsumer(t, js, "ORDERS", jetstream.ConsumerConfig{Durable: "idle", AckPolicy: jetstream.AckExplicitPolicy})

	info, err := js.Consumer(ctx, "ORDERS", "retry")
	if err != nil {
		t.Fatal(err)
	}
	if ci := info.CachedInfo(); ci.NumRedelivered != 2 || ci.NumAckPending != 2 {
		t.Fatalf("fixture: retry consumer redelivered %d, ack pending %d", ci.NumRedelivered, ci.NumAckPending)
	}
	return js
}

func mustStream(t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) {
	t.Helper()
	if _, err := js.CreateStream(testCtx(t), cfg); err != nil {
		t.Fatalf("create stream %s: %v", cfg.Name, err)
	}
}

func mustConsumer(t *testing.T, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) jetstream.Consumer {
	t.Helper()
	c, err := js.CreateConsumer(testCtx(t), stream, cfg)
	if err != nil {
		t.Fatalf("create consumer %s: %v", cfg.Durable, err)
	}
	return c
}

func publish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(testCtx(t), subject, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// fetch receives n messages and leaves them unacked.
func fetch(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++
	}
	if got != n || batch.Error() != nil {
		t.Fatalf("fetched %d of %d: %v", got, n, batch.Error())
	}
}

// infos reads every consumer's info directly, with the figures that move
// by themselves as time passes (the server's timestamp, the remaining pause)
// zeroed.
func infos(t *testing.T, js jetstream.JetStream) map[string]jetstream.ConsumerInfo {
	t.Helper()
	ctx := testCtx(t)
	out := map[string]jetstream.ConsumerInfo{}
	for name := range js.StreamNames(ctx).Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			c := *ci
			c.TimeStamp, c.PauseRemaining = time.Time{}, 0
			out[name+"/"+ci.Name] = c
		}
		if l.Err() != nil {
			t.Fatal(l.Err())
		}
	}
	return out
}

func gather(t *testing.T, js jetstream.JetStream, o Options) *Snapshot {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Thresholds == (Thresholds{}) {
		o.Thresholds = DefaultThresholds()
	}
	snap, err := Gather(testCtx(t), js, o)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestGatherFigures checks every figure against the consumer info read
// directly from the server, and that inspecting changed nothing.
func TestGatherFigures(t *testing.T) {
	t.Parallel()
	js := fixture(t)
	before := infos(t, js)
	snap := gather(t, js, Options{})
	after := infos(t, js)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("consumer state changed by inspecting:\nbefore %+v\nafter  %+v", before, after)
	}

	names := []string{}
	for _, st := range snap.Streams {
		names = append(names, st.Name)
	}
	if fmt.Sprint(names) != "[ACKPROBE_T EMPTY ORDERS]" {
		t.Fatalf("streams %v", names)
	}
	if snap.Summary.Streams != 3 || snap.Summary.Consumers != 5 {
		t.Errorf("summary %+v", snap.Summary)
	}
	// One stream list page, and one consumer list per stream that has consumers.
	if snap.Requests != 3 {
		t.Errorf("%d requests, want 3", snap.Requests)
	}
	orders := snap.Stream("ORDERS")
	if orders.Messages != 10 || orders.LastSeq != 10 || orders.Bytes == 0 || orders.ConsumerCount != 4 || orders.Ackprobe {
		t.Errorf("ORDERS %+v", orders)
	}
	if ap := snap.Stream("ACKPROBE_T"); !ap.Ackprobe || len(ap.Consumers) != 1 || !ap.Consumers[0].Ackprobe {
		t.Errorf("ackprobe's own stream and consumer not marked: %+v", ap)
	}
	if e := snap.Stream("EMPTY"); len(e.Consumers) != 0 || e.Consumers == nil {
		t.Errorf("EMPTY consumers %#v", e.Consumers)
	}

	for _, st := range snap.Streams {
		for _, c := range st.Consumers {
			want := before[st.Name+"/"+c.Name]
			if c.NumPending != want.NumPending || c.NumAckPending != want.NumAckPending ||
				c.NumRedelivered != want.NumRedelivered || c.NumWaiting != want.NumWaiting ||
				c.Delivered.StreamSeq != want.Delivered.Stream || c.Delivered.ConsumerSeq != want.Delivered.Consumer ||
				c.AckFloor.StreamSeq != want.AckFloor.Stream || c.AckFloor.ConsumerSeq != want.AckFloor.Consumer ||
				c.MaxAckPending != want.Config.MaxAckPending || c.Paused != want.Paused {
				t.Errorf("%s/%s: inspect %+v\nserver %+v", st.Name, c.Name, c, want)
			}
		}
	}

	worker, retry, paused, idle := orders.Consumer("worker"), orders.Consumer("retry"), orders.Consumer("paused"), orders.Consumer("idle")
	if worker.NumPending != 7 || worker.NumAckPending != 3 || worker.Delivered.StreamSeq != 3 || worker.Delivered.Age == nil || worker.AckFloor.Age != nil {
		t.Errorf("worker %+v", worker)
	}
	// Every duration has its figure in milliseconds beside it.
	if worker.Delivered.AgeMS == nil || *worker.Delivered.AgeMS != worker.Delivered.Age.Millis() || snap.ElapsedMS != snap.Elapsed.Millis() ||
		orders.LastAgeMS == nil || *orders.LastAgeMS != orders.LastAge.Millis() || paused.PauseRemainingMS != paused.PauseRemaining.Millis() {
		t.Errorf("_ms figures: delivered %v/%v, elapsed %v/%v", worker.Delivered.AgeMS, worker.Delivered.Age, snap.ElapsedMS, snap.Elapsed)
	}
	if worker.Health.Status != OK || worker.AckPendingShare == nil || *worker.AckPendingShare != 0.3 {
		t.Errorf("worker health %+v share %v", worker.Health, worker.AckPendingShare)
	}
	if retry.NumRedelivered != 2 || retry.NumAckPending != 2 || retry.Delivered.ConsumerSeq != 4 || retry.Health.Status != Warn || retry.Health.Reasons[0].Rule != "redelivery" {
		t.Errorf("retry %+v", retry)
	}
	if !paused.Paused || paused.PauseUntil == nil || paused.PauseRemaining <= 0 || paused.Health.Status != Warn || paused.Health.Reasons[0].Rule != "paused" {
		t.Errorf("paused %+v", paused)
	}
	if idle.NumPending != 10 || idle.Delivered.Age != nil || idle.Health.Status != OK || idle.Kind != "pull" {
		t.Errorf("idle %+v", idle)
	}
	if snap.Summary.Status != Warn || snap.Summary.Warn != 2 || snap.Summary.OK != 3 || orders.Status != Warn {
		t.Errorf("summary %+v, ORDERS %s", snap.Summary, orders.Status)
	}
}

func TestGatherOneStreamAndConsumer(t *testing.T) {
	t.Parallel()
	js := fixture(t)
	snap := gather(t, js, Options{Stream: "ORDERS"})
	if len(snap.Streams) != 1 || len(snap.Streams[0].Consumers) != 4 || snap.Requests != 2 {
		t.Errorf("ORDERS: %d streams, %d requests", len(snap.Streams), snap.Requests)
	}
	snap = gather(t, js, Options{Stream: "ORDERS", Consumer: "retry"})
	if len(snap.Streams) != 1 || len(snap.Streams[0].Consumers) != 1 || snap.Streams[0].Consumers[0].NumRedelivered != 2 {
		t.Errorf("ORDERS/retry: %+v", snap.Streams)
	}
	if snap.Streams[0].Messages != 10 || snap.Scope != (Scope{Stream: "ORDERS", Consumer: "retry"}) {
		t.Errorf("stream %+v scope %+v", snap.Streams[0], snap.Scope)
	}
}

func TestGatherNotFound(t *testing.T) {
	t.Parallel()
	js := fixture(t)
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Stream: "NOPE"}, `stream "NOPE" not found`},
		{Options{Stream: "NOPE", Consumer: "worker"}, `stream "NOPE" not found`},
		{Options{Stream: "ORDERS", Consumer: "nope"}, `consumer "nope" not found on stream "ORDERS"`},
	}
	for _, c := range cases {
		_, err := Gather(testCtx(t), js, Options{Stream: c.o.Stream, Consumer: c.o.Consumer, Timeout: time.Second})
		var nf *NotFoundError
		if !errors.As(err, &nf) || err.Error() != c.want {
			t.Errorf("%+v: %v, want %s", c.o, err, c.want)
		}
	}
}

func TestGatherPagedConsumers(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	mustStream(t, js, jetstream.StreamConfig{Name: "MANY", Subjects: []string{"many"}, Storage: jetstream.MemoryStorage})
	const n = 300 // more than one page (the server sends 256 at most)
	createConsumers(t, js, []string{"MANY"}, n)
	snap := gather(t, js, Options{Stream: "MANY"})
	if got := len(snap.Streams[0].Consumers); got != n {
		t.Errorf("%d consumers listed, want %d", got, n)
	}
	if snap.Requests != 3 { // stream info and two consumer list pages
		t.Errorf("%d requests, want 3", snap.Requests)
	}
}

// TestLargeAccount lists 500 streams and 2,000 consumers in full, with
// paged list requests rather than one request per consumer.
func TestLargeAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 2,500 streams and consumers")
	}
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const streams, perStream = 500, 4
	names := make([]string, streams)
	for i := range names {
		names[i] = fmt.Sprintf("BIG_%03d", i)
	}
	start := time.Now()
	parallel(t, names, func(name string) error {
		_, err := js.CreateStream(testCtx(t), jetstream.StreamConfig{Name: name, Subjects: []string{"big." + name}, Storage: jetstream.MemoryStorage})
		return err
	})
	createConsumers(t, js, names, perStream)
	t.Logf("created %d streams and %d consumers in %s", streams, streams*perStream, time.Since(start).Round(time.Millisecond))

	snap := gather(t, js, Options{})
	t.Logf("listed in %s with %d requests", snap.Elapsed, snap.Requests)
	if len(snap.Streams) != streams || snap.Summary.Consumers != streams*perStream {
		t.Fatalf("listed %d streams and %d consumers", len(snap.Streams), snap.Summary.Consumers)
	}
	seen := map[string]bool{}
	for _, st := range snap.Streams {
		if len(st.Consumers) != perStream {
			t.Errorf("%s: %d consumers", st.Name, len(st.Consumers))
		}
		for _, c := range st.Consumers {
			seen[st.Name+"/"+c.Name] = true
		}
	}
	if len(seen) != streams*perStream {
		t.Errorf("%d distinct consumers", len(seen))
	}
	// Two stream list pages (256 a page) and one consumer list per stream.
	if snap.Requests != 2+streams {
		t.Errorf("%d requests, want %d", snap.Requests, 2+streams)
	}
	if d := time.Duration(snap.Elapsed); d > 10*time.Second {
		t.Errorf("listing took %s", d)
	}
}

func createConsumers(t *testing.T, js jetstream.JetStream, streams []string, perStream int) {
	t.Helper()
	var jobs []string
	for _, s := range streams {
		for i := range perStream {
			jobs = append(jobs, fmt.Sprintf("%s/C%03d", s, i))
		}
	}
	parallel(t, jobs, func(job string) error {
		var stream, name string
		for i := range job {
			if job[i] == '/' {
				stream, name = job[:i], job[i+1:]
			}
		}
		_, err := js.CreateConsumer(testCtx(t), stream, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
}

// parallel runs f on every item, 16 at a time.
func parallel(t *testing.T, items []string, f func(string) error) {
	t.Helper()
	ch := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 16 {
		wg.Go(func() {
			for it := range ch {
				if err := f(it); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", it, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	js := fixture(t)
	prev := gather(t, js, Options{Stream: "ORDERS"})
	publish(t, js, "orders.new", 5)
	c, err := js.Consumer(testCtx(t), "ORDERS", "worker")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	cur := gather(t, js, Options{Stream: "ORDERS"})
	Diff(prev, cur)
	st := cur.Stream("ORDERS")
	if st.Delta == nil || st.Delta.Messages != 5 || st.Delta.Stored != 5 || st.Delta.StoredPerSec <= 0 {
		t.Errorf("stream delta %+v", st.Delta)
	}
	// worker had 3 delivered unacked and 7 pending; 5 more arrived, 4 were
	// delivered and acked: acks landed, but the floor stays under the 3 old
	// unacked ones.
	d := st.Consumer("worker").Delta
	if d == nil || d.Pending != 1 || d.AckPending != 0 || d.Delivered != 4 || d.Acked != 4 || d.AckFloor != 0 ||
		d.DeliveredPerSec <= 0 || d.AckedPerSec != d.DeliveredPerSec {
		t.Errorf("worker delta %+v", d)
	}
	if d := st.Consumer("idle").Delta; d == nil || d.Pending != 5 || d.Delivered != 0 || d.AckedPerSec != 0 {
		t.Errorf("idle delta %+v", d)
	}
	if time.Duration(d.Interval) <= 0 {
		t.Errorf("interval %v", d.Interval)
	}
}

// TestOrphans: an ackprobe stream whose run is over is marked an orphan,
// with the command that removes it; a fresh one, a kept one, one whose
// consumer is still delivering, and a user's stream are not.
func TestOrphans(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	old := time.Now().Add(-2 * marks.OrphanAfter).UTC().Format(time.RFC3339)
	meta := func(created string, keep bool) map[string]string {
		m := map[string]string{marks.Owner: marks.OwnerValue, marks.Created: created}
		if keep {
			m[marks.Keep] = "true"
		}
		return m
	}
	mustStream(t, js, jetstream.StreamConfig{Name: "ACKPROBE_OLD", Subjects: []string{"ap.old"}, Storage: jetstream.MemoryStorage, Metadata: meta(old, false)})
	mustStream(t, js, jetstream.StreamConfig{Name: "ACKPROBE_KEPT", Subjects: []string{"ap.kept"}, Storage: jetstream.MemoryStorage, Metadata: meta(old, true)})
	mustStream(t, js, jetstream.StreamConfig{Name: "ACKPROBE_NEW", Subjects: []string{"ap.new"}, Storage: jetstream.MemoryStorage, Metadata: meta(time.Now().UTC().Format(time.RFC3339), false)})
	mustStream(t, js, jetstream.StreamConfig{Name: "ACKPROBE_BUSY", Subjects: []string{"ap.busy"}, Storage: jetstream.MemoryStorage, Metadata: meta(old, false)})
	mustStream(t, js, jetstream.StreamConfig{Name: "USERS", Subjects: []string{"users"}, Storage: jetstream.MemoryStorage})
	busy := mustConsumer(t, js, "ACKPROBE_BUSY", jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, Metadata: meta(old, false)})
	publish(t, js, "ap.busy", 1)
	fetch(t, busy, 1)

	snap := gather(t, js, Options{})
	want := map[string]bool{"ACKPROBE_OLD": true, "ACKPROBE_KEPT": false, "ACKPROBE_NEW": false, "ACKPROBE_BUSY": false, "USERS": false}
	for _, st := range snap.Streams {
		if st.Orphan != want[st.Name] {
			t.Errorf("%s: orphan %v, want %v", st.Name, st.Orphan, want[st.Name])
		}
		if st.Orphan && (!strings.Contains(st.RemoveWith, "nats stream rm ACKPROBE_OLD -f") || !strings.Contains(st.OrphanMessage, "created 2h ago")) {
			t.Errorf("%s: remove with %q, message %q", st.Name, st.RemoveWith, st.OrphanMessage)
		}
	}
	// The view of one stream judges it too.
	if one := gather(t, js, Options{Stream: "ACKPROBE_OLD"}); !one.Streams[0].Orphan {
		t.Errorf("stream view: %+v", one.Streams[0])
	}
}
