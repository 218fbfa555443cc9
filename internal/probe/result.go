package probe

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
)

// Result is everything a probe round found, as plain data, built once when
// the round (and, for Run, the cleanup) is done. Report renders it; its JSON
// form is the contract's document. Durations appear twice: as a Go duration
// string, and as a number in the unit its key names (_ms, _us).
type Result struct {
	Server   doc.ServerInfo `json:"server"`
	Stream   string         `json:"stream"`
	Subject  string         `json:"subject"`
	Consumer string         `json:"consumer"`
	// Count is the number of messages per mode.
	Count int `json:"count"`
	// Storage and Replicas are the probe stream's, as the server reports
	// its configuration (a reused stream keeps its own).
	Storage  string `json:"storage"`
	Replicas int    `json:"replicas"`
	// AckWait is the probe consumer's AckWait, from the server. It, the
	// max_ack_pending and the ack timeout are left out of a result of a
	// run that ended before its consumer existed.
	AckWait   doc.Duration `json:"ack_wait,omitempty"`
	AckWaitMS float64      `json:"ack_wait_ms,omitempty"`
	// MaxAckPending is the probe consumer's max_ack_pending, from the
	// server.
	MaxAckPending int `json:"max_ack_pending,omitempty"`
	// AckTimeout bounds one confirmed-ack attempt.
	AckTimeout   doc.Duration `json:"ack_timeout,omitempty"`
	AckTimeoutMS float64      `json:"ack_timeout_ms,omitempty"`
	Created      Ownership    `json:"created"`
	// Round numbers the rounds of one setup (the canary runs many); 1 for
	// compare and ack.
	Round int `json:"round"`
	// Faults describes the fault injection in the path, if any.
	Faults *Faults `json:"faults,omitempty"`
	// ServerSampling says whether the server's ack metrics were collected.
	ServerSampling string       `json:"server_sampling"`
	Modes          []ModeResult `json:"modes"`
	// Nodes are the rounds of a per-node probe, one per server (Modes is
	// then empty).
	Nodes []NodeResult `json:"nodes,omitempty"`
	// Findings are what the probe concluded from its ledger: the source of
	// OK, of Problems and Notes, and of every mark a report draws.
	Findings []Finding `json:"findings"`
	// OK is true when no finding has severity fail.
	OK bool `json:"ok"`
	// Problems are the messages of the fail findings, Notes those of the
	// others (kept for scripts written against earlier versions).
	Problems []string `json:"problems"`
	Notes    []string `json:"notes,omitempty"`
	// Leftovers are what the probe created and could not remove, each with
	// the nats command that removes it; CleanupFailures says the same in
	// one line each.
	Leftovers       []Leftover   `json:"leftovers,omitempty"`
	CleanupFailures []string     `json:"cleanup_failures,omitempty"`
	Started         time.Time    `json:"started"`
	Elapsed         doc.Duration `json:"elapsed"`
	ElapsedMS       float64      `json:"elapsed_ms"`
}

// Faults is the fault proxy's configuration and its totals.
type Faults struct {
	DropRate    float64 `json:"drop_rate"`
	CutAfter    int     `json:"cut_after,omitempty"`
	AckFrames   int64   `json:"ack_frames"`
	AcksDropped int64   `json:"acks_dropped"`
	AcksCut     int64   `json:"acks_cut"`
	Cuts        int64   `json:"cuts"`
	Connections int64   `json:"connections"`
}

// Ownership says which of the stream and consumer the probe created (and
// so may delete) rather than reused.
type Ownership struct {
	Stream   bool `json:"stream"`
	Consumer bool `json:"consumer"`
	// Kept is set when --keep leaves what was created for the next run.
	Kept bool `json:"kept"`
}

// Leftover is something the probe created and could not remove.
type Leftover struct {
	// What is "stream", "consumer" or "messages" (probe messages in a
	// stream that is not ackprobe's).
	What    string `json:"what"`
	Stream  string `json:"stream"`
	Name    string `json:"name,omitempty"`
	Subject string `json:"subject,omitempty"`
	Error   string `json:"error"`
	// Command removes it: "nats stream rm X", "nats consumer rm X Y", ...
	Command string `json:"command"`
}

