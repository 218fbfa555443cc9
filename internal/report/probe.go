package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// Probe writes a probe result as tables and its findings in plain words.
// Marks and colors come from the findings' severities; nothing here
// judges a figure.
func Probe(w io.Writer, res *probe.Result, o Options) error {
	p := newPalette(o.Color)
	v := view{res: res, o: o, p: p}
	var b strings.Builder
	v.header(&b)
	if len(res.Nodes) > 0 {
		v.nodesView(&b)
		v.verdict(&b)
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString(v.stepsTable())
	b.WriteString("\n")
	b.WriteString(v.figuresTable())
	b.WriteString("\n")
	if res.Faults != nil {
		v.faultsSection(&b)
	}
	if res.Count > 1 {
		v.histograms(&b)
	}
	v.verdict(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// view is one rendering of a result.
type view struct {
	res *probe.Result
	o   Options
	p   palette
}

// narrow reports whether the terminal is too narrow for the full tables.
func (v view) narrow() bool { return v.o.Width > 0 && v.o.Width < 120 }

// severity is the worst severity among mode m's findings with the given
// codes (all codes when none are given).
func (v view) severity(m probe.Mode, codes ...string) probe.Severity {
	worst := probe.Severity("")
	for _, f := range v.res.Findings {
		if f.Mode != m || f.Node != "" || len(codes) > 0 && !contains(codes, f.Code) {
			continue
		}
		if f.Severity.Rank() > worst.Rank() {
			worst = f.Severity
		}
	}
	return worst
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// paint colors s by a severity: fail red, warn yellow, otherwise as is.
func (v view) paint(sev probe.Severity, s string) string {
	switch sev {
	case probe.SeverityFail:
		return v.p.bad.Sprint(s)
	case probe.SeverityWarn:
		return v.p.warn.Sprint(s)
	}
	return s
}

// mark is the symbol of a severity: ✗ fail, ! warn, · info, ✓ none.
func (v view) mark(sev probe.Severity) string {
	switch sev {
	case probe.SeverityFail:
		return v.p.bad.Sprint("✗")
	case probe.SeverityWarn:
		return v.p.warn.Sprint("!")
	case probe.SeverityInfo:
		return v.p.dim.Sprint("·")
	}
	return v.p.good.Sprint("✓")
}

func (v view) header(b *strings.Builder) {
	res, p := v.res, v.p
	cmd := v.o.Command
	if cmd == "" {
		cmd = "probe"
	}
	where := res.Server.URL
	if res.Server.Embedded {
		where += " (embedded)"
	}
	items := []string{p.title.Sprintf("ackprobe %s", cmd), fmt.Sprintf("nats-server %s at %s", res.Server.Version, where)}
	// A server without a configured name reports its 56-character ID.
	if n := res.Server.Name; n != "" && !res.Server.Embedded && !(len(n) == 56 && n[0] == 'N') {
		items = append(items, "server "+n)
	}
	if res.Server.Cluster != "" {
		items = append(items, "cluster "+res.Server.Cluster)
	}
	if res.Server.Domain != "" {
		items = append(items, "domain "+res.Server.Domain)
	}
	if res.Server.Context != "" {
		items = append(items, "context "+res.Server.Context)
	}
	b.WriteString(fitItems(items, v.o.Width) + "\n")
	origin := func(created bool) string {
		switch {
		case created && res.Created.Kept:
			return "created, kept for the next run"
		case created:
			return "created, removed after"
		}
		return "reused"
	}
	per := "message"
	if res.Count != 1 {
		per = "messages"
	}
	b.WriteString(v.wrap(fmt.Sprintf("stream %s (%s; %s, R%d)  subject %s", p.bold.Sprint(res.Stream), origin(res.Created.Stream), res.Storage, res.Replicas, res.Subject), 0) + "\n")
	b.WriteString(v.wrap(fmt.Sprintf("consumer %s (%s); ack wait %s; %s %s per mode", p.bold.Sprint(res.Consumer), origin(res.Created.Consumer), res.AckWait, num(res.Count), per), 0) + "\n")
	if res.ServerSampling != "" && !strings.HasPrefix(res.ServerSampling, "on") {
		fmt.Fprintf(b, "%s\n", p.dim.Sprint(v.wrap("server ack metrics "+res.ServerSampling, 0)))
	}
	b.WriteString("\n")
}

// stepsTable shows every consumer snapshot with its change from the one
// before; all steps are of the same consumer, so deltas run across modes.
// On a narrow terminal the sequences and redelivery counts go, and each
// change stands next to its figure.
func (v view) stepsTable() string {
	res, p := v.res, v.p
	t := newTable()
	narrow := v.narrow()
	if narrow {
		t.AppendHeader(table.Row{"Mode", "Step", "Pending", "Ack Pending", "Server Shows"})
		alignRight(t, 3, 4)
	} else {
		t.AppendHeader(table.Row{"Mode", "Step", "Pending", "Δ", "Ack Pending", "Δ", "Ack Floor", "Delivered", "Redelivered", "Server Shows"})
		alignRight(t, 3, 4, 5, 6, 7, 8, 9)
	}
	var prev *probe.Step
	for mi, m := range res.Modes {
		if mi > 0 {
			t.AppendSeparator()
		}
		for si := range m.Steps {
			st := m.Steps[si]
			mode := ""
			if si == 0 {
				mode = p.bold.Sprint(modeLabel(m.Mode, narrow))
			}
			dp, da := "", ""
			if prev != nil {
				dp = p.delta(int64(st.NumPending) - int64(prev.NumPending))
				da = p.delta(int64(st.NumAckPending) - int64(prev.NumAckPending))
			}
			if narrow {
				t.AppendRow(table.Row{mode, st.Step, joinDelta(num(st.NumPending), dp), joinDelta(num(st.NumAckPending), da), v.stepView(m, si)})
			} else {
				t.AppendRow(table.Row{mode, st.Step, num(st.NumPending), dp, num(st.NumAckPending), da,
					num(st.AckFloorStreamSeq), num(st.DeliveredStreamSeq), num(st.NumRedelivered), v.stepView(m, si)})
			}
			prev = &m.Steps[si]
		}
	}
	return t.Render() + "\n"
}

func joinDelta(figure, delta string) string {
	if delta == "" {
		return figure
	}
	return figure + " " + delta
}

func modeLabel(m probe.Mode, narrow bool) string {
	if !narrow {
		return string(m)
	}
	if m == probe.Confirmed {
		return "conf"
	}
	return "std"
}

// stepView explains one snapshot in words.
func (v view) stepView(m probe.ModeResult, i int) string {
	p := v.p
	st := m.Steps[i]
	switch st.Step {
	case "start":
		return p.dim.Sprintf("%s to deliver", num(st.NumPending))
	case "received":
		return p.dim.Sprintf("%s delivered, unacked", num(st.NumAckPending))
	case "acked":
		if !st.Stale {
			return p.good.Sprint("ack applied")
		}
		if v.severity(m.Mode, probe.CodeStaleRead) == probe.SeverityFail {
			return p.bad.Sprint("ack not applied after DoubleAck!")
		}
		return p.warn.Sprint("ack not applied yet")
	case "settled":
		return p.good.Sprintf("ack applied after %s", us(st.VisibleAfterUS))
	case "collected":
		if st.NumAckPending > 0 {
			return v.paint(v.severity(m.Mode, probe.CodeUnsettled), fmt.Sprintf("%s still ack pending", num(st.NumAckPending)))
		}
		return p.good.Sprint("redeliveries collected")
	}
	return ""
}

// figuresTable puts the measurements of each mode side by side.
func (v view) figuresTable() string {
	res, p := v.res, v.p
	t, row := v.modeTable()
	row("acks", func(m probe.ModeResult) string { return num(m.Acks) })
	if res.Count == 1 {
		row("ack call", func(m probe.ModeResult) string { return us(m.AckLatencyUS.Max) })
	} else {
		row("ack call p50", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P50) })
		row("ack call p90", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P90) })
		row("ack call p99", func(m probe.ModeResult) string { return us(m.AckLatencyUS.P99) })
		row("ack call max", func(m probe.ModeResult) string { return us(m.AckLatencyUS.Max) })
		row("delivery → ack p99", func(m probe.ModeResult) string {
			return v.paint(v.severity(m.Mode, probe.CodeAckWaitTooShort), us(m.DeliveryToAckUS.P99))
		})
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
			row("server: delivery → ack applied", sv(func(s *probe.ServerView) string { return us(s.AckTimeUS.Max) }))
			row("ack legs (client ↔ server)", sv(func(s *probe.ServerView) string { return us(s.TransitUS.Max) }))
		} else {
			row("server: delivery → ack p50", sv(func(s *probe.ServerView) string { return us(s.AckTimeUS.P50) }))
			row("server: delivery → ack p99", sv(func(s *probe.ServerView) string { return us(s.AckTimeUS.P99) }))
			row("ack legs p50", sv(func(s *probe.ServerView) string { return us(s.TransitUS.P50) }))
			row("ack legs p99", sv(func(s *probe.ServerView) string { return us(s.TransitUS.P99) }))
			row("server ack events", sv(func(s *probe.ServerView) string { return num(s.Events) }))
		}
	}
	row("stale read-backs", func(m probe.ModeResult) string {
		vis := m.Visibility
		s := fmt.Sprintf("%s of %s", num(vis.StaleReads), num(vis.ReadBacks))
		if vis.StaleReads == 0 {
			return p.good.Sprint(s)
		}
		return v.paint(v.severity(m.Mode, probe.CodeStaleRead), s)
	})
	row("visible after", func(m probe.ModeResult) string {
		vis := m.Visibility
		switch {
		case vis.NotVisible > 0:
			return v.paint(v.severity(m.Mode, probe.CodeStaleRead), fmt.Sprintf("%d never", vis.NotVisible))
		case vis.StaleReads == 0:
			return p.good.Sprint("at once")
		case vis.LagUS.Count == 1:
			return us(vis.LagUS.Max)
		}
		return fmt.Sprintf("p50 %s, max %s", us(vis.LagUS.P50), us(vis.LagUS.Max))
	})
	row("redelivered", func(m probe.ModeResult) string {
		if m.Redelivered == 0 {
			return "0"
		}
		return v.paint(v.severity(m.Mode, probe.RedeliveryCodes...), redeliveries(m))
	})
	row("errors / retries", func(m probe.ModeResult) string {
		s := fmt.Sprintf("%s / %s", num(m.Errors), num(m.Retries))
		return v.paint(v.severity(m.Mode, probe.CodeAckFailed, probe.CodeGaveUp), s)
	})
	return t.Render() + "\n"
}

