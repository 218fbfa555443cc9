package connect

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/nats-io/nats.go"
)

// StateError is an error of a call on the connection together with what
// the connection knew when it was returned: the call alone often says no
// more than "timeout" or "context canceled".
type StateError struct {
	Err error
	// URL is the server's URL, user information redacted.
	URL string
	// Status is the connection's state: nats.CONNECTED, RECONNECTING
	// (the server went away and the client is trying to get back),
	// CLOSED.
	Status nats.Status
	// Cluster is the cluster name the server reported; empty for a
	// server that is not clustered.
	Cluster string
	// Denied is the first publish or subscription the server refused
	// for a subject that is not optional (see Watch), if any.
	Denied *PermissionError
	// Closed is set when the connection closed for good, with its last
	// error.
	Closed *ClosedError
}

func (e *StateError) Error() string { return e.Err.Error() }

// Unwrap gives the call's error and, when there is one, the refusal and
// the closed connection, so that errors.As finds them.
func (e *StateError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Denied != nil {
		errs = append(errs, e.Denied)
	}
	if e.Closed != nil {
		errs = append(errs, e.Closed)
	}
	return errs
}

// Lost reports whether the connection was not up when the call failed:
// reconnecting after the server went away, or closed.
func (e *StateError) Lost() bool {
	return e.Status == nats.RECONNECTING || e.Status == nats.CLOSED || e.Closed != nil
}

// Clustered reports whether the server is part of a cluster.
func (e *StateError) Clustered() bool { return e.Cluster != "" }

// Wrap adds to err, returned by a call on this connection, what the
// connection knows that the call could not say (see StateError). It
// returns nil for nil; calling it twice does no harm.
func (c *Conn) Wrap(err error) error {
	if err == nil || c == nil || c.NC == nil {
		return err
	}
	var se *StateError
	if errors.As(err, &se) {
		return err
	}
	c.mu.Lock()
	denied, closed := c.watch.denied, c.watch.closed
	if denied != nil && c.optionalLocked(denied.Subject) {
		denied = nil
	}
	c.mu.Unlock()
	url := c.URL
	if c.Proxy == nil {
		if u := c.NC.ConnectedUrl(); u != "" {
			url = u
		}
	}
	return &StateError{
		Err:     err,
		URL:     redact(url),
		Status:  c.NC.Status(),
		Cluster: c.NC.ConnectedClusterName(),
		Denied:  denied,
		Closed:  closed,
	}
}

// dialError describes a failed dial; when the server accepted the TCP
// connection but sent nothing, it checks whether the server expects the
// TLS handshake first.
func (o Options) dialError(ctx context.Context, url string, err error) error {
	de := &DialError{URL: redact(url), Err: err}
	var op *net.OpError
	if !o.TLSFirst && errors.As(err, &op) && op.Op == "read" && op.Timeout() && op.Addr != nil {
		de.TLSFirst = speaksTLSFirst(ctx, op.Addr.String(), o.Timeout)
	}
	return de
}

// speaksTLSFirst reports whether the server at addr answers a TLS
// ClientHello. A NATS server sends its INFO line as soon as a client
// connects, unless it is configured with handshake_first, in which case it
// sends nothing and waits for the client's TLS handshake: nats.go then
// times out reading the INFO. The handshake here only detects that: no
// certificate is verified (InsecureSkipVerify) because nothing is sent
// over it, and the connection is closed at once.
func speaksTLSFirst(ctx context.Context, addr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, min(timeout, 2*time.Second))
	defer cancel()
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		return true
	}
	// The server answered the handshake with an alert (no certificate
	// of its own, a version it does not take): it speaks TLS first too.
	// crypto/tls reports a received alert as a *net.OpError whose Op is
	// "remote error".
	var op *net.OpError
	var alert tls.AlertError
	return errors.As(err, &op) && op.Op == "remote error" || errors.As(err, &alert)
}
