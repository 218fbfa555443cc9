// Package probe runs ackprobe's measurements against JetStream: it sets up
// (or safely reuses) a stream and a consumer of its own, publishes probe
// messages, acknowledges them with standard or confirmed acks while reading
// the consumer's state back from the server, and cleans up. It returns plain
// data and never prints.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// prober holds the state of one run.
type prober struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cfg  Config
	res  *Result
	cons jetstream.Consumer
	// ranges[i] are the stream sequences published for cfg.Modes[i].
	ranges []seqRange
	// own records what this run created, for cleanup.
	own ownership
	// carried holds later modes' messages that an earlier mode's fetch
	// received; the mode they belong to starts with them.
	carried []delivery
	// sampler collects the server's ack metrics; nil when unavailable.
	sampler *sampler
	// delivered counts the deliveries the probe received, to tell how
	// many the consumer made that never arrived.
	delivered struct {
		base      uint64 // the consumer's delivered sequence before the first
		baseSet   bool
		count     uint64 // deliveries received
		maxDseq   uint64 // highest consumer sequence received
		recovered uint64 // messages first received through a redelivery
	}
}

// deliveryBase records the consumer's delivered sequence the first time
// it is read, before the probe received anything.
func (p *prober) deliveryBase(ci *jetstream.ConsumerInfo) {
	if !p.delivered.baseSet {
		p.delivered.base, p.delivered.baseSet = ci.Delivered.Consumer, true
	}
}

// lostDeliveries estimates how many deliveries the consumer made that
// never reached the probe and have not come back yet: every delivery has
// its own consumer sequence, so a gap below the highest one received is a
// delivery lost on the way (in a leader change, a reconnect), ack-pending
// on the server until AckWait brings the message back.
func (p *prober) lostDeliveries() int {
	d := &p.delivered
	if d.maxDseq <= d.base {
		return 0
	}
	gaps := int64(d.maxDseq-d.base) - int64(d.count)
	return int(max(0, gaps-int64(d.recovered)))
}

type seqRange struct {
	first, last uint64
	// seen has a bit per sequence in the range, set once the client
	// received the message, and acked one set once the probe's ack went
	// out (standard) or was confirmed; bitmaps keep memory at two bits
	// per message. seen belongs to the fetching goroutine; acked is set
	// from confirming goroutines too, so it is accessed atomically.
	seen, acked []uint64
}

func (r *seqRange) contains(seq uint64) bool { return seq >= r.first && seq <= r.last }

func (r *seqRange) bit(seq uint64) (word int, mask uint64) {
	i := seq - r.first
	return int(i / 64), uint64(1) << (i % 64)
}

// alloc makes the bitmaps once the range is known, before any fetch.
func (r *seqRange) alloc() {
	r.seen = make([]uint64, (r.last-r.first)/64+1)
	r.acked = make([]uint64, len(r.seen))
}

// markSeen records that seq was received and reports whether it had been
// received before.
func (r *seqRange) markSeen(seq uint64) (before bool) {
	if r.seen == nil {
		r.alloc()
	}
	w, b := r.bit(seq)
	before = r.seen[w]&b != 0
	r.seen[w] |= b
	return before
}

// markAcked records that the probe acked seq; the message must have been
// marked seen.
func (r *seqRange) markAcked(seq uint64) {
	w, b := r.bit(seq)
	atomic.OrUint64(&r.acked[w], b)
}

// ackedBefore reports, for a redelivery received just now, whether the
// probe's ack of an earlier delivery of the message had already landed.
func (p *prober) ackedBefore(md *jetstream.MsgMetadata) bool {
	if md.NumDelivered < 2 {
		return false
	}
	if o := p.owner(md.Sequence.Stream); o >= 0 {
		return p.ranges[o].isAcked(md.Sequence.Stream)
	}
	return false
}

// isAcked reports whether the probe had acked seq.
func (r *seqRange) isAcked(seq uint64) bool {
	if r.acked == nil {
		return false
	}
	w, b := r.bit(seq)
	return atomic.LoadUint64(&r.acked[w])&b != 0
}

// Run probes JetStream as cfg says. It returns a Result whenever the probe
// ran, with OK false when a check failed; an error means it could not run,
// and the Result, if not nil, still names what could not be cleaned up.
func Run(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config) (res *Result, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = newID()
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = cfg.Timeout
	}
	cfg.ServerSample = samplePercent(cfg.ServerSample, cfg.Count)
	started := time.Now()
	res = &Result{
		Server:   serverInfo(nc),
		Count:    cfg.Count,
		Storage:  storageName(cfg.Storage),
		Replicas: cfg.Replicas,
		AckWait:  doc.Duration(cfg.AckWait),
		Problems: []string{},
		Started:  started.UTC(),
	}
	p := &prober{nc: nc, js: js, cfg: cfg, res: res}

	defer func() {
		p.cleanup(ctx)
		res.Elapsed = doc.Duration(time.Since(started).Round(time.Microsecond))
	}()
	if err := p.run(ctx); err != nil {
		if ctx.Err() == nil && (!nc.IsConnected() || connectionError(err)) {
			err = &ConnectionLostError{URL: nc.ConnectedUrlRedacted(), Err: err}
		}
		return res, err
	}
	p.check()
	return res, nil
}

// run is the probe proper: stream, messages, consumer, then each mode.
func (p *prober) run(ctx context.Context) error {
	if err := p.setupStream(ctx); err != nil {
		return err
	}
	cons, err := p.resolveConsumer(ctx)
	if err != nil {
		return err
	}
	if cons == nil {
		if err := p.createConsumer(ctx); err != nil {
			return err
		}
	} else {
		p.cons = cons
	}
	// Normally every mode's messages are stored up front (the classic
	// scenario: a stream holding two messages). When redeliveries are
	// collected, a mode's messages are stored only when it starts, so that
	// collecting one mode's redeliveries cannot fetch the next mode's
	// messages.
	p.ranges = make([]seqRange, len(p.cfg.Modes))
	upfront := !p.cfg.CollectRedeliveries
	for i := range p.cfg.Modes {
		if i == 0 || upfront {
			if err := p.publish(ctx, i); err != nil {
				return err
			}
		}
	}
	p.sampler, p.res.ServerSampling = p.startSampler(ctx)
	defer p.sampler.stop()
	for i := range p.cfg.Modes {
		if i > 0 && !upfront {
			if err := p.publish(ctx, i); err != nil {
				return err
			}
		}
		if i == 0 || !upfront {
			want := p.cfg.Count
			if upfront {
				want *= len(p.cfg.Modes)
			}
			p.awaitPending(ctx, uint64(want))
		}
		mr, err := p.runMode(ctx, i)
		p.res.Modes = append(p.res.Modes, mr)
		if err != nil {
			return err
		}
	}
	return nil
}

// connectionError reports errors of the connection itself, which can come
// back before the client has noticed that it is disconnected.
func connectionError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// ConnectionLostError is a probe cut short because the connection to the
// server went away.
type ConnectionLostError struct {
	URL string
	Err error
}

func (e *ConnectionLostError) Error() string {
	return fmt.Sprintf("lost the connection to the server %s during the probe: %v", e.URL, e.Err)
}

func (e *ConnectionLostError) Unwrap() error { return e.Err }

func serverInfo(nc *nats.Conn) doc.ServerInfo {
	return doc.ServerInfo{
		URL:     nc.ConnectedUrlRedacted(),
		Name:    nc.ConnectedServerName(),
		Version: nc.ConnectedServerVersion(),
		Cluster: nc.ConnectedClusterName(),
	}
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.FileStorage {
		return "file"
	}
	return "memory"
}

// call bounds one request to the server by the configured timeout.
func (p *prober) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.Timeout)
}

// publish puts Count messages of mode i on the probe subject and remembers
// which stream sequences belong to the mode.
func (p *prober) publish(ctx context.Context, i int) error {
	const window = 1000
	mode := p.cfg.Modes[i]
	r := &p.ranges[i]
	for sent := 0; sent < p.cfg.Count; {
		n := min(window, p.cfg.Count-sent)
		futures := make([]jetstream.PubAckFuture, 0, n)
		for j := 0; j < n; j++ {
			msg := &nats.Msg{
				Subject: p.res.Subject,
				Header:  nats.Header{headerRun: []string{p.cfg.ID}, headerMode: []string{string(mode)}},
				Data:    fmt.Appendf(nil, "ackprobe %s %s %d", p.cfg.ID, mode, sent+j+1),
			}
			f, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(p.res.Stream))
			if err != nil {
				return fmt.Errorf("publish probe message to %q: %w", p.res.Subject, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if r.first == 0 || ack.Sequence < r.first {
					r.first = ack.Sequence
				}
				r.last = max(r.last, ack.Sequence)
			case err := <-f.Err():
				return fmt.Errorf("publish probe message to %q: %w", p.res.Subject, err)
			case <-time.After(p.cfg.Timeout):
				return fmt.Errorf("publish probe message to %q: no acknowledgement from the stream within %s: %w", p.res.Subject, p.cfg.Timeout, context.DeadlineExceeded)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sent += n
	}
	r.alloc()
	return nil
}

// awaitPending waits, briefly, until the consumer counts the messages just
// stored as pending: the server updates the count apart from storing, and
// the "start" snapshot should show what was published.
func (p *prober) awaitPending(ctx context.Context, want uint64) {
	deadline := time.Now().Add(p.cfg.Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ci, err := p.info(ctx)
		if err != nil || ci.NumPending >= want {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// published reports whether this run stored any message.
func (p *prober) published() bool {
	for _, r := range p.ranges {
		if r.last > 0 {
			return true
		}
	}
	return false
}

// owner returns the index of the mode that published stream sequence seq,
// or -1 for a message of an earlier run.
func (p *prober) owner(seq uint64) int {
	for i := range p.ranges {
		if p.ranges[i].contains(seq) {
			return i
		}
	}
	return -1
}

// snapshot reads the consumer's state from the server.
// A failure that a reconnect or a new leader cures is retried.
func (p *prober) info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	var err error
	for attempt := 0; attempt <= p.cfg.Retries; attempt++ {
		cctx, cancel := p.call(ctx)
		var ci *jetstream.ConsumerInfo
		ci, err = p.cons.Info(cctx)
		cancel()
		if err == nil {
			return ci, nil
		}
		if ctx.Err() != nil || !transient(err) {
			break
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return nil, fmt.Errorf("read consumer %q state: %w", p.res.Consumer, err)
}

// transient reports errors that a reconnect or a leader election cures.
func transient(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, jetstream.ErrConsumerLeadershipChanged)
}

// check turns the measurements into problems (failed checks) and notes.
func (p *prober) check() {
	for _, m := range p.res.Modes {
		switch m.Mode {
		case Confirmed:
			if m.GaveUp {
				p.problem("the confirmed run stopped after %d acks in a row failed after their retries: the server is not answering acks", maxFailedInARow)
			}
			if m.Errors > 0 {
				p.problem("%d confirmed ack(s) failed after %d retries (last error: %s)", m.Errors, p.cfg.Retries, m.LastError)
			}
			if m.Visibility.StaleReads > 0 {
				p.problem("%d confirmed ack(s) were still ack-pending when the consumer was read back right after DoubleAck returned", m.Visibility.StaleReads)
			}
			if m.RedeliveredAfterAck > 0 {
				p.problem("%d message(s) of the confirmed run were redelivered after their confirmed ack", m.RedeliveredAfterAck)
			}
		case Standard:
			v := m.Visibility
			if v.ReadBacks > 0 {
				p.note("standard: %d of %d immediate read-back(s) still showed the acked message ack-pending", v.StaleReads, v.ReadBacks)
			}
			if m.RedeliveredAfterAck > 0 {
				p.note("standard: %d message(s) were redelivered after the probe had acked them (lost or late acks)", m.RedeliveredAfterAck)
			}
		}
		if m.RedeliveredBeforeAck > 0 {
			p.note("%s: %d message(s) were redelivered before their ack landed: held by the probe past the ack wait (%s), or sent again by a new consumer leader", m.Mode, m.RedeliveredBeforeAck, p.cfg.AckWait)
		}
		if n := m.RedeliveredMessages - m.RedeliveredAfterAck - m.RedeliveredBeforeAck; n > 0 {
			p.note("%s: %d message(s) were redelivered that the probe had never received (a delivery lost on the way, e.g. in a leader change or reconnect), not an ack failure", m.Mode, n)
		}
	}
	for _, t := range p.cfg.Thresholds.check(p.res) {
		p.problem("%s", t)
	}
	p.res.OK = len(p.res.Problems) == 0
}

func (p *prober) problem(format string, args ...any) {
	p.res.Problems = append(p.res.Problems, fmt.Sprintf(format, args...))
}

func (p *prober) note(format string, args ...any) {
	p.res.Notes = append(p.res.Notes, fmt.Sprintf(format, args...))
}

// errNoDelivery is returned when the consumer delivers nothing in time.
var errNoDelivery = errors.New("no probe message was delivered")
