package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// consumerView is everything about one consumer.
func consumerView(b *strings.Builder, st *inspect.Stream, c *inspect.Consumer, o InspectOptions, p palette) {
	fmt.Fprintf(b, "%s %s  %s", p.bold.Sprint("Consumer"), p.bold.Sprint(st.Name+" › "+c.Name), p.status(c.Health.Status, strings.ToUpper(c.Health.Status.String())))
	if c.Ackprobe {
		b.WriteString(p.dim.Sprint("  (created by ackprobe)"))
	}
	b.WriteString("\n")
	cfg := c.Config
	k := &kv{b: b, p: p, width: o.Width}
	if cfg.Description != "" {
		k.add("description", cfg.Description)
	}
	kind := c.Kind
	if cfg.Durable != "" {
		kind += ", durable"
	} else {
		kind += ", ephemeral"
	}
	kind += fmt.Sprintf(", %s ack", ackPolicyName(cfg.AckPolicy))
	if cfg.AckPolicy != jetstream.AckNonePolicy {
		kind += ", ack wait " + inspect.Short(cfg.AckWait)
	}
	kind += ", max deliver " + limit(int64(cfg.MaxDeliver), num[int64])
	k.add("kind", kind)
	if c.Kind == "push" {
		bound := "no subscriber"
		if c.PushBound {
			bound = "bound"
		}
		k.add("deliver subject", fmt.Sprintf("%s (%s)", cfg.DeliverSubject, bound))
	}
	filter := "all subjects of the stream"
	switch {
	case cfg.FilterSubject != "":
		filter = cfg.FilterSubject
	case len(cfg.FilterSubjects) > 0:
		filter = strings.Join(cfg.FilterSubjects, ", ")
	}
	k.add("filter", filter)
	k.add("deliver", fmt.Sprintf("from %s, replay %s", deliverName(cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime), replayName(cfg.ReplayPolicy)))
	if len(cfg.BackOff) > 0 {
		var bo []string
		for _, d := range cfg.BackOff {
			bo = append(bo, inspect.Short(d))
		}
		k.add("backoff", strings.Join(bo, ", "))
	}
	limits := "max ack pending " + limit(int64(cfg.MaxAckPending), num[int64])
	if c.Kind == "pull" {
		limits += fmt.Sprintf(", max waiting %s, max batch %s, max expires %s", limit(int64(cfg.MaxWaiting), num[int64]),
			limit(int64(cfg.MaxRequestBatch), num[int64]), limit(int64(cfg.MaxRequestExpires), func(v int64) string { return inspect.Short(time.Duration(v)) }))
	}
	if cfg.InactiveThreshold > 0 {
		limits += ", removed after " + inspect.Short(cfg.InactiveThreshold) + " inactive"
	}
	k.add("limits", limits)
	if cfg.PriorityPolicy != jetstream.PriorityPolicyNone {
		k.add("priority", fmt.Sprintf("%s, groups %s", priorityName(cfg.PriorityPolicy), strings.Join(cfg.PriorityGroups, ", ")))
	}
	k.add("created", timeAndAge(c.Created, c.TimeStamp))
	if m := metadataLine(cfg.Metadata); m != "" {
		k.add("metadata", m)
	}
	stream := fmt.Sprintf("%s: %s %s, %s", st.Name, num(st.Messages), inspect.Plural(int(min(st.Messages, 2)), "message", "messages"), humanize.IBytes(st.Bytes))
	if st.LastAge != nil {
		stream += fmt.Sprintf(", last message %s ago", inspect.Short(time.Duration(*st.LastAge)))
	}
	if st.Ackprobe {
		stream += " (created by ackprobe)"
	}
	k.add("stream", stream)
	k.flush()

	fmt.Fprintf(b, "\n%s\n", p.bold.Sprint("State"))
	paint := p.painter(c.Health)
	d := c.Delta
	moved := func(f func(*inspect.Delta) int64) string {
		if d == nil {
			return ""
		}
		return "  (" + p.delta(f(d)) + ")"
	}
	k.add("pending", paint(num(c.NumPending)+" not yet delivered", "unprocessed")+moved(func(d *inspect.Delta) int64 { return d.Pending }))
	ap := num(c.NumAckPending) + " delivered, not yet acked"
	if c.AckPendingShare != nil {
		ap = fmt.Sprintf("%s of max %s (%s)", num(c.NumAckPending), num(c.MaxAckPending), inspect.Percent(*c.AckPendingShare))
	}
	k.add("ack pending", paint(ap, "outstanding-ack", "ack-pending")+moved(func(d *inspect.Delta) int64 { return d.AckPending }))
	k.add("redelivered", paint(num(c.NumRedelivered), "redelivery")+moved(func(d *inspect.Delta) int64 { return d.Redelivered }))
	if c.Kind == "pull" {
		k.add("waiting", paint(num(c.NumWaiting)+" pull "+inspect.Plural(c.NumWaiting, "request", "requests"), "waiting"))
	}
	k.add("last delivered", paint(sequenceLine(c.Delivered), "last-delivery"))
	// The server moves the floor, and its time, for terminations and
	// removals as for acks: the time is when it moved, not the last ack.
	floor := fmt.Sprintf("stream seq %s, consumer seq %s", num(c.AckFloor.StreamSeq), num(c.AckFloor.ConsumerSeq))
	if c.AckFloor.Age != nil {
		floor += fmt.Sprintf(", moved %s ago", inspect.Short(time.Duration(*c.AckFloor.Age)))
	}
	k.add("ack floor", paint(floor, "last-ack"))
	if la := c.LastAck; la != nil {
		k.add("last ack", paint(lastAckLine(la), "last-ack"))
	}
	if d != nil {
		watchLines(k, c, d, p)
	}
	if c.Paused {
		until := ""
		if c.PauseUntil != nil {
			until = " until " + c.PauseUntil.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		k.add("paused", p.warn.Sprintf("yes%s, %s left", until, inspect.Short(time.Duration(c.PauseRemaining))))
	}
	for _, g := range c.PriorityGroups {
		v := "no client pinned"
		if g.PinnedClientID != "" {
			v = "pinned to " + g.PinnedClientID
			if g.PinnedTS != nil {
				v += fmt.Sprintf(" for %s", inspect.Short(max(c.TimeStamp.Sub(*g.PinnedTS), 0)))
			}
		}
		k.add("group "+g.Group, v)
	}
	if c.Cluster != nil {
		k.add("cluster", clusterLine(c.Cluster, c.TimeStamp, p))
	}
	k.flush()

	fmt.Fprintf(b, "\n%s %s\n", p.bold.Sprint("Health"), p.status(c.Health.Status, c.Health.Status.String()))
	if len(c.Health.Reasons) == 0 {
		fmt.Fprintf(b, "  %s no rule fired\n", p.good.Sprint("✓"))
	}
	for _, r := range c.Health.Reasons {
		b.WriteString(wrapLine(fmt.Sprintf("  %s %s: %s", p.mark(r.Status), r.Rule, r.Message), o.Width, 4) + "\n")
	}
	for _, ov := range c.Health.Overrides {
		fmt.Fprintf(b, "  %s\n", p.dim.Sprintf("threshold from metadata: %s", ov))
	}
}

// lastAckLine is the last ack as watching could tell it.
func lastAckLine(la *inspect.LastAck) string {
	switch {
	case la.At == nil:
		return "none known"
	case la.Proven:
		return fmt.Sprintf("%s ago", inspect.Short(time.Duration(*la.Age)))
	}
	return fmt.Sprintf("none seen while watching; the ack floor moved %s ago (an ack, a termination or a removal)", inspect.Short(time.Duration(*la.Age)))
}

// watchLines are what moved since the previous refresh, and what the
// server announced meanwhile.
func watchLines(k *kv, c *inspect.Consumer, d *inspect.Delta, p palette) {
	iv := inspect.Short(time.Duration(d.Interval))
	if d.Reset {
		k.add("since refresh", "the consumer was reset or recreated in the last "+iv)
		return
	}
	acked := fmt.Sprintf("%s acked (%s)", p.delta(d.Acked), rate(d.AckedPerSec))
	if !d.Exact() {
		acked = fmt.Sprintf("%s to %s acked (%s)", num(d.Acked), num(d.AckedMax), ackedRate(d))
	}
	k.add("since refresh", fmt.Sprintf("%s delivered (%s), of which %s redelivered; %s; ack floor %s; in %s",
		p.delta(d.Delivered), rate(d.DeliveredPerSec), num(d.Redeliveries), acked, p.delta(d.AckFloor), iv))
	if ev := d.Events; ev != nil {
		k.add("advisories", fmt.Sprintf("%s NAKed, %s terminated by the client, %s at max deliver, %s left the stream while ack pending",
			num(ev.Naks), num(ev.Terminated), num(ev.MaxDeliveries), num(ev.Removed)))
	} else if d.EventsUnavailable != "" {
		k.add("advisories", p.warn.Sprint("not counted: "+d.EventsUnavailable))
	}
	if d.LeftUnknown > 0 {
		k.add("unknown", p.warn.Sprintf("up to %s ack-pending messages may have left the stream unannounced (a purge): not counted as acks", num(d.LeftUnknown)))
	}
	switch {
	case c.Config.SampleFrequency == "":
		k.add("ack time", "sampling off (the consumer has no sample_freq; inspect never changes a consumer)")
	case d.AckTimes == nil:
		k.add("ack time", fmt.Sprintf("sampling %s, no sampled ack in the last %s", c.Config.SampleFrequency, iv))
	default:
		a := d.AckTimes
		fired := firedRules(c.Health)
		k.add("ack time", p.status(fired["late-ack"], fmt.Sprintf("p50 %s, p99 %s, max %s (%s sampled, %s past the ack wait, %s after a redelivery)",
			ackTime(time.Duration(a.P50)), ackTime(time.Duration(a.P99)), ackTime(time.Duration(a.Max)), num(a.Count), num(a.Late), num(a.AfterRedelivery))))
	}
}

func sequenceLine(s inspect.Sequence) string {
	v := fmt.Sprintf("stream seq %s, consumer seq %s", num(s.StreamSeq), num(s.ConsumerSeq))
	if s.Age != nil {
		return v + fmt.Sprintf(", %s ago", inspect.Short(time.Duration(*s.Age)))
	}
	return v
}
