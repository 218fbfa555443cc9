package canary

import (
	"fmt"
	"strings"
	"time"

	"github.com/fatih/color"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// RoundDoc is the JSON document of one round (--json prints one per line):
// the probe's Result, as compare --json prints it, with the canary's round
// number, verdict, overall status and error in place of the Result's own
// round and ok.
type RoundDoc struct {
	*probe.Result
	// Round is the canary's round number (the Result's counts the rounds
	// of one probe setup).
	Round int `json:"round"`
	// OK is true when the round finished without a failing finding.
	OK bool `json:"ok"`
	// Verdict is ok, warn, failed or error.
	Verdict string `json:"verdict"`
	// Status is the overall status after the round (see History).
	Status string      `json:"status"`
	Ended  time.Time   `json:"ended"`
	Error  *RoundError `json:"error,omitempty"`
}

// Doc returns round o's JSON document, with the overall status after it.
func Doc(o Outcome, status string) RoundDoc {
	s := Summarize(o)
	return RoundDoc{Result: o.Result, Round: o.Round, OK: s.Verdict == VerdictOK || s.Verdict == VerdictWarn,
		Verdict: s.Verdict, Status: status, Ended: o.Ended.UTC(), Error: s.Error}
}

// Line renders round o in one compact line for a terminal: the round, its
// verdict, the server a per-node round was meant for, the confirmed acks' p50 and p99 (the client's DoubleAck call),
// the visibility lag's p99 (ack call → consumer state showed it, over the
// read-backs that first showed it pending), the round's time and its
// findings; or why it could not finish. The overall status follows when
// it is not ok. colors says whether to color the verdict. With a width
// (the terminal's columns; 0 for none), what does not fit after the
// figures (findings, the error, the status) goes on lines of its own,
// indented, wrapped at the width.
func Line(o Outcome, status string, colors bool, width int) string {
	s := Summarize(o)
	paint := func(c *color.Color, v string) string {
		if !colors {
			return v
		}
		c.EnableColor()
		return c.Sprint(v)
	}
	pad := strings.Repeat(" ", max(0, 6-len(s.Verdict)))
	verdict := s.Verdict
	switch s.Verdict {
	case VerdictOK:
		verdict = paint(color.New(color.FgGreen), verdict)
	case VerdictWarn:
		verdict = paint(color.New(color.FgYellow), verdict)
	default:
		verdict = paint(color.New(color.FgRed, color.Bold), verdict)
	}
	parts := []string{fmt.Sprintf("round %-5d %s%s", s.Round, verdict, pad)}
	if res := o.Result; res != nil && len(res.Nodes) == 1 {
		// A per-node round: the server it was meant for.
		parts = append(parts, "on "+res.Nodes[0].Server)
	}
	for _, m := range s.Modes {
		if m.Mode == probe.Confirmed {
			parts = append(parts, fmt.Sprintf("confirmed p50 %s p99 %s", us(m.AckP50US), us(m.AckP99US)))
		}
	}
	lag, lagged := 0.0, false
	for _, m := range s.Modes {
		if m.StaleReads > 0 && m.LagP99US >= lag {
			lag, lagged = m.LagP99US, true
		}
	}
	if lagged {
		parts = append(parts, "visibility lag p99 "+us(lag))
	} else if len(s.Modes) > 0 {
		parts = append(parts, "visibility lag -")
	}
	parts = append(parts, "in "+time.Duration(s.Elapsed).Round(time.Millisecond).String())
	if len(s.Findings) > 0 {
		found := make([]string, 0, len(s.Findings))
		for _, f := range s.Findings {
			who := f.Code
			if f.Mode != "" {
				who += "/" + string(f.Mode)
			}
			found = append(found, fmt.Sprintf("%s %s×%d", f.Severity, who, f.Count))
		}
		parts = append(parts, "findings: "+strings.Join(found, ", "))
	}
	if s.Error != nil {
		parts = append(parts, fmt.Sprintf("%s: %s", s.Error.Kind, s.Error.Message))
	}
	if status != StatusOK {
		parts = append(parts, "[status "+status+"]")
	}
	return layout(parts, width)
}

// layout joins parts with two spaces, on one line when there is no width;
// otherwise a part that does not fit starts a new line, indented, and a
// part wider than a line is wrapped at its spaces.
func layout(parts []string, width int) string {
	const indent = "      "
	var b strings.Builder
	used := 0
	for i, part := range parts {
		w := text.RuneWidthWithoutEscSequences(part)
		switch {
		case i == 0:
		case width <= 0 || used+2+w <= width:
			b.WriteString("  ")
			used += 2
		default:
			b.WriteString("\n" + indent)
			used = len(indent)
			if used+w > width {
				lines := strings.Split(text.WrapSoft(part, max(20, width-len(indent))), "\n")
				part = strings.Join(lines, "\n"+indent)
				w = text.RuneWidthWithoutEscSequences(lines[len(lines)-1])
			}
		}
		b.WriteString(part)
		used += w
	}
	return b.String()
}

// us renders microseconds as a duration: 312µs, 1.21ms, 1.5s.
func us(v float64) string {
	d := time.Duration(v * float64(time.Microsecond))
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
