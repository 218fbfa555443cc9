// Package report renders probe results as colored tables for people and as
// JSON for scripts. It never talks to NATS: everything it shows comes from
// a probe.Result (or an inspect snapshot) handed to it.
package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/fatih/color"
	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// Options control rendering.
type Options struct {
	// Color turns ANSI colors on. The caller decides (terminal, --no-color,
	// NO_COLOR); report never looks at the environment.
	Color bool
	// Command is the subcommand that produced the result, for the title.
	Command string
	// Width is the terminal's width in columns; 0 means unknown (not a
	// terminal): tables are drawn in full. Below 120 the probe tables
	// drop their least important columns instead of wrapping.
	Width int
}

// palette holds colors built from an explicit on/off decision rather than
// fatih/color's global, which looks at stdout once at start-up.
type palette struct {
	good, warn, bad, dim, bold, accent, title *color.Color
}

func newPalette(on bool) palette {
	mk := func(attrs ...color.Attribute) *color.Color {
		c := color.New(attrs...)
		if on {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
		return c
	}
	return palette{
		good:   mk(color.FgGreen),
		warn:   mk(color.FgYellow),
		bad:    mk(color.FgRed, color.Bold),
		dim:    mk(color.Faint),
		bold:   mk(color.Bold),
		accent: mk(color.FgCyan),
		title:  mk(color.Bold, color.FgBlue),
	}
}

// newTable returns a rounded table with headers as written, like the nats CLI.
func newTable() table.Writer {
	t := table.NewWriter()
	style := table.StyleRounded
	style.Format.Header = text.FormatDefault
	style.Format.Footer = text.FormatDefault
	t.SetStyle(style)
	return t
}

// alignRight right-aligns the given 1-based columns.
func alignRight(t table.Writer, cols ...int) {
	cfg := make([]table.ColumnConfig, 0, len(cols))
	for _, c := range cols {
		cfg = append(cfg, table.ColumnConfig{Number: c, Align: text.AlignRight, AlignHeader: text.AlignRight})
	}
	t.SetColumnConfigs(cfg)
}

// us formats a figure in microseconds as a short duration.
func us(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.1fµs", v)
	case v < 1000:
		return fmt.Sprintf("%.0fµs", v)
	case v < 10_000:
		return fmt.Sprintf("%.2fms", v/1000)
	case v < 1_000_000:
		return fmt.Sprintf("%.1fms", v/1000)
	}
	return (time.Duration(v * float64(time.Microsecond))).Round(time.Millisecond).String()
}

// num formats a count with thousands separators.
func num[T ~int | ~int64 | ~uint64](v T) string { return humanize.Comma(int64(v)) }

// rate formats a per-second figure.
func rate(v float64) string {
	if v == 0 {
		return "-"
	}
	if v < 100 {
		return fmt.Sprintf("%.1f/s", v)
	}
	return humanize.Comma(int64(math.Round(v))) + "/s"
}

// delta formats the change of a figure, colored by whether it moved.
func (p palette) delta(d int64) string {
	switch {
	case d == 0:
		return p.dim.Sprint("±0")
	case d > 0:
		return p.accent.Sprintf("+%s", humanize.Comma(d))
	}
	return p.accent.Sprint(humanize.Comma(d))
}

// bar draws a horizontal bar of width cells for frac in [0,1].
func bar(frac float64, width int) string {
	if !(frac > 0) { // also NaN
		return ""
	}
	frac = min(frac, 1)
	eighths := []string{"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"}
	cells := frac * float64(width)
	full := int(cells)
	s := strings.Repeat("█", full)
	if rest := int((cells - float64(full)) * 8); rest > 0 {
		s += eighths[rest]
	}
	if s == "" {
		s = "▏"
	}
	return s
}

// cell is a table cell in two lengths: the short one is used once the
// table no longer fits the terminal at full length.
type cell struct{ full, short string }

// one is a cell that has one length only.
func one(s string) cell { return cell{s, s} }

// column is a column of a table that fits the terminal's width.
type column struct {
	header, short string
	right         bool
	// drop orders the columns left out when the table is still too wide:
	// 1 goes first, then 2, ...; 0 is never dropped.
	drop int
	// trim marks a column whose cells may be cut, with "…", as a last
	// resort (names and notes); cells are never wrapped.
	trim bool
}

