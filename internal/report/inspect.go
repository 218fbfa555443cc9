package report

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// InspectOptions control the inspect views.
type InspectOptions struct {
	// Color turns ANSI colors on; the caller decides.
	Color bool
	// Watch is the refresh interval under --watch, shown in the title.
	Watch time.Duration
	// Refresh numbers the refreshes under --watch, from 1.
	Refresh int
}

// Inspect writes a snapshot as the view its scope asks for: every stream
// and consumer, one stream, or one consumer.
func Inspect(w io.Writer, snap *inspect.Snapshot, o InspectOptions) error {
	p := newPalette(o.Color)
	var b strings.Builder
	inspectTitle(&b, snap, o, p)
	switch {
	case snap.Scope.Consumer != "" && len(snap.Streams) == 1 && len(snap.Streams[0].Consumers) == 1:
		consumerView(&b, &snap.Streams[0], &snap.Streams[0].Consumers[0], p)
	case snap.Scope.Stream != "" && len(snap.Streams) == 1:
		streamView(&b, &snap.Streams[0], p)
	default:
		overview(&b, snap, p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONLine writes v as one JSON document on a single line: under --watch,
// one line per refresh.
func JSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

func inspectTitle(b *strings.Builder, snap *inspect.Snapshot, o InspectOptions, p palette) {
	what := "ackprobe inspect"
	for _, s := range []string{snap.Scope.Stream, snap.Scope.Consumer} {
		if s != "" {
			what += " " + s
		}
	}
	where := snap.Server.URL
	if snap.Server.Embedded {
		where += " (embedded)"
	}
	fmt.Fprintf(b, "%s  nats-server %s at %s", p.title.Sprint(what), snap.Server.Version, where)
	if snap.Server.Cluster != "" {
		fmt.Fprintf(b, "  cluster %s", snap.Server.Cluster)
	}
	if snap.Server.Domain != "" {
		fmt.Fprintf(b, "  domain %s", snap.Server.Domain)
	}
	fmt.Fprintf(b, "  %s", p.dim.Sprint(snap.Taken.UTC().Format("15:04:05 UTC")))
	if o.Watch > 0 {
		fmt.Fprintf(b, "  %s", p.dim.Sprintf("every %s, refresh %d (Ctrl-C to stop)", o.Watch, o.Refresh))
	}
	b.WriteString("\n\n")
}

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

func firedRules(h inspect.Health) map[string]inspect.Status {
	m := map[string]inspect.Status{}
	for _, r := range h.Reasons {
		m[r.Rule] = max(m[r.Rule], r.Status)
	}
	return m
}

// status colors s as the status says.
func (p palette) status(st inspect.Status, s string) string {
	switch st {
	case inspect.Critical:
		return p.bad.Sprint(s)
	case inspect.Warn:
		return p.warn.Sprint(s)
	}
	return s
}

func (p palette) mark(st inspect.Status) string {
	switch st {
	case inspect.Critical:
		return p.bad.Sprint("✗")
	case inspect.Warn:
		return p.warn.Sprint("!")
	}
	return p.good.Sprint("✓")
}

func missing(b *strings.Builder, ms []inspect.Missing, what string, p palette) {
	for _, m := range ms {
		fmt.Fprintf(b, "%s %s %s did not report: %s\n", p.warn.Sprint("?"), what, p.bold.Sprint(m.Name), m.Reason)
	}
}

// reasons lists why each consumer that is not ok is so.
func reasons(b *strings.Builder, streams []inspect.Stream, withStream bool, p palette) {
	wrote := false
	for _, st := range streams {
		for _, c := range st.Consumers {
			for _, r := range c.Health.Reasons {
				name := c.Name
				if withStream {
					name = st.Name + " › " + c.Name
				}
				fmt.Fprintf(b, "%s %s: %s\n", p.mark(r.Status), p.bold.Sprint(name), r.Message)
				wrote = true
			}
		}
	}
	if wrote {
		b.WriteString("\n")
	}
}

func verdictLine(b *strings.Builder, s inspect.Summary, p palette) {
	counts := fmt.Sprintf("%s %s, %s %s", num(s.Streams), inspect.Plural(s.Streams, "stream", "streams"), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers"))
	switch {
	case s.Critical > 0:
		fmt.Fprintf(b, "%s  %s\n", p.bad.Sprintf("CRITICAL: %s of %s %s critical", num(s.Critical), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers")), p.dim.Sprintf("(%s; %d warn, %d ok)", counts, s.Warn, s.OK))
	case s.Warn > 0:
		fmt.Fprintf(b, "%s  %s\n", p.warn.Sprintf("WARN: %s of %s %s worth a look, none critical", num(s.Warn), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers")), p.dim.Sprintf("(%s; %d ok)", counts, s.OK))
	case s.Consumers == 0:
		fmt.Fprintf(b, "%s\n", p.dim.Sprintf("%s, nothing to judge", counts))
	default:
		fmt.Fprintf(b, "%s  %s\n", p.good.Sprint("OK: every consumer healthy"), p.dim.Sprintf("(%s)", counts))
	}
}

// kv writes aligned "key  value" lines under a heading.
type kv struct {
	b    *strings.Builder
	p    palette
	rows [][2]string
}

func (k *kv) add(key, value string) { k.rows = append(k.rows, [2]string{key, value}) }

func (k *kv) flush() {
	width := 0
	for _, r := range k.rows {
		width = max(width, len(r[0]))
	}
	for _, r := range k.rows {
		fmt.Fprintf(k.b, "  %s%s  %s\n", k.p.dim.Sprint(r[0]), strings.Repeat(" ", width-len(r[0])), r[1])
	}
	k.rows = nil
}

// streamView is one stream's configuration, state and placement, and a
// table of its consumers.
func streamView(b *strings.Builder, st *inspect.Stream, p palette) {
	fmt.Fprintf(b, "%s %s", p.bold.Sprint("Stream"), p.bold.Sprint(st.Name))
	if st.Ackprobe {
		b.WriteString(p.dim.Sprint("  (created by ackprobe)"))
	}
	b.WriteString("\n")
	k := &kv{b: b, p: p}
	cfg := st.Config
	if cfg.Description != "" {
		k.add("description", cfg.Description)
	}
	if len(cfg.Subjects) > 0 {
		k.add("subjects", strings.Join(cfg.Subjects, ", "))
	}
	if cfg.Mirror != nil {
		k.add("mirror of", cfg.Mirror.Name)
	}
	if len(cfg.Sources) > 0 {
		var names []string
		for _, s := range cfg.Sources {
			if s != nil {
				names = append(names, s.Name)
			}
		}
		k.add("sources", strings.Join(names, ", "))
	}
	k.add("storage", fmt.Sprintf("%s, R%d, %s retention, discard %s", storageName(cfg.Storage), max(cfg.Replicas, 1), retentionName(cfg.Retention), discardName(cfg.Discard)))
	k.add("limits", fmt.Sprintf("messages %s, bytes %s, age %s, message size %s, per subject %s, consumers %s",
		limit(cfg.MaxMsgs, num[int64]), limit(cfg.MaxBytes, func(v int64) string { return humanize.IBytes(uint64(v)) }),
		limit(int64(cfg.MaxAge), func(v int64) string { return inspect.Short(time.Duration(v)) }),
		limit(int64(cfg.MaxMsgSize), func(v int64) string { return humanize.IBytes(uint64(v)) }),
		limit(cfg.MaxMsgsPerSubject, num[int64]), limit(int64(cfg.MaxConsumers), num[int64])))
	state := fmt.Sprintf("%s %s, %s", num(st.Messages), inspect.Plural(int(min(st.Messages, 2)), "message", "messages"), humanize.IBytes(st.Bytes))
	if st.LastSeq > 0 {
		state += fmt.Sprintf(", sequences %s–%s", num(st.FirstSeq), num(st.LastSeq))
	}
	if st.NumDeleted > 0 {
		state += fmt.Sprintf(", %s deleted", num(st.NumDeleted))
	}
	if st.LastAge != nil {
		state += fmt.Sprintf(", last message %s ago", inspect.Short(time.Duration(*st.LastAge)))
	}
	if d := st.Delta; d != nil {
		state += fmt.Sprintf(", %s since the last refresh", p.delta(d.Messages))
		if d.StoredPerSec > 0 {
			state += fmt.Sprintf(" (%s stored)", rate(d.StoredPerSec))
		}
	}
	k.add("state", state)
	k.add("created", timeAndAge(st.Created, st.TimeStamp))
	if st.Cluster != nil {
		k.add("cluster", clusterLine(st.Cluster, st.TimeStamp, p))
	}
	if m := metadataLine(cfg.Metadata); m != "" {
		k.add("metadata", m)
	}
	k.flush()
	b.WriteString("\n")

	if len(st.Consumers) == 0 {
		b.WriteString("No consumers on this stream.\n")
	} else {
		watching := false
		for _, c := range st.Consumers {
			watching = watching || c.Delta != nil
		}
		t := newTable()
		head := table.Row{"Consumer", "Pending", "Ack Pending", "Redelivered", "Waiting", "Delivered", "Ack Floor"}
		right := []int{2, 3, 4, 5, 6, 7}
		if watching {
			head = append(head, "Delivered/s", "Acked/s")
			right = append(right, 8, 9)
		}
		t.AppendHeader(append(head, "Status", "Notes"))
		alignRight(t, right...)
		for i := range st.Consumers {
			row := consumerRow(&st.Consumers[i], watching, p)
			t.AppendRow(append(table.Row{row[1]}, row[4:]...))
		}
		b.WriteString(t.Render() + "\n")
	}
	b.WriteString("\n")
	missing(b, st.MissingConsumers, "consumer", p)
	reasons(b, []inspect.Stream{*st}, false, p)
	s := inspect.Summary{Streams: 1, Consumers: len(st.Consumers)}
	for _, c := range st.Consumers {
		switch c.Health.Status {
		case inspect.Critical:
			s.Critical++
		case inspect.Warn:
			s.Warn++
		default:
			s.OK++
		}
	}
	verdictLine(b, s, p)
}

// consumerView is everything about one consumer.
func consumerView(b *strings.Builder, st *inspect.Stream, c *inspect.Consumer, p palette) {
	fmt.Fprintf(b, "%s %s  %s", p.bold.Sprint("Consumer"), p.bold.Sprint(st.Name+" › "+c.Name), p.status(c.Health.Status, strings.ToUpper(c.Health.Status.String())))
	if c.Ackprobe {
		b.WriteString(p.dim.Sprint("  (created by ackprobe)"))
	}
	b.WriteString("\n")
	cfg := c.Config
	k := &kv{b: b, p: p}
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
	fired := firedRules(c.Health)
	paint := func(s string, rules ...string) string {
		worst := inspect.OK
		for _, r := range rules {
			worst = max(worst, fired[r])
		}
		return p.status(worst, s)
	}
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
	k.add("ack floor", paint(sequenceLine(c.AckFloor), "last-ack"))
	if d != nil {
		k.add("since refresh", fmt.Sprintf("%s delivered (%s), %s acked (%s), ack floor %s, in %s", p.delta(d.Delivered), rate(d.DeliveredPerSec),
			p.delta(d.Acked), rate(d.AckedPerSec), p.delta(d.AckFloor), inspect.Short(time.Duration(d.Interval))))
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
		fmt.Fprintf(b, "  %s %s: %s\n", p.mark(r.Status), r.Rule, r.Message)
	}
	for _, o := range c.Health.Overrides {
		fmt.Fprintf(b, "  %s\n", p.dim.Sprintf("threshold from metadata: %s", o))
	}
}

func sequenceLine(s inspect.Sequence) string {
	v := fmt.Sprintf("stream seq %s, consumer seq %s", num(s.StreamSeq), num(s.ConsumerSeq))
	if s.Age != nil {
		return v + fmt.Sprintf(", %s ago", inspect.Short(time.Duration(*s.Age)))
	}
	return v
}

func clusterLine(c *inspect.Cluster, now time.Time, p palette) string {
	var s string
	switch {
	case c.Leader == "":
		s = p.bad.Sprint("no leader")
	case c.LeaderSince != nil:
		s = fmt.Sprintf("leader %s (for %s)", c.Leader, inspect.Short(max(now.Sub(*c.LeaderSince), 0)))
	default:
		s = "leader " + c.Leader
	}
	if c.Name != "" {
		s = c.Name + ", " + s
	}
	for _, r := range c.Replicas {
		state := r.State()
		switch state {
		case "offline":
			state = p.warn.Sprintf("offline, seen %s ago", inspect.Short(time.Duration(r.Active)))
		case "lagging":
			state = p.warn.Sprintf("lagging %s ops, seen %s ago", num(r.Lag), inspect.Short(time.Duration(r.Active)))
		default:
			state = p.good.Sprint(state)
		}
		s += fmt.Sprintf("; %s %s", r.Name, state)
	}
	return s
}

func timeAndAge(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format("2006-01-02 15:04:05 UTC"), inspect.Short(max(now.Sub(t), 0)))
}

// metadataLine lists metadata, leaving out what the server adds for itself
// (_nats.*).
func metadataLine(m map[string]string) string {
	var kvs []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !strings.HasPrefix(k, "_nats.") {
			kvs = append(kvs, k+"="+m[k])
		}
	}
	return strings.Join(kvs, ", ")
}

// limit shows a configured limit, where zero or less means none.
func limit(v int64, f func(int64) string) string {
	if v <= 0 {
		return "unlimited"
	}
	return f(v)
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory"
	}
	return "file"
}

func retentionName(r jetstream.RetentionPolicy) string {
	switch r {
	case jetstream.InterestPolicy:
		return "interest"
	case jetstream.WorkQueuePolicy:
		return "work queue"
	}
	return "limits"
}

func discardName(d jetstream.DiscardPolicy) string {
	if d == jetstream.DiscardNew {
		return "new"
	}
	return "old"
}

func ackPolicyName(a jetstream.AckPolicy) string {
	switch a {
	case jetstream.AckNonePolicy:
		return "no"
	case jetstream.AckAllPolicy:
		return "cumulative (all)"
	case jetstream.AckExplicitPolicy:
		return "explicit"
	}
	return a.String()
}

func deliverName(d jetstream.DeliverPolicy, seq uint64, t *time.Time) string {
	switch d {
	case jetstream.DeliverLastPolicy:
		return "the last message"
	case jetstream.DeliverNewPolicy:
		return "new messages"
	case jetstream.DeliverByStartSequencePolicy:
		return "stream seq " + num(seq)
	case jetstream.DeliverByStartTimePolicy:
		if t != nil {
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return "a start time"
	case jetstream.DeliverLastPerSubjectPolicy:
		return "the last message per subject"
	}
	return "the first message"
}

func replayName(r jetstream.ReplayPolicy) string {
	if r == jetstream.ReplayOriginalPolicy {
		return "at the original pace"
	}
	return "instant"
}

func priorityName(pp jetstream.PriorityPolicy) string {
	switch pp {
	case jetstream.PriorityPolicyPinned:
		return "pinned client"
	case jetstream.PriorityPolicyOverflow:
		return "overflow"
	case jetstream.PriorityPolicyPrioritized:
		return "prioritized"
	}
	return "none"
}
