package probe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// figures is what must not change of a user's stream and consumers.
type figures struct {
	msgs, bytes, first uint64
	consumers          map[string]string
}

func snapshot(t *testing.T, js jetstream.JetStream, stream string) (figures, uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	si := st.CachedInfo()
	f := figures{msgs: si.State.Msgs, bytes: si.State.Bytes, first: si.State.FirstSeq, consumers: map[string]string{}}
	l := st.ListConsumers(ctx)
	for ci := range l.Info() {
		f.consumers[ci.Name] = fmt.Sprintf("pending=%d ack_pending=%d redelivered=%d waiting=%d delivered=%d/%d floor=%d/%d",
			ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting,
			ci.Delivered.Consumer, ci.Delivered.Stream, ci.AckFloor.Consumer, ci.AckFloor.Stream)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return f, si.State.LastSeq
}

func sameFigures(t *testing.T, what string, before, after figures) {
	t.Helper()
	if before.msgs != after.msgs || before.bytes != after.bytes || before.first != after.first {
		t.Errorf("%s: stream state changed: %+v -> %+v", what, before, after)
	}
	if len(before.consumers) != len(after.consumers) {
		t.Errorf("%s: consumers %v -> %v", what, before.consumers, after.consumers)
	}
	for name, b := range before.consumers {
		if a := after.consumers[name]; a != b {
			t.Errorf("%s: consumer %s changed: %s -> %s", what, name, b, a)
		}
	}
}

// userStream makes a user's stream holding 50 messages and a consumer with
// 10 messages delivered and not acked, one of them already redelivered.
func userStream(t *testing.T, js jetstream.JetStream, name string, retention jetstream.RetentionPolicy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := strings.ToLower(name)
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage, Retention: retention})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "THEIRS", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: prefix + ".signup", AckWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, err := js.Publish(ctx, prefix+".signup", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
	}
	time.Sleep(300 * time.Millisecond) // let one AckWait pass
	b, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
	}
	// From here on the user's consumer must not move; give it a long
	// AckWait so that nothing is redelivered on its own.
	c := cons.CachedInfo().Config
	c.AckWait = time.Hour
	if _, err := st.UpdateConsumer(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestUserStreamUntouched(t *testing.T) {
	t.Parallel()
	for _, retention := range []jetstream.RetentionPolicy{jetstream.LimitsPolicy, jetstream.WorkQueuePolicy, jetstream.InterestPolicy} {
		t.Run(retention.String(), func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			nc, js := natstest.Connect(t, s.ClientURL())
			userStream(t, js, "USERS", retention)
			before, last := snapshot(t, js, "USERS")
			run := func(cfg probe.Config) (*probe.Result, error) {
				return probe.Run(context.Background(), nc, js, cfg)
			}

			// On ackprobe's own stream.
			cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
			cfg.Count = 20
			if res, err := run(cfg); err != nil || !res.OK {
				t.Fatalf("own stream: %v %+v", err, res)
			}
			after, lastAfter := snapshot(t, js, "USERS")
			sameFigures(t, "own stream", before, after)
			if lastAfter != last {
				t.Errorf("own stream probe touched USERS' sequence: %d -> %d", last, lastAfter)
			}

			// Inside the user's stream, on ackprobe's own subject.
			cfg.Stream, cfg.Subject = "USERS", "users.ackprobe"
			res, err := run(cfg)
			if err != nil || !res.OK {
				t.Fatalf("inside USERS: %v %+v", err, res)
			}
			if res.Created.Stream || !res.Created.Consumer {
				t.Errorf("created %+v", res.Created)
			}
			after, lastAfter = snapshot(t, js, "USERS")
			sameFigures(t, "inside USERS", before, after)
			if lastAfter != last+40 {
				t.Errorf("last sequence %d -> %d, want +40 (the probe's own messages)", last, lastAfter)
			}

			// Refused runs change nothing.
			refused := []probe.Config{cfg, cfg, cfg, cfg}
			refused[0].Subject = "users.signup" // THEIRS' filter
			refused[1].Consumer = "THEIRS"
			refused[2].Subject = "orders.x" // not covered
			refused[3].Subject = "users.*"  // not a subject to publish to
			for i, c := range refused {
				_, err := run(c)
				var re *probe.RefusedError
				var no *probe.NotOwnedError
				var ue *probe.UsageError
				if !errors.As(err, &re) && !errors.As(err, &no) && !errors.As(err, &ue) {
					t.Errorf("refused run %d: %v", i, err)
				}
			}
			after, lastAfter2 := snapshot(t, js, "USERS")
			sameFigures(t, "refused runs", before, after)
			if lastAfter2 != lastAfter {
				t.Errorf("a refused run published: %d -> %d", lastAfter, lastAfter2)
			}
		})
	}
}

