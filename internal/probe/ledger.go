package probe

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The ledger is the probe's one record of what happened to every probe
// message of a round: which mode published it, each delivery the client
// received (when, in answer to which pull request, with which delivery
// count), and each ack (its kind, when it was sent, when it landed or how
// it failed, measured against the delivery's AckWait). Every count, figure
// and finding of a mode is derived from it once, when the round is done.
//
// Time. The server starts a delivery's AckWait when it sends the message,
// which the client cannot see. It lies between the moment the client sent
// the pull request that carried the message (pulledAt) and the moment the
// client received it (at). The ledger judges only what those two bounds
// prove:
//   - an ack landed in time when it landed before pulledAt + AckWait;
//   - an ack was sent late when it was sent after at + AckWait.
//
// Order. The server redelivers a message only while it is pending, and an
// applied ack removes it from pending (nats-server's processAckMsg). A
// redelivery that came in answer to a pull request sent after the ack had
// landed was therefore sent after the server applied the ack: a confirmed
// ack that landed in time and is followed by such a redelivery is the one
// thing the probe calls a broken confirmed ack. Every other redelivery is
// classified by what can be proved about it (see classify).
//
// Memory. A message costs one uint16 of state; the times of recent landed
// acks, which the ordering rule needs, sit in a fixed-size ring.
type ledger struct {
	mu      sync.Mutex
	ackWait time.Duration
	modes   []*modeLedger
	// baseline is the consumer's ack pending when the round started:
	// deliveries of earlier runs (a reused consumer) the round never saw.
	baseline int
	// strays are deliveries of messages this round did not publish (an
	// earlier run's or round's, on a reused consumer).
	strays, straysLanded int
	// held counts this round's messages the client has received and whose
	// latest delivery's ack has not landed: what the server holds ack
	// pending on the client's account.
	held int
	// landed remembers when recent acks landed, by stream sequence.
	landed landedRing
	// dseq bookkeeping: every delivery has its own consumer sequence, so
	// a gap below the highest one received is a delivery lost on the way.
	baseDseq, maxDseq uint64
	deliveries        uint64
	lostAccounted     uint64
}

// modeLedger is the record of one mode's messages.
type modeLedger struct {
	mode  Mode
	first uint64     // stream sequence of state[0]
	state []msgState // per stream sequence from first
	count int        // messages published
	// expect is how many messages the mode will publish: the state is
	// allocated once, not grown by doubling.
	expect int

	received   int // messages received at least once
	acked      int // messages whose ack landed
	callErrors int // ack calls that failed after their retries
	retries    int // ack attempts beyond the first, over every call
	timeouts   int // confirmed-ack attempts that got no reply in time
	lastErr    string
	// redelivered counts receipts that were redeliveries (NumDelivered
	// above 1, or a message received again), redeliveredMsgs the messages
	// they were of.
	redelivered, redeliveredMsgs int
	lost                         int // deliveries the server made that never arrived, found so far

	cls  classes
	late int // messages acked after their AckWait expired (sent late, or proved late by a redelivery)

	readBacks, stale, staleExplained, notVisible int

	call  *recorder // ack call: Ack() or DoubleAck() until it returned (first ack of a message)
	toAck *recorder // receipt → ack landed (first ack of a message)
	lag   *recorder // ack → visible in consumer state, over stale read-backs
}

// classes counts messages by what the ledger proved about them; each
// message is counted at most once per class.
type classes struct {
	afterConfirmed  int // redelivered after a confirmed ack that landed in time
	lostStandard    int // redelivered after a standard ack sent in time
	lateRedelivered int // redelivered after an ack that landed past (or near) the AckWait
	beforeAck       int // redelivered while the probe held it (ack not landed, or landing)
	lostDelivery    int // first received through a redelivery: the first delivery never arrived
	retried         int // confirmed acks that needed a retry
	retriedLate     int // of those, landed when the AckWait may have expired
}

// msgState is what the ledger knows of one message: msg* bits, and the
// highest delivery count received.
type msgState uint16

// Per-message state bits.
const (
	msgPublished   msgState = 1 << iota
	msgSeen                 // received at least once
	msgLanded               // an ack landed: Ack() returned, or DoubleAck() was answered
	msgFailed               // an ack call failed after its retries
	msgInTime               // the ack that landed did so certainly within the AckWait
	msgLate                 // counted as a late ack
	msgClassified           // its first redelivery has been classified
	msgRetried              // counted as a retried confirmed ack
	msgHeld                 // received, and the ack of its latest delivery has not landed
	msgRedelivered          // counted in redeliveredMsgs

	msgNDShift          = 12 // bits 12..15: the highest NumDelivered received, at most 15
	msgNDMask  msgState = 0xf << msgNDShift
)

// newLedger starts the record of a round on a consumer that had delivered
// up to consumer sequence baseDseq and held baseline deliveries of earlier
// runs ack pending.
func newLedger(modes []Mode, count int, ackWait time.Duration, baseDseq uint64, baseline int) *ledger {
	l := &ledger{ackWait: ackWait, baseDseq: baseDseq, maxDseq: baseDseq, baseline: baseline}
	for _, m := range modes {
		l.modes = append(l.modes, &modeLedger{mode: m, expect: count, call: newRecorder(), toAck: newRecorder(), lag: newRecorder()})
	}
	l.landed.init()
	return l
}

// published records that mode i stored a message at stream sequence seq.
// Sequences of one mode come roughly in order; a lower one than seen so far
// (a retried publish answered late) grows the record at the front.
// firstStored is the stream sequence of mode i's first stored message, 0
// before any.
func (l *ledger) firstStored(i int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.modes[i].first
}

func (l *ledger) published(i int, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.modes[i]
	switch {
	case m.state == nil:
		m.first = seq
		// Allocated once for the count, up to a million messages; beyond,
		// it grows as messages are stored.
		m.state = make([]msgState, 1, max(1, min(m.expect, 1<<20)))
	case seq < m.first:
		grown := make([]msgState, int(m.first-seq)+len(m.state))
		copy(grown[m.first-seq:], m.state)
		m.state, m.first = grown, seq
	}
	idx := int(seq - m.first)
	for idx >= len(m.state) {
		m.state = append(m.state, 0)
	}
	if m.state[idx]&msgPublished == 0 {
		m.count++
	}
	m.state[idx] |= msgPublished
}

// owner returns the mode that published seq and its state, or -1.
func (l *ledger) owner(seq uint64) (int, *msgState) {
	for i, m := range l.modes {
		if seq >= m.first && seq-m.first < uint64(len(m.state)) {
			if st := &m.state[seq-m.first]; *st&msgPublished != 0 {
				return i, st
			}
		}
	}
	return -1, nil
}

// delivery is one message as the client received it.
type delivery struct {
	msg      jetstream.Msg
	seq      uint64    // stream sequence
	dseq     uint64    // consumer (delivery) sequence
	nd       uint64    // the server's delivery count for this delivery
	at       time.Time // when the client received it
	pulledAt time.Time // when the client sent the pull request it answered
	err      error     // reading its metadata failed

	// Filled by the ledger on arrival.
	owner int  // the mode that published it, or -1
	fresh bool // the first time the client received this message
}

// delivered records a delivery on arrival and classifies it. It fills in
// d.owner and d.fresh.
func (l *ledger) delivered(d *delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries++
	l.maxDseq = max(l.maxDseq, d.dseq)
	i, st := l.owner(d.seq)
	d.owner = i
	if i < 0 {
		l.strays++
		return
	}
	m := l.modes[i]
	nd := msgState(min(d.nd, 0xf))
	prevND := (*st & msgNDMask) >> msgNDShift
	if nd > prevND {
		*st = *st&^msgNDMask | nd<<msgNDShift
	}
	if *st&msgHeld == 0 {
		*st |= msgHeld
		l.held++
	}
	if d.nd > 1 || *st&msgSeen != 0 {
		m.redelivered++
		if *st&msgRedelivered == 0 {
			*st |= msgRedelivered
			m.redeliveredMsgs++
		}
	}
	if *st&msgSeen == 0 {
		*st |= msgSeen
		d.fresh = true
		m.received++
		if d.nd > 1 {
			// The server delivered it before, and that never arrived.
			m.cls.lostDelivery++
			m.lost += int(d.nd - 1)
			l.lostAccounted += d.nd - 1
		}
		return
	}
	if nd > prevND+1 {
		m.lost += int(nd - prevND - 1)
		l.lostAccounted += uint64(nd - prevND - 1)
	}
	if *st&msgClassified != 0 {
		return
	}
	*st |= msgClassified
	l.classify(m, st, d)
}

// classify decides what a message's first redelivery to the client proves.
func (l *ledger) classify(m *modeLedger, st *msgState, d *delivery) {
	if *st&msgLanded == 0 {
		// The ack had not landed: not sent yet (held past the AckWait),
		// or on its way.
		m.cls.beforeAck++
		return
	}
	landedAt, known := l.landed.get(d.seq)
	if known && !d.pulledAt.After(landedAt) {
		// Asked for before the ack landed: the server may have sent it
		// before it applied the ack.
		m.cls.beforeAck++
		return
	}
	switch {
	case *st&msgInTime == 0:
		m.cls.lateRedelivered++
		l.countLate(m, st)
	case m.mode == Confirmed:
		m.cls.afterConfirmed++
	default:
		m.cls.lostStandard++
	}
}

func (l *ledger) countLate(m *modeLedger, st *msgState) {
	if *st&msgLate == 0 {
		*st |= msgLate
		m.late++
	}
}

// ackSent records that an ack of d is being sent at t: a standard ack's
// publish, or a confirmed ack's first attempt.
func (l *ledger) ackSent(d *delivery, t time.Time) {
	if d.owner < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.modes[d.owner]
	_, st := l.owner(d.seq)
	if t.Sub(d.at) > l.ackWait {
		l.countLate(m, st)
	}
}

// ackOutcome is how one ack call ended.
type ackOutcome struct {
	kind     Mode      // how it was acked (a message is acked in its owner's way)
	sent     time.Time // first attempt
	done     time.Time // Ack() returned, or the last DoubleAck attempt ended
	attempts int       // 1 without retries
	timeouts int       // attempts that got no reply in time
	err      error     // the last error when the ack did not land
}

// ackDone records how an ack call of d ended. The first ack of a message
// feeds the mode's latency figures.
func (l *ledger) ackDone(d *delivery, o ackOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d.owner < 0 {
		if o.err == nil {
			l.straysLanded++
		}
		return
	}
	m := l.modes[d.owner]
	_, st := l.owner(d.seq)
	m.retries += o.attempts - 1
	m.timeouts += o.timeouts
	if o.err != nil {
		m.callErrors++
		m.lastErr = o.err.Error()
		*st |= msgFailed
		return
	}
	// A standard ack has landed, as far as the client can know, when Ack()
	// returned; a confirmed one when the server answered.
	landedAt := o.done
	first := *st&msgLanded == 0
	*st |= msgLanded
	if *st&msgHeld != 0 {
		*st &^= msgHeld
		l.held--
	}
	if !landedAt.After(d.pulledAt.Add(l.ackWait)) {
		*st |= msgInTime
	} else {
		*st &^= msgInTime
	}
	l.landed.put(d.seq, landedAt)
	if o.attempts > 1 && o.kind == Confirmed && *st&msgRetried == 0 {
		*st |= msgRetried
		m.cls.retried++
		if *st&msgInTime == 0 {
			m.cls.retriedLate++
		}
	}
	if first {
		m.acked++
		m.call.record(o.done.Sub(o.sent))
		m.toAck.record(landedAt.Sub(d.at))
	}
}

// outstanding is how many deliveries the server should count as ack
// pending right now, as far as the client knows: the baseline of earlier
// runs, messages received whose ack has not landed, and deliveries the
// server made that never arrived and have not come back since. A
// consumer-info read with more ack pending than this still lacks an ack
// that landed. A stray (an earlier run's message) counts while held and
// leaves the baseline once acked; whether it was in the baseline or not
// cannot be told, so strays make the figure approximate (read-backs then
// call a stale read explained).
func (l *ledger) outstanding() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(0, l.baseline+l.held+l.strays+l.gaps()-2*l.straysLanded)
}

// gaps counts deliveries the server made that never reached the client
// and whose messages have not come back since: they are ack pending on the
// server until their AckWait expires, then redelivered.
func (l *ledger) gaps() int {
	return int(max(0, int64(l.maxDseq-l.baseDseq)-int64(l.deliveries)-int64(l.lostAccounted)))
}

// lostOnTheWay is gaps, under the lock.
func (l *ledger) lostOnTheWay() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gaps()
}

// ownerOf returns the mode that published seq, or -1.
func (l *ledger) ownerOf(seq uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	i, _ := l.owner(seq)
	return i
}

// received is how many of mode i's messages the client has received.
func (l *ledger) received(i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.modes[i].received
}

// acked is how many of mode i's messages have had an ack land.
func (l *ledger) acked(i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.modes[i].acked
}

// strayCount is how many deliveries of earlier runs' messages arrived.
func (l *ledger) strayCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.strays
}

// unreadable records a delivery whose metadata could not be read: it
// cannot be acked (its reply subject is the metadata).
func (l *ledger) unreadable(i int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.modes[i].callErrors++
	l.modes[i].lastErr = err.Error()
}

// readBack records an immediate read-back after an ack: stale when the
// server still counted the ack as pending; explained when a change of
// consumer leader between the ack and the read accounts for it.
func (l *ledger) readBack(i int, stale, explained bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.modes[i]
	m.readBacks++
	if stale {
		m.stale++
		if explained {
			m.staleExplained++
		}
	}
}

// visibleAfter records how long a stale ack took to show.
func (l *ledger) visibleAfter(i int, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.modes[i].lag.record(d)
}

// neverVisible records a read-back whose ack never showed in time.
func (l *ledger) neverVisible(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.modes[i].notVisible++
}

// landedRing remembers when the acks of the most recent messages landed.
// A message that is no longer in it was acked long before: at least
// landedRingSize acks ago, far longer than any pull request is in flight.
type landedRing struct {
	seq []uint64
	at  []time.Time
}

const landedRingSize = 1 << 16

func (r *landedRing) init() {
	r.seq = make([]uint64, landedRingSize)
	r.at = make([]time.Time, landedRingSize)
}

func (r *landedRing) put(seq uint64, at time.Time) {
	i := seq % landedRingSize
	r.seq[i], r.at[i] = seq, at
}

func (r *landedRing) get(seq uint64) (time.Time, bool) {
	i := seq % landedRingSize
	if r.seq[i] != seq {
		return time.Time{}, false
	}
	return r.at[i], true
}
