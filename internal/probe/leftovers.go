package probe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
)

// Orphan is something ackprobe created that a run left on the server: a
// probe stream, or a probe consumer (with its probe messages) inside a
// stream that is not ackprobe's.
type Orphan struct {
	// What is "stream" or "consumer".
	What     string `json:"what"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer,omitempty"`
	// Subject is the probe subject of a consumer in a user's stream: its
	// messages there are ackprobe's and go with it.
	Subject string `json:"subject,omitempty"`
	Run     string `json:"run,omitempty"`
	// Created is when ackprobe created it (its io.ackprobe.created mark).
	Created time.Time `json:"created"`
	// Kept is set on what a run kept on purpose (--keep).
	Kept bool `json:"kept,omitempty"`
	// Messages held by a probe stream.
	Messages uint64 `json:"messages"`
	// Command removes it with the nats CLI.
	Command string `json:"command"`
}

// FindOptions say which orphans FindOrphans reports.
type FindOptions struct {
	// OlderThan skips what was created, or last delivered or acked, less
	// than this long ago: a run still going (a canary) is not an orphan.
	OlderThan time.Duration
	// IncludeKept reports what a run kept on purpose (--keep) too.
	IncludeKept bool
	// Timeout bounds each request.
	Timeout time.Duration
}

// FindOrphans lists, read-only, what ackprobe created and left behind on
// the account: streams and consumers carrying ackprobe's owner mark
// (metadata io.ackprobe.owner), older than opts.OlderThan and without
// recent activity. Nothing without the mark is ever reported.
func FindOrphans(ctx context.Context, js jetstream.JetStream, opts FindOptions) ([]Orphan, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	now := time.Now()
	old := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) >= opts.OlderThan }
	// Every stream by name (the meta leader knows them all, also those
	// whose own leader is being elected after a restart, which a listing
	// of stream infos leaves out), then each one's info, retried while it
	// has no leader.
	lctx, cancel := context.WithTimeout(ctx, 3*opts.Timeout)
	defer cancel()
	var names []string
	lister := js.StreamNames(lctx)
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	var out []Orphan
	for _, name := range names {
		st, err := retry(ctx, max(3*opts.Timeout, 15*time.Second), opts.Timeout, func(ctx context.Context) (jetstream.Stream, error) {
			return js.Stream(ctx, name)
		}, nil)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream %q: %w", name, err)
		}
		si := st.CachedInfo()
		owned := marks.Owned(si.Config.Metadata)
		if !owned && si.State.Consumers == 0 {
			continue
		}
		consumers, active, err := probeConsumers(ctx, st, now, opts.OlderThan, opts.Timeout)
		if err != nil {
			return nil, err
		}
		if owned {
			created := marks.CreatedAt(si.Config.Metadata, si.Created)
			kept := marks.Kept(si.Config.Metadata)
			if old(created) && !active && (!kept || opts.IncludeKept) {
				out = append(out, Orphan{What: "stream", Stream: si.Config.Name, Run: si.Config.Metadata[marks.Run], Created: created,
					Kept: kept, Messages: si.State.Msgs, Command: fmt.Sprintf("nats stream rm %s -f", si.Config.Name)})
			}
			continue
		}
		for _, ci := range consumers {
			created := marks.CreatedAt(ci.Config.Metadata, ci.Created)
			kept := marks.Kept(ci.Config.Metadata)
			if !old(created) || recent(ci, now, opts.OlderThan) || kept && !opts.IncludeKept {
				continue
			}
			out = append(out, Orphan{What: "consumer", Stream: si.Config.Name, Consumer: ci.Name, Subject: ci.Config.FilterSubject,
				Run: ci.Config.Metadata[marks.Run], Created: created, Kept: kept,
				Command: fmt.Sprintf("nats consumer rm %s %s -f && nats stream purge %s --subject %s -f", si.Config.Name, ci.Name, si.Config.Name, ci.Config.FilterSubject)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// probeConsumers returns the ackprobe consumers of a stream, and whether
// any of them was active within window.
func probeConsumers(ctx context.Context, st jetstream.Stream, now time.Time, window, timeout time.Duration) ([]*jetstream.ConsumerInfo, bool, error) {
	stream := st.CachedInfo().Config.Name
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	var out []*jetstream.ConsumerInfo
	active := false
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		if !marks.Owned(ci.Config.Metadata) {
			continue
		}
		out = append(out, ci)
		active = active || recent(ci, now, window)
	}
	if err := lister.Err(); err != nil {
		return nil, false, fmt.Errorf("list consumers of stream %q: %w", stream, err)
	}
	return out, active, nil
}

// recent reports a consumer that delivered or took an ack within window
// (the leader's memory: lost when leadership moved).
func recent(ci *jetstream.ConsumerInfo, now time.Time, window time.Duration) bool {
	if window <= 0 {
		return false
	}
	for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
		if t != nil && now.Sub(*t) < window {
			return true
		}
	}
	return false
}

// RemoveOrphan deletes an orphan FindOrphans reported: a probe stream, or a
// probe consumer and the probe messages on its subject in a user's stream.
// It checks the owner mark again first, and refuses anything without it.
func RemoveOrphan(ctx context.Context, js jetstream.JetStream, o Orphan) error {
	switch o.What {
	case "stream":
		st, err := js.Stream(ctx, o.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !marks.Owned(st.CachedInfo().Config.Metadata) {
			return &RefusedError{Msg: fmt.Sprintf("stream %q is not ackprobe's", o.Stream)}
		}
		return ignoreNotFound(js.DeleteStream(ctx, o.Stream))
	case "consumer":
		c, err := js.Consumer(ctx, o.Stream, o.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ci := c.CachedInfo()
		if !marks.Owned(ci.Config.Metadata) || ci.Config.FilterSubject == "" {
			return &RefusedError{Msg: fmt.Sprintf("consumer %q on stream %q is not ackprobe's", o.Consumer, o.Stream)}
		}
		if err := ignoreNotFound(js.DeleteConsumer(ctx, o.Stream, o.Consumer)); err != nil {
			return err
		}
		st, err := js.Stream(ctx, o.Stream)
		if err != nil {
			return ignoreNotFound(err)
		}
		return ignoreNotFound(st.Purge(ctx, jetstream.WithPurgeSubject(ci.Config.FilterSubject)))
	}
	return fmt.Errorf("unknown orphan kind %q", o.What)
}

func ignoreNotFound(err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return err
}
