package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/jedib0t/go-pretty/v6/table"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// overview is one table of every stream and its consumers.
func overview(b *strings.Builder, snap *inspect.Snapshot, p palette) {
	if len(snap.Streams) == 0 && len(snap.Missing) == 0 {
		b.WriteString("No streams in this account.\n")
		if snap.Server.Embedded {
			b.WriteString(p.dim.Sprint("(this is an empty embedded server: give -s URL or NATS_URL to inspect a real one)") + "\n")
		}
		return
	}
	watching := hasDeltas(snap)
	t := newTable()
	head := table.Row{"Stream", "Consumer", "Messages", "Bytes", "Pending", "Ack Pending", "Redelivered", "Waiting", "Delivered", "Ack Floor"}
	right := []int{3, 4, 5, 6, 7, 8, 9, 10}
	if watching {
		head = append(head, "Delivered/s", "Acked/s")
		right = append(right, 11, 12)
	}
	head = append(head, "Status", "Notes")
	t.AppendHeader(head)
	alignRight(t, right...)
	for i := range snap.Streams {
		st := &snap.Streams[i]
		if i > 0 {
			t.AppendSeparator()
		}
		consumers := p.dim.Sprint("no consumers")
		if n := len(st.Consumers); n > 0 {
			consumers = p.dim.Sprintf("%s %s", num(n), inspect.Plural(n, "consumer", "consumers"))
		}
		row := table.Row{p.bold.Sprint(st.Name), consumers, withDelta(num(st.Messages), st.Delta, func(d *inspect.StreamDelta) int64 { return d.Messages }, p),
			humanize.IBytes(st.Bytes), "", "", "", "", "", ""}
		if watching {
			row = append(row, "", "")
		}
		t.AppendRow(append(row, "", streamNotes(st)))
		for j := range st.Consumers {
			t.AppendRow(consumerRow(&st.Consumers[j], watching, p))
		}
	}
	b.WriteString(t.Render() + "\n\n")
	missing(b, snap.Missing, "stream", p)
	for _, st := range snap.Streams {
		missing(b, st.MissingConsumers, "consumer of "+st.Name, p)
	}
	reasons(b, snap.Streams, true, p)
	verdictLine(b, snap.Summary, p)
}

// consumerRow is a consumer's line in the overview; figures whose rule
// fired take that rule's color.
func consumerRow(c *inspect.Consumer, watching bool, p palette) table.Row {
	fired := firedRules(c.Health)
	paint := func(s string, rules ...string) string {
		worst := inspect.OK
		for _, r := range rules {
			worst = max(worst, fired[r])
		}
		return p.status(worst, s)
	}
	d := c.Delta
	row := table.Row{"", c.Name, "", "",
		withDelta(paint(num(c.NumPending), "unprocessed"), d, func(d *inspect.Delta) int64 { return d.Pending }, p),
		withDelta(paint(ackPending(c), "outstanding-ack", "ack-pending"), d, func(d *inspect.Delta) int64 { return d.AckPending }, p),
		withDelta(paint(num(c.NumRedelivered), "redelivery"), d, func(d *inspect.Delta) int64 { return d.Redelivered }, p),
		paint(num(c.NumWaiting), "waiting"),
		paint(position(c.Delivered), "last-delivery"),
		paint(position(c.AckFloor), "last-ack"),
	}
	if watching {
		dr, ar := "", ""
		if d != nil {
			dr, ar = rate(d.DeliveredPerSec), rate(d.AckedPerSec)
		}
		row = append(row, dr, ar)
	}
	return append(row, p.status(c.Health.Status, c.Health.Status.String()), consumerNotes(c))
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

func streamNotes(st *inspect.Stream) string {
	var n []string
	if st.Ackprobe {
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
