package probe

import (
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go/jetstream"
)

// Result is everything a probe run found, as plain data. Report renders it;
// its JSON form is the contract's document.
type Result struct {
	Server   doc.ServerInfo `json:"server"`
	Stream   string         `json:"stream"`
	Subject  string         `json:"subject"`
	Consumer string         `json:"consumer"`
	Count    int            `json:"count"`
	Storage  string         `json:"storage"`
	Replicas int            `json:"replicas"`
	AckWait  doc.Duration   `json:"ack_wait"`
	Created  Ownership      `json:"created"`
	// Faults describes the fault injection in the path, if any.
	Faults *Faults `json:"faults,omitempty"`
	// ServerSampling says whether the server's ack metrics were collected.
	ServerSampling string       `json:"server_sampling"`
	Modes          []ModeResult `json:"modes"`
	OK             bool         `json:"ok"`
	Problems       []string     `json:"problems"`
	// Notes are observations that are not failures.
	Notes []string `json:"notes,omitempty"`
	// CleanupFailures names what the probe created and could not remove.
	CleanupFailures []string     `json:"cleanup_failures,omitempty"`
	Started         time.Time    `json:"started"`
	Elapsed         doc.Duration `json:"elapsed"`
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

// Ownership says which of the stream and consumer this run created (and
// so may delete) rather than reused.
type Ownership struct {
	Stream   bool `json:"stream"`
	Consumer bool `json:"consumer"`
	Kept     bool `json:"kept"`
}

// ModeResult is what one ack mode did.
type ModeResult struct {
	Mode Mode `json:"mode"`
	// Steps are consumer snapshots in the order they were taken.
	Steps []Step `json:"steps"`
	// Acks is the number of messages acknowledged without error.
	Acks int `json:"acks"`
	// Errors counts confirmed acks that still failed after their retries.
	Errors int `json:"errors"`
	// Retries counts confirmed acks sent again after a failure.
	Retries int `json:"retries"`
	// Redelivered counts deliveries of this mode's messages beyond the first.
	Redelivered int `json:"redelivered"`
	// RedeliveredMessages counts this mode's messages delivered more than
	// once; AckedOnce those acked and never redelivered.
	RedeliveredMessages int `json:"redelivered_messages"`
	// RedeliveredAfterAck counts those whose redelivery arrived after the
	// probe's ack had landed (standard: Ack() had returned; confirmed:
	// DoubleAck had returned): lost or late acks.
	RedeliveredAfterAck int `json:"redelivered_after_ack"`
	// RedeliveredBeforeAck counts those the client had received but whose
	// redelivery arrived before the ack landed (held past AckWait, or sent
	// again by a new consumer leader). The rest of RedeliveredMessages
	// are deliveries that never reached the client.
	RedeliveredBeforeAck int `json:"redelivered_before_ack"`
	AckedOnce            int `json:"acked_exactly_once"`
	// Timeouts counts confirmed-ack attempts that got no reply in time.
	Timeouts int `json:"timeouts"`
	// AckFrames and AcksLost are the fault proxy's counts for this mode:
	// ack frames the client sent, and those dropped or cut on the way.
	AckFrames    *int64       `json:"ack_frames,omitempty"`
	AcksLost     *int64       `json:"acks_lost,omitempty"`
	AckLatencyUS Latency      `json:"ack_latency_us"`
	AcksPerSec   float64      `json:"acks_per_sec"`
	Elapsed      doc.Duration `json:"elapsed"`
	// Visibility is how soon the server's consumer state showed the acks.
	Visibility Visibility `json:"visibility"`
	// LastError is the last error a confirmed ack returned, if any.
	LastError string `json:"last_error,omitempty"`
	// GaveUp is set when the mode stopped early because its acks kept
	// failing after their retries.
	GaveUp bool `json:"gave_up,omitempty"`
	// Server is the server's own view of the acks, from its sampled ack
	// metrics; nil when not available (Result.ServerSampling says why).
	Server *ServerView `json:"server_view,omitempty"`
}

// ServerView is what the server's consumer_ack metric events said.
type ServerView struct {
	// Events is the number of ack metric events received for this mode.
	Events int64 `json:"events"`
	// AckTimeUS is the server's time from delivering a message to applying
	// its ack.
	AckTimeUS Latency `json:"ack_time_us"`
	// TransitUS is AckTimeUS less the time the client held the message
	// before calling ack: the delivery leg plus the ack's way to being
	// applied (network, buffers, the server's ack queue).
	TransitUS Latency `json:"transit_us"`
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
	// At is the time since the start of the mode.
	At doc.Duration `json:"at"`
	// Stale marks an "acked" snapshot that still counted the acked message
	// as pending.
	Stale bool `json:"stale,omitempty"`
}

// Visibility is measured by reading the consumer back right after an ack.
type Visibility struct {
	// ReadBacks is the number of acks followed by an immediate read-back.
	ReadBacks int `json:"read_backs"`
	// StaleReads is how many of those still showed the message ack-pending.
	StaleReads int `json:"stale_reads"`
	// LagUS is, over the stale read-backs, the time from the ack call's
	// return to the first read-back that showed the ack. It includes one
	// consumer-info round trip.
	LagUS Latency `json:"lag_us"`
	// NotVisible counts acks that never showed within the timeout.
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

func stepOf(name string, ci *jetstream.ConsumerInfo, at time.Duration) Step {
	return Step{
		Step:               name,
		NumPending:         ci.NumPending,
		NumAckPending:      ci.NumAckPending,
		NumRedelivered:     ci.NumRedelivered,
		NumWaiting:         ci.NumWaiting,
		DeliveredStreamSeq: ci.Delivered.Stream,
		AckFloorStreamSeq:  ci.AckFloor.Stream,
		At:                 doc.Duration(at),
	}
}
