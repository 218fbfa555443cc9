// Package canary is ackprobe's continuous ack canary: it sets up a probe
// stream and consumer once, runs a probe round every interval, and keeps
// what the rounds measured as Prometheus metrics (Metrics), a window of
// recent rounds with an overall status (History), and the HTTP endpoints
// that serve them (Handler). A round that fails is counted and reported,
// never fatal: the canary rides out server restarts, leader changes and
// reconnects, and sets its probe up again when it vanished. It never
// prints; the command renders each round it is told of.
package canary

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// Conn is a connection the canary probes through.
type Conn struct {
	NC *nats.Conn
	JS jetstream.JetStream
	// Server describes the server the connection is on now.
	Server func() doc.ServerInfo
	// Close closes the connection (and anything behind it, such as an
	// embedded server).
	Close func()
}

// DialError is a round that could not connect to the server.
type DialError struct{ Err error }

func (e *DialError) Error() string { return e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Config is what a canary needs.
type Config struct {
	// Probe configures the probe; New fills in ID (when empty),
	// InactiveThreshold, MaxAge and Observer.
	Probe probe.Config
	// Interval is how often a round starts (start to start); a round that
	// takes longer is followed at once by the next.
	Interval time.Duration
	// Window is the number of rounds /status keeps and judges (default
	// 10); FailingAfter the rounds in a row that fail or error to make the
	// status failing (default 3).
	Window, FailingAfter int
	// Dial connects to the server. The canary dials again, at each round,
	// until it succeeds; once connected, the connection reconnects by
	// itself.
	Dial func(context.Context) (*Conn, error)
	// Explain turns an error into the one line /status shows; nil means
	// err.Error().
	Explain func(error) string
	// OnRound, when set, is told of each round as it ends, with the overall
	// status after it. It is called from Run's goroutine.
	OnRound func(Outcome, string)
	Build   BuildInfo
}

// Defaults of Config.
const (
	DefaultInterval     = 10 * time.Second
	DefaultWindow       = 10
	DefaultFailingAfter = 3
)

// Canary runs probe rounds until its context ends. Make one with New.
type Canary struct {
	cfg     Config
	metrics *Metrics
	history *History
	bound   time.Duration

	conn *Conn
	// nc is conn's connection, for the connection watch (see
	// watchConnection), which runs beside the rounds.
	nc         atomic.Pointer[nats.Conn]
	p          *probe.Probe
	reconnects uint64
	opened     bool
	vanished   bool
	last       *probe.Result
	pending    []probe.Leftover
	// servers are the probe stream's peer set, when Probe.PerNode: each
	// round is led by the next of them in turn.
	servers []string
}

// New checks cfg and makes a canary: its metrics and history exist (and
// can be served) before the first round.
func New(cfg Config) (*Canary, error) {
	if cfg.Interval <= 0 {
		return nil, &probe.UsageError{Msg: fmt.Sprintf("--interval must be positive, got %s", cfg.Interval)}
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < 1 || cfg.Window > 1000 {
		return nil, &probe.UsageError{Msg: fmt.Sprintf("--window must be between 1 and 1000 rounds, got %d", cfg.Window)}
	}
	if cfg.FailingAfter <= 0 {
		cfg.FailingAfter = DefaultFailingAfter
	}
	if cfg.Dial == nil {
		return nil, errors.New("canary: no Dial")
	}
	if cfg.Explain == nil {
		cfg.Explain = func(err error) string { return err.Error() }
	}
	if cfg.Probe.ID == "" {
		cfg.Probe.ID = NewID()
	}
	if err := cfg.Probe.Validate(); err != nil {
		return nil, err
	}
	c := &Canary{cfg: cfg, bound: RoundBound(cfg.Probe)}
	stalled := 3*cfg.Interval + c.bound
	// The consumer outlives any gap between rounds, also a few rounds that
	// could not reach it, and goes soon after a canary killed with -9.
	c.cfg.Probe.InactiveThreshold = max(stalled, 30*time.Second)
	// A round's messages outlive the round; older rounds' go.
	c.cfg.Probe.MaxAge = max(2*(cfg.Interval+c.bound), time.Minute)
	c.metrics = NewMetrics(cfg.Build, cfg.Probe.Modes, cfg.Interval)
	c.cfg.Probe.Observer = c.metrics
	c.history = NewHistory(cfg.Window, cfg.FailingAfter, stalled, Info{
		ID: cfg.Probe.ID, Version: cfg.Build.Version, Modes: cfg.Probe.Modes, Count: cfg.Probe.Count,
		Interval: doc.Duration(cfg.Interval), IntervalMS: doc.Millis(cfg.Interval), Started: time.Now().UTC(),
		Stream: cfg.Probe.Stream, Consumer: cfg.Probe.Consumer, Subject: cfg.Probe.Subject,
	})
	c.metrics.WatchStatus(c.history)
	return c, nil
}

// ProbeConfig is the probe configuration the canary opens its probe with.
func (c *Canary) ProbeConfig() probe.Config { return c.cfg.Probe }

// Metrics are the canary's metrics.
func (c *Canary) Metrics() *Metrics { return c.metrics }

// History is the canary's window of rounds.
func (c *Canary) History() *History { return c.history }

// RoundBound is the longest a round of cfg may take when the server is
// slow or unreachable: per mode, the retry budget of a call (three
// timeouts, at least 15s), two timeouts, and the wait for lost acks to come
// back (one AckWait, eight with fault injection).
func RoundBound(cfg probe.Config) time.Duration {
	waits := time.Duration(1)
	if cfg.CollectRedeliveries {
		waits = 8
	}
	perMode := max(3*cfg.Timeout, 15*time.Second) + 2*cfg.Timeout + waits*cfg.AckWait
	return time.Duration(max(1, len(cfg.Modes))) * perMode
}

// NewID returns a canary id, CANARY_ and eight random letters and digits:
// distinct for every canary, so two canaries on one account never share a
// stream or consumer, and plain to see in `nats stream ls`.
func NewID() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "CANARY_" + string(b)
}

// Run runs a round at once and then every interval until ctx ends; then it
// removes what the canary created and closes the connection, within
// closeWithin of ctx ending (the rest of that time is the caller's). It
// returns what it could not remove. The only error it returns is a probe
// the server refused before any round ran (a stream or consumer that is
// not ackprobe's, flags that contradict an existing stream): waiting would
// not change it.
func (c *Canary) Run(ctx context.Context, closeWithin time.Duration) ([]probe.Leftover, error) {
	cancelled := make(chan time.Time, 1)
	stop := context.AfterFunc(ctx, func() { cancelled <- time.Now() })
	defer stop()
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go c.watchConnection(wctx)
	for n := 1; ; n++ {
		o, fatal := c.round(ctx, n)
		if ctx.Err() != nil {
			break // an interrupted round is not a round that failed
		}
		if fatal != nil {
			c.closeConn()
			return nil, fatal
		}
		if o.Err != nil {
			o.ErrMessage = oneLine(c.cfg.Explain(o.Err))
		}
		c.metrics.Record(o)
		c.history.Add(o)
		if c.cfg.OnRound != nil {
			st, _ := c.history.Overall(time.Now())
			c.cfg.OnRound(o, st)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	// The loop ends only once ctx has ended, so the time is on its way.
	return c.shutdown((<-cancelled).Add(closeWithin)), nil
}

// watchConnection checks the canary's connection every 250ms until ctx
// ends, beside the rounds: a round waiting for a server that went away
// ends only after its time limits, and /status and ackprobe_up must show
// the outage before that. No connection (not dialled yet, or being
// dialled again) counts as down.
func (c *Canary) watchConnection(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			nc := c.nc.Load()
			c.history.Connection(nc != nil && nc.IsConnected(), now)
		}
	}
}

// round runs round n: connect and set up the probe when needed, then probe.
func (c *Canary) round(ctx context.Context, n int) (o Outcome, fatal error) {
	o = Outcome{Round: n, Started: time.Now()}
	defer func() { o.Ended = time.Now() }()
	if c.conn == nil {
		conn, err := c.cfg.Dial(ctx)
		if err != nil {
			o.Err = &DialError{Err: err}
			return o, nil
		}
		c.conn = conn
		c.nc.Store(conn.NC)
		c.reconnects = conn.NC.Stats().Reconnects
	}
	defer func() {
		if c.conn != nil {
			r := c.conn.NC.Stats().Reconnects
			o.Reconnects = int(r - c.reconnects)
			c.reconnects = r
		}
	}()
	if c.p == nil {
		cfg := c.cfg.Probe
		cfg.Server = c.conn.Server()
		p, err := probe.Open(ctx, c.conn.NC, c.conn.JS, cfg)
		if err != nil {
			c.leftovers(p.Close(ctx))
			o.Err, o.Reached = err, answered(err)
			if !c.opened && ErrorKind(err) == ErrorRefused {
				return o, err
			}
			c.afterError(ctx, err, "", "")
			return o, nil
		}
		c.p, c.opened = p, true
		o.Recreated, c.vanished = c.vanished, false
	}
	var res *probe.Result
	var err error
	if server := c.nextServer(ctx, n); server != "" {
		c.metrics.Leading(server)
		res, err = c.p.RoundOn(ctx, server)
		c.metrics.Leading("")
	} else {
		res, err = c.p.Round(ctx)
	}
	if res != nil {
		res.Server = c.conn.Server()
		c.last = res
	}
	o.Result, o.Err = res, err
	o.Reached = err == nil || answered(err)
	if err != nil && ctx.Err() == nil {
		stream, consumer := "", ""
		if res != nil {
			stream, consumer = res.Stream, res.Consumer
		}
		c.afterError(ctx, err, stream, consumer)
	}
	return o, nil
}

// nextServer is the server to lead round n of a per-node canary (the
// peer set in turn, by name), or "" for a canary that is not per node, or when the
// peer set cannot be read now (the round then runs where the leaders are).
func (c *Canary) nextServer(ctx context.Context, n int) string {
	if !c.cfg.Probe.PerNode {
		return ""
	}
	if len(c.servers) == 0 || n%len(c.servers) == 1 {
		// Read again at the start of each turn: the peer set can change.
		if _, servers, err := c.p.Peers(ctx); err == nil {
			// By name, not leader first: the turn must not depend on
			// who leads when it starts (the last round's server would
			// lead the next one again).
			c.servers = slices.Sorted(slices.Values(servers))
		}
	}
	if len(c.servers) == 0 {
		return ""
	}
	return c.servers[(n-1)%len(c.servers)]
}

// afterError decides, after a round that could not finish, whether the
// connection or the probe must be set up again: a connection closed for
// good is dialled again; a probe stream or consumer that vanished (the
// error says so, or a look-up finds it gone) is removed and set up again
// at the next round. Anything else, the next round retries as is.
func (c *Canary) afterError(ctx context.Context, err error, stream, consumer string) {
	if c.conn.NC.IsClosed() {
		c.closeProbe(ctx)
		c.closeConn()
		return
	}
	if c.p == nil {
		return
	}
	vanished := gone(err)
	if !vanished && stream != "" && consumer != "" && c.conn.NC.IsConnected() {
		lctx, cancel := context.WithTimeout(ctx, c.cfg.Probe.Timeout)
		_, lerr := c.conn.JS.Consumer(lctx, stream, consumer)
		cancel()
		vanished = gone(lerr)
	}
	if vanished {
		c.closeProbe(ctx)
		c.vanished = true
	}
}

// closeProbe removes what the probe created (what is left of it) and
// forgets it.
func (c *Canary) closeProbe(ctx context.Context) {
	if c.p != nil {
		c.leftovers(c.p.Close(ctx))
		c.p = nil
	}
}

func (c *Canary) closeConn() {
	if c.conn != nil {
		c.nc.Store(nil)
		c.conn.Close()
		c.conn = nil
	}
}

// leftovers notes what a probe could not remove while the canary runs
// (the connection broke during the cleanup): /status shows it, and the
// shutdown reports it with its own. The next Open of the same id adopts a
// stream or consumer left so, and the stream is then only purged at the
// end: it stays until someone removes it with the command given.
func (c *Canary) leftovers(left []probe.Leftover) {
	for _, l := range left {
		if !slices.ContainsFunc(c.pending, func(p probe.Leftover) bool {
			return p.What == l.What && p.Stream == l.Stream && p.Name == l.Name && p.Subject == l.Subject
		}) && len(c.pending) < maxPending {
			c.pending = append(c.pending, l)
		}
	}
	c.history.setLeftovers(c.pending)
}

// maxPending bounds the leftovers remembered while running.
const maxPending = 16

// shutdown closes the probe and the connection, giving up at deadline. It
// returns what is left: what the probe could not remove now, and before.
func (c *Canary) shutdown(deadline time.Time) []probe.Leftover {
	defer c.closeConn()
	if c.p == nil {
		return c.pending
	}
	p := c.p
	c.p = nil
	done := make(chan []probe.Leftover, 1)
	go func() { done <- p.Close(context.Background()) }()
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case left := <-done:
		return append(c.pending, left...)
	case <-wait.C:
	}
	return append(c.pending, c.unfinished()...)
}

