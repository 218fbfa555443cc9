package inspect

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// The tests below set up each situation on a real server through the
// nats.go API and assert the rule that names it, its figure and its words.

// account is a server with one stream, and a client on it.
type account struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newAccount(t *testing.T, cfg jetstream.StreamConfig) *account {
	t.Helper()
	s := natstest.RunServer(t)
	nc, js := natstest.Connect(t, s.ClientURL())
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.MemoryStorage
	}
	mustStream(t, js, cfg)
	return &account{nc: nc, js: js}
}

// eventually polls cond every 20ms until it holds, for up to 20s: long
// enough for a loaded machine, never a fixed wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *account) info(t *testing.T, stream, consumer string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := a.js.Consumer(testCtx(t), stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo()
}

// listen starts a Listener on the account's connection, closed at the end.
func (a *account) listen(t *testing.T, scope Scope) *Listener {
	t.Helper()
	l, err := Listen(a.nc, scope, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if u := l.Unavailable(); u != "" {
		t.Fatalf("events unavailable: %s", u)
	}
	t.Cleanup(l.Close)
	return l
}

// counted waits until the Listener has counted what cond wants for the
// consumer, without taking the counts.
func counted(t *testing.T, l *Listener, k Key, what string, cond func(e Events) bool) {
	t.Helper()
	eventually(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		e := Events{}
		if c := l.counts[k]; c != nil {
			e = *c
		}
		return cond(e)
	})
}

func reasonOf(h Health, rule string) *Reason {
	for i := range h.Reasons {
		if h.Reasons[i].Rule == rule {
			return &h.Reasons[i]
		}
	}
	return nil
}

// TestRemovalsAreNotAcks: messages fetched and never acked expire by
// max_age; ack pending drops to 0 and the ack floor moves, but nothing was
// acked (nats-server#2083, #6374).
func TestRemovalsAreNotAcks(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "EXP", Subjects: []string{"exp"}, MaxAge: 3 * time.Second})
	c := mustConsumer(t, a.js, "EXP", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	publish(t, a.js, "exp", 10)
	fetch(t, c, 10)
	l := a.listen(t, Scope{Stream: "EXP"})
	w := NewWatch(DefaultThresholds(), l)
	first := gather(t, a.js, Options{Stream: "EXP"})
	if st := first.Stream("EXP"); st.Messages != 10 || st.Consumer("w").NumAckPending != 10 {
		t.Fatalf("the messages expired before the first look: %+v", st)
	}
	w.Next(first)

	counted(t, l, Key{"EXP", "w"}, "10 removal advisories", func(e Events) bool { return e.Removed == 10 })
	eventually(t, "ack pending to drop", func() bool { return a.info(t, "EXP", "w").NumAckPending == 0 })
	second := gather(t, a.js, Options{Stream: "EXP"})
	w.Next(second)

	cw := second.Stream("EXP").Consumer("w")
	d := cw.Delta
	if d == nil || d.AckPending != -10 || d.Outflow != 10 || d.Events.Removed != 10 || d.Acked != 0 || d.AckedMax != 0 || d.AckedPerSec != 0 || !d.Exact() {
		t.Fatalf("delta %+v events %+v", d, d.Events)
	}
	if cw.AckFloor.StreamSeq != 10 || cw.AckFloor.Last == nil {
		t.Errorf("the server's ack floor did move: %+v", cw.AckFloor)
	}
	if cw.LastAck == nil || cw.LastAck.Proven || cw.LastAck.At != nil {
		t.Errorf("last ack %+v: no ack was ever taken", cw.LastAck)
	}
}

// TestRemovalsWithoutEvents: without advisories (plain Diff), the same
// expiry makes the acks a range from 0 to 10, never 10 acks.
func TestRemovalsWithoutEvents(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "EXP", Subjects: []string{"exp"}, MaxAge: 3 * time.Second})
	c := mustConsumer(t, a.js, "EXP", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	publish(t, a.js, "exp", 10)
	fetch(t, c, 10)
	first := gather(t, a.js, Options{Stream: "EXP"})
	if st := first.Stream("EXP"); st.Messages != 10 || st.Consumer("w").NumAckPending != 10 {
		t.Fatalf("the messages expired before the first look: %+v", st)
	}
	eventually(t, "ack pending to drop", func() bool { return a.info(t, "EXP", "w").NumAckPending == 0 })
	second := gather(t, a.js, Options{Stream: "EXP"})
	Diff(first, second)
	d := second.Stream("EXP").Consumer("w").Delta
	if d.Outflow != 10 || d.LeftUnknown != 10 || d.Acked != 0 || d.AckedMax != 10 || d.Exact() || d.Events != nil || d.EventsUnavailable == "" {
		t.Errorf("delta %+v", d)
	}
}

