package probe_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestFindOrphansSkipped: what is ackprobe's but younger, or more
// recently active, than OlderThan is reported as skipped, with why;
// with OlderThan 0 it is found. What a run kept is skipped as kept,
// whatever its age, without IncludeKept, and nothing without the owner
// mark ever is.
func TestFindOrphansSkipped(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	now := time.Now().UTC().Format(time.RFC3339)
	mark := func(created string, keep bool) map[string]string {
		m := map[string]string{marks.Owner: marks.OwnerValue, marks.Created: created}
		if keep {
			m[marks.Keep] = "true"
		}
		return m
	}
	stream := func(name string, meta map[string]string) jetstream.Stream {
		t.Helper()
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Storage: jetstream.MemoryStorage, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	consumer := func(st jetstream.Stream, name, filter string, meta map[string]string) jetstream.Consumer {
		t.Helper()
		c, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	deliver := func(c jetstream.Consumer, subject string) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, []byte("x")); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range msgs.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			got++
		}
		if got != 1 {
			t.Fatalf("%s: delivered %d messages, want 1 (%v)", subject, got, msgs.Error())
		}
	}

	stream("ACKPROBE_OLD", mark(old, false))
	stream("ACKPROBE_NEW", mark(now, false))
	stream("ACKPROBE_KEPT", mark(now, true))
	stream("ACKPROBE_OLDKEPT", mark(old, true))
	busy := stream("ACKPROBE_BUSY", mark(old, false))
	deliver(consumer(busy, "ACKPROBE_BUSY", "", mark(old, false)), "ackprobe_busy.1")
	users := stream("USERS", nil)
	consumer(users, "ACKPROBE_OLDC", "users.old", mark(old, false))
	consumer(users, "ACKPROBE_NEWC", "users.new", mark(now, false))
	deliver(consumer(users, "WORKER", "users.work.>", nil), "users.work.1")
	stream("OTHER", nil)

	names := func(list []probe.Orphan) string {
		var out []string
		for _, o := range list {
			n := o.What + " " + o.Stream
			if o.Consumer != "" {
				n += "/" + o.Consumer
			}
			out = append(out, n)
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	skipped := func(list []probe.Skipped) string {
		var out []string
		for _, s := range list {
			n := names([]probe.Orphan{s.Orphan}) + " " + s.Reason
			if s.LastActive != nil {
				n += " (active)"
			}
			out = append(out, n)
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	find := func(opts probe.FindOptions) *probe.Orphans {
		t.Helper()
		res, err := probe.FindOrphans(ctx, js, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Found == nil || res.Skipped == nil || res.OlderThan != opts.OlderThan {
			t.Errorf("lists must not be nil, and OlderThan %s: %+v", opts.OlderThan, res)
		}
		return res
	}

	res := find(probe.FindOptions{OlderThan: time.Hour})
	if got, want := names(res.Found), "consumer USERS/ACKPROBE_OLDC, stream ACKPROBE_OLD"; got != want {
		t.Errorf("found %s, want %s", got, want)
	}
	want := "consumer USERS/ACKPROBE_NEWC young, stream ACKPROBE_BUSY active (active), stream ACKPROBE_KEPT kept, stream ACKPROBE_NEW young, stream ACKPROBE_OLDKEPT kept"
	if got := skipped(res.Skipped); got != want {
		t.Errorf("skipped %s, want %s", got, want)
	}

	res = find(probe.FindOptions{OlderThan: time.Hour, IncludeKept: true})
	if got := skipped(res.Skipped); !strings.Contains(got, "stream ACKPROBE_KEPT young") {
		t.Errorf("with IncludeKept, skipped %s", got)
	}

	if got, want := names(res.Found), "consumer USERS/ACKPROBE_OLDC, stream ACKPROBE_OLD, stream ACKPROBE_OLDKEPT"; got != want {
		t.Errorf("with IncludeKept, found %s, want %s", got, want)
	}

	res = find(probe.FindOptions{})
	want = "consumer USERS/ACKPROBE_NEWC, consumer USERS/ACKPROBE_OLDC, stream ACKPROBE_BUSY, stream ACKPROBE_NEW, stream ACKPROBE_OLD"
	if got := names(res.Found); got != want || skipped(res.Skipped) != "stream ACKPROBE_KEPT kept, stream ACKPROBE_OLDKEPT kept" {
		t.Errorf("with OlderThan 0: found %s, skipped %s; want found %s", got, skipped(res.Skipped), want)
	}
}
