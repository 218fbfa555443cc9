package inspect

import (
	"slices"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go/jetstream"
)

// Delta is how a consumer moved between two snapshots, and what the server
// announced about it meanwhile.
//
// Consumer info counts no acks. Messages stop being ack pending when they
// are acked, but also when a client terminates them (+TERM), when they
// reach MaxDeliver, and when they leave the stream (limits, max age,
// deletes, purges) — and each of these moves the ack floor as an ack does.
// Acked is therefore what is left of the ack-pending outflow once the
// advisories of the others are taken off; removals that announce nothing
// (purges, or everything when the advisories could not be subscribed to)
// are bounded from the stream's state and make Acked a range.
type Delta struct {
	Interval   doc.Duration `json:"interval"`
	IntervalMS float64      `json:"interval_ms"`
	// Pending and AckPending are the changes of num_pending and
	// num_ack_pending.
	Pending    int64 `json:"pending"`
	AckPending int64 `json:"ack_pending"`
	// Redelivered is the change of num_redelivered.
	Redelivered int64 `json:"redelivered"`
	// Delivered is how far the delivered consumer sequence moved: every
	// delivery, redeliveries included.
	Delivered int64 `json:"delivered"`
	// Redeliveries is how many of the deliveries were redeliveries: those
	// beyond the move of the delivered stream sequence. Exact for a
	// consumer of every subject of its stream; for a filtered consumer, at
	// least this many.
	Redeliveries int64 `json:"redeliveries"`
	// Outflow is how many messages stopped being ack pending: first
	// deliveries less the growth of num_ack_pending.
	Outflow int64 `json:"outflow"`
	// Acked is the outflow less what the server announced was not an ack
	// (Events) and less what may have left the stream unannounced
	// (LeftUnknown): acks proven in the interval. AckedMax is the same
	// without LeftUnknown taken off; the two are equal when the count is
	// exact.
	Acked    int64 `json:"acked"`
	AckedMax int64 `json:"acked_max"`
	// LeftUnknown is how many ack-pending messages may have left the stream
	// without an advisory counted: by a purge, or by limits and deletes when
	// the advisories were not available. Bounded by the old num_ack_pending
	// and the stream sequences that left (first_seq, num_deleted).
	LeftUnknown int64 `json:"left_unknown"`
	// Events are the advisories and sampled acks counted in the interval;
	// absent when they could not be subscribed to (EventsUnavailable says why).
	Events            *Events `json:"events,omitempty"`
	EventsUnavailable string  `json:"events_unavailable,omitempty"`
	// AckTimes summarizes the sampled acks' delivery→ack times; absent
	// when no ack metric event arrived.
	AckTimes *AckTimes `json:"ack_times,omitempty"`
	// AckFloor is how far the ack floor's consumer sequence moved: it
	// stays put under one old unacked message however many acks land above,
	// and moves for removals and terminations as for acks.
	AckFloor int64 `json:"ack_floor"`
	// Reset is true when the delivered sequence went back (the consumer was
	// recreated or reset): nothing else is computed.
	Reset              bool    `json:"reset,omitempty"`
	DeliveredPerSec    float64 `json:"delivered_per_sec"`
	RedeliveriesPerSec float64 `json:"redeliveries_per_sec"`
	AckedPerSec        float64 `json:"acked_per_sec"`
	AckedMaxPerSec     float64 `json:"acked_max_per_sec"`
	NaksPerSec         float64 `json:"naks_per_sec"`
	TerminatedPerSec   float64 `json:"terminated_per_sec"`
}

// Exact reports whether Acked is a count rather than a range.
func (d *Delta) Exact() bool { return d.Acked == d.AckedMax }

// AckTimes summarizes sampled delivery→ack times (ack metric events).
type AckTimes struct {
	Count int          `json:"count"`
	P50   doc.Duration `json:"p50"`
	P50MS float64      `json:"p50_ms"`
	P99   doc.Duration `json:"p99"`
	P99MS float64      `json:"p99_ms"`
	Max   doc.Duration `json:"max"`
	MaxMS float64      `json:"max_ms"`
	// Late counts the sampled acks whose ack_time exceeds the consumer's
	// AckWait: they landed after the server could have redelivered. The
	// server counts ack_time from the delivery and again from the moment
	// the ack wait expired, so this sees acks that came more than an ack
	// wait after that: later than twice the ack wait when nothing was
	// redelivered meanwhile.
	Late int `json:"late"`
	// AfterRedelivery counts the sampled acks of messages the server had
	// delivered more than once. ack_time counts from the latest delivery,
	// so an ack from the first worker after a redelivery shows here, not
	// in Late.
	AfterRedelivery int `json:"after_redelivery"`
}