// redeliveries says how many deliveries of how many messages came back.
func redeliveries(m probe.ModeResult) string {
	if m.RedeliveredMessages == m.Redelivered {
		return num(m.Redelivered)
	}
	return fmt.Sprintf("%s deliveries of %s messages", num(m.Redelivered), num(m.RedeliveredMessages))
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
func (v view) modeTable() (table.Writer, func(label string, f func(m probe.ModeResult) string)) {
	t := newTable()
	head := table.Row{""}
	cols := make([]int, 0, len(v.res.Modes))
	for i, m := range v.res.Modes {
		head = append(head, v.p.bold.Sprint(string(m.Mode)))
		cols = append(cols, i+2)
	}
	t.AppendHeader(head)
	alignRight(t, cols...)
	return t, func(label string, f func(m probe.ModeResult) string) {
		r := table.Row{label}
		for _, m := range v.res.Modes {
			r = append(r, f(m))
		}
		t.AppendRow(r)
	}
}

// histograms draws each mode's ack-call latency distribution.
func (v view) histograms(b *strings.Builder) {
	p := v.p
	for _, m := range v.res.Modes {
		l := m.AckLatencyUS
		if len(l.Buckets) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s ack call latency (%s acks)\n", p.bold.Sprint(string(m.Mode)), num(l.Count))
		// Buckets whose bounds read the same at the table's precision
		// (0.15µs and 0.24µs both read 0.2µs) are drawn as one bar.
		type row struct {
			label string
			count int64
		}
		var rows []row
		for _, bk := range l.Buckets {
			label := us(bk.UpToUS)
			if n := len(rows); n > 0 && rows[n-1].label == label {
				rows[n-1].count += bk.Count
				continue
			}
			rows = append(rows, row{label, bk.Count})
		}
		var peak int64
		for _, r := range rows {
			peak = max(peak, r.count)
		}
		for _, r := range rows {
			drawn := bar(float64(r.count)/float64(peak), 30)
			pad := strings.Repeat(" ", max(0, 30-utf8.RuneCountInString(drawn)))
			fmt.Fprintf(b, "  ≤ %9s │%s%s %s\n", r.label, p.accent.Sprint(drawn), pad, p.dim.Sprint(num(r.count)))
		}
		b.WriteString("\n")
	}
}

// verdict writes, per mode, a line of figures marked by the worst of the
// mode's findings, then each finding under it; what could not be cleaned
// up; and the closing line, from OK.
func (v view) verdict(b *strings.Builder) {
	res, p := v.res, v.p
	for _, m := range res.Modes {
		fmt.Fprintf(b, "%s %s\n", v.mark(v.severity(m.Mode)), v.wrap(modeSummary(m, res.Count), 2))
		v.findings(b, m.Mode)
	}
	v.findings(b, "")
	for _, l := range res.Leftovers {
		fmt.Fprintf(b, "%s %s\n", p.bad.Sprint("✗"), v.wrap("could not clean up "+l.String(), 2))
	}
	if res.OK {
		fmt.Fprintf(b, "\n%s\n", p.good.Sprint("OK: every check held"))
		return
	}
	fmt.Fprintf(b, "\n%s\n", p.bad.Sprintf("FAILED: %d check(s) did not hold (marked ✗ above)", len(res.Problems)))
}

// findings writes mode m's findings ("" for the run's own), indented and
// wrapped to the terminal.
func (v view) findings(b *strings.Builder, m probe.Mode) {
	for _, f := range v.res.Findings {
		if f.Mode != m || f.Node != "" || f.Code == probe.CodeSlowNode || f.Code == probe.CodeNodesEven {
			continue // a per-node probe lists these with its nodes
		}
		fmt.Fprintf(b, "    %s %s\n", v.mark(f.Severity), v.wrap(f.Message, 6))
	}
}

// wrap breaks s into lines that fit the terminal after indent columns,
// indenting the continuation lines; unchanged when the width is unknown.
func (v view) wrap(s string, indent int) string {
	if v.o.Width <= indent+20 {
		return s
	}
	lines := strings.Split(text.WrapSoft(s, v.o.Width-indent), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Join(lines, "\n"+strings.Repeat(" ", indent))
}

// modeSummary states a mode's figures in words.
func modeSummary(m probe.ModeResult, count int) string {
	vis := m.Visibility
	if count == 1 {
		call := us(m.AckLatencyUS.Max)
		switch {
		case m.Acks == 0 && m.LastError != "":
			return fmt.Sprintf("%s ack: the ack call failed: %s.", m.Mode, m.LastError)
		case m.Mode == probe.Standard:
			return fmt.Sprintf("standard ack: Ack() returned in %s, once the ack was buffered on the client; %s.", call, readBackWords(vis))
		}
		return fmt.Sprintf("confirmed ack: DoubleAck() returned in %s, once the server had applied the ack; %s.", call, readBackWords(vis))
	}
	s := fmt.Sprintf("%s: %s acks at %s, p99 %s;", m.Mode, num(m.Acks), rate(m.AcksPerSec), us(m.AckLatencyUS.P99))
	switch {
	case vis.StaleReads > 0:
		s += fmt.Sprintf(" %s of %s immediate read-backs still showed the ack pending", num(vis.StaleReads), num(vis.ReadBacks))
		if vis.LagUS.Count > 0 {
			s += fmt.Sprintf(" (visible after p50 %s)", us(vis.LagUS.P50))
		}
	default:
		s += fmt.Sprintf(" all %s immediate read-backs showed the ack applied", num(vis.ReadBacks))
	}
	if m.Redelivered > 0 {
		s += fmt.Sprintf("; %s redelivered", redeliveries(m))
	}
	if m.Errors > 0 {
		s += fmt.Sprintf("; %s failed", num(m.Errors))
	}
	return s + "."
}

func readBackWords(vis probe.Visibility) string {
	switch {
	case vis.ReadBacks == 0:
		return "no read-back was taken"
	case vis.NotVisible > 0:
		return "the server did not show the ack within the wait"
	case vis.StaleReads > 0:
		return fmt.Sprintf("the server showed the ack %s later", us(vis.LagUS.Max))
	}
	return "the immediate read-back showed the ack applied"
}
