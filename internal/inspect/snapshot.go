// Package inspect looks at JetStream streams and consumers without changing
// anything: it sends only list and info requests (never publishes, acks or
// creates), judges every consumer's health by thresholds over the server's
// own figures, and returns plain data. It never prints; package report
// renders what it returns.
package inspect

import (
	"fmt"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/nats-io/nats.go/jetstream"
)

// Snapshot is what one look at the account found.
type Snapshot struct {
	// OK is true when no consumer is critical: the run exits 0.
	OK     bool           `json:"ok"`
	Server doc.ServerInfo `json:"server"`
	// Scope is what was asked for: everything, one stream or one consumer.
	Scope   Scope     `json:"scope"`
	Taken   time.Time `json:"taken"`
	Streams []Stream  `json:"streams"`
	// Missing are streams the server listed but could not report: offline,
	// or their leader did not answer in time.
	Missing []Missing `json:"missing_streams,omitempty"`
	Summary Summary   `json:"summary"`
	// Requests is the number of JetStream API requests the look took.
	Requests  int          `json:"requests"`
	Elapsed   doc.Duration `json:"elapsed"`
	ElapsedMS float64      `json:"elapsed_ms"`
	// Top names the consumers with the most redeliveries, NAKs, client
	// terminations and max-deliver drops in the last --watch interval.
	Top []Top `json:"top,omitempty"`
	// Selection says which consumers --only and --sort kept, and how many
	// they left out; Summary still counts them all.
	Selection *Selection `json:"selection,omitempty"`
}

// Top is one consumer among the busiest of its kind in an interval.
type Top struct {
	// Kind is "redeliveries", "naks", "terminated" or "max_deliveries".
	Kind     string  `json:"kind"`
	Stream   string  `json:"stream"`
	Consumer string  `json:"consumer"`
	Count    int64   `json:"count"`
	PerSec   float64 `json:"per_sec"`
}

// Scope narrows a snapshot to one stream, or one consumer of it.
type Scope struct {
	Stream   string `json:"stream,omitempty"`
	Consumer string `json:"consumer,omitempty"`
}

// Missing names a stream or consumer that the server could not report.
type Missing struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// Summary counts what the snapshot holds, and the worst consumer status.
type Summary struct {
	Streams   int    `json:"streams"`
	Consumers int    `json:"consumers"`
	OK        int    `json:"ok"`
	Warn      int    `json:"warn"`
	Critical  int    `json:"critical"`
	Status    Status `json:"status"`
}

// Stream is a stream's configuration and state, with its consumers.
type Stream struct {
	Name          string        `json:"name"`
	Messages      uint64        `json:"messages"`
	Bytes         uint64        `json:"bytes"`
	FirstSeq      uint64        `json:"first_seq"`
	LastSeq       uint64        `json:"last_seq"`
	LastTime      *time.Time    `json:"last_ts,omitempty"`
	LastAge       *doc.Duration `json:"last_age,omitempty"`
	LastAgeMS     *float64      `json:"last_age_ms,omitempty"`
	NumDeleted    int           `json:"num_deleted"`
	NumSubjects   uint64        `json:"num_subjects"`
	ConsumerCount int           `json:"consumer_count"`
	// Ackprobe marks a stream that ackprobe created.
	Ackprobe bool `json:"ackprobe"`
	// Orphan marks an ackprobe stream whose run is over (marks.Orphan):
	// not kept on purpose, created an hour ago or more, and no delivery or
	// ack by its consumers for as long; RemoveWith is the command that
	// removes it. Judged only when every consumer of the stream was read.
	Orphan        bool      `json:"orphan,omitempty"`
	RemoveWith    string    `json:"remove_with,omitempty"`
	OrphanMessage string    `json:"orphan_message,omitempty"`
	Created       time.Time `json:"created"`
	TimeStamp     time.Time `json:"ts"`
	// Config is the server's own stream configuration.
	Config    jetstream.StreamConfig `json:"config"`
	Cluster   *Cluster               `json:"cluster,omitempty"`
	Consumers []Consumer             `json:"consumers"`
	// HiddenConsumers counts the consumers of the stream that Select left
	// out of Consumers (--only): Consumers and HiddenConsumers together
	// are every consumer of the stream that inspect read.
	HiddenConsumers int `json:"hidden_consumers,omitempty"`
	// MissingConsumers are consumers the server listed but could not report.
	MissingConsumers []Missing `json:"missing_consumers,omitempty"`
	// Status is the worst status of the stream's consumers.
	Status Status       `json:"status"`
	Delta  *StreamDelta `json:"delta,omitempty"`
}

