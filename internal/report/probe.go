package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/jedib0t/go-pretty/v6/table"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// JSON writes the result as one indented JSON document.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Probe writes a probe result as tables and a plain-words verdict.
func Probe(w io.Writer, res *probe.Result, o Options) error {
	p := newPalette(o.Color)
	var b strings.Builder
	header(&b, res, o, p)
	b.WriteString(stepsTable(res, p))
	b.WriteString("\n")
	b.WriteString(figuresTable(res, p))
	b.WriteString("\n")
	if res.Faults != nil {
		faultsSection(&b, res, p)
	}
	if res.Count > 1 {
		histograms(&b, res, p)
	}
	verdict(&b, res, p)
	_, err := io.WriteString(w, b.String())
	return err
}

func header(b *strings.Builder, res *probe.Result, o Options, p palette) {
	cmd := o.Command
	if cmd == "" {
		cmd = "probe"
	}
	where := res.Server.URL
	if res.Server.Embedded {
		where += " (embedded)"
	}
	fmt.Fprintf(b, "%s  nats-server %s at %s", p.title.Sprintf("ackprobe %s", cmd), res.Server.Version, where)
	// A server without a configured name reports its 56-character ID.
	if n := res.Server.Name; n != "" && !res.Server.Embedded && !(len(n) == 56 && n[0] == 'N') {
		fmt.Fprintf(b, "  server %s", res.Server.Name)
	}
	if res.Server.Cluster != "" {
		fmt.Fprintf(b, "  cluster %s", res.Server.Cluster)
	}
	if res.Server.Domain != "" {
		fmt.Fprintf(b, "  domain %s", res.Server.Domain)
	}
	if res.Server.Context != "" {
		fmt.Fprintf(b, "  context %s", res.Server.Context)
	}
	b.WriteString("\n")
	origin := func(created bool) string {
		switch {
		case created && res.Created.Kept:
			return "created, kept"
		case created:
			return "created, removed after"
		}
		return "reused"
	}
	per := "message"
	if res.Count != 1 {
		per = "messages"
	}
	fmt.Fprintf(b, "stream %s (%s, %s, R%d)  consumer %s (%s)  subject %s  %s %s per mode, ack wait %s\n",
		p.bold.Sprint(res.Stream), origin(res.Created.Stream), res.Storage, res.Replicas,
		p.bold.Sprint(res.Consumer), origin(res.Created.Consumer), res.Subject,
		num(res.Count), per, res.AckWait)
	if res.ServerSampling != "" && !strings.HasPrefix(res.ServerSampling, "on") {
		fmt.Fprintf(b, "%s\n", p.warn.Sprintf("server ack metrics %s", res.ServerSampling))
	}
	b.WriteString("\n")
}

// stepsTable shows every consumer snapshot with its change from the one
// before; all steps are of the same consumer, so deltas run across modes.
func stepsTable(res *probe.Result, p palette) string {
	t := newTable()
	t.AppendHeader(table.Row{"Mode", "Step", "Pending", "Δ", "Ack Pending", "Δ", "Ack Floor", "Delivered", "Redelivered", "Server Shows"})
	alignRight(t, 3, 4, 5, 6, 7, 8, 9)
	var prev *probe.Step
	for mi, m := range res.Modes {
		if mi > 0 {
			t.AppendSeparator()
		}
		for si := range m.Steps {
			st := m.Steps[si]
			mode := ""
			if si == 0 {
				mode = p.bold.Sprint(string(m.Mode))
			}
			dp, da := "", ""
			if prev != nil {
				dp = p.delta(int64(st.NumPending) - int64(prev.NumPending))
				da = p.delta(int64(st.NumAckPending) - int64(prev.NumAckPending))
			}
			t.AppendRow(table.Row{mode, st.Step, num(st.NumPending), dp, num(st.NumAckPending), da,
				num(st.AckFloorStreamSeq), num(st.DeliveredStreamSeq), num(st.NumRedelivered), stepView(m, si, p)})
			prev = &m.Steps[si]
		}
	}
	return t.Render() + "\n"
}

// stepView explains one snapshot in words.
func stepView(m probe.ModeResult, i int, p palette) string {
	st := m.Steps[i]
	switch st.Step {
	case "start":
		return p.dim.Sprintf("%s to deliver", num(st.NumPending))
	case "received":
		return p.dim.Sprintf("%s delivered, unacked", num(st.NumAckPending))
	case "acked":
		if st.Stale {
			if m.Mode == probe.Confirmed {
				return p.bad.Sprint("ack not applied after DoubleAck!")
			}
			return p.warn.Sprint("ack not applied yet")
		}
		return p.good.Sprint("ack applied")
	case "settled":
		return p.good.Sprintf("ack applied after %s", us(m.Visibility.LagUS.Max))
	case "collected":
		if st.NumAckPending > 0 {
			return p.warn.Sprintf("%s still ack pending", num(st.NumAckPending))
		}
		return p.good.Sprint("redeliveries collected")
	}
	return ""
}

// figuresTable puts the measurements of each mode side by side.
func figuresTable(res *probe.Result, p palette) string {
	t, row := modeTable(res, p)
	row("acks", func(m probe.ModeResult) string { return num(m.Acks) })
	if res.Count == 1 {
		row("ack call", func(m probe.ModeResult) string { return us(m.AckLatencyUS.Max) })
	} else {
		row("ack call p50", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P50) })
		row("ack call p90", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P90) })
		row("ack call p99", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P99) })
		row("ack call max", func(m probe.ModeResult) string { return us(m.AckLatencyUS.Max) })
		row("acks per second", func(m probe.ModeResult) string { return rate(m.AcksPerSec) })
	}
	if hasServerView(res) {
		sv := func(f func(v *probe.ServerView) string) func(m probe.ModeResult) string {
			return func(m probe.ModeResult) string {
				if m.Server == nil || m.Server.Events == 0 {
					return p.dim.Sprint("-")
				}
				return f(m.Server)
			}
		}
		if res.Count == 1 {
			row("server: delivery → ack applied", sv(func(v *probe.ServerView) string { return us(v.AckTimeUS.Max) }))
			row("ack legs (client ↔ server)", sv(func(v *probe.ServerView) string { return us(v.TransitUS.Max) }))
		} else {
			row("server: delivery → ack p50", sv(func(v *probe.ServerView) string { return us(v.AckTimeUS.P50) }))
			row("server: delivery → ack p99", sv(func(v *probe.ServerView) string { return us(v.AckTimeUS.P99) }))
			row("ack legs p50", sv(func(v *probe.ServerView) string { return us(v.TransitUS.P50) }))
			row("ack legs p99", sv(func(v *probe.ServerView) string { return us(v.TransitUS.P99) }))
			row("server ack events", sv(func(v *probe.ServerView) string { return num(v.Events) }))
		}
	}
	row("stale read-backs", func(m probe.ModeResult) string {
		v := m.Visibility
		s := fmt.Sprintf("%s of %s", num(v.StaleReads), num(v.ReadBacks))
		switch {
		case v.StaleReads == 0:
			return p.good.Sprint(s)
		case m.Mode == probe.Confirmed:
			return p.bad.Sprint(s)
		}
		return p.warn.Sprint(s)
	})
	row("visible after", func(m probe.ModeResult) string {
		v := m.Visibility
		switch {
		case v.NotVisible > 0:
			return p.bad.Sprintf("%d never", v.NotVisible)
		case v.StaleReads == 0:
			return p.good.Sprint("at once")
		case v.LagUS.Count == 1:
			return us(v.LagUS.Max)
		}
		return fmt.Sprintf("p50 %s, max %s", us(v.LagUS.P50), us(v.LagUS.Max))
	})
	row("redelivered", func(m probe.ModeResult) string {
		if m.Redelivered > 0 {
			if m.Mode == probe.Confirmed {
				return p.bad.Sprint(num(m.Redelivered))
			}
			return p.warn.Sprint(num(m.Redelivered))
		}
		return "0"
	})
	row("errors / retries", func(m probe.ModeResult) string {
		s := fmt.Sprintf("%s / %s", num(m.Errors), num(m.Retries))
		if m.Errors > 0 {
			return p.bad.Sprint(s)
		}
		return s
	})
	return t.Render() + "\n"
}

func hasServerView(res *probe.Result) bool {
	for _, m := range res.Modes {
		if m.Server != nil && m.Server.Events > 0 {
			return true
		}
	}
	return false
}

// modeTable returns a table with a column per mode and a function that
// adds a row of one figure per mode.
func modeTable(res *probe.Result, p palette) (table.Writer, func(label string, f func(m probe.ModeResult) string)) {
	t := newTable()
	head := table.Row{""}
	cols := make([]int, 0, len(res.Modes))
	for i, m := range res.Modes {
		head = append(head, p.bold.Sprint(string(m.Mode)))
		cols = append(cols, i+2)
	}
	t.AppendHeader(head)
	alignRight(t, cols...)
	return t, func(label string, f func(m probe.ModeResult) string) {
		r := table.Row{label}
		for _, m := range res.Modes {
			r = append(r, f(m))
		}
		t.AppendRow(r)
	}
}

