package connect

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// PermissionError is a publish or subscribe the server refused for this
// user. The server reports it asynchronously, on the connection's error
// handler; the call that needed it would otherwise just time out.
type PermissionError struct {
	// Op is "publish" or "subscribe".
	Op string
	// Subject is the subject refused (for a subscription, the filter
	// subscribed to, which may hold wildcards).
	Subject string
	// Queue is the queue group of a refused queue subscription.
	Queue string
	// Err is the error nats.go reported; errors.Is(err,
	// nats.ErrPermissionViolation) holds.
	Err error
}

func (e *PermissionError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("permission denied (%v)", e.Err)
	}
	return fmt.Sprintf("%s permission to %s denied", e.Op, e.Subject)
}

func (e *PermissionError) Unwrap() error { return e.Err }

// ClosedError is a connection that closed for good while calls were made
// on it: the server closed it (for example "maximum control line
// exceeded", an authorization that expired), or ackprobe did.
type ClosedError struct {
	// Err is the connection's last error, if any.
	Err error
}

func (e *ClosedError) Error() string {
	if e.Err == nil {
		return "the connection to the server closed"
	}
	return fmt.Sprintf("the connection to the server closed: %v", e.Err)
}

func (e *ClosedError) Unwrap() error {
	if e.Err == nil {
		return nats.ErrConnectionClosed
	}
	return e.Err
}

// watchState is what Watch and Wrap share, guarded by Conn.mu.
type watchState struct {
	// optional are subject filters whose refusal is not fatal.
	optional []string
	// denied is the first refusal of a subject that is not optional:
	// what Wrap names.
	denied *PermissionError
	// closed is set once the connection closed for good.
	closed  *ClosedError
	cancels map[int]context.CancelCauseFunc
	next    int
}

// Watch returns a context derived from ctx that is cancelled as soon as the
// server refuses this user a publish or a subscription, with the
// *PermissionError as its cause (context.Cause), or as soon as the
// connection closes for good, with a *ClosedError. Every call made under it
// then returns at once instead of waiting for its timeout; pass its error
// through Wrap to name the refusal.
//
// Only refusals that arrive while the watch is active cancel it (a closed
// connection cancels it at once): cleanup after a refused run can take a
// fresh watch of its own, on context.WithoutCancel, and still fail fast if
// a cleanup request is refused in turn.
//
// A refusal of a subject that one of optional matches (a subject filter:
// "$JS.EVENT.METRIC.>") cancels nothing: the caller does without it. The
// optional filters hold for the connection from then on, for Wrap too.
// stop releases the watch; call it when the calls are done.
//
// A command uses it like this:
//
//	ctx, stop := conn.Watch(ctx, "$JS.EVENT.METRIC.>")
//	defer stop()
//	res, err := probe.Run(ctx, conn.NC, conn.JS, cfg)
//	if err != nil {
//		return conn.Wrap(err)
//	}
func (c *Conn) Watch(ctx context.Context, optional ...string) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	c.watch.optional = append(c.watch.optional, optional...)
	closed := c.watch.closed
	if c.watch.cancels == nil {
		c.watch.cancels = map[int]context.CancelCauseFunc{}
	}
	id := c.watch.next
	c.watch.next++
	c.watch.cancels[id] = cancel
	c.mu.Unlock()
	if closed != nil {
		cancel(closed)
	}
	return wctx, func() {
		c.mu.Lock()
		delete(c.watch.cancels, id)
		c.mu.Unlock()
		cancel(context.Canceled)
	}
}

// asyncError is called with every error the server reports on the
// connection's error handler.
func (c *Conn) asyncError(err error) {
	pe := parsePermission(err)
	if pe == nil {
		return
	}
	c.mu.Lock()
	if c.optionalLocked(pe.Subject) {
		c.mu.Unlock()
		return
	}
	if c.watch.denied == nil {
		c.watch.denied = pe
	}
	cancels := c.cancelsLocked()
	c.mu.Unlock()
	for _, cancel := range cancels {
		cancel(pe)
	}
}

// closed is called when the connection closed for good.
func (c *Conn) closed(last error) {
	c.mu.Lock()
	c.watch.closed = &ClosedError{Err: last}
	cause := c.watch.closed
	cancels := c.cancelsLocked()
	c.mu.Unlock()
	for _, cancel := range cancels {
		cancel(cause)
	}
}

func (c *Conn) cancelsLocked() []context.CancelCauseFunc {
	out := make([]context.CancelCauseFunc, 0, len(c.watch.cancels))
	for _, cancel := range c.watch.cancels {
		out = append(out, cancel)
	}
	return out
}

// optionalLocked reports whether a refusal of subject is not fatal.
func (c *Conn) optionalLocked(subject string) bool {
	for _, f := range c.watch.optional {
		if server.SubjectMatchesFilter(subject, f) {
			return true
		}
	}
	return false
}

// Denied returns the first refusal of a subject that is not optional, or
// nil.
func (c *Conn) Denied() *PermissionError {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.watch.denied; d != nil && !c.optionalLocked(d.Subject) {
		return d
	}
	return nil
}

// The server's texts (nats-server client.go, pubPermissionViolation,
// subPermissionViolation, replySubjectViolation), behind nats.go's
// "nats: permissions violation: " prefix.
const (
	deniedPublish   = "Permissions Violation for Publish to "
	deniedSubscribe = "Permissions Violation for Subscription to "
	deniedReply     = "Permissions Violation for Publish with Reply of "
)

// parsePermission reads the refused operation and subject out of a
// permissions violation. nats.go hands the error handler no subscription
// and no subject for these (processTransientError passes a nil
// *Subscription and only the server's text), so the subject can only be
// parsed from the text, which the server composes with %q; nats.go itself
// parses it the same way to find the subscription. Any other error, or a
// text that does not parse, gives nil.
func parsePermission(err error) *PermissionError {
	return ParsePermission(err)
}

// ParsePermission reads a permissions violation nats.go reported into a
// *PermissionError (see parsePermission); nil for any other error.
func ParsePermission(err error) *PermissionError {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return nil
	}
	text := err.Error()
	for _, k := range []struct{ marker, op string }{
		{deniedReply, "publish with reply"},
		{deniedPublish, "publish"},
		{deniedSubscribe, "subscribe"},
	} {
		i := strings.Index(text, k.marker)
		if i < 0 {
			continue
		}
		subject, rest, ok := unquote(text[i+len(k.marker):])
		if !ok {
			break
		}
		pe := &PermissionError{Op: k.op, Subject: subject, Err: err}
		if q, ok := strings.CutPrefix(rest, " using queue "); ok {
			pe.Queue, _, _ = unquote(q)
		}
		return pe
	}
	return &PermissionError{Err: err}
}

// unquote reads a Go-quoted string at the start of s and returns it with
// what follows.
func unquote(s string) (string, string, bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", false
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err == nil
}