// TestPurgeAndDeleteAreNotAcks: a purge announces nothing, so its acks are
// a range; deleting single messages (nats stream rmm) announces each.
func TestPurgeAndDeleteAreNotAcks(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "P", Subjects: []string{"p"}})
	c := mustConsumer(t, a.js, "P", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	publish(t, a.js, "p", 10)
	msgs := natstest.Fetch(t, c, 6)
	// One real ack, so that acks and removals are told apart.
	if err := msgs[5].DoubleAck(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	l := a.listen(t, Scope{Stream: "P"})
	w := NewWatch(DefaultThresholds(), l)
	w.Next(gather(t, a.js, Options{Stream: "P"}))

	st, err := a.js.Stream(testCtx(t), "P")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{2, 4} {
		if err := st.DeleteMsg(testCtx(t), seq); err != nil {
			t.Fatal(err)
		}
	}
	counted(t, l, Key{"P", "w"}, "2 deletion advisories", func(e Events) bool { return e.Removed == 2 })
	eventually(t, "ack pending 3", func() bool { return a.info(t, "P", "w").NumAckPending == 3 })
	snap := gather(t, a.js, Options{Stream: "P"})
	w.Next(snap)
	d := snap.Stream("P").Consumer("w").Delta
	if d.Outflow != 2 || d.Events.Removed != 2 || d.Acked != 0 || d.AckedMax != 0 {
		t.Errorf("after deleting 2 ack-pending messages: delta %+v", d)
	}

	if err := st.Purge(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ack pending 0", func() bool { return a.info(t, "P", "w").NumAckPending == 0 })
	snap = gather(t, a.js, Options{Stream: "P"})
	w.Next(snap)
	cw := snap.Stream("P").Consumer("w")
	d = cw.Delta
	if d.Outflow != 3 || d.Events.Removed != 0 || d.LeftUnknown != 3 || d.Acked != 0 || d.AckedMax != 3 || d.Exact() {
		t.Errorf("after a purge of 3 ack-pending messages: delta %+v", d)
	}
	if cw.LastAck == nil || cw.LastAck.Proven {
		t.Errorf("last ack %+v: no ack was proven while watching", cw.LastAck)
	}
}

// TestAcksAreCounted: real acks count as acks, and set the last ack.
func TestAcksAreCounted(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "A", Subjects: []string{"a"}})
	c := mustConsumer(t, a.js, "A", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy})
	publish(t, a.js, "a", 10)
	l := a.listen(t, Scope{Stream: "A", Consumer: "w"})
	w := NewWatch(DefaultThresholds(), l)
	w.Next(gather(t, a.js, Options{Stream: "A", Consumer: "w"}))
	for _, m := range natstest.Fetch(t, c, 7) {
		if err := m.DoubleAck(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	snap := gather(t, a.js, Options{Stream: "A", Consumer: "w"})
	w.Next(snap)
	cw := snap.Streams[0].Consumers[0]
	if d := cw.Delta; d.Delivered != 7 || d.Redeliveries != 0 || d.Acked != 7 || !d.Exact() || d.AckedPerSec <= 0 {
		t.Errorf("delta %+v", d)
	}
	if cw.LastAck == nil || !cw.LastAck.Proven || cw.LastAck.At == nil {
		t.Errorf("last ack %+v", cw.LastAck)
	}
}

// TestLastAckFromOldestDelivery: a consumer created a while ago whose
// messages were delivered just now has had nothing to ack for long; the
// age counts from the delivery, not from the consumer's creation.
func TestLastAckFromOldestDelivery(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "L", Subjects: []string{"l"}})
	c := mustConsumer(t, a.js, "L", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	th := Thresholds{Warn: Limits{LastAck: time.Second}}
	eventually(t, "the consumer to be 1.5s old", func() bool {
		ci := a.info(t, "L", "w")
		return ci.TimeStamp.Sub(ci.Created) > 1500*time.Millisecond
	})
	publish(t, a.js, "l", 5)
	fetch(t, c, 5)
	snap := gather(t, a.js, Options{Stream: "L", Consumer: "w", Thresholds: th})
	cw := snap.Streams[0].Consumers[0]
	if age := time.Duration(*cw.Delivered.Age); age < time.Second {
		if r := reasonOf(cw.Health, "last-ack"); r != nil {
			t.Errorf("delivered %s ago, consumer created %s ago: %+v", age, cw.TimeStamp.Sub(cw.Created), r)
		}
	}

	eventually(t, "the delivery to be 1s old", func() bool {
		ci := a.info(t, "L", "w")
		return ci.TimeStamp.Sub(*ci.Delivered.Last) >= time.Second
	})
	snap = gather(t, a.js, Options{Stream: "L", Consumer: "w", Thresholds: th})
	cw = snap.Streams[0].Consumers[0]
	r := reasonOf(cw.Health, "last-ack")
	deliveredAge := time.Duration(*cw.Delivered.Age)
	if r == nil || r.Status != Warn || math.Abs(r.Figure-deliveredAge.Seconds()) > 0.001 || r.Threshold != 1 {
		t.Fatalf("last-ack: %+v (delivered %s ago)", cw.Health, deliveredAge)
	}
	want := fmt.Sprintf("no ack in the %s since the last delivery while 5 messages are ack pending (warn at 1s)", Short(deliveredAge))
	if r.Message != want {
		t.Errorf("message %q, want %q", r.Message, want)
	}
	if created := cw.TimeStamp.Sub(cw.Created); r.Figure >= created.Seconds() {
		t.Errorf("figure %gs is not less than the consumer's age %s", r.Figure, created)
	}
}

// TestPausedIsOneFinding: a paused consumer with messages waiting is
// paused, not also stalled.
func TestPausedIsOneFinding(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	publish(t, a.js, "s", 10)
	until := time.Now().Add(time.Hour)
	mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "p", AckPolicy: jetstream.AckExplicitPolicy, PauseUntil: &until})
	snap := gather(t, a.js, Options{Stream: "S", Consumer: "p", Thresholds: Thresholds{Warn: Limits{LastDelivery: time.Nanosecond}}})
	h := snap.Streams[0].Consumers[0].Health
	if len(h.Reasons) != 1 || h.Reasons[0].Rule != "paused" || h.Status != Warn {
		t.Fatalf("reasons %+v", h.Reasons)
	}
	if m := h.Reasons[0].Message; !strings.HasPrefix(m, "paused for another ") || !strings.HasSuffix(m, "; 10 messages wait to be delivered") {
		t.Errorf("message %q", m)
	}
}

// TestAckWaitExpired: ack-pending messages past their ack wait while no
// pull request waits come back only at the next pull (nats-server#1716).
func TestAckWaitExpired(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 500 * time.Millisecond})
	publish(t, a.js, "s", 3)
	fetch(t, c, 3)
	snap := gather(t, a.js, Options{Stream: "S", Consumer: "w"})
	if cw := snap.Streams[0].Consumers[0]; time.Duration(*cw.Delivered.Age) <= 500*time.Millisecond && reasonOf(cw.Health, "ack-wait-expired") != nil {
		t.Errorf("fired within the ack wait: %+v", cw.Health)
	}
	eventually(t, "the ack wait to pass", func() bool {
		ci := a.info(t, "S", "w")
		return ci.TimeStamp.Sub(*ci.Delivered.Last) > 600*time.Millisecond
	})
	snap = gather(t, a.js, Options{Stream: "S", Consumer: "w"})
	cw := snap.Streams[0].Consumers[0]
	r := reasonOf(cw.Health, "ack-wait-expired")
	if r == nil || r.Status != Warn || r.Figure != 3 || cw.NumWaiting != 0 || cw.NumAckPending != 3 {
		t.Fatalf("health %+v (waiting %d, ack pending %d)", cw.Health, cw.NumWaiting, cw.NumAckPending)
	}
	want := fmt.Sprintf("3 ack-pending messages are past their ack wait (delivered %s ago, ack wait 500ms); no pull request is waiting, so they come back only at the next pull (warn at 1)",
		Short(time.Duration(*cw.Delivered.Age)))
	if r.Message != want {
		t.Errorf("message %q, want %q", r.Message, want)
	}
	// Critical through the consumer's metadata.
	th := DefaultThresholds()
	th.Critical.AckWaitExpired = 3
	snap = gather(t, a.js, Options{Stream: "S", Consumer: "w", Thresholds: th})
	if r := reasonOf(snap.Streams[0].Consumers[0].Health, "ack-wait-expired"); r == nil || r.Status != Critical {
		t.Errorf("critical at 3: %+v", r)
	}
}

// TestMaxDeliverReached: with MaxDeliver 1, messages never acked are
// dropped after their ack wait and num_redelivered stays 0
// (nats-server#6874); the ack floor stays behind the last delivery.
func TestMaxDeliverReached(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxDeliver: 1})
	publish(t, a.js, "s", 5)
	l := a.listen(t, Scope{Stream: "S", Consumer: "w"})
	w := NewWatch(DefaultThresholds(), l)
	w.Next(gather(t, a.js, Options{Stream: "S", Consumer: "w"}))
	fetch(t, c, 3)
	eventually(t, "ack pending to drop", func() bool { return a.info(t, "S", "w").NumAckPending == 0 })
	counted(t, l, Key{"S", "w"}, "3 max deliveries advisories", func(e Events) bool { return e.MaxDeliveries == 3 })

	// From one report alone.
	one := gather(t, a.js, Options{Stream: "S", Consumer: "w"})
	cw := one.Streams[0].Consumers[0]
	r := reasonOf(cw.Health, "max-deliver-reached")
	if r == nil || r.Figure != 1 || cw.NumRedelivered != 0 {
		t.Fatalf("one report: %+v (redelivered %d)", cw.Health, cw.NumRedelivered)
	}
	if want := "messages reached max deliver (1) without an ack and were dropped: the ack floor (stream seq 0) is behind the last delivery (stream seq 3) with nothing ack pending; at least 1, at most 3 (warn at 1)"; r.Message != want {
		t.Errorf("message %q, want %q", r.Message, want)
	}

	// Under --watch, the advisories count them.
	snap := gather(t, a.js, Options{Stream: "S", Consumer: "w"})
	w.Next(snap)
	cw = snap.Streams[0].Consumers[0]
	r = reasonOf(cw.Health, "max-deliver-reached")
	if r == nil || r.Figure != 3 || !strings.HasPrefix(r.Message, "3 messages reached max deliver (1) in the last ") ||
		!strings.HasSuffix(r.Message, " without an ack and will not be delivered again (MAX_DELIVERIES advisories; warn at 1)") {
		t.Fatalf("watch: %+v", r)
	}
	if d := cw.Delta; d.Acked != 0 || d.Events.MaxDeliveries != 3 {
		t.Errorf("dropped messages counted as acks: %+v", d)
	}
}

// TestStorms: NAKs, redeliveries and terminations in one interval, with
// the busiest consumer named.
func TestStorms(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "calm", AckPolicy: jetstream.AckExplicitPolicy})
	publish(t, a.js, "s", 5)
	th := DefaultThresholds()
	th.Warn.RedeliveryStorm = 0.001
	th.Critical.NakStorm = 15
	l := a.listen(t, Scope{Stream: "S"})
	w := NewWatch(th, l)
	w.Next(gather(t, a.js, Options{Stream: "S", Thresholds: th}))

	// Three rounds of NAKs: 5 first deliveries, then 10 redeliveries.
	naks := 0
	for round := range 3 {
		for _, m := range natstest.Fetch(t, c, 5) {
			if round == 2 && naks%5 < 2 {
				if err := m.Term(); err != nil {
					t.Fatal(err)
				}
			} else if err := m.Nak(); err != nil {
				t.Fatal(err)
			}
			naks++
		}
	}
	counted(t, l, Key{"S", "w"}, "13 NAKs and 2 terminations", func(e Events) bool { return e.Naks == 13 && e.Terminated == 2 })
	snap := gather(t, a.js, Options{Stream: "S", Thresholds: th})
	w.Next(snap)
	cw := snap.Stream("S").Consumer("w")
	d := cw.Delta
	if d.Delivered != 15 || d.Redeliveries != 10 || d.Events.Naks != 13 || d.Events.Terminated != 2 {
		t.Fatalf("delta %+v events %+v", d, d.Events)
	}
	r := reasonOf(cw.Health, "redelivery-storm")
	if r == nil || r.Figure != d.RedeliveriesPerSec || !strings.Contains(r.Message, " redeliveries/s in the last ") || !strings.Contains(r.Message, "(10 of 15 deliveries; warn at 0.001/s)") {
		t.Errorf("redelivery-storm: %+v", r)
	}
	r = reasonOf(cw.Health, "nak-storm")
	if r == nil || r.Status != Warn || r.Figure != 13 || !strings.HasPrefix(r.Message, "13 NAKs in the last ") || !strings.HasSuffix(r.Message, "MSG_NAKED advisories; warn at 10)") {
		t.Errorf("nak-storm: %+v", r)
	}
	r = reasonOf(cw.Health, "terminated")
	if r == nil || r.Figure != 2 || !strings.HasPrefix(r.Message, "2 messages terminated by the client (+TERM) in the last ") {
		t.Errorf("terminated: %+v", r)
	}
	if calm := snap.Stream("S").Consumer("calm"); calm.Health.Status != OK {
		t.Errorf("calm consumer: %+v", calm.Health)
	}
	var kinds []string
	for _, tp := range snap.Top {
		if tp.Stream != "S" || tp.Consumer != "w" {
			t.Errorf("top names %+v", tp)
		}
		kinds = append(kinds, fmt.Sprintf("%s=%d", tp.Kind, tp.Count))
	}
	if got := strings.Join(kinds, " "); got != "redeliveries=10 naks=13 terminated=2" {
		t.Errorf("top: %s", got)
	}

	// The NAK count reaching the critical threshold in the next interval:
	// one message NAKed 15 times.
	for range 15 {
		if err := natstest.Fetch(t, c, 1)[0].Nak(); err != nil {
			t.Fatal(err)
		}
	}
	counted(t, l, Key{"S", "w"}, "15 more NAKs", func(e Events) bool { return e.Naks == 15 })
	snap = gather(t, a.js, Options{Stream: "S", Thresholds: th})
	w.Next(snap)
	if r := reasonOf(snap.Stream("S").Consumer("w").Health, "nak-storm"); r == nil || r.Status != Critical || r.Figure != 15 || !strings.HasSuffix(r.Message, "critical at 15)") {
		t.Errorf("nak-storm at 15: %+v", r)
	}
}

