package probe

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// newBackOff is the probe's one backoff policy, for every call it retries
// (retry) and for confirmed acks (which stop at the message's AckWait
// rather than at a budget): exponential from 20ms, at most 1s between
// attempts, with 20% jitter.
func newBackOff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 20 * time.Millisecond
	b.MaxInterval = time.Second
	b.RandomizationFactor = 0.2
	return b
}

// retry runs op until it succeeds, fails with an error that is not
// transient, or the budget is spent: the one way the probe retries a call
// that can fail for a moment (a reconnect, a leader election, a JetStream
// API answering 503). The backoff is exponential from 20ms, at most 1s
// between attempts, with jitter (cenkalti/backoff). Each attempt gets its own
// context bounded by attempt (zero: ctx alone). It returns the last error,
// or ctx's cause when ctx ends first. every, when not nil, is told about each
// failed attempt that will be retried.
func retry[T any](ctx context.Context, budget, attempt time.Duration, op func(context.Context) (T, error), every func(error)) (T, error) {
	b := newBackOff()
	var last error
	res, err := backoff.Retry(ctx, func() (T, error) {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if attempt > 0 {
			actx, cancel = context.WithTimeout(ctx, attempt)
		}
		defer cancel()
		v, err := op(actx)
		if err == nil {
			return v, nil
		}
		last = err
		if !transient(err) || ctx.Err() != nil {
			return v, backoff.Permanent(err)
		}
		if every != nil {
			every(err)
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(budget))
	if err != nil && last != nil && ctx.Err() != nil {
		// backoff reports the context's cause; the call's own error says
		// more about what was going on.
		err = errors.Join(ctx.Err(), last)
	}
	return res, err
}

// transient reports errors that a reconnect, a leader election or a busy
// server cures by itself: timeouts, a connection being re-established, a
// consumer whose leader moved, a stream without a leader for a moment, and
// the JetStream API's "temporarily unavailable" answers. Nobody answering a
// JetStream API request is not one: every JetStream server answers the
// API, so it means JetStream is off (or the domain is wrong). Nobody
// answering a pull request or an ack is (see leaderless).
func transient(err error) bool {
	var lost *ConnectionLostError
	var denied *PermissionError
	var again *retryable
	switch {
	case errors.As(err, &lost), errors.As(err, &denied):
		return false
	case errors.As(err, &again):
		return true
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, jetstream.ErrTooManyStalledMsgs),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, jetstream.ErrConsumerLeadershipChanged),
		errors.Is(err, jetstream.ErrServerShutdown),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return true
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case 10008, // JSClusterNotAvailErr: JetStream system temporarily unavailable
			10004, // JSClusterIncompleteErr: incomplete results
			10009, // JSClusterNotLeaderErr: cluster can not handle request
			10077: // JSStreamStoreFailedF: the store refused for a moment
			return true
		}
		return api.Code == 503 || api.Code == 408
	}
	return false
}

// leaderless reports, for a pull request or an ack, the errors of a
// consumer without a leader right now, worth retrying: the consumer
// leader is the only subscriber of both.
func leaderless(err error) bool {
	return transient(err) || errors.Is(err, nats.ErrNoResponders)
}

// noLeader reports errors that mean nobody is leading the asset right now:
// the time they cover is reported as time without a leader.
func noLeader(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode == 10008 || api.ErrorCode == 10009
	}
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// retryable marks an error its caller knows to be transient there.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }
