package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readBackTarget is about how many immediate read-backs a mode takes.
const readBackTarget = 100

// modeRun is one mode's pass over its messages.
type modeRun struct {
	p     *prober
	idx   int
	mode  Mode
	res   ModeResult
	t0    time.Time
	lat   *recorder
	lag   *recorder
	fetch *fetcher

	mu       sync.Mutex // guards the counters below when acks run in parallel
	acks     int
	errors   int
	retries  int
	timeouts int
	lastErr  error
	// failedInARow counts acks failing one after another.
	failedInARow int
	// slowest is the longest recent confirmed ack; it decays as batches
	// are sized by it.
	slowest  time.Duration
	inflight sync.WaitGroup
	slots    chan struct{}

	baseline   int // ack-pending at the start that is not this mode's
	lastDseq   uint64
	sampleGap  int
	nextSample int
	stopSample bool
	ackTime    time.Duration
	lastBatch  int // the size batchSize returned last
	// lostAtStart is lostDeliveries when the mode started.
	lostAtStart int
}

// runMode acknowledges Count messages of mode idx and reads the consumer
// back as it goes.
func (p *prober) runMode(ctx context.Context, idx int) (ModeResult, error) {
	m := &modeRun{
		p: p, idx: idx, mode: p.cfg.Modes[idx],
		t0:  time.Now(),
		lat: newRecorder(), lag: newRecorder(),
		fetch: &fetcher{p: p, timeout: p.cfg.Timeout, retries: p.cfg.Retries},
	}
	m.res.Mode = m.mode
	m.res.Steps = []Step{}
	conc := 1
	if m.mode == Confirmed {
		conc = p.cfg.Concurrency
	}
	m.slots = make(chan struct{}, conc)
	m.sampleGap = max(1, p.cfg.Count/readBackTarget)
	m.nextSample = m.sampleGap
	var sent0, lost0 int64
	if p.cfg.AckFrames != nil {
		sent0, lost0 = p.cfg.AckFrames()
	}
	err := m.run(ctx)
	m.inflight.Wait()
	if err == nil && p.cfg.CollectRedeliveries {
		err = m.collect(ctx)
	}
	if p.cfg.AckFrames != nil {
		sent, lost := p.cfg.AckFrames()
		sent, lost = sent-sent0, lost-lost0
		m.res.AckFrames, m.res.AcksLost = &sent, &lost
	}
	if err == nil {
		want := int64(math.MaxInt64) // a sample: wait until they stop coming
		if p.cfg.ServerSample == "100%" {
			want = int64(m.acks)
		}
		p.sampler.wait(ctx, idx, want)
	}
	m.finish()
	m.res.Server = p.sampler.view(idx)
	return m.res, err
}

func (m *modeRun) step(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	ci, err := m.p.info(ctx)
	if err != nil {
		return nil, err
	}
	m.res.Steps = append(m.res.Steps, stepOf(name, ci, time.Since(m.t0)))
	return ci, nil
}

func (m *modeRun) run(ctx context.Context) error {
	count := m.p.cfg.Count
	start, err := m.step(ctx, "start")
	if err != nil {
		return err
	}
	m.baseline = start.NumAckPending
	m.p.deliveryBase(start)
	m.lostAtStart = m.p.lostDeliveries()

	received := 0 // first deliveries of this mode's messages
	handled := 0  // messages acked or being acked
	ackStart := time.Now()
	// The fetch in flight when the run ends early (it gave up, or failed)
	// is cancelled and waited for, so it cannot outlive the mode.
	fctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); m.fetch.settle(context.Background()) }()
	if carried := m.p.carried; len(carried) > 0 {
		// Messages of this mode an earlier mode's fetch received.
		m.p.carried = nil
		m.fetch.ready = &fetched{msgs: carried}
	} else {
		m.fetch.start(fctx, m.batchSize(count, handled, ackStart))
	}
	var paused time.Duration
	var stalled time.Time // when the consumer stopped delivering
	for received < count {
		batch, err := m.fetch.next(ctx)
		if errors.Is(err, errNoDelivery) {
			// Messages the server delivered but the client never got (a
			// pull request or a delivery lost in a leader change or a
			// reconnect) come back only after AckWait: wait for them while
			// the consumer still holds some.
			var waiting bool
			if waiting, err = m.awaitRedelivery(ctx, &stalled); waiting {
				m.fetch.start(fctx, m.batchSize(count-received, handled, ackStart))
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("%s run: fetch from consumer %q after %d of %d messages: %w", m.mode, m.p.res.Consumer, received, count, err)
		}
		stalled = time.Time{}
		received += m.mark(batch)
		if left := count - received; left > 0 {
			m.fetch.start(fctx, m.batchSize(left, handled, ackStart))
		}
		if count == 1 && received == 1 {
			if _, err := m.step(ctx, "received"); err != nil {
				return err
			}
		}
		for i, d := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if m.givingUp() {
				m.inflight.Wait()
				m.res.GaveUp = true
				m.ackTime = time.Since(ackStart) - paused
				return nil
			}
			m.handle(ctx, d)
			handled++
			last := received >= count && i == len(batch)-1
			// With faults, acks go out in bursts as an application's
			// would; only the final read-back is taken.
			sample := handled >= m.nextSample && !m.p.cfg.CollectRedeliveries
			if sample || last {
				m.nextSample += m.sampleGap
				t := time.Now()
				if err := m.readBack(ctx, len(batch)-1-i, last); err != nil {
					return err
				}
				if !last {
					// Sampling pauses acking; the final read-back is
					// the wait until the server shows every ack, and
					// counts.
					paused += time.Since(t)
				}
			}
		}
		m.progress(handled)
	}
	m.ackTime = time.Since(ackStart) - paused
	return nil
}

