package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/limits"
	"github.com/ackprobe/ackprobe/internal/marks"
)

// Message headers of probe messages.
const (
	headerRun  = "Ackprobe-Run"
	headerMode = "Ackprobe-Mode"
)

// Probe is a stream and a consumer set up (or safely reused) for probing:
// Open makes it, Round probes on it as often as asked, Close removes what
// Open created. compare and ack are one Open, one Round and one Close; the
// canary runs many Rounds on one Probe. A Probe runs one Round at a time.
type Probe struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg Config

	stream, subject, consumer string
	streamHandle              jetstream.Stream
	cons                      jetstream.Consumer
	// storage, replicas and ackWait are the stream's and consumer's own,
	// as the server reported them.
	storage       string
	replicas      int
	ackWait       time.Duration
	sample        string
	maxAckPending int
	// fit is how the probe fits the account's limits.
	fit *limits.Fit
	// noSystemData is set when a per-node probe could not read the
	// system account's server list.
	noSystemData bool
	// systemServers is set when it could.
	systemServers bool
	// accountName is the connection's account as the server's user info
	// service named it ("" when it did not answer); nil until asked.
	accountName *string

	created    Ownership
	userStream bool
	// stored is set once a round stored messages: only then is the probe
	// subject of a user's stream purged at Close.
	stored bool
	rounds int
	conn   connWatch
	closed bool
}

// Open sets up the probe's stream and consumer as cfg says, or reuses
// them where that is safe (see the README's Safety). It refuses anything
// that could touch what is not ackprobe's, before publishing. On error the
// returned Probe, if not nil, holds what Open created: Close it.
//
// Errors: *UsageError (the configuration cannot run), *RefusedError and
// *NotOwnedError (it would touch what is not ackprobe's), and JetStream
// or connection errors.
func Open(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config) (*Probe, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = newID()
	}
	if cfg.PerNode && cfg.Replicas == 0 {
		cfg.Replicas = 3
	}
	p := &Probe{nc: nc, js: js, cfg: cfg}
	url := cfg.Server.URL
	if url == "" && nc != nil {
		url = nc.ConnectedUrlRedacted()
	}
	p.conn.init(nc, url, 2*cfg.Timeout, min(cfg.Timeout, time.Second))
	// Look everything up first, and fit the account's limits, so that a
	// refusal leaves nothing behind.
	if err := p.lookUpStream(ctx); err != nil {
		return p, err
	}
	if err := p.lookUpConsumer(ctx); err != nil {
		return p, err
	}
	if cfg.PerNode {
		if err := p.checkPerNode(); err != nil {
			return p, err
		}
	}
	if err := p.fitLimits(ctx); err != nil {
		return p, err
	}
	if err := p.preflight(ctx); err != nil {
		return p, err
	}
	if p.streamHandle == nil {
		if err := p.createStream(ctx); err != nil {
			return p, err
		}
	} else if err := p.growStream(ctx); err != nil {
		return p, err
	}
	if p.cons == nil {
		if err := p.createConsumer(ctx); err != nil {
			return p, err
		}
	}
	return p, nil
}

// call bounds one request to the server by the configured timeout.
func (p *Probe) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.cfg.Timeout)
}

// budget is how long a call that fails for a moment is retried: long
// enough to wait out a leader election (nats-server's raft takes 4-9s to
// notice a dead leader), and at least three request timeouts.
func (p *Probe) budget() time.Duration { return max(3*p.cfg.Timeout, 15*time.Second) }

// retry is the probe's retry policy (see retry) with the probe's budget,
// each attempt bounded by the request timeout; it stops early with a
// *ConnectionLostError when the connection stays down.
func retryCall[T any](ctx context.Context, p *Probe, d *disturbance, op func(context.Context) (T, error)) (T, error) {
	return retry(ctx, p.budget(), p.cfg.Timeout, func(ctx context.Context) (T, error) {
		if err := p.conn.lost(); err != nil {
			var zero T
			return zero, err
		}
		v, err := op(ctx)
		if err == nil {
			d.answered()
			p.conn.answered()
			return v, nil
		}
		p.conn.check(err)
		if lost := p.conn.lost(); lost != nil {
			return v, lost
		}
		return v, err
	}, d.retried)
}

func (p *Probe) marks() map[string]string {
	m := map[string]string{
		marks.Owner:   marks.OwnerValue,
		marks.Run:     p.cfg.ID,
		marks.Created: time.Now().UTC().Format(time.RFC3339),
	}
	if p.cfg.Keep {
		m[marks.Keep] = "true"
	}
	return m
}

func (p *Probe) defaultSubject() string {
	if p.cfg.Subject != "" {
		return p.cfg.Subject
	}
	return "ackprobe." + strings.ToLower(p.cfg.ID)
}

// lookUpStream finds the stream to probe, checks that it is safe to probe,
// and settles the probe subject; a stream that does not exist yet is
// created after the limits are fitted.
func (p *Probe) lookUpStream(ctx context.Context) error {
	name := p.cfg.Stream
	if name == "" {
		name = "ACKPROBE_" + p.cfg.ID
	}
	p.stream = name
	st, err := retryCall(ctx, p, nil, func(ctx context.Context) (jetstream.Stream, error) { return p.js.Stream(ctx, name) })
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		p.subject = p.defaultSubject()
		p.storage, p.replicas = p.cfg.Storage, max(1, p.cfg.Replicas)
		if p.storage == "" {
			p.storage = "memory"
		}
		return nil
	case err != nil:
		return fmt.Errorf("look up stream %q: %w", name, err)
	}
	p.streamHandle = st
	si := st.CachedInfo()
	p.storage, p.replicas = storageName(si.Config.Storage), si.Config.Replicas
	if err := p.matchFlags(si); err != nil {
		return err
	}
	if marks.Owned(si.Config.Metadata) {
		subject := p.cfg.Subject
		if subject == "" {
			subject = si.Config.Metadata[marks.Subject]
		}
		if subject == "" && len(si.Config.Subjects) > 0 {
			subject = si.Config.Subjects[0]
		}
		p.subject = subject
		return requireCovered(si, subject)
	}
	p.userStream = true
	p.subject = p.defaultSubject()
	return p.checkUserStream(ctx, st)
}

// matchFlags refuses --storage or --replicas that contradict a stream
// that exists: the run would report a configuration it did not probe.
func (p *Probe) matchFlags(si *jetstream.StreamInfo) error {
	if s := p.cfg.Storage; s != "" && s != p.storage {
		return usage("--storage %s, but stream %q exists with %s storage: drop --storage, or name a new stream", s, p.stream, p.storage)
	}
	if r := p.cfg.Replicas; r != 0 && r != p.replicas {
		return usage("--replicas %d, but stream %q exists with %d replica(s): drop --replicas, or name a new stream", r, p.stream, p.replicas)
	}
	return nil
}

// maxAge is the max_age of a stream the probe creates: long enough for the
// run, short enough that a killed ackprobe's messages go by themselves.
func (p *Probe) maxAge() time.Duration {
	if p.cfg.MaxAge > 0 {
		return p.cfg.MaxAge
	}
	return time.Hour + time.Duration(p.cfg.Count*len(p.cfg.Modes))*5*time.Millisecond
}

// msgBytes is what one probe message takes, at most, in one replica of the
// stream: the largest message of the run as published (Msg.Size: subject,
// headers as sent, payload; the highest sequence, a round number of ten
// digits, the longest mode), plus the store's own record (the file
// store's 34 bytes: length, sequence, time, subject and header lengths,
// hash; the memory store's is 16), plus a quarter for what a later server
// version adds. The probe stream's max_bytes is this times the messages of
// a round: too small, and the stream would drop the round's own first
// messages (discard old); checkKept makes that an error.
func (p *Probe) msgBytes() int64 {
	longest := p.cfg.Modes[0]
	for _, m := range p.cfg.Modes {
		if len(m) > len(longest) {
			longest = m
		}
	}
	const record = 34
	size := int64(p.message(math.MaxInt32, longest, p.cfg.Count*len(p.cfg.Modes)).Size() + record)
	return size + size/4
}