// ModeResult is what one ack mode did, derived from the ledger.
type ModeResult struct {
	Mode Mode `json:"mode"`
	// Steps are consumer snapshots in the order they were taken.
	Steps []Step `json:"steps"`
	// Acks is the number of this mode's messages whose ack landed: Ack()
	// returned without error, or the server answered DoubleAck.
	Acks int `json:"acks"`
	// Errors counts ack calls that still failed after their retries.
	Errors int `json:"errors"`
	// Retries counts ack attempts beyond the first, over every call.
	Retries int `json:"retries"`
	// Timeouts counts confirmed-ack attempts that got no reply in time.
	Timeouts int `json:"timeouts"`
	// Redelivered counts deliveries of this mode's messages the client
	// received beyond each message's first (Msg.Metadata().NumDelivered
	// and the stream sequence tell them apart).
	Redelivered int `json:"redelivered"`
	// RedeliveredMessages counts the messages received more than once;
	// AckedOnce those acked and never received again.
	RedeliveredMessages int `json:"redelivered_messages"`
	// RedeliveredAfterAck counts messages redelivered after their ack had
	// landed (lost, late, or broken acks); RedeliveredBeforeAck those
	// redelivered while the probe still held them. Kept for scripts; the
	// Classes say which.
	RedeliveredAfterAck  int `json:"redelivered_after_ack"`
	RedeliveredBeforeAck int `json:"redelivered_before_ack"`
	AckedOnce            int `json:"acked_exactly_once"`
	// LostDeliveries counts deliveries the server made that never reached
	// the client (gaps in the delivery count of messages received later).
	LostDeliveries int `json:"lost_deliveries"`
	// Classes counts messages by what the ledger proved; keys are finding
	// codes.
	Classes Classes `json:"classes"`
	// AckFrames and AcksLost are the fault proxy's counts for this mode:
	// ack frames the client sent, and those dropped or cut on the way.
	AckFrames *int64 `json:"ack_frames,omitempty"`
	AcksLost  *int64 `json:"acks_lost,omitempty"`
	// AckLatencyUS is the ack call: Ack() or DoubleAck() until it
	// returned, for each message's first ack, in microseconds.
	AckLatencyUS Latency `json:"ack_latency_us"`
	// DeliveryToAckUS is the client's receipt of a message to its ack
	// landing, in microseconds: what AckWait must cover.
	DeliveryToAckUS Latency `json:"delivery_to_ack_us"`
	// ReachedAckWait counts first acks whose receipt → ack landed took the
	// AckWait or longer (client clock): each could have been redelivered.
	ReachedAckWait int64 `json:"reached_ack_wait"`
	// AcksPerSec is Acks divided by RateWindow: from the mode's first
	// fetch until the server showed the last ack applied (the final
	// read-back and waits for redeliveries included), less the pauses of
	// the mid-run read-backs: the probe holds its acks back while it reads
	// the consumer and, when an ack is still pending, until it shows;
	// without those pauses the next acks would have been on their way.
	AcksPerSec   float64      `json:"acks_per_sec"`
	RateWindow   doc.Duration `json:"rate_window"`
	RateWindowMS float64      `json:"rate_window_ms"`
	// ReadBackPause is how long the mid-run read-backs held the probe's
	// acks back in all (left out of RateWindow): messages fetched ahead
	// wait that long too, which lengthens their delivery → ack.
	ReadBackPause   doc.Duration `json:"read_back_pause"`
	ReadBackPauseMS float64      `json:"read_back_pause_ms"`
	Elapsed         doc.Duration `json:"elapsed"`
	ElapsedMS       float64      `json:"elapsed_ms"`
	// Visibility is how soon the server's consumer state showed the acks.
	Visibility Visibility `json:"visibility"`
	// LastError is the last error an ack call returned, if any.
	LastError string `json:"last_error,omitempty"`
	// Unsettled counts deliveries the server still held ack pending when
	// the mode ended: acks lost that did not come back in the wait.
	Unsettled int `json:"unsettled,omitempty"`
	// GaveUp is set when the mode stopped early because its acks kept
	// failing after their retries.
	GaveUp bool `json:"gave_up,omitempty"`
	// Server is the server's own view of the acks, from its sampled ack
	// metrics; nil when not available (Result.ServerSampling says why).
	Server *ServerView `json:"server_view,omitempty"`
	// Disturbance is what the mode rode out.
	Disturbance Disturbance `json:"disturbance"`
}

// Classes counts a mode's messages by what the ledger proved about them.
// The keys are the finding codes.
type Classes struct {
	RedeliveredAfterConfirmedAck int `json:"redelivered_after_confirmed_ack"`
	LostStandardAck              int `json:"lost_standard_ack"`
	LateAck                      int `json:"late_ack"`
	RedeliveredBeforeAck         int `json:"redelivered_before_ack"`
	LostDelivery                 int `json:"lost_delivery"`
	ConfirmedAfterRetry          int `json:"confirmed_after_retry"`
	// ConfirmedAfterRetryLate counts the retried confirmed acks that landed
	// when the AckWait may already have expired.
	ConfirmedAfterRetryLate int `json:"confirmed_after_retry_late"`
	// LateAckRedelivered counts the late acks whose message came back.
	LateAckRedelivered int `json:"late_ack_redelivered"`
}

// Disturbance is what a mode rode out: reconnects of the client, changes
// of the consumer leader seen in consumer info, and time during which
// requests found no leader.
type Disturbance struct {
	Reconnects      int          `json:"reconnects"`
	LeaderChanges   int          `json:"leader_changes"`
	WithoutLeader   doc.Duration `json:"without_leader"`
	WithoutLeaderMS float64      `json:"without_leader_ms"`
	// RetriedCalls counts API calls (reads, fetches, publishes) retried
	// after a transient error.
	RetriedCalls int `json:"retried_calls"`
}

// ServerView is what the server's consumer_ack metric events said.
type ServerView struct {
	// Events is the number of ack metric events received for this mode.
	Events int64 `json:"events"`
	// AckTimeUS is the server's time from delivering a message to applying
	// its ack (the event's ack_time).
	AckTimeUS Latency `json:"ack_time_us"`
	// TransitUS is AckTimeUS less the time the client held the message
	// before calling ack: the delivery leg plus the ack's way to being
	// applied (network, buffers, the server's ack queue).
	TransitUS Latency `json:"transit_us"`
	// ReachedAckWait counts events whose ack_time was the AckWait or more.
	ReachedAckWait int64 `json:"reached_ack_wait"`
}

// Step is the consumer's state as the server reported it at one moment.
type Step struct {
	Step               string `json:"step"`
	NumPending         uint64 `json:"num_pending"`
	NumAckPending      int    `json:"num_ack_pending"`
	NumRedelivered     int    `json:"num_redelivered"`
	NumWaiting         int    `json:"num_waiting"`
	DeliveredStreamSeq uint64 `json:"delivered_stream_seq"`
	AckFloorStreamSeq  uint64 `json:"ack_floor_stream_seq"`
	// Leader is the consumer's leader on a cluster.
	Leader string `json:"leader,omitempty"`
	// At is the time since the start of the mode.
	At   doc.Duration `json:"at"`
	AtMS float64      `json:"at_ms"`
	// Stale marks an "acked" snapshot that still counted the acked message
	// as pending.
	Stale bool `json:"stale,omitempty"`
	// VisibleAfterUS is, on a "settled" step, how long after the last ack
	// the server showed it (one consumer-info round trip included).
	VisibleAfterUS float64 `json:"visible_after_us,omitempty"`
}

// Visibility is measured by reading the consumer back right after an ack.
type Visibility struct {
	// ReadBacks is the number of acks followed by an immediate read-back.
	ReadBacks int `json:"read_backs"`
	// StaleReads is how many of those still showed the ack pending.
	StaleReads int `json:"stale_reads"`
	// Explained is how many stale reads a change of consumer leader (or
	// messages of earlier runs on a reused consumer) accounts for.
	Explained int `json:"explained,omitempty"`
	// LagUS is, over the stale read-backs, the time from the ack call's
	// return to the first read-back that showed the ack. It includes one
	// consumer-info round trip.
	LagUS Latency `json:"lag_us"`
	// NotVisible counts acks that never showed within the wait.
	NotVisible int `json:"not_visible,omitempty"`
}

// Latency summarises a distribution in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
	// Buckets is a coarse histogram for drawing; empty for one sample.
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket counts the samples at or below UpToUS and above the previous bucket.
type Bucket struct {
	UpToUS float64 `json:"up_to_us"`
	Count  int64   `json:"count"`
}

// Mode returns the result for mode m, or nil.
func (r *Result) Mode(m Mode) *ModeResult {
	for i := range r.Modes {
		if r.Modes[i].Mode == m {
			return &r.Modes[i]
		}
	}
	return nil
}

// FindingsOf returns the findings of mode m ("" for the run's own).
func (r *Result) FindingsOf(m Mode) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Mode == m {
			out = append(out, f)
		}
	}
	return out
}

func stepOf(name string, ci *jetstream.ConsumerInfo, at time.Duration) Step {
	st := Step{
		Step:               name,
		NumPending:         ci.NumPending,
		NumAckPending:      ci.NumAckPending,
		NumRedelivered:     ci.NumRedelivered,
		NumWaiting:         ci.NumWaiting,
		DeliveredStreamSeq: ci.Delivered.Stream,
		AckFloorStreamSeq:  ci.AckFloor.Stream,
		At:                 doc.Duration(at.Round(time.Microsecond)),
		AtMS:               doc.Millis(at),
	}
	if ci.Cluster != nil {
		st.Leader = ci.Cluster.Leader
	}
	return st
}