// TestLateAck: sampled acks that took longer than the ack wait. The
// server's ack_time counts from the delivery, and again from the moment
// the ack wait expired (server/consumer.go checkPending resets the pending
// timestamp): an ack shows as late once it comes more than an ack wait
// after that, so the late ones here come well after twice the ack wait
// (five times: a loaded machine may fire the expiry late).
func TestLateAck(t *testing.T) {
	t.Parallel()
	a := newAccount(t, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}})
	c := mustConsumer(t, a.js, "S", jetstream.ConsumerConfig{Durable: "w", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 300 * time.Millisecond, SampleFrequency: "100%"})
	publish(t, a.js, "s", 4)
	l := a.listen(t, Scope{Stream: "S", Consumer: "w"})
	w := NewWatch(DefaultThresholds(), l)
	w.Next(gather(t, a.js, Options{Stream: "S", Consumer: "w"}))
	// Two acked in time, two after the ack wait. No pull request waits,
	// so the server does not redeliver meanwhile.
	msgs := natstest.Fetch(t, c, 4)
	for _, m := range msgs[:2] {
		if err := m.DoubleAck(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "five ack waits to pass", func() bool {
		ci := a.info(t, "S", "w")
		return ci.TimeStamp.Sub(*ci.Delivered.Last) > 1500*time.Millisecond
	})
	for _, m := range msgs[2:] {
		if err := m.DoubleAck(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	counted(t, l, Key{"S", "w"}, "4 ack metric events", func(e Events) bool { return len(e.AckTimes) == 4 })
	snap := gather(t, a.js, Options{Stream: "S", Consumer: "w"})
	w.Next(snap)
	cw := snap.Streams[0].Consumers[0]
	at := cw.Delta.AckTimes
	if at == nil || at.Count != 4 || at.Late != 2 || time.Duration(at.Max) <= 300*time.Millisecond || time.Duration(at.P50) > 300*time.Millisecond {
		t.Fatalf("ack times %+v", at)
	}
	r := reasonOf(cw.Health, "late-ack")
	if r == nil || r.Figure != 2 || !strings.HasPrefix(r.Message, "2 of 4 sampled acks in the last ") || !strings.Contains(r.Message, " took longer than the 300ms ack wait (p50 ") ||
		!strings.HasSuffix(r.Message, "another worker may have processed the same message (warn at 1)") {
		t.Errorf("late-ack: %+v", r)
	}
}

// TestWatchIsReadOnly: watching subscribes only, changes no consumer, and
// leaves no subscription behind.
func TestWatchIsReadOnly(t *testing.T) {
	t.Parallel()
	js := fixture(t)
	nc := js.Conn()
	before := infos(t, js)
	subs := nc.NumSubscriptions()
	l, err := Listen(nc, Scope{}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if nc.NumSubscriptions() != subs+4 {
		t.Errorf("%d subscriptions, want %d", nc.NumSubscriptions(), subs+4)
	}
	w := NewWatch(DefaultThresholds(), l)
	for range 3 {
		w.Next(gather(t, js, Options{}))
	}
	l.Close()
	if nc.NumSubscriptions() != subs {
		t.Errorf("%d subscriptions left, want %d", nc.NumSubscriptions(), subs)
	}
	if after := infos(t, js); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("watching changed consumer state:\nbefore %+v\nafter  %+v", before, after)
	}
}