// fitLimits reads the account's JetStream limits ($JS.API.INFO) and fits
// the probe in them: the consumer's max_ack_pending, and the max_bytes of
// a stream the probe creates. What cannot fit is refused before anything
// is created (*limits.Error).
func (p *Probe) fitLimits(ctx context.Context) error {
	plan := limits.Plan{
		Count: p.cfg.Count, Modes: len(p.cfg.Modes),
		Storage: storageType(p.storage), Replicas: p.replicas,
		MaxAckPending: p.cfg.MaxAckPending, DefaultMaxAckPending: max(limits.DefaultMaxAckPending, 2*batchMax+p.cfg.Concurrency),
		MsgBytes:  p.msgBytes(),
		NewStream: p.streamHandle == nil,
	}
	if p.cons == nil {
		plan.NewConsumers = 1
		if p.streamHandle != nil {
			plan.StreamConsumers = p.streamHandle.CachedInfo().State.Consumers
		}
	}
	fit, err := retryCall(ctx, p, nil, func(ctx context.Context) (*limits.Fit, error) { return limits.Check(ctx, p.js, plan) })
	if err != nil {
		return err
	}
	p.fit = fit
	return nil
}

// growStream raises the max_bytes of a probe stream kept by an earlier
// run when this run's messages need more: left as it was, the stream
// would drop this run's own oldest messages.
func (p *Probe) growStream(ctx context.Context) error {
	si := p.streamHandle.CachedInfo()
	if p.userStream || si.Config.MaxBytes <= 0 || si.Config.MaxBytes >= p.fit.MaxBytes {
		return nil
	}
	cfg := si.Config
	cfg.MaxBytes = p.fit.MaxBytes
	if _, err := retryCall(ctx, p, nil, func(ctx context.Context) (jetstream.Stream, error) { return p.js.UpdateStream(ctx, cfg) }); err != nil {
		return fmt.Errorf("raise the max_bytes of stream %q (ackprobe's, kept by an earlier run) to %d for this run's messages: %w", p.stream, p.fit.MaxBytes, err)
	}
	return nil
}

func (p *Probe) createStream(ctx context.Context) error {
	meta := p.marks()
	meta[marks.Subject] = p.subject
	desc := "ackprobe probe stream: created and removed by ackprobe"
	if p.cfg.Keep {
		desc = "ackprobe probe stream: created by ackprobe and kept (--keep) for later runs"
	}
	// max_bytes makes the server refuse, up front, a stream its own
	// limits cannot hold (see package limits), and keeps the stream from
	// growing past one round's messages: older rounds' go first.
	cfg := jetstream.StreamConfig{
		Name:        p.stream,
		Description: desc,
		Subjects:    []string{p.subject},
		Storage:     storageType(p.storage),
		Replicas:    p.replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      p.maxAge(),
		MaxBytes:    p.fit.MaxBytes,
		Metadata:    meta,
	}
	st, err := p.createOnce(ctx, func(ctx context.Context) (jetstream.Stream, error) { return p.js.CreateStream(ctx, cfg) })
	if err != nil {
		return fmt.Errorf("create stream %q: %w", p.stream, err)
	}
	p.streamHandle = st
	p.created.Stream = true
	return nil
}

// createOnce runs a create request that may have succeeded even when its
// answer was lost (a timeout during a leader election): it is retried, and
// an "already exists" answer to a retry means the first one got through.
func (p *Probe) createOnce(ctx context.Context, op func(context.Context) (jetstream.Stream, error)) (jetstream.Stream, error) {
	tried := false
	return retryCall(ctx, p, nil, func(ctx context.Context) (jetstream.Stream, error) {
		st, err := op(ctx)
		if tried && errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return p.js.Stream(ctx, p.stream)
		}
		tried = true
		return st, err
	})
}

// requireCovered refuses a subject that the stream does not store.
func requireCovered(si *jetstream.StreamInfo, subject string) error {
	for _, s := range si.Config.Subjects {
		if server.SubjectMatchesFilter(subject, s) {
			return nil
		}
	}
	return &RefusedError{Msg: fmt.Sprintf("subject %q is not covered by stream %q (its subjects: %s); pass --subject inside them",
		subject, si.Config.Name, strings.Join(si.Config.Subjects, ", "))}
}