// unfinished names what a cleanup that ran out of time may have left.
func (c *Canary) unfinished() []probe.Leftover {
	res := c.last
	if res == nil {
		return []probe.Leftover{{What: "stream", Error: "cleanup did not finish in time", Command: "ackprobe inspect"}}
	}
	const msg = "cleanup did not finish in time"
	switch {
	case res.Created.Stream:
		return []probe.Leftover{{What: "stream", Stream: res.Stream, Error: msg, Command: fmt.Sprintf("nats stream rm %s -f", res.Stream)}}
	case res.Created.Consumer:
		return []probe.Leftover{{What: "consumer", Stream: res.Stream, Name: res.Consumer, Error: msg, Command: fmt.Sprintf("nats consumer rm %s %s -f", res.Stream, res.Consumer)}}
	}
	return []probe.Leftover{{What: "messages", Stream: res.Stream, Subject: res.Subject, Error: msg, Command: fmt.Sprintf("nats stream purge %s --subject %s -f", res.Stream, res.Subject)}}
}

// answered reports errors that the server sent: the round reached it.
func answered(err error) bool {
	var (
		api     *jetstream.APIError
		denied  *probe.PermissionError
		refused *probe.RefusedError
		notOurs *probe.NotOwnedError
		use     *probe.UsageError
	)
	return errors.As(err, &api) || gone(err) || errors.As(err, &denied) ||
		errors.As(err, &refused) || errors.As(err, &notOurs) || errors.As(err, &use)
}

// oneLine squeezes a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
