package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

func hasDeltas(snap *inspect.Snapshot) bool {
	for _, st := range snap.Streams {
		if st.Delta != nil {
			return true
		}
		for _, c := range st.Consumers {
			if c.Delta != nil {
				return true
			}
		}
	}
	return false
}

// watchCells are a consumer's rates under --watch: deliveries,
// redeliveries and acks per second, and the sampled ack times.
func watchCells(c *inspect.Consumer, p palette) []cell {
	d := c.Delta
	if d == nil || d.Reset {
		at := ""
		if d != nil {
			at = "reset"
		}
		return []cell{one(at), one(""), one(""), one(ackTimeCell(c))}
	}
	fired := firedRules(c.Health)
	red := p.status(fired["redelivery-storm"], perSec(d.RedeliveriesPerSec))
	return []cell{one(perSec(d.DeliveredPerSec)), one(red), one(ackedRate(d)), one(p.status(fired["late-ack"], ackTimeCell(c)))}
}

// ackedRate is the acks per second proven in the interval, or the range
// when messages may have left the stream unannounced.
func ackedRate(d *inspect.Delta) string {
	if d.Exact() {
		return perSec(d.AckedPerSec)
	}
	lo := "0"
	if d.AckedPerSec > 0 {
		lo = strings.TrimSuffix(perSec(d.AckedPerSec), "/s")
	}
	return lo + "–" + perSec(d.AckedMaxPerSec)
}

// ackTimeCell is the sampled ack time p50/p99, "off" when the consumer
// samples no acks (sample_freq unset), "-" when no sampled ack arrived.
func ackTimeCell(c *inspect.Consumer) string {
	if c.Config.SampleFrequency == "" {
		return "off"
	}
	if c.Delta == nil || c.Delta.AckTimes == nil {
		return "-"
	}
	a := c.Delta.AckTimes
	return ackTime(time.Duration(a.P50)) + "/" + ackTime(time.Duration(a.P99))
}

// ackTime is a sampled ack time: microseconds below a millisecond.
func ackTime(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return inspect.Short(d)
}

// watchNotes says, under --watch, what the advisories could not tell and
// which consumers were the busiest with redeliveries, NAKs, terminations
// and max deliveries in the interval.
func watchNotes(b *strings.Builder, snap *inspect.Snapshot, width int, p palette) {
	if !hasDeltas(snap) {
		return
	}
	wrote := false
	line := func(s string) {
		b.WriteString(wrapLine(s, width, 2) + "\n")
		wrote = true
	}
	unavailable := ""
	for _, st := range snap.Streams {
		for _, c := range st.Consumers {
			if c.Delta != nil && c.Delta.EventsUnavailable != "" {
				unavailable = c.Delta.EventsUnavailable
			}
		}
	}
	if unavailable != "" {
		line(p.warn.Sprint("?") + " advisories not counted: " + unavailable + "; NAKs, terminations and max deliveries are unknown, and acks are shown as ranges where messages may have left the stream")
	}
	for _, st := range snap.Streams {
		for _, c := range st.Consumers {
			d := c.Delta
			if d == nil || d.Reset {
				continue
			}
			name := st.Name + " › " + c.Name
			if ev := d.Events; ev != nil && ev.Removed > 0 {
				line(fmt.Sprintf("%s %s: %s ack-pending %s left the stream in the last %s (limits, max age or deletes): not acks",
					p.dim.Sprint("·"), p.bold.Sprint(name), num(ev.Removed), inspect.Plural(ev.Removed, "message", "messages"), inspect.Short(time.Duration(d.Interval))))
			}
			if d.LeftUnknown > 0 {
				line(fmt.Sprintf("%s %s: up to %s ack-pending %s may have left the stream unannounced (a purge, or advisories not counted): acks were %s to %s",
					p.warn.Sprint("?"), p.bold.Sprint(name), num(d.LeftUnknown), inspect.Plural(int(min(d.LeftUnknown, 2)), "message", "messages"), num(d.Acked), num(d.AckedMax)))
			}
		}
	}
	kinds := []struct{ kind, what string }{
		{"redeliveries", "redeliveries"}, {"naks", "NAKs"}, {"terminated", "terminated (+TERM)"}, {"max_deliveries", "max deliveries"},
	}
	for _, k := range kinds {
		var parts []string
		for _, t := range snap.Top {
			if t.Kind == k.kind {
				parts = append(parts, fmt.Sprintf("%s %s (%s)", p.bold.Sprint(t.Stream+" › "+t.Consumer), num(t.Count), rate(t.PerSec)))
			}
		}
		if len(parts) > 0 {
			line(fmt.Sprintf("%s most %s: %s", p.accent.Sprint("▲"), k.what, strings.Join(parts, ", ")))
		}
	}
	if wrote {
		b.WriteString("\n")
	}
}

// perSec formats a rate measured over a watch interval: nothing moving is
// a figure too, 0/s.
func perSec(v float64) string {
	if v == 0 {
		return "0/s"
	}
	return rate(v)
}
