package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Message headers of probe messages.
const (
	headerRun  = "Ackprobe-Run"
	headerMode = "Ackprobe-Mode"

	// abandonAfter lets the server remove a consumer that a killed ackprobe
	// could not delete; not set with --keep.
	abandonAfter = 10 * time.Minute
)

// ownership records what this run created or reused, for cleanup.
type ownership struct {
	streamCreated   bool
	consumerCreated bool
	userStream      bool
	stream          jetstream.Stream
}

func (p *prober) marks() map[string]string {
	return map[string]string{
		marks.Owner:   marks.OwnerValue,
		marks.Run:     p.cfg.ID,
		marks.Created: time.Now().UTC().Format(time.RFC3339),
	}
}

func (p *prober) setupStream(ctx context.Context) error {
	name := p.cfg.Stream
	if name == "" {
		name = "ACKPROBE_" + p.cfg.ID
	}
	p.res.Stream = name
	cctx, cancel := p.call(ctx)
	defer cancel()
	st, err := p.js.Stream(cctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return p.createStream(ctx, name)
	case err != nil:
		return fmt.Errorf("look up stream %q: %w", name, err)
	}
	p.own.stream = st
	si := st.CachedInfo()
	if marks.Owned(si.Config.Metadata) {
		subject := p.cfg.Subject
		if subject == "" {
			subject = si.Config.Metadata[marks.Subject]
		}
		if subject == "" && len(si.Config.Subjects) > 0 {
			subject = si.Config.Subjects[0]
		}
		p.res.Subject = subject
		return requireCovered(si, subject)
	}
	p.own.userStream = true
	subject := p.cfg.Subject
	if subject == "" {
		subject = "ackprobe." + strings.ToLower(p.cfg.ID)
	}
	p.res.Subject = subject
	return p.checkUserStream(ctx, st, subject)
}

func (p *prober) createStream(ctx context.Context, name string) error {
	subject := p.cfg.Subject
	if subject == "" {
		subject = "ackprobe." + strings.ToLower(p.cfg.ID)
	}
	p.res.Subject = subject
	meta := p.marks()
	meta[marks.Subject] = subject
	cctx, cancel := p.call(ctx)
	defer cancel()
	st, err := p.js.CreateStream(cctx, jetstream.StreamConfig{
		Name:        name,
		Description: "ackprobe probe stream: created and removed by ackprobe",
		Subjects:    []string{subject},
		Storage:     p.cfg.Storage,
		Replicas:    p.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Metadata:    meta,
	})
	if err != nil {
		return fmt.Errorf("create stream %q: %w", name, err)
	}
	p.own.stream = st
	p.own.streamCreated = true
	p.res.Created.Stream = true
	return nil
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
func (p *prober) checkUserStream(ctx context.Context, st jetstream.Stream, subject string) error {
	si := st.CachedInfo()
	name := si.Config.Name
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
	if si.Config.MaxBytes > 0 && si.State.Bytes+total*probeMsgBytes > uint64(si.Config.MaxBytes) {
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
func (p *prober) checkCopies(ctx context.Context, name, subject string, refuse func(string, ...any) error) error {
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

// probeMsgBytes is a generous estimate of one probe message's stored size.
const probeMsgBytes = 256

// batchMax is the most messages fetched at once.
const batchMax = 256

// resolveConsumer looks the consumer up before anything is published: a
// consumer that is not ackprobe's, or cannot probe, is refused up front.
// It returns the consumer to reuse, or nil when one is to be created.
func (p *prober) resolveConsumer(ctx context.Context) (jetstream.Consumer, error) {
	name := p.cfg.Consumer
	if name == "" {
		name = "ACKPROBE_" + p.cfg.ID
	}
	p.res.Consumer = name
	stream := p.res.Stream
	cctx, cancel := p.call(ctx)
	defer cancel()
	cons, err := p.js.Consumer(cctx, stream, name)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, nil
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		// A push consumer: never ackprobe's.
		return nil, &NotOwnedError{Stream: stream, Consumer: name}
	case err != nil:
		return nil, fmt.Errorf("look up consumer %q on stream %q: %w", name, stream, err)
	}
	ci := cons.CachedInfo()
	if !marks.Owned(ci.Config.Metadata) {
		return nil, &NotOwnedError{Stream: stream, Consumer: name}
	}
	switch {
	case ci.Config.AckPolicy != jetstream.AckExplicitPolicy:
		return nil, &RefusedError{Msg: fmt.Sprintf("consumer %q on stream %q does not use explicit acks", name, stream)}
	case ci.Config.FilterSubject != p.res.Subject:
		return nil, &RefusedError{Msg: fmt.Sprintf("consumer %q on stream %q filters %q, not the probe subject %q", name, stream, ci.Config.FilterSubject, p.res.Subject)}
	}
	return cons, nil
}

// createConsumer makes the probe's consumer. It is made before the probe
// messages are published, so that on an interest-retention stream they
// have an interest to be kept for; the probe subject held no message
// before (checked for a user's stream), so delivering all of it delivers
// just the probe's messages.
func (p *prober) createConsumer(ctx context.Context) error {
	name := p.res.Consumer
	cfg := jetstream.ConsumerConfig{
		Durable:         name,
		Description:     "ackprobe probe consumer: created and removed by ackprobe",
		AckPolicy:       jetstream.AckExplicitPolicy,
		AckWait:         p.cfg.AckWait,
		DeliverPolicy:   jetstream.DeliverAllPolicy,
		FilterSubject:   p.res.Subject,
		MaxDeliver:      -1,
		MaxAckPending:   max(1000, 2*batchMax+p.cfg.Concurrency),
		SampleFrequency: p.cfg.ServerSample,
		Metadata:        p.marks(),
	}
	if !p.own.userStream {
		cfg.Replicas = p.cfg.Replicas
	}
	if !p.cfg.Keep {
		cfg.InactiveThreshold = abandonAfter
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	cons, err := p.js.CreateConsumer(cctx, p.res.Stream, cfg)
	if err != nil {
		return fmt.Errorf("create consumer %q on stream %q: %w", name, p.res.Stream, err)
	}
	p.cons = cons
	p.own.consumerCreated = true
	p.res.Created.Consumer = true
	return nil
}

// cleanupRequests bounds the whole cleanup, which runs even after Ctrl-C,
// to this many request timeouts: a server that stopped answering must not
// hold ackprobe much longer than one that answers.
const cleanupRequests = 3

// cleanup removes what this run created, and this run's messages from a
// stream it did not create. Failures are named in the result.
func (p *prober) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupRequests*p.cfg.Timeout)
	defer cancel()
	stream := p.res.Stream
	fail := func(what string, err error, hint string) {
		p.res.CleanupFailures = append(p.res.CleanupFailures, fmt.Sprintf("%s: %v (remove it with: %s)", what, err, hint))
	}
	if p.cfg.Keep {
		p.res.Created.Kept = p.res.Created.Stream || p.res.Created.Consumer
	}
	if p.own.streamCreated && !p.cfg.Keep {
		if err := p.js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			fail(fmt.Sprintf("stream %q", stream), err, "nats stream rm "+stream)
		}
		return
	}
	if p.own.consumerCreated && !p.cfg.Keep {
		if err := p.js.DeleteConsumer(ctx, stream, p.res.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			fail(fmt.Sprintf("consumer %q on stream %q", p.res.Consumer, stream), err, fmt.Sprintf("nats consumer rm %s %s", stream, p.res.Consumer))
		}
	}
	// Purge only after this run stored messages: the subject was then
	// checked to hold nothing but the probe's.
	if p.own.stream != nil && p.res.Subject != "" && p.published() {
		if err := p.own.stream.Purge(ctx, jetstream.WithPurgeSubject(p.res.Subject)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			fail(fmt.Sprintf("probe messages on %q in stream %q", p.res.Subject, stream), err, fmt.Sprintf("nats stream purge %s --subject %s", stream, p.res.Subject))
		}
	}
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
