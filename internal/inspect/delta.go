package inspect

import (
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go/jetstream"
)

// Delta is how a consumer moved between two snapshots.
type Delta struct {
	Interval doc.Duration `json:"interval"`
	// Pending and AckPending are the changes of num_pending and
	// num_ack_pending.
	Pending    int64 `json:"pending"`
	AckPending int64 `json:"ack_pending"`
	// Redelivered is the change of num_redelivered.
	Redelivered int64 `json:"redelivered"`
	// Delivered is how far the delivered consumer sequence moved: every
	// delivery, redeliveries included.
	Delivered int64 `json:"delivered"`
	// Acked is the deliveries less the growth of ack pending: the messages
	// acked (or terminated) in the interval. Consumer info has no ack
	// counter; this is exact unless messages were redelivered in the
	// interval, each redelivery counting as one more ack.
	Acked int64 `json:"acked"`
	// AckFloor is how far the ack floor's consumer sequence moved: it
	// stays put under one old unacked message however many acks land above.
	AckFloor        int64   `json:"ack_floor"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	AckedPerSec     float64 `json:"acked_per_sec"`
}

// StreamDelta is how a stream moved between two snapshots.
type StreamDelta struct {
	Interval doc.Duration `json:"interval"`
	Messages int64        `json:"messages"`
	Bytes    int64        `json:"bytes"`
	// Stored is how far the last sequence moved: messages stored, whatever
	// limits or acks removed since.
	Stored       int64   `json:"stored"`
	StoredPerSec float64 `json:"stored_per_sec"`
}

// Diff sets on cur the deltas of every stream and consumer that prev also
// holds. Intervals are measured between the server's own timestamps of the
// two reports.
func Diff(prev, cur *Snapshot) {
	if prev == nil || cur == nil {
		return
	}
	fallback := cur.Taken.Sub(prev.Taken)
	for i := range cur.Streams {
		st := &cur.Streams[i]
		was := prev.Stream(st.Name)
		if was == nil {
			continue
		}
		iv := interval(was.TimeStamp, st.TimeStamp, fallback)
		stored := int64(st.LastSeq) - int64(was.LastSeq)
		st.Delta = &StreamDelta{
			Interval:     doc.Duration(iv),
			Messages:     int64(st.Messages) - int64(was.Messages),
			Bytes:        int64(st.Bytes) - int64(was.Bytes),
			Stored:       stored,
			StoredPerSec: perSec(stored, iv),
		}
		for j := range st.Consumers {
			c := &st.Consumers[j]
			old := was.Consumer(c.Name)
			if old == nil {
				continue
			}
			iv := interval(old.TimeStamp, c.TimeStamp, fallback)
			delivered := int64(c.Delivered.ConsumerSeq) - int64(old.Delivered.ConsumerSeq)
			ackPending := int64(c.NumAckPending) - int64(old.NumAckPending)
			acked := delivered - ackPending
			if c.Config.AckPolicy == jetstream.AckNonePolicy {
				acked = 0
			}
			c.Delta = &Delta{
				Interval:        doc.Duration(iv),
				Pending:         int64(c.NumPending) - int64(old.NumPending),
				AckPending:      ackPending,
				Redelivered:     int64(c.NumRedelivered) - int64(old.NumRedelivered),
				Delivered:       delivered,
				Acked:           acked,
				AckFloor:        int64(c.AckFloor.ConsumerSeq) - int64(old.AckFloor.ConsumerSeq),
				DeliveredPerSec: perSec(delivered, iv),
				AckedPerSec:     perSec(acked, iv),
			}
		}
	}
}

func interval(from, to time.Time, fallback time.Duration) time.Duration {
	if !from.IsZero() && !to.IsZero() && to.After(from) {
		return to.Sub(from)
	}
	return fallback
}

// perSec is a rate; a sequence that went back (the consumer was reset or
// recreated) has none.
func perSec(n int64, iv time.Duration) float64 {
	if iv <= 0 || n <= 0 {
		return 0
	}
	return float64(n) / iv.Seconds()
}
