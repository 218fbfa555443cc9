package report

import (
	"fmt"
	"strings"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// faultsSection shows what fault injection did to each mode, as figures:
// what the story means (lost standard acks came back as redeliveries;
// lost confirmed acks were noticed and sent again) is told by the
// findings under each mode.
func (v view) faultsSection(b *strings.Builder) {
	res, p := v.res, v.p
	f := res.Faults
	what := []string{}
	if f.DropRate > 0 {
		what = append(what, fmt.Sprintf("dropping %.0f%% of ack frames", f.DropRate*100))
	}
	if f.CutAfter > 0 {
		what = append(what, fmt.Sprintf("cutting the connection after ack frame %d", f.CutAfter))
	}
	counts := fmt.Sprintf("%s ack frames, %s dropped", num(f.AckFrames), num(f.AcksDropped))
	if f.CutAfter > 0 {
		counts += fmt.Sprintf(", %s cut, %s lost in the cut, %s connections", num(f.Cuts), num(f.AcksCut), num(f.Connections))
	}
	fmt.Fprintf(b, "%s\n", v.wrap(fmt.Sprintf("%s %s (proxy: %s)", p.title.Sprint("fault injection:"), strings.Join(what, " and "), counts), 2))

	t, row := v.modeTable()
	ptr := func(n *int64) string {
		if n == nil {
			return "-"
		}
		return num(*n)
	}
	row("ack frames sent", func(m probe.ModeResult) string { return ptr(m.AckFrames) })
	row("acks lost on the way", func(m probe.ModeResult) string { return ptr(m.AcksLost) })
	row("redelivered by the server", func(m probe.ModeResult) string {
		if m.Redelivered == 0 {
			return "0"
		}
		return v.paint(v.severity(m.Mode, probe.RedeliveryCodes...), redeliveries(m))
	})
	row("confirmed-ack timeouts", func(m probe.ModeResult) string { return confirmedOnly(m, m.Timeouts) })
	row("confirmed-ack retries", func(m probe.ModeResult) string { return confirmedOnly(m, m.Retries) })
	row("acked exactly once", func(m probe.ModeResult) string {
		s := fmt.Sprintf("%s of %s", num(m.AckedOnce), num(res.Count))
		if m.AckedOnce == res.Count {
			return p.good.Sprint(s)
		}
		return v.paint(v.severity(m.Mode, probe.RedeliveryCodes...), s)
	})
	b.WriteString(t.Render() + "\n\n")
}

func confirmedOnly(m probe.ModeResult, n int) string {
	if m.Mode != probe.Confirmed {
		return "-"
	}
	return num(n)
}
