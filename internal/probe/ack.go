package probe

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackStandard acks d with Msg.Ack: a publish that returns once the ack is
// buffered. A lost standard ack produces no error anywhere; the ledger
// learns of it when the message comes back.
func (r *roundRun) ackStandard(d *delivery, current Mode) {
	t := time.Now()
	r.l.ackSent(d, t)
	r.sampler.held(d.seq, t.Sub(d.at))
	err := d.msg.Ack()
	done := time.Now()
	r.l.ackDone(d, ackOutcome{kind: Standard, sent: t, done: done, attempts: 1, err: err})
	if o := r.p.cfg.Observer; o != nil && d.owner >= 0 {
		o.AckDuration(Standard, done.Sub(t))
	}
}

// confirm acks d with Msg.DoubleAck, which the server answers once it has
// applied the ack. An attempt that fails for a moment (no reply within the
// ack timeout, nobody answering while the consumer has no leader, a
// reconnect) is sent again: a DoubleAck that failed leaves the message
// unacked on the client, and the server answers a repeated ack too. It
// retries with the probe's backoff for as long as the ack can still land
// within the delivery's AckWait, and for at least one request timeout (a
// confirmation that comes late is still one: the ledger calls it late),
// at most Config.Retries times when that is not negative. The error it returns
// ends the round: only a connection that is gone.
func (r *roundRun) confirm(ctx context.Context, d *delivery) (ackOutcome, error) {
	p := r.p
	o := ackOutcome{kind: Confirmed, sent: time.Now()}
	r.l.ackSent(d, o.sent)
	r.sampler.held(d.seq, o.sent.Sub(d.at))
	attemptTimeout := p.cfg.ackTimeout(p.ackWait)
	budget := max(time.Until(d.at.Add(p.ackWait)), p.cfg.Timeout)
	var b *backoff.ExponentialBackOff // made on the first failure only
	deadline := o.sent.Add(budget)
	var fatal error
	for {
		o.attempts++
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := d.msg.DoubleAck(actx)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			o.err = nil
			break
		}
		o.err = err
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			o.timeouts++
		}
		p.conn.check(err)
		if lost := p.conn.lost(); lost != nil {
			fatal = lost
			break
		}
		if ctx.Err() != nil || !retryableAck(err) || p.cfg.Retries >= 0 && o.attempts > p.cfg.Retries {
			break
		}
		if b == nil {
			b = newBackOff()
		}
		wait := b.NextBackOff()
		if time.Now().Add(wait).After(deadline) {
			break
		}
		r.modes[d.owner].dist.retried(err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	o.done = time.Now()
	if fatal == nil && ctx.Err() != nil {
		fatal = ctx.Err()
	}
	r.l.ackDone(d, o)
	if o.err == nil {
		r.modes[d.owner].dist.answered()
		if obs := p.cfg.Observer; obs != nil {
			obs.AckDuration(Confirmed, o.done.Sub(o.sent))
		}
	}
	return o, fatal
}

// retryableAck reports DoubleAck errors worth another attempt: everything
// but a message that cannot be acked at all, or a connection closed for
// good.
func retryableAck(err error) bool {
	switch {
	case errors.Is(err, jetstream.ErrMsgNotBound), errors.Is(err, jetstream.ErrMsgNoReply),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, context.Canceled):
		return false
	}
	return true
}
