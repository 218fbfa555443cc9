package probe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readBackTarget is about how many immediate read-backs a mode takes.
const readBackTarget = 100

// maxFailedInARow stops a mode whose ack calls keep failing after their
// retries: the server is not applying acks, and going on would only
// multiply the wait by the count.
const maxFailedInARow = 10

// modeRun is one mode's pass over its messages: fetch, ack, read back,
// settle. What happens to each message goes into the round's ledger.
type modeRun struct {
	r     *roundRun
	i     int
	mode  Mode
	rec   *modeRecord
	fetch *fetcher

	handled int // this mode's messages acked (or being acked) once
	// lastDseq is the highest consumer sequence this mode acked.
	lastDseq uint64

	mu           sync.Mutex // guards failedInARow, slowest and asyncErr with acks in flight
	failedInARow int
	// asyncErr is the first error that ends the run from an ack in flight
	// (the connection went away).
	asyncErr error
	// slowest is the longest recent confirmed ack; it decays as batches
	// are sized by it.
	slowest  time.Duration
	inflight sync.WaitGroup
	slots    chan struct{}

	sampleGap, nextSample int
	stopSample            bool
	lastBatch             int
	ackStart              time.Time
}

// runMode stores (unless stored up front) and acks mode i's messages, reads
// the consumer back as it goes, and waits until the server has settled
// them.
func (r *roundRun) runMode(ctx context.Context, i int) (err error) {
	p := r.p
	rec := r.modes[i]
	m := &modeRun{r: r, i: i, mode: p.cfg.Modes[i], rec: rec}
	rec.ran = true
	rec.t0 = time.Now()
	if i > 0 {
		// The first mode counts from the round's start, which stored
		// every mode's messages when upfront.
		rec.dist.begin()
	}
	var faults0 FaultStats
	if f := p.cfg.Faults; f != nil {
		faults0 = f.Stats()
	}
	defer func() {
		m.inflight.Wait()
		rec.elapsed = time.Since(rec.t0)
		rec.disturbance = rec.dist.summary()
		if f := p.cfg.Faults; f != nil {
			st := f.Stats()
			sent, lost := st.AckFrames-faults0.AckFrames, st.AcksDropped+st.AcksCut-faults0.AcksDropped-faults0.AcksCut
			rec.ackFrames, rec.acksLost = &sent, &lost
		}
	}()
	if !r.upfront {
		if err := r.publish(ctx, i); err != nil {
			return err
		}
	}
	if i == 0 || !r.upfront {
		want := p.cfg.Count
		if r.upfront {
			want *= len(p.cfg.Modes)
		}
		r.awaitPending(ctx, uint64(want), rec.dist)
	}
	if _, err := m.step(ctx, "start"); err != nil {
		return err
	}
	conc := 1
	if m.mode == Confirmed {
		conc = p.cfg.Concurrency
	}
	m.slots = make(chan struct{}, conc)
	m.sampleGap = max(1, p.cfg.Count/readBackTarget)
	m.nextSample = m.sampleGap
	m.fetch = &fetcher{r: r, dist: rec.dist}
	if err := m.ackAll(ctx); err != nil || rec.gaveUp {
		return err
	}
	if err := m.settle(ctx); err != nil {
		return err
	}
	want := int64(-1) // a sample: wait until the events stop coming
	if r.sampler.all() {
		want = int64(r.l.acked(i))
	}
	r.sampler.wait(ctx, i, want)
	r.progress("done", m.mode, p.cfg.Count, p.cfg.Count)
	return nil
}

func (m *modeRun) step(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	ci, err := m.r.info(ctx, m.rec.dist)
	if err != nil {
		return nil, err
	}
	m.rec.steps = append(m.rec.steps, stepOf(name, ci, time.Since(m.rec.t0)))
	return ci, nil
}

// ackAll receives and acks each of the mode's messages once. Messages of
// other modes that turn up are dealt with as their own mode would (see
// handle).
func (m *modeRun) ackAll(ctx context.Context) error {
	p := m.r.p
	count := p.cfg.Count
	m.ackStart = time.Now()
	m.r.progress("ack", m.mode, 0, count)
	// The fetch in flight when the run ends early is cancelled and waited
	// for, so it cannot outlive the mode.
	fctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); m.fetch.settle(context.Background()) }()
	if held := m.r.handover[m.i]; len(held) > 0 {
		m.r.handover[m.i] = nil
		m.fetch.ready = &fetched{msgs: held}
	} else {
		m.fetch.start(fctx, m.batchSize())
	}
	var stalled time.Time // when the consumer stopped delivering
	receivedStep := false
	for m.handled < count {
		batch, err := m.fetch.next(ctx)
		if errors.Is(err, errNoDelivery) {
			// Messages the server delivered but the client never got (a
			// pull request or a delivery lost in a leader change or a
			// reconnect) come back only after AckWait: wait for them while
			// the consumer still holds some.
			if err = m.awaitRedelivery(ctx, &stalled); err == nil {
				m.fetch.start(fctx, m.batchSize())
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("%s run: fetch from consumer %q after %d of %d messages: %w", m.mode, p.consumer, m.handled, count, err)
		}
		stalled = time.Time{}
		if m.r.l.received(m.i) < count {
			m.fetch.start(fctx, m.batchSize())
		}
		if count == 1 && !receivedStep && m.r.l.received(m.i) == 1 {
			receivedStep = true
			if _, err := m.step(ctx, "received"); err != nil {
				return err
			}
		}
		for j, d := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if m.givingUp() {
				m.inflight.Wait()
				m.rec.gaveUp = true
				return nil
			}
			if err := m.handle(ctx, d); err != nil {
				return err
			}
			last := m.handled >= count && j == len(batch)-1
			if last {
				break
			}
			if m.handled >= m.nextSample && count > 1 && !p.cfg.CollectRedeliveries {
				m.nextSample += m.sampleGap
				if _, err := m.readBack(ctx, false); err != nil {
					return err
				}
			}
		}
		m.r.progress("ack", m.mode, m.handled, count)
	}
	return nil
}