// fitTable renders a rounded table within width columns (0: no limit).
// It tries, in turn, the full table; short headers and cells; leaving
// out columns in their drop order; and finally cutting the cells of trim
// columns. seps are the row indexes that a separator line precedes.
func fitTable(cols []column, rows [][]cell, seps []int, width int) string {
	render := func(short bool, keep []bool, trimTo int) string {
		t := newTable()
		var head table.Row
		var cfg []table.ColumnConfig
		n := 0
		for i, col := range cols {
			if !keep[i] {
				continue
			}
			n++
			h := col.header
			if short && col.short != "" {
				h = col.short
			}
			head = append(head, h)
			cc := table.ColumnConfig{Number: n}
			if col.right {
				cc.Align, cc.AlignHeader = text.AlignRight, text.AlignRight
			}
			if col.trim && trimTo > 0 {
				cc.WidthMax = trimTo
				cc.WidthMaxEnforcer = func(s string, max int) string { return text.Snip(s, max, "…") }
			}
			cfg = append(cfg, cc)
		}
		t.AppendHeader(head)
		t.SetColumnConfigs(cfg)
		sep := map[int]bool{}
		for _, i := range seps {
			sep[i] = true
		}
		for r, cells := range rows {
			if sep[r] && r > 0 {
				t.AppendSeparator()
			}
			var row table.Row
			for i, cl := range cells {
				if i >= len(cols) || !keep[i] {
					continue
				}
				if short {
					row = append(row, cl.short)
				} else {
					row = append(row, cl.full)
				}
			}
			t.AppendRow(row)
		}
		return t.Render()
	}
	keep := make([]bool, len(cols))
	for i := range keep {
		keep[i] = true
	}
	out := render(false, keep, 0)
	if width <= 0 || textWidth(out) <= width {
		return out
	}
	out = render(true, keep, 0)
	for level := 1; textWidth(out) > width; level++ {
		dropped := false
		for i, col := range cols {
			if col.drop == level && keep[i] {
				keep[i], dropped = false, true
			}
		}
		if !dropped {
			if level > len(cols) {
				break
			}
			continue
		}
		out = render(true, keep, 0)
	}
	for trimTo := 24; textWidth(out) > width && trimTo >= 6; trimTo -= 2 {
		out = render(true, keep, trimTo)
	}
	return out
}

// textWidth is the widest line of s on a terminal, escape sequences left out.
func textWidth(s string) int {
	w := 0
	for _, l := range strings.Split(s, "\n") {
		w = max(w, text.StringWidthWithoutEscSequences(l))
	}
	return w
}

// wrapLine breaks a line at spaces so that it fits width columns (0: no
// limit), indenting the lines after the first by indent spaces.
func wrapLine(line string, width, indent int) string {
	if width <= 0 || text.StringWidthWithoutEscSequences(line) <= width {
		return line
	}
	var b strings.Builder
	rest := strings.TrimLeft(line, " ")
	lead := len(line) - len(rest)
	cur, curW := strings.Repeat(" ", lead), lead
	for i, word := range strings.Split(rest, " ") {
		if i == 0 {
			cur += word
			curW += text.StringWidthWithoutEscSequences(word)
			continue
		}
		ww := text.StringWidthWithoutEscSequences(word)
		if curW > 0 && curW+1+ww > width {
			b.WriteString(cur + "\n")
			cur, curW = strings.Repeat(" ", indent)+word, indent+ww
			continue
		}
		if curW > 0 {
			cur += " "
			curW++
		}
		cur += word
		curW += ww
	}
	b.WriteString(cur)
	return b.String()
}

// fitItems joins the items of a header line with two spaces, starting a
// new line where the next item would not fit width columns (0: no
// limit), as the header lines after it are wrapped; an item wider than a
// line on its own is wrapped at its spaces.
func fitItems(items []string, width int) string {
	var lines []string
	cur := ""
	for _, it := range items {
		switch {
		case cur == "":
			cur = it
		case width <= 0 || textWidth(cur+"  "+it) <= width:
			cur += "  " + it
		default:
			lines = append(lines, cur)
			cur = it
		}
	}
	lines = append(lines, cur)
	for i := range lines {
		lines[i] = wrapLine(lines[i], width, 0)
	}
	return strings.Join(lines, "\n")
}