func TestCopiesRefused(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "SRC", Subjects: []string{"src.>"}, Storage: jetstream.MemoryStorage},
		{Name: "MIRROR", Mirror: &jetstream.StreamSource{Name: "SRC"}, Storage: jetstream.MemoryStorage},
		{Name: "SRC2", Subjects: []string{"src2.>"}, Storage: jetstream.MemoryStorage},
		{Name: "AGG", Sources: []*jetstream.StreamSource{{Name: "SRC2", FilterSubject: "src2.orders.>"}}, Storage: jetstream.MemoryStorage},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.Stream, cfg.Subject = "SRC", "src.ackprobe"
	_, err := probe.Run(context.Background(), nc, js, cfg)
	if err == nil || !strings.Contains(err.Error(), `"MIRROR" mirrors it`) {
		t.Errorf("mirrored stream: %v", err)
	}
	// A source whose filter does not cover the probe subject is no copy.
	cfg.Stream, cfg.Subject = "SRC2", "src2.ackprobe"
	if res, err := probe.Run(context.Background(), nc, js, cfg); err != nil || !res.OK {
		t.Errorf("filtered source: %v", err)
	}
	cfg.Subject = "src2.orders.ackprobe"
	if _, err := probe.Run(context.Background(), nc, js, cfg); err == nil || !strings.Contains(err.Error(), `"AGG" sources from it`) {
		t.Errorf("covering source: %v", err)
	}
}

// TestKeepAndReuse is the CI pattern: probe the same stream and consumer
// every time.
func TestKeepAndReuse(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Stream, cfg.Consumer, cfg.Keep, cfg.Count = "CI_PROBE", "CI_PROBE", true, 5
	for run := 0; run < 3; run++ {
		res, err := probe.Run(context.Background(), nc, js, cfg)
		if err != nil || !res.OK {
			t.Fatalf("run %d: %v %+v", run, err, res)
		}
		if created := res.Created.Stream || res.Created.Consumer; created != (run == 0) {
			t.Errorf("run %d: created %+v", run, res.Created)
		}
		// Each mode's messages are stored when the mode starts.
		if got := res.Modes[0].Steps[0].NumPending; got != 5 {
			t.Errorf("run %d: start pending %d, want 5", run, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "CI_PROBE")
	if err != nil {
		t.Fatalf("kept stream: %v", err)
	}
	if st.CachedInfo().State.Msgs != 0 {
		t.Errorf("the probe's messages were left in the kept stream: %d", st.CachedInfo().State.Msgs)
	}
	ci, err := js.Consumer(ctx, "CI_PROBE", "CI_PROBE")
	if err != nil || !marks.Owned(ci.CachedInfo().Config.Metadata) || ci.CachedInfo().Config.InactiveThreshold != 0 {
		t.Errorf("kept consumer: %v", err)
	}
	// An AckWait or max_ack_pending given for the run must be the reused
	// consumer's: the run would report settings it was not asked for.
	mismatch := cfg
	mismatch.AckWait, mismatch.MatchAckWait = 10*time.Second, true
	var usage *probe.UsageError
	if _, err := probe.Run(context.Background(), nc, js, mismatch); !errors.As(err, &usage) || !strings.Contains(err.Error(), "exists with AckWait 30s") {
		t.Errorf("--ack-wait 10s on a consumer with 30s: %v", err)
	}
	mismatch = cfg
	mismatch.MaxAckPending = 77
	if _, err := probe.Run(context.Background(), nc, js, mismatch); !errors.As(err, &usage) || !strings.Contains(err.Error(), "exists with max_ack_pending") {
		t.Errorf("--max-ack-pending 77 on a consumer with another: %v", err)
	}
	// Given and equal, the consumer is reused.
	same := cfg
	same.MatchAckWait = true
	if _, err := probe.Run(context.Background(), nc, js, same); err != nil {
		t.Errorf("--ack-wait equal to the consumer's: %v", err)
	}
	// Without --keep, what the run did not create stays.
	cfg.Keep = false
	if _, err := probe.Run(context.Background(), nc, js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, "CI_PROBE", "CI_PROBE"); err != nil {
		t.Errorf("a reused consumer was deleted: %v", err)
	}
}

// TestReusedStreamConfig probes inside a user's file stream: the result
// reports the stream's own storage and replicas (not the flags'
// defaults), and --storage or --replicas that contradict it are refused
// before anything is published.
func TestReusedStreamConfig(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYMENTS", Subjects: []string{"payments.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Count, cfg.Stream, cfg.Subject = 5, "PAYMENTS", "payments.ackprobe"
	res, err := probe.Run(ctx, nc, js, cfg)
	if err != nil || !res.OK {
		t.Fatalf("%v %+v", err, res)
	}
	if res.Storage != "file" || res.Replicas != 1 || res.Created.Stream {
		t.Errorf("reported storage %q replicas %d created %v; the stream is file, R1, the user's", res.Storage, res.Replicas, res.Created.Stream)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		storage  string
		replicas int
		want     string
	}{{"memory", 0, "--storage memory"}, {"", 3, "--replicas 3"}, {"file", 3, "--replicas 3"}} {
		bad := cfg
		bad.Storage, bad.Replicas = c.storage, c.replicas
		_, err := probe.Run(ctx, nc, js, bad)
		var ue *probe.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "PAYMENTS") {
			t.Errorf("storage %q replicas %d: %v, want a usage error naming %s and the stream", c.storage, c.replicas, err, c.want)
		}
	}
	after, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.LastSeq != info.State.LastSeq {
		t.Errorf("a refused run published: last sequence %d -> %d", info.State.LastSeq, after.State.LastSeq)
	}
}
