package probe

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// visible reports whether consumer state ci shows every ack that had
// landed when outstanding was counted, before ci was asked for: the ack
// floor has passed the last delivery acked, or the server holds no more
// deliveries ack pending than the client knew to be outstanding (held,
// with the ack on its way, or lost on the way to it). An ack that lands
// after the count still counts as outstanding, so acks in flight never
// make a read stale.
func (m *modeRun) visible(ci *jetstream.ConsumerInfo, outstanding int) bool {
	return m.lastDseq > 0 && ci.AckFloor.Consumer >= m.lastDseq ||
		ci.NumAckPending <= outstanding
}

// state reads the consumer, counting what is outstanding first.
func (m *modeRun) state(ctx context.Context) (*jetstream.ConsumerInfo, bool, error) {
	outstanding := m.r.l.outstanding()
	ci, err := m.r.info(ctx, m.rec.dist)
	if err != nil {
		return nil, false, err
	}
	return ci, m.visible(ci, outstanding), nil
}

// quiesce waits for the acks in flight and for the fetch in flight, so
// that every delivery the server made is in the ledger and every ack sent
// has landed or failed.
func (m *modeRun) quiesce(ctx context.Context) {
	m.inflight.Wait()
	m.fetch.settle(ctx)
}

// readBack reads the consumer back right after the acks so far landed: a
// read that still counts an ack as pending is stale. It then polls until
// the ack shows, which measures the lag. The final read-back waits for
// every ack in flight first, and is the mode's "acked" step; it reports
// whether the server showed every ack. Others leave confirmed acks in
// flight (they count as outstanding) and wait only for the fetch in
// flight, whose deliveries the server already counts.
func (m *modeRun) readBack(ctx context.Context, final bool) (bool, error) {
	if m.stopSample && !final {
		return true, nil
	}
	if final {
		m.quiesce(ctx)
	} else {
		m.fetch.settle(ctx)
	}
	ackedAt := time.Now()
	leader := m.rec.dist.currentLeader()
	ci, ok, err := m.state(ctx)
	if err != nil {
		return false, err
	}
	read := time.Since(ackedAt)
	st := stepOf("acked", ci, time.Since(m.rec.t0))
	st.Stale = !ok
	if final {
		m.rec.steps = append(m.rec.steps, st)
	}
	explained := st.Stale && (leader != st.Leader || m.r.l.strayCount() > 0)
	m.r.l.readBack(m.i, st.Stale, explained)
	if !st.Stale {
		if !final {
			// Every ack was applied already: the read was measurement
			// alone, and does not count against the rate.
			m.rec.measuring += read
		}
		return true, nil
	}
	deadline := ackedAt.Add(m.r.p.visibilityWait())
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		ci, ok, err = m.state(ctx)
		if err != nil {
			return false, err
		}
		if ok {
			lag := time.Since(ackedAt)
			if !final {
				// The probe held its acks back to watch this one land: a
				// pause of its own making, left out of the rate like a
				// read-back that found every ack applied. (Without it the
				// next acks would have been on their way meanwhile.)
				m.rec.measuring += lag
			}
			m.r.l.visibleAfter(m.i, lag)
			if o := m.r.p.cfg.Observer; o != nil {
				o.AckVisibility(m.mode, lag)
			}
			if final && m.r.p.cfg.Count > 1 {
				s := stepOf("settled", ci, time.Since(m.rec.t0))
				s.VisibleAfterUS = float64(lag.Round(100*time.Nanosecond)) / float64(time.Microsecond)
				m.rec.steps = append(m.rec.steps, s)
			}
			return true, nil
		}
	}
	// The ack never showed: lost, or the server is far behind. Later
	// read-backs would only wait on the same missing ack.
	m.r.l.neverVisible(m.i)
	m.stopSample = true
	return false, nil
}

// visibilityWait bounds how long a read-back polls for an ack to show: an
// ack that has not shown well within AckWait is lost.
func (p *Probe) visibilityWait() time.Duration {
	return min(p.cfg.Timeout, max(p.ackWait/2, 100*time.Millisecond))
}

// settle ends the mode once the server has applied every ack: the final
// read-back, and when it does not show every ack, collecting redeliveries
// (a lost ack comes back after AckWait), acked as their mode does, until
// the server holds nothing more than the client knows of, or the wait is
// over: one AckWait and two timeouts, eight AckWaits with fault injection.
// The mode's rate window closes when the server showed the last ack.
func (m *modeRun) settle(ctx context.Context) error {
	p := m.r.p
	m.r.progress("settle", m.mode, m.handled, p.cfg.Count)
	ok, err := m.readBack(ctx, true)
	if err != nil {
		return err
	}
	if ok {
		m.rec.rateWindow = time.Since(m.ackStart) - m.rec.measuring
		return nil
	}
	limit := p.ackWait + 2*p.cfg.Timeout
	if p.cfg.CollectRedeliveries {
		limit = 8*p.ackWait + 2*p.cfg.Timeout
	}
	deadline := time.Now().Add(limit)
	collect := -1 // acks the server had not applied when collecting began
	for {
		ci, ok, err := m.state(ctx)
		if err != nil {
			return err
		}
		if collect < 0 {
			collect = max(1, ci.NumAckPending)
		}
		m.r.progress("collect", m.mode, max(0, collect-ci.NumAckPending), collect)
		if ok || !time.Now().Before(deadline) {
			m.rec.steps = append(m.rec.steps, stepOf("collected", ci, time.Since(m.rec.t0)))
			m.rec.unsettled = max(0, ci.NumAckPending-m.r.l.outstanding())
			m.rec.rateWindow = time.Since(m.ackStart) - m.rec.measuring
			return nil
		}
		// Wait for the next redelivery, then take what else is ready.
		wait := min(p.ackWait+p.cfg.Timeout, time.Until(deadline))
		got := m.fetch.once(ctx, 1, max(wait, 10*time.Millisecond))
		if got.err != nil && !errors.Is(got.err, context.DeadlineExceeded) && !transient(got.err) {
			return got.err
		}
		batch := got.msgs
		if len(batch) > 0 {
			batch = append(batch, m.fetch.noWait(ctx, batchMax)...)
		}
		for _, d := range batch {
			if err := m.handle(ctx, d); err != nil {
				return err
			}
		}
		m.inflight.Wait()
	}
}
