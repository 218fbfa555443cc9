package probe

import (
	"errors"
	"testing"
	"time"
)

// A server that redelivers a message after confirming its ack in time
// cannot be made on purpose, so the fail path of the ledger is proved with
// synthetic event sequences: deliveries and ack outcomes with chosen times.

// script drives a ledger with times relative to t0.
type script struct {
	t  *testing.T
	l  *ledger
	t0 time.Time
}

const testAckWait = 100 * time.Millisecond

func newScript(t *testing.T, modes ...Mode) *script {
	s := &script{t: t, l: newLedger(modes, 4, testAckWait, 0, 0), t0: time.Now()}
	return s
}

func (s *script) at(ms float64) time.Time {
	return s.t0.Add(time.Duration(ms * float64(time.Millisecond)))
}

// publish enters seqs first..last for mode i.
func (s *script) publish(i int, first, last uint64) {
	for seq := first; seq <= last; seq++ {
		s.l.published(i, seq)
	}
}

// deliver enters a delivery of seq (delivery count nd, consumer sequence
// dseq) pulled at pulled ms and received at recv ms.
func (s *script) deliver(seq, dseq, nd uint64, pulled, recv float64) *delivery {
	d := &delivery{seq: seq, dseq: dseq, nd: nd, pulledAt: s.at(pulled), at: s.at(recv)}
	s.l.delivered(d)
	return d
}

// ack enters an ack of d sent at sent ms and ended at done ms.
func (s *script) ack(d *delivery, kind Mode, sent, done float64, attempts int, err error) {
	s.l.ackSent(d, s.at(sent))
	s.l.ackDone(d, ackOutcome{kind: kind, sent: s.at(sent), done: s.at(done), attempts: attempts, err: err})
}

func (s *script) classes(i int) classes {
	s.t.Helper()
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.l.modes[i].cls
}

func TestLedgerRedeliveredAfterConfirmedAck(t *testing.T) {
	s := newScript(t, Confirmed)
	s.publish(0, 10, 12)
	d := s.deliver(10, 1, 1, 0, 1)
	s.ack(d, Confirmed, 2, 3, 1, nil) // confirmed 3ms after the pull: well within 100ms
	// The server delivers it again, in answer to a pull sent after the ack
	// was confirmed: it applied the ack, and redelivered anyway.
	again := s.deliver(10, 2, 2, 150, 151)
	if again.fresh || again.owner != 0 {
		t.Fatalf("redelivery: %+v", again)
	}
	c := s.classes(0)
	if c.afterConfirmed != 1 || c.beforeAck != 0 || c.lateRedelivered != 0 {
		t.Fatalf("classes %+v", c)
	}
	modes := []ModeResult{{Mode: Confirmed, Classes: Classes{RedeliveredAfterConfirmedAck: c.afterConfirmed}}}
	fs := judge(modes, testAckWait, Thresholds{})
	if len(fs) != 1 || fs[0].Code != CodeRedeliveredAfterConfirmedAck || fs[0].Severity != SeverityFail || fs[0].Count != 1 {
		t.Fatalf("findings %+v", fs)
	}
	if ok, problems, _ := outcome(fs); ok || len(problems) != 1 {
		t.Errorf("outcome ok=%v problems=%v", ok, problems)
	}
}

func TestLedgerClassifiesRedeliveries(t *testing.T) {
	cases := []struct {
		name string
		mode Mode
		// the ack of the first delivery (pulled at 0, received at 1)
		sent, done float64
		noAck      bool
		// the redelivery's pull and receipt
		pulled, recv float64
		want         classes
		late         bool
	}{
		{name: "confirmed late, then redelivered", mode: Confirmed, sent: 120, done: 121, pulled: 130, recv: 131,
			want: classes{lateRedelivered: 1}, late: true},
		{name: "confirmed landing past the pull's AckWait bound, then redelivered", mode: Confirmed, sent: 90, done: 101, pulled: 130, recv: 131,
			want: classes{lateRedelivered: 1}, late: true},
		{name: "confirmed in time, redelivery asked for before it landed", mode: Confirmed, sent: 2, done: 3, pulled: 2.5, recv: 150,
			want: classes{beforeAck: 1}},
		{name: "never acked: held past the AckWait", mode: Confirmed, noAck: true, pulled: 120, recv: 121,
			want: classes{beforeAck: 1}},
		{name: "standard sent in time and lost", mode: Standard, sent: 2, done: 2, pulled: 150, recv: 151,
			want: classes{lostStandard: 1}},
		{name: "standard sent late", mode: Standard, sent: 105, done: 105, pulled: 150, recv: 151,
			want: classes{lateRedelivered: 1}, late: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newScript(t, c.mode)
			s.publish(0, 1, 1)
			d := s.deliver(1, 1, 1, 0, 1)
			if !c.noAck {
				s.ack(d, c.mode, c.sent, c.done, 1, nil)
			}
			s.deliver(1, 2, 2, c.pulled, c.recv)
			got := s.classes(0)
			if got != c.want {
				t.Errorf("classes %+v, want %+v", got, c.want)
			}
			if late := s.l.modes[0].late; late != map[bool]int{true: 1}[c.late] {
				t.Errorf("late acks %d, want late=%v", late, c.late)
			}
		})
	}
}