func ackTimes(ts []time.Duration, ackWait time.Duration) *AckTimes {
	if len(ts) == 0 {
		return nil
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	a := &AckTimes{Count: len(s), P50: doc.Duration(q(0.50)), P99: doc.Duration(q(0.99)), Max: doc.Duration(s[len(s)-1])}
	a.P50MS, a.P99MS, a.MaxMS = a.P50.Millis(), a.P99.Millis(), a.Max.Millis()
	if ackWait > 0 {
		for _, t := range s {
			if t > ackWait {
				a.Late++
			}
		}
	}
	return a
}

// StreamDelta is how a stream moved between two snapshots.
type StreamDelta struct {
	Interval   doc.Duration `json:"interval"`
	IntervalMS float64      `json:"interval_ms"`
	Messages   int64        `json:"messages"`
	Bytes      int64        `json:"bytes"`
	// Stored is how far the last sequence moved: messages stored, whatever
	// limits or acks removed since.
	Stored       int64   `json:"stored"`
	StoredPerSec float64 `json:"stored_per_sec"`
	// Left is how far the first sequence moved: messages that left the
	// head of the stream (limits, acks on a work queue, purges).
	Left int64 `json:"left"`
}

// Diff sets on cur the deltas of every stream and consumer that prev also
// holds, without events. Intervals are measured between the server's own
// timestamps of the two reports.
func Diff(prev, cur *Snapshot) { diff(prev, cur, nil, "advisories were not subscribed to") }

// diff is Diff with the events counted in the interval; events is nil and
// unavailable says why when there are none to count.
func diff(prev, cur *Snapshot, events map[Key]*Events, unavailable string) {
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
			IntervalMS:   doc.Millis(iv),
			Messages:     int64(st.Messages) - int64(was.Messages),
			Bytes:        int64(st.Bytes) - int64(was.Bytes),
			Stored:       stored,
			StoredPerSec: perSec(stored, iv),
			Left:         max(int64(st.FirstSeq)-int64(was.FirstSeq), 0),
		}
		for j := range st.Consumers {
			c := &st.Consumers[j]
			old := was.Consumer(c.Name)
			if old == nil {
				continue
			}
			var ev *Events
			if events != nil {
				ev = events[Key{st.Name, c.Name}]
				if ev == nil {
					ev = &Events{}
				}
			}
			c.Delta = consumerDelta(old, c, was, st, interval(old.TimeStamp, c.TimeStamp, fallback), ev, unavailable)
		}
	}
}

func consumerDelta(old, c *Consumer, oldSt, st *Stream, iv time.Duration, ev *Events, unavailable string) *Delta {
	d := &Delta{
		Interval:    doc.Duration(iv),
		IntervalMS:  doc.Millis(iv),
		Pending:     int64(c.NumPending) - int64(old.NumPending),
		AckPending:  int64(c.NumAckPending) - int64(old.NumAckPending),
		Redelivered: int64(c.NumRedelivered) - int64(old.NumRedelivered),
		Delivered:   int64(c.Delivered.ConsumerSeq) - int64(old.Delivered.ConsumerSeq),
		AckFloor:    int64(c.AckFloor.ConsumerSeq) - int64(old.AckFloor.ConsumerSeq),
		Events:      ev,
	}
	if ev == nil {
		d.EventsUnavailable = unavailable
	}
	if d.Delivered < 0 || c.Created.After(old.TimeStamp) && !old.TimeStamp.IsZero() {
		return &Delta{Interval: d.Interval, IntervalMS: d.IntervalMS, Reset: true, Events: ev, EventsUnavailable: d.EventsUnavailable}
	}
	firstSeq := max(int64(c.Delivered.StreamSeq)-int64(old.Delivered.StreamSeq), 0)
	first := min(d.Delivered, firstSeq)
	d.Redeliveries = d.Delivered - first
	if c.Config.AckPolicy != jetstream.AckNonePolicy {
		d.Outflow = max(first-d.AckPending, 0)
		acked := d.Outflow
		if ev != nil {
			acked -= int64(ev.Removed + ev.Terminated + ev.MaxDeliveries)
		}
		acked = max(acked, 0)
		removed := int64(0)
		if ev != nil {
			removed = int64(ev.Removed)
		}
		d.LeftUnknown = min(max(mayHaveLeft(old, oldSt, st)-removed, 0), acked)
		d.Acked, d.AckedMax = acked-d.LeftUnknown, acked
	}
	if ev != nil {
		d.AckTimes = ackTimes(ev.AckTimes, c.Config.AckWait)
		if d.AckTimes != nil {
			d.AckTimes.AfterRedelivery = ev.AcksAfterRedelivery
		}
		d.NaksPerSec = perSec(int64(ev.Naks), iv)
		d.TerminatedPerSec = perSec(int64(ev.Terminated), iv)
	}
	d.DeliveredPerSec = perSec(d.Delivered, iv)
	d.RedeliveriesPerSec = perSec(d.Redeliveries, iv)
	d.AckedPerSec = perSec(d.Acked, iv)
	d.AckedMaxPerSec = perSec(d.AckedMax, iv)
	return d
}

// mayHaveLeft bounds how many of the consumer's ack-pending messages left
// the stream between two snapshots: those of its old pending range
// (above the ack floor, up to the last delivered stream sequence) that are
// now below the stream's first sequence, plus sequences deleted inside the
// stream, never more than were ack pending.
func mayHaveLeft(old *Consumer, oldSt, st *Stream) int64 {
	if old.NumAckPending == 0 {
		return 0
	}
	lo := max(old.AckFloor.StreamSeq, oldSt.FirstSeq-min(oldSt.FirstSeq, 1))
	hi := min(old.Delivered.StreamSeq, st.FirstSeq-min(st.FirstSeq, 1))
	n := int64(0)
	if hi > lo {
		n = int64(hi - lo)
	}
	n += max(int64(st.NumDeleted)-int64(oldSt.NumDeleted), 0)
	return min(n, int64(old.NumAckPending))
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