// awaitRedelivery decides what an empty fetch means. While the consumer
// still holds messages (pending, or delivered and not acked) it reports
// waiting, for up to AckWait and two timeouts from the first empty fetch:
// a delivery that never reached the client is redelivered after AckWait.
// Otherwise it returns the reason nothing will come.
func (m *modeRun) awaitRedelivery(ctx context.Context, stalled *time.Time) (waiting bool, err error) {
	if stalled.IsZero() {
		*stalled = time.Now()
	}
	ci, err := m.p.info(ctx)
	if err != nil {
		return false, err
	}
	waited := time.Since(*stalled)
	if ci.NumPending == 0 && ci.NumAckPending <= m.baseline {
		return false, fmt.Errorf("%w: the consumer has no message left to deliver", errNoDelivery)
	}
	if limit := m.p.cfg.AckWait + 2*m.p.cfg.Timeout; waited > limit {
		return false, fmt.Errorf("%w for %s, with %d pending and %d ack-pending on the consumer", errNoDelivery, waited.Round(time.Millisecond), ci.NumPending, ci.NumAckPending)
	}
	return true, nil
}

// mark reads each delivery's metadata and records the message as
// received; it returns how many of this mode's messages the client got
// for the first time. A first receipt may be a redelivery: the server's
// first delivery never reached the client.
func (m *modeRun) mark(batch []delivery) (fresh int) {
	for i := range batch {
		d := &batch[i]
		d.owner = -1
		if d.err != nil {
			continue
		}
		if !d.counted {
			d.counted = true
			m.p.delivered.count++
			m.p.delivered.maxDseq = max(m.p.delivered.maxDseq, d.md.Sequence.Consumer)
		}
		if d.owner = m.p.owner(d.md.Sequence.Stream); d.owner > m.idx {
			continue // the later mode marks it when it handles it
		}
		if d.owner >= 0 {
			d.seenBefore = m.p.ranges[d.owner].markSeen(d.md.Sequence.Stream)
			if !d.seenBefore && d.md.NumDelivered > 1 {
				m.p.delivered.recovered++
			}
			if d.owner == m.idx && !d.seenBefore {
				fresh++
			}
		}
	}
	return fresh
}

// batchSize returns how many messages to ask for next, at most left. The
// probe holds a batch while it acks it, and the next one arrives
// meanwhile: it asks for no more than it acks in an eighth of AckWait, so
// the server does not redeliver a message only because the probe was slow
// to get to it. The time per ack is the run's pace so far or, for
// confirmed acks, the slowest recent ack (a retried one) if that is
// longer. Confirmed batches start small and at most double, until the pace
// is known.
func (m *modeRun) batchSize(left, handled int, since time.Time) int {
	if m.mode == Standard && handled == 0 {
		return min(left, batchMax) // Ack() does not wait
	}
	n := batchMax
	if handled > 0 {
		perAck := time.Since(since) / time.Duration(handled)
		if m.mode == Confirmed {
			m.mu.Lock()
			perAck = max(perAck, m.slowest/time.Duration(cap(m.slots)))
			m.slowest /= 2 // recent, not the run's worst
			m.mu.Unlock()
		}
		n = int(min(time.Duration(batchMax), m.p.cfg.AckWait/8/max(perAck, time.Microsecond)))
	}
	if m.mode == Confirmed {
		n = min(n, max(8*cap(m.slots), 2*m.lastBatch))
	}
	m.lastBatch = max(1, min(left, n))
	return m.lastBatch
}

