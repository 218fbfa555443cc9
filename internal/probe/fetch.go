package probe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fetcher keeps at most one pull request in flight, so the next batch is
// on its way while the current one is acked. Each delivery is entered in
// the ledger as it arrives, with the time the pull request carrying it was
// sent.
type fetcher struct {
	r    *roundRun
	dist *disturbance

	pending chan fetched
	ready   *fetched
}

type fetched struct {
	msgs []*delivery
	err  error
}

// start sends a pull request for n messages in the background; next
// returns its answer.
func (f *fetcher) start(ctx context.Context, n int) {
	ch := make(chan fetched, 1)
	f.pending = ch
	go func() { ch <- f.pull(ctx, n) }()
}

// pull asks for n messages, waiting up to the request timeout, and asks
// again when the request failed for a moment (no consumer leader during an
// election, a reconnect, a leadership change): such errors come back at
// once. An expired request that brought nothing is an answer, not an
// error.
func (f *fetcher) pull(ctx context.Context, n int) fetched {
	p := f.r.p
	got, err := retry(ctx, p.budget(), 0, func(ctx context.Context) (fetched, error) {
		if err := p.conn.lost(); err != nil {
			return fetched{}, err
		}
		out := f.once(ctx, n, p.cfg.Timeout)
		if len(out.msgs) > 0 || out.err == nil {
			p.conn.answered() // messages, or the server's own expiry of the request
			return out, nil
		}
		if errors.Is(out.err, context.DeadlineExceeded) && ctx.Err() == nil {
			// No answer at all: the caller decides what that means.
			p.conn.check(out.err)
			return out, nil
		}
		if leaderless(out.err) && !transient(out.err) {
			// No consumer leader to take the pull request, or no
			// consumer at all (deleted while the round ran).
			if f.consumerGone(ctx) {
				out.err = fmt.Errorf("consumer %q: %w", p.consumer, jetstream.ErrConsumerNotFound)
				return out, out.err
			}
			out.err = &retryable{out.err}
		}
		return out, out.err
	}, f.dist.retried)
	if err != nil {
		return fetched{msgs: got.msgs, err: err}
	}
	f.dist.answered()
	return got
}

// consumerGone reports, after a pull request nobody answered, whether the
// probe consumer is gone rather than leaderless.
func (f *fetcher) consumerGone(ctx context.Context) bool {
	cctx, cancel := f.r.p.call(ctx)
	defer cancel()
	_, err := f.r.p.js.Consumer(cctx, f.r.p.stream, f.r.p.consumer)
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// once sends one pull request for n messages that expires after wait.
func (f *fetcher) once(ctx context.Context, n int, wait time.Duration) fetched {
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	pulledAt := time.Now()
	batch, err := f.r.p.cons.Fetch(n, jetstream.FetchContext(fctx))
	if err != nil {
		return fetched{err: err}
	}
	var out fetched
	for msg := range batch.Messages() {
		out.msgs = append(out.msgs, f.r.arrived(msg, pulledAt))
	}
	if err := batch.Error(); err != nil && len(out.msgs) == 0 {
		out.err = err
	}
	return out
}

// noWait takes up to n messages the server has ready now.
func (f *fetcher) noWait(ctx context.Context, n int) []*delivery {
	pulledAt := time.Now()
	batch, err := f.r.p.cons.FetchNoWait(n)
	if err != nil {
		return nil
	}
	var out []*delivery
	for msg := range batch.Messages() {
		out = append(out, f.r.arrived(msg, pulledAt))
	}
	return out
}

// arrived makes a delivery of a message just received and enters it in
// the ledger.
func (r *roundRun) arrived(msg jetstream.Msg, pulledAt time.Time) *delivery {
	d := &delivery{msg: msg, at: time.Now(), pulledAt: pulledAt, owner: -1}
	md, err := msg.Metadata()
	if err != nil {
		d.err = fmt.Errorf("read the metadata of a delivery: %w", err)
		return d
	}
	d.seq, d.dseq, d.nd = md.Sequence.Stream, md.Sequence.Consumer, md.NumDelivered
	r.l.delivered(d)
	return d
}

// settle waits for the request in flight; what it brought stays queued
// for next.
func (f *fetcher) settle(ctx context.Context) {
	if f.pending == nil {
		return
	}
	select {
	case r := <-f.pending:
		if f.ready != nil {
			r.msgs = append(f.ready.msgs, r.msgs...)
		}
		f.ready = &r
		f.pending = nil
	case <-ctx.Done():
	}
}

// next returns the next batch, waiting for the request in flight.
func (f *fetcher) next(ctx context.Context) ([]*delivery, error) {
	f.settle(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := f.ready
	f.ready = nil
	switch {
	case r == nil:
		return nil, errNoDelivery
	case len(r.msgs) > 0:
		return r.msgs, nil
	case r.err == nil || errors.Is(r.err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w within %s: %w", errNoDelivery, f.r.p.cfg.Timeout, context.DeadlineExceeded)
	}
	return nil, r.err
}