// Consumer is a consumer's state as the server reported it, with its
// configuration and health.
type Consumer struct {
	Stream        string `json:"stream"`
	Name          string `json:"name"`
	NumPending    uint64 `json:"num_pending"`
	NumAckPending int    `json:"num_ack_pending"`
	// MaxAckPending is the configured limit; -1 or 0 means none.
	MaxAckPending int `json:"max_ack_pending"`
	// AckPendingShare is num_ack_pending as a percentage of max_ack_pending;
	// absent when there is no limit.
	AckPendingShare  *float64        `json:"ack_pending_share,omitempty"`
	NumRedelivered   int             `json:"num_redelivered"`
	NumWaiting       int             `json:"num_waiting"`
	Delivered        Sequence        `json:"delivered"`
	AckFloor         Sequence        `json:"ack_floor"`
	Paused           bool            `json:"paused"`
	PauseUntil       *time.Time      `json:"pause_until,omitempty"`
	PauseRemaining   doc.Duration    `json:"pause_remaining,omitempty"`
	PauseRemainingMS float64         `json:"pause_remaining_ms,omitempty"`
	PriorityGroups   []PriorityGroup `json:"priority_groups,omitempty"`
	// Kind is "pull" or "push".
	Kind      string `json:"kind"`
	PushBound bool   `json:"push_bound,omitempty"`
	// Ackprobe marks a consumer that ackprobe created.
	Ackprobe  bool      `json:"ackprobe"`
	Created   time.Time `json:"created"`
	TimeStamp time.Time `json:"ts"`
	// Config is the server's own consumer configuration.
	Config  jetstream.ConsumerConfig `json:"config"`
	Cluster *Cluster                 `json:"cluster,omitempty"`
	Health  Health                   `json:"health"`
	Delta   *Delta                   `json:"delta,omitempty"`
	// LastAck is the last ack as watching could tell it; absent without
	// --watch, where only the ack floor's time (AckFloor.Last) is known.
	LastAck *LastAck `json:"last_ack,omitempty"`

	// info is the server's report, kept to judge the consumer again with
	// what watching adds.
	info *jetstream.ConsumerInfo
}

// LastAck is the last ack of a consumer as inspect could tell it.
//
// The server's ack_floor.last_active moves for acks, but also when a
// client terminates a message and when ack-pending messages leave the
// stream (limits, max age, deletes, purges). Under --watch inspect credits
// an ack only when an interval's outflow shows one.
type LastAck struct {
	At    *time.Time    `json:"at,omitempty"`
	Age   *doc.Duration `json:"age,omitempty"`
	AgeMS *float64      `json:"age_ms,omitempty"`
	// Proven is true once an interval showed acks; before that At is the
	// server's ack floor time at the first refresh.
	Proven bool `json:"proven"`
}

// Sequence is a consumer's delivered or ack floor position.
type Sequence struct {
	ConsumerSeq uint64     `json:"consumer_seq"`
	StreamSeq   uint64     `json:"stream_seq"`
	Last        *time.Time `json:"last_active,omitempty"`
	// Age is the time from Last to the server's timestamp of the report.
	Age   *doc.Duration `json:"age,omitempty"`
	AgeMS *float64      `json:"age_ms,omitempty"`
}

// PriorityGroup is a priority group and the client pinned to it, if any.
type PriorityGroup struct {
	Group          string     `json:"group"`
	PinnedClientID string     `json:"pinned_client_id,omitempty"`
	PinnedTS       *time.Time `json:"pinned_ts,omitempty"`
}

// Cluster is where a stream or consumer is placed.
type Cluster struct {
	Name        string     `json:"name,omitempty"`
	Leader      string     `json:"leader,omitempty"`
	LeaderSince *time.Time `json:"leader_since,omitempty"`
	Replicas    []Replica  `json:"replicas,omitempty"`
}

// Replica is one follower of a clustered stream or consumer.
type Replica struct {
	Name     string       `json:"name"`
	Current  bool         `json:"current"`
	Offline  bool         `json:"offline,omitempty"`
	Active   doc.Duration `json:"active"`
	ActiveMS float64      `json:"active_ms"`
	Lag      uint64       `json:"lag,omitempty"`
}

// State says in one word how the replica is doing.
func (r Replica) State() string {
	switch {
	case r.Offline:
		return "offline"
	case !r.Current:
		return "lagging"
	}
	return "current"
}

// Stream returns the stream named name, or nil.
func (s *Snapshot) Stream(name string) *Stream {
	for i := range s.Streams {
		if s.Streams[i].Name == name {
			return &s.Streams[i]
		}
	}
	return nil
}

// Consumer returns the consumer named name, or nil.
func (s *Stream) Consumer(name string) *Consumer {
	for i := range s.Consumers {
		if s.Consumers[i].Name == name {
			return &s.Consumers[i]
		}
	}
	return nil
}

// summarize counts consumers by status and sets each stream's status.
func (s *Snapshot) summarize() {
	sum := Summary{Streams: len(s.Streams)}
	for i := range s.Streams {
		st := &s.Streams[i]
		if s.Scope.Consumer == "" {
			st.orphan(s.Taken)
		}
		st.Status = OK
		for _, c := range st.Consumers {
			sum.Consumers++
			switch c.Health.Status {
			case Critical:
				sum.Critical++
			case Warn:
				sum.Warn++
			default:
				sum.OK++
			}
			st.Status = max(st.Status, c.Health.Status)
		}
		sum.Status = max(sum.Status, st.Status)
	}
	s.Summary = sum
	s.OK = sum.Critical == 0
}

