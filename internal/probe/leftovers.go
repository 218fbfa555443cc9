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

// Skipped is one of ackprobe's own streams or consumers that FindOrphans
// left alone: because it was created, or last active, less than
// FindOptions.OlderThan ago (a run, a canary, may still be using it; with
// an OlderThan of 0 it would be an orphan), or because a run kept it on
// purpose (--keep) and FindOptions.IncludeKept is not set.
type Skipped struct {
	Orphan
	// Reason is "young" (created less than OlderThan ago), "active"
	// (delivered or took an ack less than OlderThan ago, by the consumer
	// leader's record, which a restarted server stamps with its restart
	// time) or "kept" (kept with --keep; whatever its age).
	Reason string `json:"reason"`
	// LastActive is the latest delivery or ack of its probe consumers, if
	// any.
	LastActive *time.Time `json:"last_active,omitempty"`
}

// Reasons a candidate is skipped.
const (
	SkippedYoung  = "young"
	SkippedActive = "active"
	SkippedKept   = "kept"
)

// Orphans is what FindOrphans found.
type Orphans struct {
	// OlderThan is the FindOptions.OlderThan it judged by.
	OlderThan time.Duration
	// Found are the orphans, oldest first; never nil.
	Found []Orphan
	// Skipped are the candidates too young or too recently active, and
	// what a run kept on purpose (--keep) unless FindOptions.IncludeKept,
	// oldest first; never nil.
	Skipped []Skipped
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
// recent activity; and, as skipped, those that would be but for their age
// or activity. Nothing without the mark is ever reported.
func FindOrphans(ctx context.Context, js jetstream.JetStream, opts FindOptions) (*Orphans, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	now := time.Now()
	res := &Orphans{OlderThan: opts.OlderThan, Found: []Orphan{}, Skipped: []Skipped{}}
	// judge puts a candidate in Found or Skipped.
	judge := func(o Orphan, lastActive *time.Time) {
		switch {
		case o.Created.IsZero():
			// Not judged by age at all: left alone whatever --older-than.
		case now.Sub(o.Created) < opts.OlderThan:
			res.Skipped = append(res.Skipped, Skipped{Orphan: o, Reason: SkippedYoung, LastActive: lastActive})
		case recent(lastActive, now, opts.OlderThan):
			res.Skipped = append(res.Skipped, Skipped{Orphan: o, Reason: SkippedActive, LastActive: lastActive})
		default:
			res.Found = append(res.Found, o)
		}
	}
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
		consumers, err := probeConsumers(ctx, st, opts.Timeout)
		if err != nil {
			return nil, err
		}
		if owned {
			kept := marks.Kept(si.Config.Metadata)
			var last *time.Time
			for _, ci := range consumers {
				last = later(last, lastActivity(ci))
			}
			o := Orphan{What: "stream", Stream: si.Config.Name, Run: si.Config.Metadata[marks.Run],
				Created: marks.CreatedAt(si.Config.Metadata, si.Created), Kept: kept, Messages: si.State.Msgs,
				Command: fmt.Sprintf("nats stream rm %s -f", si.Config.Name)}
			if kept && !opts.IncludeKept {
				res.Skipped = append(res.Skipped, Skipped{Orphan: o, Reason: SkippedKept, LastActive: last})
				continue
			}
			judge(o, last)
			continue
		}
		for _, ci := range consumers {
			kept := marks.Kept(ci.Config.Metadata)
			o := Orphan{What: "consumer", Stream: si.Config.Name, Consumer: ci.Name, Subject: ci.Config.FilterSubject,
				Run: ci.Config.Metadata[marks.Run], Created: marks.CreatedAt(ci.Config.Metadata, ci.Created), Kept: kept,
				Command: fmt.Sprintf("nats consumer rm %s %s -f && nats stream purge %s --subject %s -f", si.Config.Name, ci.Name, si.Config.Name, ci.Config.FilterSubject)}
			if kept && !opts.IncludeKept {
				res.Skipped = append(res.Skipped, Skipped{Orphan: o, Reason: SkippedKept, LastActive: lastActivity(ci)})
				continue
			}
			judge(o, lastActivity(ci))
		}
	}
	sort.SliceStable(res.Found, func(i, j int) bool { return res.Found[i].Created.Before(res.Found[j].Created) })
	sort.SliceStable(res.Skipped, func(i, j int) bool { return res.Skipped[i].Created.Before(res.Skipped[j].Created) })
	return res, nil
}

// probeConsumers returns the ackprobe consumers of a stream.
func probeConsumers(ctx context.Context, st jetstream.Stream, timeout time.Duration) ([]*jetstream.ConsumerInfo, error) {
	stream := st.CachedInfo().Config.Name
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	var out []*jetstream.ConsumerInfo
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		if marks.Owned(ci.Config.Metadata) {
			out = append(out, ci)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list consumers of stream %q: %w", stream, err)
	}
	return out, nil
}

// lastActivity is a consumer's last delivery or ack, whichever is later
// (the leader's memory: lost when leadership moved), or nil for none.
func lastActivity(ci *jetstream.ConsumerInfo) *time.Time {
	return later(ci.Delivered.Last, ci.AckFloor.Last)
}

func later(a, b *time.Time) *time.Time {
	if a == nil || b != nil && b.After(*a) {
		return b
	}
	return a
}

// recent reports an activity within window of now.
func recent(t *time.Time, now time.Time, window time.Duration) bool {
	return window > 0 && t != nil && now.Sub(*t) < window
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
