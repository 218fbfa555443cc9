package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

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
	// Width is the terminal's width in columns: tables fit it (shorter
	// headers and cells, fewer columns, never wrapped) and lines of text
	// break at spaces. 0 leaves everything at full length.
	Width int
}

// Inspect writes a snapshot as the view its scope asks for: every stream
// and consumer, one stream, or one consumer.
func Inspect(w io.Writer, snap *inspect.Snapshot, o InspectOptions) error {
	p := newPalette(o.Color)
	var b strings.Builder
	inspectTitle(&b, snap, o, p)
	switch {
	case snap.Scope.Consumer != "" && len(snap.Streams) == 1 && len(snap.Streams[0].Consumers) == 1:
		consumerView(&b, &snap.Streams[0], &snap.Streams[0].Consumers[0], o, p)
	case snap.Scope.Stream != "" && len(snap.Streams) == 1:
		streamView(&b, snap, &snap.Streams[0], o, p)
	default:
		overview(&b, snap, o, p)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JSONLine writes v as one JSON document on a single line: under --watch,
// one line per refresh.
func JSONLine(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// FailureLine writes Failure's document on a single line: under --watch,
// the line of a refresh that failed, among the snapshots' lines.
func FailureLine(w io.Writer, partial any, code int, message string) error {
	var doc, line bytes.Buffer
	if err := Failure(&doc, partial, code, message); err != nil {
		return err
	}
	if err := json.Compact(&line, doc.Bytes()); err != nil {
		return err
	}
	line.WriteByte('\n')
	_, err := w.Write(line.Bytes())
	return err
}

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
	parts := []string{p.title.Sprint(what), fmt.Sprintf("nats-server %s at %s", snap.Server.Version, where)}
	if snap.Server.Cluster != "" {
		parts = append(parts, "cluster "+snap.Server.Cluster)
	}
	if snap.Server.Domain != "" {
		parts = append(parts, "domain "+snap.Server.Domain)
	}
	parts = append(parts, p.dim.Sprint(snap.Taken.UTC().Format("15:04:05 UTC")))
	if o.Watch > 0 {
		parts = append(parts, p.dim.Sprintf("every %s, refresh %d (Ctrl-C to stop)", o.Watch, o.Refresh))
	}
	// The parts stay whole: a narrow terminal puts them on more lines.
	line := ""
	for _, part := range parts {
		switch {
		case line == "":
			line = part
		case o.Width > 0 && textWidth(line+"  "+part) > o.Width:
			b.WriteString(line + "\n")
			line = "  " + part
		default:
			line += "  " + part
		}
	}
	b.WriteString(line + "\n\n")
}

func firedRules(h inspect.Health) map[string]inspect.Status {
	m := map[string]inspect.Status{}
	for _, r := range h.Reasons {
		m[r.Rule] = max(m[r.Rule], r.Status)
	}
	return m
}

// painter colors a consumer's figure as the worst of the rules it belongs
// to fired on it (uncolored when none did).
func (p palette) painter(h inspect.Health) func(s string, rules ...string) string {
	fired := firedRules(h)
	return func(s string, rules ...string) string {
		worst := inspect.OK
		for _, r := range rules {
			worst = max(worst, fired[r])
		}
		return p.status(worst, s)
	}
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

func missing(b *strings.Builder, ms []inspect.Missing, what string, width int, p palette) {
	for _, m := range ms {
		b.WriteString(wrapLine(fmt.Sprintf("%s %s %s did not report: %s", p.warn.Sprint("?"), what, p.bold.Sprint(m.Name), m.Reason), width, 2) + "\n")
	}
}

// reasons lists why each consumer that is not ok is so.
func reasons(b *strings.Builder, streams []inspect.Stream, withStream bool, width int, p palette) {
	wrote := false
	for _, st := range streams {
		if st.Orphan {
			b.WriteString(wrapLine(fmt.Sprintf("%s %s: %s", p.mark(inspect.Warn), p.bold.Sprint(st.Name), st.OrphanMessage), width, 2) + "\n")
			wrote = true
		}
		for _, c := range st.Consumers {
			for _, r := range c.Health.Reasons {
				name := c.Name
				if withStream {
					name = st.Name + " › " + c.Name
				}
				b.WriteString(wrapLine(fmt.Sprintf("%s %s: %s", p.mark(r.Status), p.bold.Sprint(name), r.Message), width, 2) + "\n")
				wrote = true
			}
		}
	}
	if wrote {
		b.WriteString("\n")
	}
}

// verdictLine sums up the health of every consumer looked at, and says
// how many --only left out.
func verdictLine(b *strings.Builder, snap *inspect.Snapshot, width int, p palette) {
	s := snap.Summary
	counts := fmt.Sprintf("%s %s, %s %s", num(s.Streams), inspect.Plural(s.Streams, "stream", "streams"), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers"))
	var line string
	switch {
	case s.Critical > 0:
		line = fmt.Sprintf("%s  %s", p.bad.Sprintf("CRITICAL: %s of %s %s critical", num(s.Critical), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers")), p.dim.Sprintf("(%s; %d warn, %d ok)", counts, s.Warn, s.OK))
	case s.Warn > 0:
		line = fmt.Sprintf("%s  %s", p.warn.Sprintf("WARN: %s of %s %s worth a look, none critical", num(s.Warn), num(s.Consumers), inspect.Plural(s.Consumers, "consumer", "consumers")), p.dim.Sprintf("(%s; %d ok)", counts, s.OK))
	case s.Consumers == 0:
		line = p.dim.Sprintf("%s, nothing to judge", counts)
	default:
		line = fmt.Sprintf("%s  %s", p.good.Sprint("OK: every consumer healthy"), p.dim.Sprintf("(%s)", counts))
	}
	b.WriteString(wrapLine(line, width, 2) + "\n")
	if sel := snap.Selection; sel != nil && sel.Hidden > 0 && sel.Only != nil {
		b.WriteString(p.dim.Sprint(wrapLine(fmt.Sprintf("(--only %s: %s shown, %s left out)", sel.Only, num(sel.Shown), num(sel.Hidden)), width, 2)) + "\n")
	}
}

// kv writes aligned "key  value" lines under a heading; a value too long
// for the width breaks at spaces under itself.
type kv struct {
	b     *strings.Builder
	p     palette
	width int
	rows  [][2]string
}

func (k *kv) add(key, value string) { k.rows = append(k.rows, [2]string{key, value}) }

func (k *kv) flush() {
	width := 0
	for _, r := range k.rows {
		width = max(width, len(r[0]))
	}
	for _, r := range k.rows {
		line := fmt.Sprintf("  %s%s  %s", k.p.dim.Sprint(r[0]), strings.Repeat(" ", width-len(r[0])), r[1])
		k.b.WriteString(wrapLine(line, k.width, width+4) + "\n")
	}
	k.rows = nil
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