// handle deals with one delivery as the mode that published it would: a
// fresh message of this mode is acked and counted; a redelivery, or a
// message of an earlier mode, is acked in its owner's way so that it goes
// away; a later mode's message (Count 1, after a lost delivery) is kept
// for that mode; a message of an earlier run is acked with a standard ack.
func (m *modeRun) handle(ctx context.Context, d *delivery) error {
	switch {
	case d.err != nil:
		m.r.l.unreadable(m.i, d.err)
		return nil
	case d.owner > m.i:
		m.r.handover[d.owner] = append(m.r.handover[d.owner], d)
		return nil
	case d.owner == m.i && d.fresh:
		m.handled++
		m.lastDseq = max(m.lastDseq, d.dseq)
		return m.ack(ctx, d, m.mode, true)
	case d.owner >= 0:
		m.lastDseq = max(m.lastDseq, d.dseq)
		return m.ack(ctx, d, m.r.p.cfg.Modes[d.owner], false)
	}
	m.lastDseq = max(m.lastDseq, d.dseq)
	return m.ack(ctx, d, Standard, false)
}

// ack acks d in the given way. Confirmed acks of this mode's fresh
// messages run Concurrency at a time; all others one by one.
func (m *modeRun) ack(ctx context.Context, d *delivery, kind Mode, fresh bool) error {
	if kind == Standard {
		m.r.ackStandard(d, m.mode)
		return nil
	}
	confirm := func() error {
		o, err := m.r.confirm(ctx, d)
		m.mu.Lock()
		defer m.mu.Unlock()
		m.slowest = max(m.slowest, o.done.Sub(o.sent))
		if o.err != nil {
			m.failedInARow++
		} else {
			m.failedInARow = 0
		}
		return err
	}
	if !fresh || cap(m.slots) == 1 {
		// One at a time: no goroutine hand-off per ack.
		return confirm()
	}
	m.slots <- struct{}{}
	m.inflight.Add(1)
	go func() {
		defer func() { <-m.slots; m.inflight.Done() }()
		if err := confirm(); err != nil {
			m.mu.Lock()
			m.asyncErr = cmpErr(m.asyncErr, err)
			m.mu.Unlock()
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.asyncErr
}

// givingUp reports whether the mode should stop acking.
func (m *modeRun) givingUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failedInARow >= maxFailedInARow
}

// awaitRedelivery decides what an empty fetch means. While the consumer
// still holds messages the client does not have (pending, or delivered and
// never received) it waits, for up to AckWait and two timeouts from the
// first empty fetch: a delivery that never reached the client is
// redelivered after AckWait. Otherwise it returns the reason nothing will
// come.
func (m *modeRun) awaitRedelivery(ctx context.Context, stalled *time.Time) error {
	if stalled.IsZero() {
		*stalled = time.Now()
	}
	ci, err := m.r.info(ctx, m.rec.dist)
	if err != nil {
		return err
	}
	waited := time.Since(*stalled)
	// Deliveries lost on the way come back after their AckWait: while
	// there are any, something will come.
	if ci.NumPending == 0 && ci.NumAckPending <= m.r.l.outstanding()-m.r.l.lostOnTheWay() {
		return fmt.Errorf("%w: the consumer has no message left to deliver (ack pending %d, delivered %d, ack floor %d, %d of %d received)",
			errNoDelivery, ci.NumAckPending, ci.Delivered.Stream, ci.AckFloor.Stream, m.r.l.received(m.i), m.r.p.cfg.Count)
	}
	if limit := m.r.p.ackWait + 2*m.r.p.cfg.Timeout; waited > limit {
		return fmt.Errorf("%w for %s, with %d pending and %d ack pending on the consumer", errNoDelivery, waited.Round(time.Millisecond), ci.NumPending, ci.NumAckPending)
	}
	return nil
}

// batchSize returns how many messages to ask for next: at most what the
// mode has not received yet. The probe holds a batch while it acks it, and
// the next one arrives meanwhile: it asks for no more than it acks in an
// eighth of AckWait, so the server does not redeliver a message only
// because the probe was slow to get to it. The time per ack is the mode's
// pace so far or, for confirmed acks, the slowest recent ack (a retried
// one) if that is longer. Confirmed batches start small and at most
// double, until the pace is known.
func (m *modeRun) batchSize() int {
	left := max(1, m.r.p.cfg.Count-m.r.l.received(m.i))
	n := batchMax
	if m.handled > 0 {
		perAck := time.Since(m.ackStart) / time.Duration(m.handled)
		if m.mode == Confirmed {
			m.mu.Lock()
			perAck = max(perAck, m.slowest/time.Duration(cap(m.slots)))
			m.slowest /= 2 // recent, not the run's worst
			m.mu.Unlock()
		}
		n = int(min(time.Duration(batchMax), m.r.p.ackWait/8/max(perAck, time.Microsecond)))
	}
	if m.mode == Confirmed {
		// Standard acks do not wait: their first batch is full.
		n = min(n, max(8*cap(m.slots), 2*m.lastBatch))
	}
	if mp := m.r.p.maxAckPending; mp > 0 {
		// The server delivers no more than max_ack_pending at once; a
		// batch in hand and the next one on its way share it.
		n = min(n, max(1, mp/2))
	}
	m.lastBatch = max(1, min(left, n))
	return m.lastBatch
}

// errNoDelivery is returned when the consumer delivers nothing in time.
var errNoDelivery = errors.New("no probe message was delivered")
