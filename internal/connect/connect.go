// Package connect turns ackprobe's connection flags into a NATS connection
// and a JetStream handle, or starts an embedded server when none is given.
package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/embedded"
	"github.com/ackprobe/ackprobe/internal/faults"
)

// Options are the connection flags, named as the nats CLI names them.
type Options struct {
	Servers  string // -s/--server, a comma separated list of URLs
	Embedded bool   // --embedded: ignore Servers and start an embedded server
	Creds    string
	NKey     string
	User     string
	Password string
	Token    string
	TLSCert  string
	TLSKey   string
	TLSCA    string
	TLSFirst bool
	JSDomain string
	// APIPrefix is the JetStream API subject prefix (--js-api-prefix, a
	// context's jetstream_api_prefix), for JetStream imported from
	// another account; JSDomain wins when both are set.
	APIPrefix string
	// InboxPrefix replaces _INBOX in every reply subject ackprobe uses
	// (--inbox-prefix, a context's inbox_prefix).
	InboxPrefix string
	Timeout     time.Duration
	Name        string // connection name shown by the server
	// Notice receives the one-line notice about an embedded server; nil
	// discards it.
	Notice io.Writer
	// Faults, when set, puts an ack-dropping proxy between ackprobe and the
	// (first) server.
	Faults *faults.Config
	// Context names a nats CLI context (--context, NATS_CONTEXT); see
	// ApplyContext. ContextName is the one applied, if any. NoContext
	// (--no-context) ignores the selected context.
	Context     string
	ContextName string
	NoContext   bool
	contextOpts []nats.Option
	contextTLS  bool
	// contextSecrets are the context's passwords and tokens, for Scrub.
	contextSecrets []string
}

// Conn is an open connection with its JetStream handle and, when ackprobe
// started one, the embedded server behind it.
type Conn struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Embedded *embedded.Server
	URL      string
	// Proxy is the fault proxy in the path, when Options.Faults was set.
	Proxy *faults.Proxy
	// domain and context are reported by ServerInfo.
	domain, context string

	mu      sync.Mutex
	lastErr error
	// watch is the state behind Watch: see watch.go.
	watch watchState
}

// AsyncError returns the last error the server sent asynchronously, such as
// a permissions violation, which otherwise reaches the caller only as a
// timeout. Once it returns an error, Watch and Wrap have taken it into
// account.
func (c *Conn) AsyncError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// ServerInfo describes the server this connection reached, for the header
// of every report: the URL with any user information redacted, the name,
// version and cluster from the server's INFO, and whether it is ackprobe's
// embedded server. Behind the fault proxy the URL is the real server's.
func (c *Conn) ServerInfo() doc.ServerInfo {
	url := c.URL
	if c.NC != nil && c.Proxy == nil {
		url = c.NC.ConnectedUrl()
	}
	si := doc.ServerInfo{
		URL:      redact(url),
		Embedded: c.Embedded != nil,
		Domain:   c.domain,
		Context:  c.context,
	}
	if c.NC != nil {
		si.Name = c.NC.ConnectedServerName()
		si.Version = c.NC.ConnectedServerVersion()
		si.Cluster = c.NC.ConnectedClusterName()
	}
	return si
}

// Close drains nothing: it closes the connection and stops the embedded server.
func (c *Conn) Close() error {
	if c == nil {
		return nil
	}
	if c.NC != nil {
		c.NC.Close()
	}
	if c.Proxy != nil {
		_ = c.Proxy.Close()
	}
	return c.Embedded.Close()
}

// UsesEmbedded reports whether these options mean an embedded server.
func (o Options) UsesEmbedded() bool {
	return o.Embedded || strings.TrimSpace(o.Servers) == ""
}