// TestLedgerLateAckWithoutRedelivery: an ack sent after receipt + AckWait
// is late for certain, redelivered or not.
func TestLedgerLateAckWithoutRedelivery(t *testing.T) {
	s := newScript(t, Confirmed)
	s.publish(0, 1, 2)
	d1 := s.deliver(1, 1, 1, 0, 1)
	d2 := s.deliver(2, 2, 1, 0, 1)
	s.ack(d1, Confirmed, 50, 51, 1, nil)   // in time
	s.ack(d2, Confirmed, 102, 103, 1, nil) // sent 101ms after receipt
	if late := s.l.modes[0].late; late != 1 {
		t.Errorf("late %d, want 1", late)
	}
	if s.l.modes[0].acked != 2 {
		t.Errorf("acked %d", s.l.modes[0].acked)
	}
}

func TestLedgerLostDelivery(t *testing.T) {
	s := newScript(t, Standard)
	s.publish(0, 1, 3)
	s.deliver(1, 1, 1, 0, 1)
	// dseq 2 went to nobody (a lost pull); seq 2 comes back as dseq 4.
	s.deliver(3, 3, 1, 0, 1)
	if got := s.l.outstanding(); got != 3 { // two held, one lost on the way
		t.Errorf("outstanding %d, want 3", got)
	}
	d := s.deliver(2, 4, 2, 120, 121)
	if !d.fresh {
		t.Errorf("first receipt through a redelivery is fresh: %+v", d)
	}
	c := s.classes(0)
	if c.lostDelivery != 1 || s.l.modes[0].lost != 1 || s.l.modes[0].redeliveredMsgs != 1 {
		t.Errorf("classes %+v lost %d", c, s.l.modes[0].lost)
	}
	if got := s.l.outstanding(); got != 3 { // three held, nothing lost any more
		t.Errorf("outstanding %d, want 3", got)
	}
}

func TestLedgerRetriedConfirmedAck(t *testing.T) {
	s := newScript(t, Confirmed)
	s.publish(0, 1, 2)
	d1 := s.deliver(1, 1, 1, 0, 1)
	d2 := s.deliver(2, 2, 1, 0, 1)
	s.ack(d1, Confirmed, 2, 40, 3, nil)  // retried, landed in time
	s.ack(d2, Confirmed, 2, 140, 5, nil) // retried, landed past the AckWait
	c := s.classes(0)
	if c.retried != 2 || c.retriedLate != 1 {
		t.Fatalf("classes %+v", c)
	}
	m := s.l.modes[0]
	if m.retries != 6 {
		t.Errorf("retries %d, want 6", m.retries)
	}
	fs := judge([]ModeResult{{Mode: Confirmed, Retries: m.retries, Classes: Classes{ConfirmedAfterRetry: 2, ConfirmedAfterRetryLate: 1}}}, testAckWait, Thresholds{})
	if len(fs) != 1 || fs[0].Code != CodeConfirmedAfterRetry || fs[0].Severity != SeverityWarn {
		t.Errorf("findings %+v", fs)
	}
}

func TestLedgerFailedAckStaysHeld(t *testing.T) {
	s := newScript(t, Confirmed)
	s.publish(0, 1, 1)
	d := s.deliver(1, 1, 1, 0, 1)
	s.ack(d, Confirmed, 2, 60, 4, errors.New("nats: timeout"))
	m := s.l.modes[0]
	if m.acked != 0 || m.callErrors != 1 || s.l.outstanding() != 1 || m.lastErr != "nats: timeout" {
		t.Errorf("acked %d errors %d outstanding %d", m.acked, m.callErrors, s.l.outstanding())
	}
}

// TestLedgerRedeliveryHeldAgain: a lost standard ack leaves the server
// holding the message; once redelivered, the client holds it again, and
// its second ack makes it settle. Only the first redelivery classifies.
func TestLedgerRedeliveryHeldAgain(t *testing.T) {
	s := newScript(t, Standard)
	s.publish(0, 1, 1)
	d := s.deliver(1, 1, 1, 0, 1)
	s.ack(d, Standard, 2, 2, 1, nil)
	if s.l.outstanding() != 0 {
		t.Fatalf("outstanding after the ack: %d", s.l.outstanding())
	}
	again := s.deliver(1, 2, 2, 150, 151)
	if s.l.outstanding() != 1 {
		t.Fatalf("outstanding after the redelivery: %d", s.l.outstanding())
	}
	s.ack(again, Standard, 152, 152, 1, nil)
	s.deliver(1, 3, 3, 300, 301)
	m := s.l.modes[0]
	if m.acked != 1 || m.redelivered != 2 || m.redeliveredMsgs != 1 || m.cls.lostStandard != 1 {
		t.Errorf("acked %d redelivered %d msgs %d classes %+v", m.acked, m.redelivered, m.redeliveredMsgs, m.cls)
	}
}

// TestLedgerOwners: each mode's messages are its own; a message of no
// mode is a stray from an earlier run.
func TestLedgerOwners(t *testing.T) {
	s := newScript(t, Standard, Confirmed)
	s.publish(0, 5, 6)
	s.publish(1, 7, 8)
	for seq, want := range map[uint64]int{4: -1, 5: 0, 6: 0, 7: 1, 8: 1, 9: -1} {
		if got := s.l.ownerOf(seq); got != want {
			t.Errorf("owner of %d = %d, want %d", seq, got, want)
		}
	}
	// An earlier run left one delivery ack pending; it comes back.
	s.l.baseline = 1
	stray := s.deliver(2, 1, 3, 0, 1)
	if stray.owner != -1 || s.l.strayCount() != 1 || s.l.outstanding() != 2 {
		t.Errorf("stray %+v outstanding %d", stray, s.l.outstanding())
	}
	s.ack(stray, Standard, 2, 2, 1, nil)
	if s.l.outstanding() != 0 {
		t.Errorf("outstanding after acking the stray: %d", s.l.outstanding())
	}
	// A sequence published late, below the first: the record grows.
	s.l.published(0, 3)
	if s.l.ownerOf(3) != 0 || s.l.modes[0].count != 3 {
		t.Errorf("grown record: owner %d count %d", s.l.ownerOf(3), s.l.modes[0].count)
	}
}

// TestLedgerEvictedAckIsOld: a redelivery of a message whose ack left the
// ring of recent acks long ago was asked for after the ack.
func TestLedgerEvictedAckIsOld(t *testing.T) {
	s := newScript(t, Confirmed)
	s.publish(0, 1, 1)
	d := s.deliver(1, 1, 1, 0, 1)
	s.ack(d, Confirmed, 2, 3, 1, nil)
	s.l.landed.put(1+landedRingSize, s.at(4)) // another message takes its slot
	s.deliver(1, 2, 2, 0.5, 200)              // even with an early pull time
	if c := s.classes(0); c.afterConfirmed != 1 {
		t.Errorf("classes %+v", c)
	}
}

func BenchmarkLedgerDeliverAck(b *testing.B) {
	l := newLedger([]Mode{Confirmed}, b.N, time.Second, 0, 0)
	for seq := uint64(1); seq <= uint64(b.N); seq++ {
		l.published(0, seq)
	}
	now := time.Now()
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d := delivery{seq: uint64(i + 1), dseq: uint64(i + 1), nd: 1, pulledAt: now, at: now}
		l.delivered(&d)
		l.ackSent(&d, now)
		l.ackDone(&d, ackOutcome{kind: Confirmed, sent: now, done: now, attempts: 1})
	}
}
