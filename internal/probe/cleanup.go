package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Close removes what Open created (unless Keep says to leave it for the
// next run), and the probe's messages from a stream it did not create. It runs to the
// end even when ctx is cancelled (Ctrl-C), retrying transient failures (a
// 503 during a leader election, a reconnect) for up to the probe's budget
// and giving up at once on a connection that is gone. It returns what it
// could not remove, each with the nats command that removes it.
func (p *Probe) Close(ctx context.Context) []Leftover {
	if p == nil || p.closed {
		return nil
	}
	p.closed = true
	p.conn.rebase()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.budget()+p.cfg.Timeout)
	defer cancel()
	var left []Leftover
	remove := func(l Leftover, op func(context.Context) error) {
		_, err := retryCall(ctx, p, nil, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
		var lost *ConnectionLostError
		var denied *PermissionError
		switch {
		case errors.As(err, &denied):
			l.Error = "permission denied (" + denied.Err.Error() + ")"
			left = append(left, l)
		case errors.As(err, &lost):
			l.Error = "the server could not be reached"
			left = append(left, l)
		case err != nil:
			l.Error = err.Error()
			left = append(left, l)
		}
	}
	if p.created.Stream && !p.cfg.Keep {
		remove(Leftover{What: "stream", Stream: p.stream, Command: fmt.Sprintf("nats stream rm %s -f", p.stream)}, func(ctx context.Context) error {
			err := p.js.DeleteStream(ctx, p.stream)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil // gone already, or a retry after a lost answer
			}
			return err
		})
		return left
	}
	if p.created.Consumer && !p.cfg.Keep {
		remove(Leftover{What: "consumer", Stream: p.stream, Name: p.consumer, Command: fmt.Sprintf("nats consumer rm %s %s -f", p.stream, p.consumer)}, func(ctx context.Context) error {
			err := p.js.DeleteConsumer(ctx, p.stream, p.consumer)
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil
			}
			return err
		})
	}
	// The probe's messages go from a stream that stays (one it did not
	// create, or one kept for the next run); only after a round stored
	// messages: the subject was then checked to hold nothing but the
	// probe's.
	if p.stored && (!p.created.Stream || p.cfg.Keep) {
		remove(Leftover{What: "messages", Stream: p.stream, Subject: p.subject, Command: fmt.Sprintf("nats stream purge %s --subject %s -f", p.stream, p.subject)}, func(ctx context.Context) error {
			err := p.streamHandle.Purge(ctx, jetstream.WithPurgeSubject(p.subject))
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return nil
			}
			return err
		})
	}
	return left
}

// Leftovers names, in one line each, what could not be removed.
func (l Leftover) String() string {
	what := fmt.Sprintf("%s %q", l.What, l.Stream)
	switch l.What {
	case "consumer":
		what = fmt.Sprintf("consumer %q on stream %q", l.Name, l.Stream)
	case "messages":
		what = fmt.Sprintf("probe messages on %q in stream %q", l.Subject, l.Stream)
	}
	return fmt.Sprintf("%s: %s (remove it with: %s)", what, l.Error, l.Command)
}
