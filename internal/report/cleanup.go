package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// Orphans writes the table of what ackprobe runs left behind.
func Orphans(w io.Writer, server doc.ServerInfo, found []probe.Orphan, o Options) error {
	p := newPalette(o.Color)
	var b strings.Builder
	fmt.Fprintf(&b, "%s  nats-server %s at %s\n\n", p.title.Sprint("ackprobe cleanup"), server.Version, server.URL)
	if len(found) == 0 {
		b.WriteString("nothing of ackprobe's is left behind\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString(orphanTable(found, o, p))
	_, err := io.WriteString(w, b.String())
	return err
}

func orphanTable(found []probe.Orphan, o Options, p palette) string {
	t := newTable()
	t.AppendHeader(table.Row{"What", "Stream", "Consumer", "Created", "Messages", "Remove with"})
	alignRight(t, 5)
	for _, f := range found {
		what := f.What
		if f.Kept {
			what += " (kept)"
		}
		msgs := "-"
		if f.What == "stream" {
			msgs = num(f.Messages)
		}
		cmd := f.Command
		if o.Width > 0 && o.Width < 120 {
			cmd = "" // long; in --json
		}
		t.AppendRow(table.Row{what, f.Stream, f.Consumer, age(time.Since(f.Created)) + " ago", msgs, p.dim.Sprint(cmd)})
	}
	return t.Render() + "\n"
}

// FailedRemoval is an orphan cleanup could not remove, and why.
type FailedRemoval struct {
	probe.Orphan
	Error string `json:"error"`
}

// Cleanup writes what cleanup found and what it removed. found is nil when
// it was already listed (before asking).
func Cleanup(w io.Writer, server doc.ServerInfo, found, removed []probe.Orphan, failed []FailedRemoval, asked bool, o Options) error {
	p := newPalette(o.Color)
	var b strings.Builder
	if found != nil {
		if err := Orphans(&b, server, found, o); err != nil {
			return err
		}
		if !asked && len(found) > 0 {
			fmt.Fprintf(&b, "\n%s\n", p.dim.Sprint("nothing removed: pass --force to remove these"))
		}
	}
	for _, r := range removed {
		fmt.Fprintf(&b, "%s removed %s\n", p.good.Sprint("✓"), describe(r))
	}
	for _, f := range failed {
		fmt.Fprintf(&b, "%s could not remove %s: %s (remove it with: %s)\n", p.bad.Sprint("✗"), describe(f.Orphan), f.Error, f.Command)
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

// age rounds a duration for people: 59m59.6s reads 1h.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Hour).String()
}
