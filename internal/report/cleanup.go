package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// Orphans writes the table of what ackprobe runs left behind, and says
// what was skipped for being younger, or more recently active, than
// --older-than.
func Orphans(w io.Writer, server doc.ServerInfo, res *probe.Orphans, o Options) error {
	p := newPalette(o.Color)
	var b strings.Builder
	b.WriteString(fitItems([]string{p.title.Sprint("ackprobe cleanup"), fmt.Sprintf("nats-server %s at %s", server.Version, server.URL)}, o.Width) + "\n\n")
	switch {
	case len(res.Found) > 0:
		b.WriteString(orphanTable(res.Found, o, p))
	case len(res.Skipped) > 0:
		b.WriteString("nothing of ackprobe's to remove\n")
	default:
		b.WriteString("nothing of ackprobe's is left behind\n")
	}
	var aged, kept []probe.Skipped
	for _, s := range res.Skipped {
		if s.Reason == probe.SkippedKept {
			kept = append(kept, s)
		} else {
			aged = append(aged, s)
		}
	}
	if len(aged) > 0 {
		fmt.Fprintf(&b, "\n%s %s\n", p.dim.Sprint("·"), wrapLine(skippedLine(aged, res.OlderThan, time.Now()), o.Width-2, 2))
	}
	if len(kept) > 0 {
		fmt.Fprintf(&b, "\n%s %s\n", p.dim.Sprint("·"), wrapLine(keptLine(kept, res.OlderThan, time.Now()), o.Width-2, 2))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// orphanTable is the table of what was found. On a narrow terminal the
// commands that remove each one by hand leave the table for lines of
// their own below it, broken as a shell would read them.
func orphanTable(found []probe.Orphan, o Options, p palette) string {
	narrow := o.Width > 0 && o.Width < 120
	cols := []column{{header: "What"}, {header: "Stream", trim: true}, {header: "Consumer", trim: true},
		{header: "Created", right: true}, {header: "Messages", short: "Msgs", right: true}}
	if !narrow {
		cols = append(cols, column{header: "Remove with"})
	}
	rows := make([][]cell, 0, len(found))
	for _, f := range found {
		what := f.What
		if f.Kept {
			what += " (kept)"
		}
		msgs := "-"
		if f.What == "stream" {
			msgs = num(f.Messages)
		}
		rows = append(rows, []cell{one(what), one(f.Stream), one(f.Consumer), one(age(time.Since(f.Created)) + " ago"), one(msgs),
			one(p.dim.Sprint(f.Command))})
	}
	out := fitTable(cols, rows, nil, o.Width) + "\n"
	if !narrow {
		return out
	}
	out += "\nremove by hand with:\n"
	for _, f := range found {
		for _, line := range strings.Split(shellWrap(f.Command, o.Width, 2), "\n") {
			out += p.dim.Sprint(line) + "\n"
		}
	}
	return out
}

// keptLine names what runs kept on purpose (--keep), which cleanup leaves
// alone unless asked; with --include-kept the --older-than rule still
// holds, so the line says what else a recent one needs.
func keptLine(kept []probe.Skipped, olderThan time.Duration, now time.Time) string {
	var names []string
	for _, k := range kept {
		n := k.What + " " + k.Stream
		if k.Consumer != "" {
			n += " › " + k.Consumer
		}
		names = append(names, n)
	}
	if len(names) > 3 {
		names = append(names[:3], fmt.Sprintf("%d more", len(kept)-3))
	}
	them := "them"
	if len(kept) == 1 {
		them = "it"
	}
	recent := false
	for _, k := range kept {
		if now.Sub(k.Created) < olderThan || k.LastActive != nil && now.Sub(*k.LastActive) < olderThan {
			recent = true
		}
	}
	also := ""
	if recent {
		also = fmt.Sprintf(" (and --older-than 0s for what was created or used within --older-than %s)", shortDuration(olderThan))
	}
	return fmt.Sprintf("%d kept on purpose by a run with --keep (%s); pass --include-kept%s to list and remove %s too",
		len(kept), strings.Join(names, ", "), also, them)
}

// skippedLine says how many candidates were skipped, and why.
func skippedLine(skipped []probe.Skipped, olderThan time.Duration, now time.Time) string {
	var newest, lastActive time.Time
	young, active := 0, 0
	for _, s := range skipped {
		switch s.Reason {
		case probe.SkippedYoung:
			young++
			if s.Created.After(newest) {
				newest = s.Created
			}
		case probe.SkippedActive:
			active++
			if s.LastActive != nil && s.LastActive.After(lastActive) {
				lastActive = *s.LastActive
			}
		}
	}
	flag := "--older-than " + shortDuration(olderThan)
	var why []string
	if young > 0 {
		why = append(why, fmt.Sprintf("younger than %s (newest created %s ago)", flag, age(now.Sub(newest))))
	}
	if active > 0 {
		within := flag
		if young > 0 {
			within = "it"
		}
		why = append(why, fmt.Sprintf("active within %s (last active %s ago)", within, age(now.Sub(lastActive))))
	}
	them := "them"
	if len(skipped) == 1 {
		them = "it"
	}
	return fmt.Sprintf("%d skipped: %s; pass --older-than 0s to remove %s too, if no ackprobe run or canary is using %s",
		len(skipped), strings.Join(why, " or "), them, them)
}

// Prompt is cleanup's question before it removes found: "remove this
// stream? [y/N] ", "remove these 3 consumers? [y/N] ", "remove these 2
// streams and this consumer? [y/N] ".
func Prompt(found []probe.Orphan) string {
	n := map[string]int{}
	for _, f := range found {
		n[f.What]++
	}
	var parts []string
	for _, what := range []string{"stream", "consumer"} {
		switch c := n[what]; {
		case c == 1:
			parts = append(parts, "this "+what)
		case c > 1:
			parts = append(parts, fmt.Sprintf("these %d %ss", c, what))
		}
	}
	return "remove " + strings.Join(parts, " and ") + "? [y/N] "
}

// FailedRemoval is an orphan cleanup could not remove, and why.
type FailedRemoval struct {
	probe.Orphan
	Error string `json:"error"`
}

// Cleanup writes what cleanup found, what it removed and what it could
// not. found is nil when it was listed already (before asking); removing
// says whether removal was asked for (--force, or a yes).
func Cleanup(w io.Writer, server doc.ServerInfo, found *probe.Orphans, removed []probe.Orphan, failed []FailedRemoval, removing bool, o Options) error {
	p := newPalette(o.Color)
	var b strings.Builder
	switch {
	case found != nil:
		if err := Orphans(&b, server, found, o); err != nil {
			return err
		}
		if !removing && len(found.Found) > 0 {
			them := "them"
			if len(found.Found) == 1 {
				them = "it"
			}
			fmt.Fprintf(&b, "\n%s\n", p.dim.Sprint(wrapLine("nothing removed: pass --force to remove "+them, o.Width, 2)))
		}
	case !removing:
		fmt.Fprintf(&b, "%s\n", p.dim.Sprint("nothing removed"))
	}
	for _, r := range removed {
		fmt.Fprintf(&b, "%s %s\n", p.good.Sprint("✓"), wrapLine("removed "+describe(r), o.Width-2, 2))
	}
	for _, f := range failed {
		fmt.Fprintf(&b, "%s %s\n", p.bad.Sprint("✗"), wrapLine(fmt.Sprintf("could not remove %s: %s", describe(f.Orphan), f.Error), o.Width-2, 2))
		for _, line := range strings.Split(shellWrap(f.Command, o.Width, 2), "\n") {
			fmt.Fprintf(&b, "%s\n", p.dim.Sprint(line))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describe(o probe.Orphan) string {
	if o.What == "consumer" {
		return fmt.Sprintf("consumer %s on stream %s and its probe messages on %s", o.Consumer, o.Stream, o.Subject)
	}
	return fmt.Sprintf("stream %s", o.Stream)
}

// age rounds a duration for people: 59m59.6s reads 1h, 3m0.2s 3m.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return shortDuration(d.Round(time.Minute))
	}
	return shortDuration(d.Round(time.Hour))
}

// shortDuration is d as a flag would be written: 1h, 30m, 1h30m, 90s
// reads 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// shellWrap breaks a shell command into lines of at most width columns
// (0: no limit), each but the last ending in a backslash so that it still
// pastes as one command; the first line is indented by indent spaces,
// the others by two more. A word too long for a line is cut with a
// backslash too, and goes on at the start of the next line.
func shellWrap(cmd string, width, indent int) string {
	first := strings.Repeat(" ", indent)
	if width <= 0 || text.StringWidthWithoutEscSequences(first+cmd) <= width {
		return first + cmd
	}
	const cont = " \\"
	var lines []string
	cur := first
	fresh := true // nothing but indentation on cur
	for _, word := range strings.Fields(cmd) {
		sep := " "
		if fresh {
			sep = ""
		}
		if !fresh && len(cur)+len(sep)+len(word)+len(cont) > width {
			lines = append(lines, cur+cont)
			cur, sep, fresh = first+"  ", "", true
		}
		// A word longer than a line: cut it, no space before the backslash.
		for len(cur)+len(sep)+len(word)+len(cont) > width && len(cur)+len(sep)+1 < width {
			n := width - len(cur) - len(sep) - 1
			lines = append(lines, cur+sep+word[:n]+"\\")
			word, cur, sep = word[n:], "", ""
		}
		cur += sep + word
		fresh = false
	}
	return strings.Join(append(lines, cur), "\n")
}