func streamOf(si *jetstream.StreamInfo) Stream {
	st := Stream{
		Name:          si.Config.Name,
		Messages:      si.State.Msgs,
		Bytes:         si.State.Bytes,
		FirstSeq:      si.State.FirstSeq,
		LastSeq:       si.State.LastSeq,
		NumDeleted:    si.State.NumDeleted,
		NumSubjects:   si.State.NumSubjects,
		ConsumerCount: si.State.Consumers,
		Ackprobe:      marks.Owned(si.Config.Metadata),
		Created:       si.Created,
		TimeStamp:     si.TimeStamp,
		Config:        si.Config,
		Cluster:       clusterOf(si.Cluster),
		Consumers:     []Consumer{},
	}
	if !si.State.LastTime.IsZero() && si.State.Msgs > 0 {
		t := si.State.LastTime
		st.LastTime = &t
		st.LastAge = age(&t, reportTime(si.TimeStamp))
		st.LastAgeMS = millis(st.LastAge)
	}
	return st
}

func consumerOf(ci *jetstream.ConsumerInfo, t Thresholds) Consumer {
	now := reportTime(ci.TimeStamp)
	c := Consumer{
		Stream:           ci.Stream,
		Name:             ci.Name,
		NumPending:       ci.NumPending,
		NumAckPending:    ci.NumAckPending,
		MaxAckPending:    ci.Config.MaxAckPending,
		NumRedelivered:   ci.NumRedelivered,
		NumWaiting:       ci.NumWaiting,
		Delivered:        sequenceOf(ci.Delivered, now),
		AckFloor:         sequenceOf(ci.AckFloor, now),
		Paused:           ci.Paused,
		PauseRemaining:   doc.Duration(ci.PauseRemaining),
		PauseRemainingMS: doc.Millis(ci.PauseRemaining),
		Kind:             "pull",
		PushBound:        ci.PushBound,
		Ackprobe:         marks.Owned(ci.Config.Metadata),
		Created:          ci.Created,
		TimeStamp:        ci.TimeStamp,
		Config:           ci.Config,
		Cluster:          clusterOf(ci.Cluster),
		Health:           Check(ci, now, t),
		info:             ci,
	}
	if ci.Config.DeliverSubject != "" {
		c.Kind = "push"
	}
	if ci.Paused && ci.Config.PauseUntil != nil {
		u := *ci.Config.PauseUntil
		c.PauseUntil = &u
	}
	if share, ok := ackPendingShare(ci); ok {
		c.AckPendingShare = &share
	}
	for _, g := range ci.PriorityGroups {
		pg := PriorityGroup{Group: g.Group, PinnedClientID: g.PinnedClientID}
		if !g.PinnedTS.IsZero() {
			ts := g.PinnedTS
			pg.PinnedTS = &ts
		}
		c.PriorityGroups = append(c.PriorityGroups, pg)
	}
	return c
}

func sequenceOf(s jetstream.SequenceInfo, now time.Time) Sequence {
	a := age(s.Last, now)
	return Sequence{ConsumerSeq: s.Consumer, StreamSeq: s.Stream, Last: s.Last, Age: a, AgeMS: millis(a)}
}

func clusterOf(ci *jetstream.ClusterInfo) *Cluster {
	if ci == nil {
		return nil
	}
	c := &Cluster{Name: ci.Name, Leader: ci.Leader, LeaderSince: ci.LeaderSince}
	for _, p := range ci.Replicas {
		if p == nil {
			continue
		}
		c.Replicas = append(c.Replicas, Replica{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: doc.Duration(p.Active), ActiveMS: doc.Millis(p.Active), Lag: p.Lag})
	}
	return c
}

// reportTime is the server's timestamp of a report, or the local clock when
// the server sent none; ages are measured to it, so that they do not depend
// on clock skew between ackprobe and the server.
func reportTime(ts time.Time) time.Time {
	if ts.IsZero() {
		return time.Now()
	}
	return ts
}

func age(t *time.Time, now time.Time) *doc.Duration {
	if t == nil || t.IsZero() {
		return nil
	}
	d := max(now.Sub(*t), 0).Round(time.Millisecond)
	pd := doc.Duration(d)
	return &pd
}

// millis is an age in milliseconds, for the _ms key beside it.
func millis(d *doc.Duration) *float64 {
	if d == nil {
		return nil
	}
	ms := d.Millis()
	return &ms
}

// orphan judges an ackprobe stream whose run is over, from its marks and
// its consumers' last delivery and ack times.
func (st *Stream) orphan(now time.Time) {
	var last time.Time
	for _, c := range st.Consumers {
		for _, t := range []*time.Time{c.Delivered.Last, c.AckFloor.Last} {
			if t != nil && t.After(last) {
				last = *t
			}
		}
	}
	if marks.Orphan(st.Config.Metadata, st.Created, last, now) {
		st.Orphan = true
		st.RemoveWith = "ackprobe cleanup (or: nats stream rm " + st.Name + " -f)"
		st.OrphanMessage = fmt.Sprintf("left by an ackprobe run that is over (created %s ago, no delivery or ack since): remove it with %s",
			Short(now.Sub(marks.CreatedAt(st.Config.Metadata, st.Created))), st.RemoveWith)
	}
}