// Connect connects as the options say. The context bounds the whole dial.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	c := &Conn{domain: o.JSDomain, context: o.ContextName}
	url, user, err := splitUserInfo(o.Servers)
	if err != nil {
		return nil, err
	}
	if o.UsesEmbedded() {
		srv, err := embedded.Start(embedded.Options{})
		if err != nil {
			return nil, err
		}
		c.Embedded = srv
		url = srv.URL()
		if o.Notice != nil {
			why := "no server given"
			if o.Embedded {
				why = "--embedded"
			}
			fmt.Fprintf(o.Notice, "%s: started an embedded nats-server %s with JetStream on %s (use -s URL to probe a real server)\n",
				why, embedded.Version(), url)
		}
	}
	c.URL = url
	if o.ContextName != "" && o.Notice != nil && !o.UsesEmbedded() {
		fmt.Fprintf(o.Notice, "using nats context %q: %s\n", o.ContextName, redact(url))
	}

	opts, err := o.natsOptions(c, user)
	if err != nil {
		c.Close()
		return nil, err
	}
	if o.Faults != nil {
		proxied, extra, err := throughProxy(c, o, url)
		if err != nil {
			c.Close()
			return nil, err
		}
		url = proxied
		opts = append(opts, extra...)
	}
	type dialed struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- dialed{nc, err}
	}()
	select {
	case d := <-done:
		if d.err != nil {
			c.Close()
			return nil, o.dialError(ctx, url, d.err)
		}
		c.NC = d.nc
		if o.Faults != nil && c.NC.TLSRequired() {
			// nats.go upgraded to TLS because the server requires it:
			// the proxy would pass ciphertext and inject nothing.
			c.Close()
			return nil, ErrFaultsNeedPlain
		}
	case <-ctx.Done():
		go func() {
			if d := <-done; d.nc != nil {
				d.nc.Close()
			}
		}()
		c.Close()
		return nil, &DialError{URL: redact(url), Err: ctx.Err()}
	}

	// The JetStream handle takes its reply subjects from the connection's
	// inbox prefix (jetstream.setReplyPrefix reads nc.Opts.InboxPrefix):
	// API requests, async publish acks, DoubleAck and fetch inboxes all
	// go under --inbox-prefix with no option of their own.
	jsOpts := []jetstream.JetStreamOpt{jetstream.WithDefaultTimeout(o.Timeout)}
	switch {
	case o.JSDomain != "":
		c.JS, err = jetstream.NewWithDomain(c.NC, o.JSDomain, jsOpts...)
	case o.APIPrefix != "":
		c.JS, err = jetstream.NewWithAPIPrefix(c.NC, o.APIPrefix, jsOpts...)
	default:
		c.JS, err = jetstream.New(c.NC, jsOpts...)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return c, nil
}

func (o Options) natsOptions(c *Conn, user *url.Userinfo) ([]nats.Option, error) {
	name := o.Name
	if name == "" {
		name = "ackprobe"
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(o.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.asyncError(err)
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
		}),
		nats.ClosedHandler(func(nc *nats.Conn) { c.closed(nc.LastError()) }),
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.UsesEmbedded() {
		// The embedded server has no TLS and no users: credentials from
		// the environment (NATS_CA, NATS_CREDS, …) or a context are for
		// real servers.
		return opts, nil
	}
	// The context's options come first, so that flags given explicitly,
	// applied after them, win.
	opts = append(append([]nats.Option{}, o.contextOpts...), opts...)
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if looksLikeSeed(o.NKey) {
		// The seed itself in place of its file: never repeat it.
		return nil, &FileError{What: "nkey", Path: "(a seed, not a file's path)", Err: errors.New("pass the path of a file holding the seed")}
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, &FileError{What: "nkey", Path: o.NKey, Err: err}
		}
		opts = append(opts, opt)
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return nil, errors.New("--tlscert and --tlskey go together")
		}
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	if user != nil {
		// Credentials in the URL win over flags and the context, as
		// they would if nats.go read them from the URL.
		if pass, ok := user.Password(); ok {
			opts = append(opts, nats.UserInfo(user.Username(), pass), nats.Token(""))
		} else {
			opts = append(opts, nats.Token(user.Username()), nats.UserInfo("", ""))
		}
	}
	return opts, nil
}

// UsesTLS reports whether the options ask for TLS to the server, in which
// case a proxy in between cannot see the protocol.
func (o Options) UsesTLS() bool {
	if o.UsesEmbedded() {
		return false
	}
	if o.TLSCert != "" || o.TLSCA != "" || o.TLSFirst || o.contextTLS {
		return true
	}
	for _, u := range strings.Split(o.Servers, ",") {
		if strings.HasPrefix(strings.TrimSpace(strings.ToLower(u)), "tls://") {
			return true
		}
	}
	return false
}

// DialError is a failure to connect to the server.
type DialError struct {
	URL string
	Err error
	// TLSFirst is set when the server sent nothing after the TCP
	// connect and answered a TLS handshake instead: it expects
	// --tlsfirst.
	TLSFirst bool
}

func (e *DialError) Error() string { return fmt.Sprintf("connect to %s: %v", e.URL, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// FileError is a credentials, key or certificate file that cannot be used.
type FileError struct {
	What, Path string
	Err        error
}

func (e *FileError) Error() string { return fmt.Sprintf("%s file %s: %v", e.What, e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }
