package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// leftovers is a hand-built cleanup finding: a probe stream, a probe
// consumer in a user's stream and a kept stream to remove; one stream
// too young and one too recently active to be touched.
func leftovers() *probe.Orphans {
	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	active := ago(20 * time.Second)
	return &probe.Orphans{
		OlderThan: time.Hour,
		Found: []probe.Orphan{
			{What: "consumer", Stream: "ORDERS", Consumer: "ACKPROBE_7HQ2M1XA", Subject: "ackprobe.7hq2m1xa", Created: ago(26 * time.Hour),
				Command: "nats consumer rm ORDERS ACKPROBE_7HQ2M1XA -f && nats stream purge ORDERS --subject ackprobe.7hq2m1xa -f"},
			{What: "stream", Stream: "ACKPROBE_4F2KX9QZ", Created: ago(2*time.Hour + 10*time.Second), Messages: 1200,
				Command: "nats stream rm ACKPROBE_4F2KX9QZ -f"},
			{What: "stream", Stream: "CI_PROBE", Created: ago(3 * time.Hour), Kept: true, Messages: 0,
				Command: "nats stream rm CI_PROBE -f"},
		},
		Skipped: []probe.Skipped{
			{Orphan: probe.Orphan{What: "stream", Stream: "ACKPROBE_CANARY01", Created: ago(5 * time.Hour), Command: "nats stream rm ACKPROBE_CANARY01 -f"},
				Reason: probe.SkippedActive, LastActive: &active},
			{Orphan: probe.Orphan{What: "stream", Stream: "ACKPROBE_K2D9W0PL", Created: ago(3 * time.Minute), Command: "nats stream rm ACKPROBE_K2D9W0PL -f"},
				Reason: probe.SkippedYoung},
		},
	}
}

var cleanupServer = doc.ServerInfo{URL: "nats://nats-0.nats.messaging.svc.cluster.local:4222", Version: "2.15.2"}

func TestCleanupGolden(t *testing.T) {
	cases := []struct {
		file  string
		color bool
		width int
	}{
		{"cleanup.txt", false, 0},
		{"cleanup.color.txt", true, 0},
		{"cleanup.80.txt", false, 80},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := Cleanup(&b, cleanupServer, leftovers(), nil, nil, false, Options{Color: c.color, Width: c.width}); err != nil {
				t.Fatal(err)
			}
			if hasANSI := strings.Contains(b.String(), "\x1b["); hasANSI != c.color {
				t.Errorf("ANSI escapes present = %v, want %v", hasANSI, c.color)
			}
			golden(t, c.file, b.String())
		})
	}
}

// TestCleanupWords checks the sentences around the table: what was
// skipped and why, and what to pass to remove it.
func TestCleanupWords(t *testing.T) {
	render := func(res *probe.Orphans, removed []probe.Orphan, failed []FailedRemoval, removing bool) string {
		var b bytes.Buffer
		if err := Cleanup(&b, cleanupServer, res, removed, failed, removing, Options{}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	full := leftovers()
	young := full.Skipped[1:]
	cases := []struct {
		name string
		res  *probe.Orphans
		want []string
		not  []string
	}{
		{"nothing", &probe.Orphans{OlderThan: time.Hour, Found: []probe.Orphan{}, Skipped: []probe.Skipped{}},
			[]string{"nothing of ackprobe's is left behind"}, []string{"skipped", "nothing removed"}},
		{"only skipped", &probe.Orphans{OlderThan: 30 * time.Minute, Found: []probe.Orphan{}, Skipped: young},
			[]string{"nothing of ackprobe's to remove", "1 skipped: younger than --older-than 30m (newest created 3m ago); pass --older-than 0s to remove it too"},
			[]string{"left behind", "nothing removed"}},
		{"both reasons", full,
			[]string{"2 skipped: younger than --older-than 1h (newest created 3m ago) or active within it (last active 20s ago); pass --older-than 0s to remove them too",
				"nothing removed: pass --force to remove them"}, nil},
		{"one found", &probe.Orphans{OlderThan: time.Hour, Found: full.Found[1:2], Skipped: []probe.Skipped{}},
			[]string{"nothing removed: pass --force to remove it"}, []string{"skipped"}},
		{"only kept", &probe.Orphans{OlderThan: time.Hour, Found: []probe.Orphan{}, Skipped: []probe.Skipped{
			{Orphan: probe.Orphan{What: "stream", Stream: "CI_PROBE", Kept: true}, Reason: probe.SkippedKept},
			{Orphan: probe.Orphan{What: "consumer", Stream: "ORDERS", Consumer: "ACKPROBE_CI", Kept: true}, Reason: probe.SkippedKept}}},
			[]string{"nothing of ackprobe's to remove", "2 kept on purpose by a run with --keep (stream CI_PROBE, consumer ORDERS › ACKPROBE_CI); pass --include-kept to list and remove them too"},
			[]string{"left behind", "skipped", "--older-than"}},
		{"kept recently", &probe.Orphans{OlderThan: time.Hour, Found: []probe.Orphan{}, Skipped: []probe.Skipped{
			{Orphan: probe.Orphan{What: "stream", Stream: "ACKPROBE_NG733Y5W", Kept: true, Created: time.Now().Add(-3 * time.Second)}, Reason: probe.SkippedKept}}},
			[]string{"1 kept on purpose by a run with --keep (stream ACKPROBE_NG733Y5W); pass --include-kept (and --older-than 0s for what was created or used within --older-than 1h) to list and remove it too"},
			[]string{"left behind", "skipped"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := render(c.res, nil, nil, false)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("unexpected %q in:\n%s", w, out)
				}
			}
		})
	}
	// Listed before asking; the answer was no.
	if out := render(nil, nil, nil, false); out != "nothing removed\n" {
		t.Errorf("after a no: %q", out)
	}
	out := render(nil, full.Found[:1], []FailedRemoval{{Orphan: full.Found[1], Error: "timeout"}}, true)
	for _, w := range []string{"✓ removed consumer ACKPROBE_7HQ2M1XA on stream ORDERS and its probe messages on ackprobe.7hq2m1xa",
		"✗ could not remove stream ACKPROBE_4F2KX9QZ: timeout\n  nats stream rm ACKPROBE_4F2KX9QZ -f\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestPrompt(t *testing.T) {
	s := probe.Orphan{What: "stream"}
	c := probe.Orphan{What: "consumer"}
	cases := []struct {
		found []probe.Orphan
		want  string
	}{
		{[]probe.Orphan{s}, "remove this stream? [y/N] "},
		{[]probe.Orphan{c}, "remove this consumer? [y/N] "},
		{[]probe.Orphan{s, s, s}, "remove these 3 streams? [y/N] "},
		{[]probe.Orphan{c, c}, "remove these 2 consumers? [y/N] "},
		{[]probe.Orphan{s, c}, "remove this stream and this consumer? [y/N] "},
		{[]probe.Orphan{c, s, s}, "remove these 2 streams and this consumer? [y/N] "},
		{[]probe.Orphan{s, c, c, c}, "remove this stream and these 3 consumers? [y/N] "},
	}
	for _, tc := range cases {
		if got := Prompt(tc.found); got != tc.want {
			t.Errorf("%d found: %q, want %q", len(tc.found), got, tc.want)
		}
	}
}

// TestShellWrap checks that a command broken to fit the terminal still
// reads, to a shell, as the same words.
func TestShellWrap(t *testing.T) {
	long := "nats consumer rm ORDERS_WITH_A_RATHER_LONG_NAME ACKPROBE_7HQ2M1XA -f && nats stream purge ORDERS_WITH_A_RATHER_LONG_NAME --subject ackprobe.7hq2m1xa -f"
	huge := "nats stream rm " + strings.Repeat("X", 150) + " -f"
	for _, cmd := range []string{"nats stream rm ACKPROBE_4F2KX9QZ -f", long, huge} {
		for _, width := range []int{0, 40, 80, 200} {
			out := shellWrap(cmd, width, 2)
			for _, line := range strings.Split(out, "\n") {
				if width > 0 && len(line) > width {
					t.Errorf("width %d: line of %d: %q", width, len(line), line)
				}
			}
			// A shell drops backslash-newline, then splits at blanks.
			if got := strings.Fields(strings.ReplaceAll(out, "\\\n", "")); strings.Join(got, " ") != cmd {
				t.Errorf("width %d: reads as %q, want %q:\n%s", width, strings.Join(got, " "), cmd, out)
			}
		}
	}
}
