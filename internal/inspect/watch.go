package inspect

import (
	"cmp"
	"slices"
	"time"
)

// Watch follows snapshots across --watch refreshes: it diffs each against
// the previous one with the events a Listener counted meanwhile, follows
// each consumer's acks and outstanding deliveries, and judges every
// consumer again with what that adds. It holds no connection.
type Watch struct {
	thresholds Thresholds
	listener   *Listener
	prev       *Snapshot
	follow     map[Key]*follow
}

// follow is what a Watch remembers of one consumer.
type follow struct {
	lastAck *time.Time
	proven  bool
	// seen are the delivered consumer sequences and their times, one per
	// refresh, oldest first, while they can still date an outstanding
	// delivery.
	seen []delivered
}

type delivered struct {
	seq uint64
	at  time.Time
}

// maxSeen bounds what a Watch keeps per consumer.
const maxSeen = 4096

// NewWatch starts following; l may be nil (no events: the deltas say so).
func NewWatch(t Thresholds, l *Listener) *Watch {
	return &Watch{thresholds: t, listener: l, follow: map[Key]*follow{}}
}

// Next takes in the next refresh: it sets the deltas since the previous
// one (none at the first), the events of the interval, each consumer's
// LastAck and health, the summary, and the busiest consumers (Top).
func (w *Watch) Next(snap *Snapshot) {
	var events map[Key]*Events
	unavailable := w.listener.Unavailable()
	if w.listener != nil {
		taken := w.listener.Take()
		if unavailable == "" {
			events = taken
		}
	}
	if w.prev != nil {
		diff(w.prev, snap, events, unavailable)
	}
	live := map[Key]bool{}
	for i := range snap.Streams {
		st := &snap.Streams[i]
		for j := range st.Consumers {
			c := &st.Consumers[j]
			k := Key{st.Name, c.Name}
			live[k] = true
			f := w.follow[k]
			fresh := f == nil || c.Delta != nil && c.Delta.Reset
			if fresh {
				f = &follow{}
				w.follow[k] = f
			}
			obs := f.observe(c, fresh)
			if c.info != nil {
				c.Health = Judge(c.info, reportTime(c.TimeStamp), w.thresholds, obs)
			}
		}
	}
	for k := range w.follow {
		if !live[k] {
			delete(w.follow, k)
		}
	}
	snap.summarize()
	snap.Top = top(snap)
	w.prev = snap
}

// observe updates what is known of the consumer from its new report and
// returns it as an Observation, setting c.LastAck.
func (f *follow) observe(c *Consumer, fresh bool) *Observation {
	now := reportTime(c.TimeStamp)
	d := c.Delta
	switch {
	case fresh:
		f.lastAck = c.AckFloor.Last
	case d != nil && d.Acked > 0:
		// The interval proved acks: the last of them landed by the time the
		// ack floor last moved.
		at := now
		if c.AckFloor.Last != nil {
			at = *c.AckFloor.Last
		}
		f.lastAck, f.proven = &at, true
	}
	if c.Delivered.Last != nil && (len(f.seen) == 0 || f.seen[len(f.seen)-1].seq != c.Delivered.ConsumerSeq) {
		f.seen = append(f.seen, delivered{c.Delivered.ConsumerSeq, *c.Delivered.Last})
	}
	// The oldest ack-pending message was first delivered at consumer
	// sequence ack_floor+1: at or before the delivered time of the first
	// refresh whose delivered sequence had reached it.
	var since *time.Time
	oldest := c.AckFloor.ConsumerSeq + 1
	for i, s := range f.seen {
		if s.seq >= oldest {
			at := s.at
			since = &at
			f.seen = f.seen[i:]
			break
		}
	}
	if len(f.seen) > maxSeen {
		f.seen = f.seen[len(f.seen)-maxSeen:]
	}
	la := &LastAck{Proven: f.proven}
	if f.lastAck != nil {
		at := *f.lastAck
		la.At = &at
		la.Age = age(&at, now)
		la.AgeMS = millis(la.Age)
	}
	c.LastAck = la
	return &Observation{Delta: d, LastAck: f.lastAck, OutstandingSince: since}
}

// topN is how many consumers Top names per kind.
const topN = 3

// top names the consumers with the most redeliveries, NAKs, client
// terminations and max-deliver drops in the interval.
func top(snap *Snapshot) []Top {
	var out []Top
	for _, kind := range []string{"redeliveries", "naks", "terminated", "max_deliveries"} {
		var all []Top
		for _, st := range snap.Streams {
			for _, c := range st.Consumers {
				d := c.Delta
				if d == nil || d.Reset {
					continue
				}
				var n int64
				switch kind {
				case "redeliveries":
					n = d.Redeliveries
				case "naks":
					if d.Events != nil {
						n = int64(d.Events.Naks)
					}
				case "terminated":
					if d.Events != nil {
						n = int64(d.Events.Terminated)
					}
				case "max_deliveries":
					if d.Events != nil {
						n = int64(d.Events.MaxDeliveries)
					}
				}
				if n > 0 {
					all = append(all, Top{Kind: kind, Stream: st.Name, Consumer: c.Name, Count: n, PerSec: perSec(n, time.Duration(d.Interval))})
				}
			}
		}
		slices.SortStableFunc(all, func(a, b Top) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return cmp.Compare(a.Stream+"\x00"+a.Consumer, b.Stream+"\x00"+b.Consumer)
		})
		out = append(out, all[:min(len(all), topN)]...)
	}
	return out
}