// handle acknowledges one delivered message, marked by mark, in the
// mode's way.
func (m *modeRun) handle(ctx context.Context, d delivery) {
	msg, md, owner := d.msg, d.md, d.owner
	if d.err != nil {
		m.fail(d.err)
		return
	}
	if owner > m.idx {
		// A later mode's message, fetched when this mode's missing ones
		// (deliveries lost on the way) were asked for: that mode takes it.
		m.p.carried = append(m.p.carried, d)
		return
	}
	seq := md.Sequence.Stream
	if owner >= 0 && md.NumDelivered > 1 {
		m.p.redelivered(owner, m, md.NumDelivered == 2, d.seenBefore, d.ackedBefore)
	}
	m.lastDseq = max(m.lastDseq, md.Sequence.Consumer)
	acked := func(err error) {
		// A confirmed ack has landed when DoubleAck returns; a standard
		// one is taken to have landed when Ack() returns, so a redelivery
		// that arrives later is a lost or late ack.
		if owner >= 0 && err == nil {
			m.p.ranges[owner].markAcked(seq)
		}
	}
	if owner != m.idx || d.seenBefore {
		// A message the client acked (or is acking) before, or another
		// mode's: ack it so it goes away, but keep it out of this mode's
		// figures.
		acked(m.ackOnce(ctx, msg))
		return
	}
	if m.mode == Standard {
		t := time.Now()
		m.p.sampler.held(seq, t.Sub(d.at))
		err := msg.Ack()
		m.lat.record(time.Since(t))
		acked(err)
		m.count(0, err)
		return
	}
	confirm := func() {
		t := time.Now()
		m.p.sampler.held(seq, t.Sub(d.at))
		retries, timeouts, err := m.p.confirm(ctx, msg)
		took := time.Since(t)
		acked(err)
		m.mu.Lock()
		m.lat.record(took)
		m.slowest = max(m.slowest, took)
		m.timeouts += timeouts
		m.mu.Unlock()
		m.count(retries, err)
	}
	if cap(m.slots) == 1 {
		// One at a time: no goroutine hand-off per ack.
		confirm()
		return
	}
	m.slots <- struct{}{}
	m.inflight.Add(1)
	go func() {
		defer func() { <-m.slots; m.inflight.Done() }()
		confirm()
	}()
}

func (m *modeRun) ackOnce(ctx context.Context, msg jetstream.Msg) error {
	if m.mode == Standard {
		return msg.Ack()
	}
	retries, timeouts, err := m.p.confirm(ctx, msg)
	m.mu.Lock()
	m.retries += retries
	m.timeouts += timeouts
	m.mu.Unlock()
	return err
}

func (m *modeRun) count(retries int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retries += retries
	if err != nil {
		m.errors++
		m.failedInARow++
		m.lastErr = err
		return
	}
	m.failedInARow = 0
	m.acks++
}

// maxFailedInARow stops a mode whose acks keep failing after their
// retries: the server is not answering, and going on would only multiply
// timeouts by the count.
const maxFailedInARow = 10

// givingUp reports whether the mode should stop acking.
func (m *modeRun) givingUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failedInARow >= maxFailedInARow
}

func (m *modeRun) fail(err error) {
	m.mu.Lock()
	m.errors++
	m.lastErr = err
	m.mu.Unlock()
}

// confirm sends a confirmed ack, retrying a bounded number of times. A
// DoubleAck that failed leaves the message unacked on the client, so the
// same message can be acked again; the server answers a repeated ack too.
func (p *prober) confirm(ctx context.Context, msg jetstream.Msg) (retries, timeouts int, err error) {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
		err = msg.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return attempt, timeouts, nil
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			timeouts++
		}
		if attempt >= p.cfg.Retries || ctx.Err() != nil || !retryable(err) {
			return attempt, timeouts, err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		case <-ctx.Done():
			return attempt, timeouts, err
		}
	}
}

func retryable(err error) bool {
	switch {
	case errors.Is(err, jetstream.ErrMsgNotBound), errors.Is(err, jetstream.ErrMsgNoReply),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// readBack waits for the acks in flight, then reads the consumer back at
// once: a read that still counts the last acked message as pending is
// stale. It then polls until the ack shows, which measures the lag.
// inHand is the number of delivered messages not acked yet.
func (m *modeRun) readBack(ctx context.Context, inHand int, last bool) error {
	if m.stopSample && !last {
		return nil
	}
	m.inflight.Wait()
	inHand += m.fetch.settle(ctx) + len(m.p.carried)
	ackedAt := time.Now()
	dseq := m.lastDseq
	visible := func(ci *jetstream.ConsumerInfo) bool {
		// Deliveries that never reached the probe stay ack-pending until
		// AckWait brings them back; they are no sign of a slow ack.
		lost := m.p.lostDeliveries() - m.lostAtStart
		return ci.AckFloor.Consumer >= dseq || ci.NumAckPending <= max(0, inHand+m.baseline+lost)
	}
	ci, err := m.p.info(ctx)
	if err != nil {
		return err
	}
	m.res.Visibility.ReadBacks++
	first := stepOf("acked", ci, time.Since(m.t0))
	first.Stale = !visible(ci)
	if last {
		m.res.Steps = append(m.res.Steps, first)
	}
	if !first.Stale {
		return nil
	}
	m.res.Visibility.StaleReads++
	deadline := ackedAt.Add(m.p.visibilityWait())
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		ci, err = m.p.info(ctx)
		if err != nil {
			return err
		}
		if visible(ci) {
			m.lag.record(time.Since(ackedAt))
			if last && m.p.cfg.Count > 1 {
				m.res.Steps = append(m.res.Steps, stepOf("settled", ci, time.Since(m.t0)))
			}
			return nil
		}
	}
	// The ack never showed: lost, or the server is far behind. Later
	// read-backs would only wait on the same missing ack.
	m.res.Visibility.NotVisible++
	m.stopSample = true
	return nil
}

func (m *modeRun) progress(handled int) {
	if f := m.p.cfg.Progress; f != nil {
		total := m.p.cfg.Count * len(m.p.cfg.Modes)
		f(min(m.idx*m.p.cfg.Count+handled, total), total)
	}
}

// finish turns the counters and histograms into the mode's result.
func (m *modeRun) finish() {
	r := &m.res
	r.Acks, r.Errors, r.Retries, r.Timeouts = m.acks, m.errors, m.retries, m.timeouts
	r.AckedOnce = max(0, m.acks-r.RedeliveredMessages)
	if m.lastErr != nil {
		r.LastError = m.lastErr.Error()
	}
	r.AckLatencyUS = m.lat.summary()
	r.Visibility.LagUS = m.lag.summary()
	r.Elapsed = doc.Duration(time.Since(m.t0).Round(time.Microsecond))
	if m.ackTime > 0 && m.acks > 0 {
		r.AcksPerSec = float64(m.acks) / m.ackTime.Seconds()
	}
}

// redelivered counts a redelivery against the mode that owns the message;
// first is true for a message's first redelivery.
func (p *prober) redelivered(owner int, cur *modeRun, first, seenBefore, ackedBefore bool) {
	var r *ModeResult
	switch {
	case owner == cur.idx:
		r = &cur.res
	case owner < len(p.res.Modes):
		r = &p.res.Modes[owner]
	default:
		return
	}
	r.Redelivered++
	if first {
		r.RedeliveredMessages++
		switch {
		case ackedBefore:
			r.RedeliveredAfterAck++
		case seenBefore:
			r.RedeliveredBeforeAck++
		}
		if owner != cur.idx {
			r.AckedOnce = max(0, r.AckedOnce-1)
		}
	}
}

// visibilityWait bounds how long a read-back polls for an ack to show: an
// ack that has not shown well within AckWait is lost.
func (p *prober) visibilityWait() time.Duration {
	return min(p.cfg.Timeout, max(p.cfg.AckWait/2, 100*time.Millisecond))
}

// collect fetches until the server holds none of this mode's messages
// ack-pending, acking each redelivery as the mode acks; lost acks come
// back as redeliveries after AckWait. It gives up after a bounded number
// of AckWait periods.
func (m *modeRun) collect(ctx context.Context) error {
	wait := m.p.cfg.AckWait + m.p.cfg.Timeout
	deadline := time.Now().Add(8*m.p.cfg.AckWait + 2*m.p.cfg.Timeout)
	for time.Now().Before(deadline) {
		ci, err := m.p.info(ctx)
		if err != nil {
			return err
		}
		if ci.NumAckPending <= m.baseline {
			m.res.Steps = append(m.res.Steps, stepOf("collected", ci, time.Since(m.t0)))
			return nil
		}
		// Wait for the first redelivery, then take what else is ready.
		first := (&fetcher{p: m.p, timeout: wait}).fetchOnce(ctx, 1)
		if first.err != nil && !errors.Is(first.err, context.DeadlineExceeded) && !transient(first.err) {
			return fmt.Errorf("%s run: collect redeliveries: %w", m.mode, first.err)
		}
		batch := first.msgs
		if len(batch) > 0 && ci.NumAckPending > 1 {
			if rest, err := m.p.cons.FetchNoWait(min(ci.NumAckPending-1, batchMax)); err == nil {
				for msg := range rest.Messages() {
					batch = append(batch, m.p.received(msg))
				}
			}
		}
		m.mark(batch)
		for _, d := range batch {
			m.handle(ctx, d)
		}
		m.inflight.Wait()
	}
	ci, err := m.p.info(ctx)
	if err != nil {
		return err
	}
	m.res.Steps = append(m.res.Steps, stepOf("collected", ci, time.Since(m.t0)))
	m.p.note("%s: %d message(s) still ack-pending after collecting redeliveries for %s", m.mode, ci.NumAckPending, time.Since(m.t0).Round(time.Millisecond))
	return nil
}

// fetcher keeps at most one pull request in flight, so the next batch is
// on its way while the current one is acked.
type fetcher struct {
	p       *prober
	timeout time.Duration
	retries int

	pending chan fetched
	ready   *fetched
}

type fetched struct {
	msgs []delivery
	err  error
}

// delivery is a message as the client received it; mark fills in owner
// and seenBefore.
type delivery struct {
	msg jetstream.Msg
	at  time.Time // when the client received it
	md  *jetstream.MsgMetadata
	err error // from reading the metadata
	// ackedBefore is set on a redelivery of a message whose ack had
	// landed when the redelivery arrived: checked on arrival, as a
	// redelivery may wait in a prefetched batch while the ack completes.
	ackedBefore bool

	owner      int  // the mode that published it, or -1
	seenBefore bool // the client had received it before
	counted    bool // in prober.delivered
}

// received records a delivery as it arrives.
func (p *prober) received(msg jetstream.Msg) delivery {
	d := delivery{msg: msg, at: time.Now()}
	d.md, d.err = msg.Metadata()
	if d.err == nil {
		d.ackedBefore = p.ackedBefore(d.md)
	}
	return d
}

func (f *fetcher) start(ctx context.Context, n int) {
	ch := make(chan fetched, 1)
	f.pending = ch
	go func() {
		var out fetched
		for attempt := 0; attempt <= f.retries; attempt++ {
			out = f.fetchOnce(ctx, n)
			if len(out.msgs) > 0 || ctx.Err() != nil {
				break
			}
			if out.err != nil && transient(out.err) && !errors.Is(out.err, context.DeadlineExceeded) {
				// No consumer leader for a moment (a leader change, a
				// reconnect): such errors come back at once, so wait a
				// little before asking again.
				select {
				case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, time.Second)):
				case <-ctx.Done():
				}
			}
		}
		ch <- out
	}()
}

func (f *fetcher) fetchOnce(ctx context.Context, n int) fetched {
	fctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	batch, err := f.p.cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return fetched{err: err}
	}
	var out fetched
	for msg := range batch.Messages() {
		out.msgs = append(out.msgs, f.p.received(msg))
	}
	if err := batch.Error(); err != nil && len(out.msgs) == 0 {
		out.err = err
	}
	return out
}

// settle waits for the request in flight and returns how many messages it
// delivered; they stay queued for next.
func (f *fetcher) settle(ctx context.Context) int {
	if f.pending != nil {
		select {
		case r := <-f.pending:
			f.ready = &r
		case <-ctx.Done():
			return 0
		}
		f.pending = nil
	}
	if f.ready == nil {
		return 0
	}
	return len(f.ready.msgs)
}

// next returns the next batch, waiting for the request in flight.
func (f *fetcher) next(ctx context.Context) ([]delivery, error) {
	f.settle(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := f.ready
	f.ready = nil
	if r == nil {
		return nil, errNoDelivery
	}
	if len(r.msgs) == 0 {
		if r.err == nil || errors.Is(r.err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w within %s: %w", errNoDelivery, f.timeout, context.DeadlineExceeded)
		}
		return nil, r.err
	}
	return r.msgs, nil
}
