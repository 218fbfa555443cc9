package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ackprobe/ackprobe/internal/doc"
)

// connWatch tells a server that is busy for a moment (a reconnect, a
// leader election) from one that is gone: the connection closed, not
// connected for longer than the budget, or connected to a server that has
// not answered even a PING for that long (frozen). It also notices a
// permission violation the server reported on the connection, which
// otherwise reaches a request only as a timeout.
type connWatch struct {
	nc      *nats.Conn
	url     string // redacted, for errors
	budget  time.Duration
	ping    time.Duration
	lastErr error // the connection's last error when the watch began
	// now and flush are time.Now and a PING round trip (tests replace
	// them).
	now   func() time.Time
	flush func() error

	mu          sync.Mutex
	downSince   time.Time
	silentSince time.Time
}

func (w *connWatch) init(nc *nats.Conn, url string, budget, ping time.Duration) {
	w.nc, w.url, w.budget, w.ping = nc, url, budget, ping
	w.now = time.Now
	w.flush = func() error { return nc.FlushTimeout(ping) }
	if nc != nil {
		w.lastErr = nc.LastError()
	}
}

// lost returns a *ConnectionLostError once the connection is closed, not
// connected or not answering for longer than the budget, and a
// *PermissionError once the server reported a permission violation; nil
// otherwise.
func (w *connWatch) lost() error {
	if w.nc == nil {
		return nil
	}
	w.mu.Lock()
	known := w.lastErr
	w.mu.Unlock()
	if last := w.nc.LastError(); last != nil && last != known && errors.Is(last, nats.ErrPermissionViolation) && !optional(last) {
		return &PermissionError{Err: last}
	}
	if w.nc.IsClosed() {
		return &ConnectionLostError{URL: w.url, Err: nats.ErrConnectionClosed}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if w.nc.IsConnected() {
		w.downSince = time.Time{}
	} else if w.downSince.IsZero() {
		w.downSince = now
	}
	if !w.downSince.IsZero() && now.Sub(w.downSince) > w.budget {
		return &ConnectionLostError{URL: w.url, Err: fmt.Errorf("not connected for %s, and no server took it back (%w)", now.Sub(w.downSince).Round(time.Millisecond), nats.ErrConnectionReconnecting)}
	}
	if !w.silentSince.IsZero() && now.Sub(w.silentSince) > w.budget {
		return &ConnectionLostError{URL: w.url, Err: fmt.Errorf("the server has not answered anything, not even a PING, for %s", now.Sub(w.silentSince).Round(time.Millisecond))}
	}
	return nil
}

// optional reports a refusal of a subject the probe goes on without (see
// OptionalSubjects). nats.go gives the refused subject only in the error's
// text.
func optional(err error) bool {
	for _, s := range OptionalSubjects {
		if strings.Contains(err.Error(), strings.TrimSuffix(s, ">")) {
			return true
		}
	}
	return false
}

// rebase forgets the connection's errors so far: a refusal that ended the
// run must not stop its cleanup, which needs other permissions.
func (w *connWatch) rebase() {
	if w.nc != nil {
		w.mu.Lock()
		w.lastErr = w.nc.LastError()
		w.mu.Unlock()
	}
}

// answered is told that the server answered a request: it is not silent.
func (w *connWatch) answered() {
	w.mu.Lock()
	w.silentSince = time.Time{}
	w.mu.Unlock()
}

// check is told of a request that failed: after a timeout it sends the
// server a PING, and a server that does not answer it either is counted
// as silent until one does.
func (w *connWatch) check(err error) {
	if w.nc == nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) || !w.nc.IsConnected() {
		return
	}
	ferr := w.flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case ferr == nil:
		w.silentSince = time.Time{}
	case w.silentSince.IsZero():
		w.silentSince = w.now().Add(-w.ping)
	}
}

// PermissionError is a request the server refused for lack of permission;
// the server says which subject.
type PermissionError struct{ Err error }

func (e *PermissionError) Error() string { return e.Err.Error() }
func (e *PermissionError) Unwrap() error { return e.Err }

// connectionError reports errors of the connection itself, which can come
// back before the client has noticed that it is disconnected.
func connectionError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// ConnectionLostError is a probe cut short because the connection to the
// server went away and did not come back in time.
type ConnectionLostError struct {
	URL string
	Err error
}

func (e *ConnectionLostError) Error() string {
	at := ""
	if e.URL != "" {
		at = " " + e.URL
	}
	return fmt.Sprintf("lost the connection to the server%s: %v", at, e.Err)
}

func (e *ConnectionLostError) Unwrap() error { return e.Err }

// disturbance counts what one mode rode out. A nil *disturbance counts
// nothing (setup and cleanup calls).
type disturbance struct {
	mu            sync.Mutex
	reconnects0   uint64
	nc            *nats.Conn
	leader        string
	leaderChanges int
	noLeaderSince time.Time
	withoutLeader time.Duration
	retriedCalls  int
}

func newDisturbance(nc *nats.Conn) *disturbance {
	return &disturbance{nc: nc, reconnects0: nc.Stats().Reconnects}
}

// begin counts reconnects from now on: a mode's reconnects are those
// while it ran, not those of the modes before it in the round.
func (d *disturbance) begin() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reconnects0 = d.nc.Stats().Reconnects
}

// retried records a failed attempt that will be retried.
func (d *disturbance) retried(err error) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retriedCalls++
	if noLeader(err) && d.noLeaderSince.IsZero() {
		d.noLeaderSince = time.Now()
	}
}

// answered records that a call got its answer: a window without a leader,
// if one was open, closes.
func (d *disturbance) answered() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.noLeaderSince.IsZero() {
		d.withoutLeader += time.Since(d.noLeaderSince)
		d.noLeaderSince = time.Time{}
	}
}

// sawLeader records the consumer leader a consumer-info answer named and
// reports whether it differs from the one seen before.
func (d *disturbance) sawLeader(name string) (changed bool) {
	if d == nil || name == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed = d.leader != "" && d.leader != name
	if changed {
		d.leaderChanges++
	}
	d.leader = name
	return changed
}

// currentLeader is the consumer leader seen last.
func (d *disturbance) currentLeader() string {
	if d == nil {
		return ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.leader
}

// summary is the Disturbance a mode reports.
func (d *disturbance) summary() Disturbance {
	d.answered()
	d.mu.Lock()
	defer d.mu.Unlock()
	return Disturbance{
		Reconnects:      int(d.nc.Stats().Reconnects - d.reconnects0),
		LeaderChanges:   d.leaderChanges,
		WithoutLeader:   doc.Duration(d.withoutLeader.Round(time.Millisecond)),
		WithoutLeaderMS: doc.Millis(d.withoutLeader),
		RetriedCalls:    d.retriedCalls,
	}
}