// checkUserStream refuses to probe inside a user's stream when doing so
// could touch anything but ackprobe's own messages.
func (p *Probe) checkUserStream(ctx context.Context, st jetstream.Stream) error {
	si := st.CachedInfo()
	name, subject := si.Config.Name, p.subject
	refuse := func(format string, args ...any) error {
		return &RefusedError{Msg: fmt.Sprintf("stream %q is not ackprobe's: ", name) + fmt.Sprintf(format, args...)}
	}
	switch {
	case si.Config.Mirror != nil || len(si.Config.Subjects) == 0:
		return refuse("it is a mirror or has no subjects, so the probe cannot publish to it")
	case si.Config.Sealed:
		return refuse("it is sealed")
	case si.Config.DenyPurge:
		return refuse("it denies purges, so ackprobe could not remove its own messages afterwards")
	}
	if err := requireCovered(si, subject); err != nil {
		return err
	}
	total := uint64(p.cfg.Count) * uint64(len(p.cfg.Modes))
	if si.Config.MaxMsgs > 0 && si.State.Msgs+total > uint64(si.Config.MaxMsgs) {
		return refuse("it holds %d of at most %d messages; %d probe messages could push the stream past its limit", si.State.Msgs, si.Config.MaxMsgs, total)
	}
	if si.Config.MaxBytes > 0 && si.State.Bytes+total*uint64(p.msgBytes()) > uint64(si.Config.MaxBytes) {
		return refuse("it holds %d of at most %d bytes; the probe messages could push the stream past its limit", si.State.Bytes, si.Config.MaxBytes)
	}
	if si.Config.MaxMsgsPerSubject > 0 && total > uint64(si.Config.MaxMsgsPerSubject) {
		return refuse("it keeps at most %d messages per subject, fewer than the %d probe messages", si.Config.MaxMsgsPerSubject, total)
	}

	cctx, cancel := p.call(ctx)
	defer cancel()
	fi, err := st.Info(cctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("read stream %q: %w", name, err)
	}
	if n := fi.State.Subjects[subject]; n > 0 {
		return refuse("subject %q already holds %d message(s) that are not ackprobe's; probe on a subject of ackprobe's own", subject, n)
	}

	lister := st.ListConsumers(cctx)
	for ci := range lister.Info() {
		if marks.Owned(ci.Config.Metadata) {
			continue
		}
		filters := ci.Config.FilterSubjects
		if ci.Config.FilterSubject != "" {
			filters = append(filters, ci.Config.FilterSubject)
		}
		if len(filters) == 0 {
			return refuse("its consumer %q has no filter and would receive the probe messages", ci.Name)
		}
		for _, f := range filters {
			if server.SubjectMatchesFilter(subject, f) {
				return refuse("its consumer %q (filter %s) would receive the probe messages on %q", ci.Name, f, subject)
			}
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list consumers of stream %q: %w", name, err)
	}
	return p.checkCopies(ctx, name, subject, refuse)
}

// checkCopies refuses when another stream mirrors the user's stream, or
// sources from it with a filter covering the probe subject: it would keep
// copies of the probe messages that ackprobe must not delete.
func (p *Probe) checkCopies(ctx context.Context, name, subject string, refuse func(string, ...any) error) error {
	cctx, cancel := p.call(ctx)
	defer cancel()
	lister := p.js.ListStreams(cctx)
	for si := range lister.Info() {
		if m := si.Config.Mirror; m != nil && m.Name == name {
			return refuse("stream %q mirrors it and would keep copies of the probe messages", si.Config.Name)
		}
		for _, src := range si.Config.Sources {
			if src == nil || src.Name != name {
				continue
			}
			if src.FilterSubject == "" && len(src.SubjectTransforms) == 0 || src.FilterSubject != "" && server.SubjectMatchesFilter(subject, src.FilterSubject) {
				return refuse("stream %q sources from it and would keep copies of the probe messages on %q", si.Config.Name, subject)
			}
			for _, tr := range src.SubjectTransforms {
				if server.SubjectMatchesFilter(subject, tr.Source) {
					return refuse("stream %q sources from it and would keep copies of the probe messages on %q", si.Config.Name, subject)
				}
			}
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	return nil
}

// batchMax is the most messages fetched at once.
const batchMax = 256

// lookUpConsumer finds the named consumer to reuse when it is ackprobe's
// and can probe. A consumer that is not ackprobe's, or cannot probe, is
// refused before anything is created or published; one that does not
// exist is created after the limits are fitted.
func (p *Probe) lookUpConsumer(ctx context.Context) error {
	name := p.cfg.Consumer
	if name == "" {
		name = "ACKPROBE_" + p.cfg.ID
	}
	p.consumer = name
	if p.streamHandle == nil {
		return nil // a new stream has no consumer
	}
	cons, err := retryCall(ctx, p, nil, func(ctx context.Context) (jetstream.Consumer, error) { return p.js.Consumer(ctx, p.stream, name) })
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		// A push consumer: never ackprobe's.
		return &NotOwnedError{Stream: p.stream, Consumer: name}
	case err != nil:
		return fmt.Errorf("look up consumer %q on stream %q: %w", name, p.stream, err)
	}
	ci := cons.CachedInfo()
	if !marks.Owned(ci.Config.Metadata) {
		return &NotOwnedError{Stream: p.stream, Consumer: name}
	}
	switch {
	case ci.Config.AckPolicy != jetstream.AckExplicitPolicy:
		return &RefusedError{Msg: fmt.Sprintf("consumer %q on stream %q does not use explicit acks", name, p.stream)}
	case ci.Config.FilterSubject != p.subject:
		return &RefusedError{Msg: fmt.Sprintf("consumer %q on stream %q filters %q, not the probe subject %q", name, p.stream, ci.Config.FilterSubject, p.subject)}
	case p.cfg.MatchAckWait && ci.Config.AckWait != p.cfg.AckWait:
		return usage("--ack-wait %s, but consumer %q on stream %q exists with AckWait %s: drop --ack-wait, or name a new consumer", p.cfg.AckWait, name, p.stream, ci.Config.AckWait)
	case p.cfg.MaxAckPending > 0 && ci.Config.MaxAckPending != p.cfg.MaxAckPending:
		return usage("--max-ack-pending %d, but consumer %q on stream %q exists with max_ack_pending %d: drop --max-ack-pending, or name a new consumer", p.cfg.MaxAckPending, name, p.stream, ci.Config.MaxAckPending)
	}
	p.cons = cons
	p.ackWait = ci.Config.AckWait
	p.sample = ci.Config.SampleFrequency
	p.maxAckPending = ci.Config.MaxAckPending
	return nil
}

// createConsumer makes the probe's consumer. It is made before the probe
// messages are published, so that on an interest-retention stream they
// have an interest to be kept for; the probe subject held no message
// before (checked for a user's stream), so delivering all of it delivers
// just the probe's messages.
func (p *Probe) createConsumer(ctx context.Context) error {
	desc := "ackprobe probe consumer: created and removed by ackprobe"
	if p.cfg.Keep {
		desc = "ackprobe probe consumer: created by ackprobe and kept (--keep) for later runs"
	}
	p.sample = samplePercent(p.cfg.ServerSample, p.cfg.Count)
	cfg := jetstream.ConsumerConfig{
		Durable:         p.consumer,
		Description:     desc,
		AckPolicy:       jetstream.AckExplicitPolicy,
		AckWait:         p.cfg.AckWait,
		DeliverPolicy:   jetstream.DeliverAllPolicy,
		FilterSubject:   p.subject,
		MaxDeliver:      -1,
		MaxAckPending:   p.fit.MaxAckPending,
		SampleFrequency: p.sample,
		Metadata:        p.marks(),
	}
	if !p.cfg.Keep {
		cfg.InactiveThreshold = p.cfg.InactiveThreshold
		if cfg.InactiveThreshold <= 0 {
			cfg.InactiveThreshold = 10 * time.Minute
		}
	}
	tried := false
	cons, err := retryCall(ctx, p, nil, func(ctx context.Context) (jetstream.Consumer, error) {
		if tried {
			// The first request may have created it before its answer
			// was lost: CreateConsumer with the same configuration is
			// idempotent on the server.
			c, err := p.js.Consumer(ctx, p.stream, p.consumer)
			if err == nil && marks.Owned(c.CachedInfo().Config.Metadata) && c.CachedInfo().Config.Metadata[marks.Run] == p.cfg.ID {
				return c, nil
			}
		}
		tried = true
		return p.js.CreateConsumer(ctx, p.stream, cfg)
	})
	if err != nil {
		return fmt.Errorf("create consumer %q on stream %q: %w", p.consumer, p.stream, err)
	}
	p.cons = cons
	p.ackWait = cons.CachedInfo().Config.AckWait
	p.maxAckPending = cons.CachedInfo().Config.MaxAckPending
	p.created.Consumer = true
	return nil
}

// NotOwnedError is a consumer that ackprobe did not create: it is never used.
type NotOwnedError struct{ Stream, Consumer string }

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("consumer %q on stream %q was not created by ackprobe, and ackprobe never acks through another consumer; for a read-only look run: ackprobe inspect %s %s",
		e.Consumer, e.Stream, e.Stream, e.Consumer)
}

// RefusedError is a probe that cannot be run without touching what is not
// ackprobe's.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }
