package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// overview is one table of every stream and its consumers.
func overview(b *strings.Builder, snap *inspect.Snapshot, o InspectOptions, p palette) {
	if len(snap.Streams) == 0 && len(snap.Missing) == 0 {
		if snap.Selection != nil && snap.Selection.Only != nil && snap.Summary.Streams > 0 {
			b.WriteString(fmt.Sprintf("No consumer at %s or worse.\n\n", snap.Selection.Only))
			verdictLine(b, snap, o.Width, p)
			return
		}
		b.WriteString("No streams in this account.\n")
		if snap.Server.Embedded {
			b.WriteString(p.dim.Sprint("(this is an empty embedded server: give -s URL or NATS_URL to inspect a real one)") + "\n")
		}
		return
	}
	b.WriteString(consumerTable(snap.Streams, true, hasDeltas(snap), o.Width, p) + "\n\n")
	missing(b, snap.Missing, "stream", o.Width, p)
	for _, st := range snap.Streams {
		missing(b, st.MissingConsumers, "consumer of "+st.Name, o.Width, p)
	}
	watchNotes(b, snap, o.Width, p)
	reasons(b, snap.Streams, true, o.Width, p)
	verdictLine(b, snap, o.Width, p)
}

// consumerTable is the table of the overview (withStreams: a row for each
// stream above its consumers) and of the stream view. It fits width: on a
// narrow terminal the stream and consumer names share a column, headers
// and cells shorten, and the least important columns go.
func consumerTable(streams []inspect.Stream, withStreams, watching bool, width int, p palette) string {
	full := consumerTableLayout(streams, withStreams, false, watching, p)
	if width <= 0 || textWidth(full) <= width {
		return full
	}
	cols, rows, seps := consumerTableRows(streams, withStreams, true, watching, p)
	return fitTable(cols, rows, seps, width)
}

func consumerTableLayout(streams []inspect.Stream, withStreams, merged, watching bool, p palette) string {
	cols, rows, seps := consumerTableRows(streams, withStreams, merged, watching, p)
	return fitTable(cols, rows, seps, 0)
}

// consumerTableRows builds the columns and rows; merged puts stream and
// consumer names in one column.
func consumerTableRows(streams []inspect.Stream, withStreams, merged, watching bool, p palette) ([]column, [][]cell, []int) {
	var cols []column
	switch {
	case withStreams && merged:
		cols = append(cols, column{header: "Stream / Consumer", short: "Stream / Consumer", trim: true})
	case withStreams:
		cols = append(cols, column{header: "Stream", trim: true}, column{header: "Consumer", trim: true})
	default:
		cols = append(cols, column{header: "Consumer", trim: true})
	}
	if withStreams {
		cols = append(cols, column{header: "Messages", short: "Msgs", right: true, drop: 5}, column{header: "Bytes", right: true, drop: 2})
	}
	cols = append(cols,
		column{header: "Pending", short: "Pend", right: true},
		column{header: "Ack Pending", short: "AckPend", right: true},
		column{header: "Redelivered", short: "Redeliv", right: true, drop: 8},
		column{header: "Waiting", short: "Wait", right: true, drop: 4},
		column{header: "Delivered", short: "Deliv", right: true, drop: 6},
		column{header: "Ack Floor", short: "Floor", right: true, drop: 3},
	)
	if watching {
		cols = append(cols,
			column{header: "Delivered/s", short: "Del/s", right: true, drop: 7},
			column{header: "Redelivered/s", short: "Red/s", right: true, drop: 7},
			column{header: "Acked/s", short: "Ack/s", right: true, drop: 9},
			column{header: "Ack Time p50/p99", short: "AckTime", right: true, drop: 2},
		)
	}
	cols = append(cols, column{header: "Status"}, column{header: "Notes", trim: true, drop: 1})

	var rows [][]cell
	var seps []int
	for i := range streams {
		st := &streams[i]
		if withStreams {
			seps = append(seps, len(rows))
			var row []cell
			if merged {
				// No column of its own for the count: the name says what
				// --only left out.
				name := p.bold.Sprint(st.Name)
				if st.HiddenConsumers > 0 {
					name += "  " + p.dim.Sprintf("showing %s of %s", num(len(st.Consumers)), num(len(st.Consumers)+st.HiddenConsumers))
				}
				row = append(row, one(name))
			} else {
				row = append(row, one(p.bold.Sprint(st.Name)), one(p.dim.Sprint(consumerCount(st))))
			}
			msgs := withDelta(num(st.Messages), st.Delta, func(d *inspect.StreamDelta) int64 { return d.Messages }, p)
			row = append(row, cell{msgs, num(st.Messages)}, one(humanize.IBytes(st.Bytes)))
			for len(row) < len(cols)-1 {
				row = append(row, one(""))
			}
			rows = append(rows, append(row, one(streamNotes(st))))
		}
		for j := range st.Consumers {
			c := &st.Consumers[j]
			var row []cell
			switch {
			case withStreams && merged:
				row = append(row, one("  "+c.Name))
			case withStreams:
				row = append(row, one(""), one(c.Name))
			default:
				row = append(row, one(c.Name))
			}
			if withStreams {
				row = append(row, one(""), one(""))
			}
			rows = append(rows, append(row, consumerCells(c, watching, p)...))
		}
	}
	return cols, rows, seps
}

// consumerCount is how many consumers a stream has and, when --only left
// some out, how many of them are shown.
func consumerCount(st *inspect.Stream) string {
	shown, all := len(st.Consumers), len(st.Consumers)+st.HiddenConsumers
	switch {
	case all == 0:
		return "no consumers"
	case shown < all:
		return fmt.Sprintf("showing %s of %s %s", num(shown), num(all), inspect.Plural(all, "consumer", "consumers"))
	}
	return fmt.Sprintf("%s %s", num(all), inspect.Plural(all, "consumer", "consumers"))
}

// consumerCells are a consumer's figures; figures whose rule fired take
// that rule's color.
func consumerCells(c *inspect.Consumer, watching bool, p palette) []cell {
	paint := p.painter(c.Health)
	d := c.Delta
	pending := paint(num(c.NumPending), "unprocessed")
	ap := paint(ackPending(c), "outstanding-ack", "ack-pending")
	apShort := paint(num(c.NumAckPending), "outstanding-ack", "ack-pending")
	red := paint(num(c.NumRedelivered), "redelivery")
	cells := []cell{
		{withDelta(pending, d, func(d *inspect.Delta) int64 { return d.Pending }, p), pending},
		{withDelta(ap, d, func(d *inspect.Delta) int64 { return d.AckPending }, p), apShort},
		{withDelta(red, d, func(d *inspect.Delta) int64 { return d.Redelivered }, p), red},
		one(paint(num(c.NumWaiting), "waiting")),
		{paint(position(c.Delivered), "last-delivery"), paint(shortPosition(c.Delivered), "last-delivery")},
		{paint(position(c.AckFloor), "last-ack"), paint(shortPosition(c.AckFloor), "last-ack")},
	}
	if watching {
		cells = append(cells, watchCells(c, p)...)
	}
	status := c.Health.Status.String()
	short := status
	if c.Health.Status == inspect.Critical {
		short = "crit"
	}
	return append(cells, cell{p.status(c.Health.Status, status), p.status(c.Health.Status, short)}, one(consumerNotes(c)))
}

// withDelta appends the change since the previous refresh to a figure.
func withDelta[D any](s string, d *D, f func(*D) int64, p palette) string {
	if d == nil {
		return s
	}
	return s + " " + p.delta(f(d))
}

func ackPending(c *inspect.Consumer) string {
	if c.MaxAckPending > 0 && c.AckPendingShare != nil {
		return fmt.Sprintf("%s / %s", num(c.NumAckPending), num(c.MaxAckPending))
	}
	return num(c.NumAckPending)
}

// position is a stream sequence and how long ago it was reached.
func position(s inspect.Sequence) string {
	switch {
	case s.StreamSeq == 0 && s.Age == nil:
		return "-"
	case s.Age == nil:
		return num(s.StreamSeq)
	}
	return fmt.Sprintf("%s · %s ago", num(s.StreamSeq), inspect.Short(time.Duration(*s.Age)))
}

// shortPosition is position for a narrow table: "520·1.5s".
func shortPosition(s inspect.Sequence) string {
	switch {
	case s.StreamSeq == 0 && s.Age == nil:
		return "-"
	case s.Age == nil:
		return num(s.StreamSeq)
	}
	return fmt.Sprintf("%s·%s", num(s.StreamSeq), inspect.Short(time.Duration(*s.Age)))
}

func streamNotes(st *inspect.Stream) string {
	var n []string
	switch {
	case st.Orphan:
		n = append(n, "ackprobe's, orphan")
	case st.Ackprobe:
		n = append(n, "ackprobe's")
	}
	if st.Config.Replicas > 1 {
		n = append(n, fmt.Sprintf("R%d", st.Config.Replicas))
	}
	if st.Config.Mirror != nil {
		n = append(n, "mirror of "+st.Config.Mirror.Name)
	}
	return strings.Join(n, ", ")
}

func consumerNotes(c *inspect.Consumer) string {
	var n []string
	if c.Ackprobe {
		n = append(n, "ackprobe's")
	}
	if c.Kind == "push" {
		if c.PushBound {
			n = append(n, "push, bound")
		} else {
			n = append(n, "push, unbound")
		}
	}
	if c.Paused {
		n = append(n, "paused "+inspect.Short(time.Duration(c.PauseRemaining)))
	}
	for _, g := range c.PriorityGroups {
		if g.PinnedClientID != "" {
			n = append(n, fmt.Sprintf("pinned %s: %s", g.Group, g.PinnedClientID))
		}
	}
	return strings.Join(n, ", ")
}