// histograms draws each mode's ack-call latency distribution.
func histograms(b *strings.Builder, res *probe.Result, p palette) {
	for _, m := range res.Modes {
		l := m.AckLatencyUS
		if len(l.Buckets) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s ack call latency (%s acks)\n", p.bold.Sprint(string(m.Mode)), num(l.Count))
		var peak int64
		for _, bk := range l.Buckets {
			peak = max(peak, bk.Count)
		}
		for _, bk := range l.Buckets {
			drawn := bar(float64(bk.Count)/float64(peak), 30)
			pad := strings.Repeat(" ", max(0, 30-utf8.RuneCountInString(drawn)))
			fmt.Fprintf(b, "  ≤ %9s │%s%s %s\n", us(bk.UpToUS), p.accent.Sprint(drawn), pad, p.dim.Sprint(num(bk.Count)))
		}
		b.WriteString("\n")
	}
}

// verdict says in plain words what the figures mean.
func verdict(b *strings.Builder, res *probe.Result, p palette) {
	for _, m := range res.Modes {
		fmt.Fprintf(b, "%s %s\n", bullet(m, p), modeVerdict(m, res.Count))
	}
	for _, n := range res.Notes {
		if strings.HasPrefix(n, "standard:") {
			continue // the mode's verdict above says it
		}
		fmt.Fprintf(b, "%s %s\n", p.dim.Sprint("·"), n)
	}
	for _, f := range res.CleanupFailures {
		fmt.Fprintf(b, "%s could not clean up %s\n", p.bad.Sprint("✗"), f)
	}
	if res.OK {
		fmt.Fprintf(b, "\n%s\n", p.good.Sprint("OK: every check held"))
		return
	}
	fmt.Fprintf(b, "\n%s\n", p.bad.Sprintf("FAILED: %d check(s) did not hold", len(res.Problems)))
	for _, pr := range res.Problems {
		fmt.Fprintf(b, "  %s %s\n", p.bad.Sprint("✗"), pr)
	}
}

func bullet(m probe.ModeResult, p palette) string {
	switch {
	case m.Mode == probe.Confirmed && (m.Errors > 0 || m.Visibility.StaleReads > 0 || m.Redelivered > 0):
		return p.bad.Sprint("✗")
	case m.Mode == probe.Standard && (m.Visibility.StaleReads > 0 || m.Redelivered > 0):
		return p.warn.Sprint("!")
	}
	return p.good.Sprint("✓")
}

func modeVerdict(m probe.ModeResult, count int) string {
	v := m.Visibility
	if count == 1 {
		call := us(m.AckLatencyUS.Max)
		switch {
		case m.Mode == probe.Standard && v.NotVisible > 0:
			return fmt.Sprintf("standard ack: Ack() returned in %s, but the server never showed the ack: it was lost and the message will be redelivered after the ack wait.", call)
		case m.Mode == probe.Standard && v.StaleReads > 0:
			return fmt.Sprintf("standard ack: Ack() returned in %s, but the server still showed the message ack-pending when read back at once; the ack showed %s later.", call, us(v.LagUS.Max))
		case m.Mode == probe.Standard:
			return fmt.Sprintf("standard ack: Ack() returned in %s and this time the immediate read-back already showed it; nothing guarantees that.", call)
		case m.Errors > 0:
			return fmt.Sprintf("confirmed ack: DoubleAck() failed: %s.", m.LastError)
		case v.StaleReads > 0:
			return fmt.Sprintf("confirmed ack: DoubleAck() returned in %s, yet the server still showed the message ack-pending: that should never happen.", call)
		}
		return fmt.Sprintf("confirmed ack: DoubleAck() returned in %s, after the server had applied the ack: the read-back showed it at once.", call)
	}
	s := fmt.Sprintf("%s: %s acks at %s, p99 %s;", string(m.Mode), num(m.Acks), rate(m.AcksPerSec), us(m.AckLatencyUS.P99))
	switch {
	case v.NotVisible > 0:
		s += fmt.Sprintf(" %s of %s immediate read-backs still showed the ack pending, and %s never showed it (the ack was lost)", num(v.StaleReads), num(v.ReadBacks), num(v.NotVisible))
	case v.StaleReads > 0:
		s += fmt.Sprintf(" %s of %s immediate read-backs still showed the ack pending (visible after p50 %s)", num(v.StaleReads), num(v.ReadBacks), us(v.LagUS.P50))
	default:
		s += fmt.Sprintf(" all %s immediate read-backs showed the ack applied", num(v.ReadBacks))
	}
	if m.Redelivered > 0 {
		s += fmt.Sprintf("; %s redelivered", num(m.Redelivered))
	}
	if m.Errors > 0 {
		s += fmt.Sprintf("; %s failed (%s)", num(m.Errors), m.LastError)
	}
	return s + "."
}
