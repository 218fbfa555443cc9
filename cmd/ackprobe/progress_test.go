package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// TestProgressPhases captures the progress a terminal gets on stderr: a
// bar per phase of each mode, in order, each with a rate of its own from
// its first tick (never the nonsense of a rate taken over no time), and
// nothing once stderr is not a terminal.
func TestProgressPhases(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	run := func(tty bool) (int, string) {
		var out, errb lockedBuffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		code := run(ctx, []string{"compare", "-s", s.ClientURL(), "-n", "3000", "--json"},
			streams{stdout: &out, stderr: &errb, stderrTTY: tty, getenv: func(string) string { return "" }})
		return code, errb.String()
	}
	code, stderr := run(true)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	last := -1
	for _, phase := range []string{"standard  publish", "standard  ack", "confirmed publish", "confirmed ack"} {
		i := strings.Index(stderr, phase)
		if i < 0 || i < last {
			t.Errorf("phase %q missing or out of order in:\n%q", phase, stderr)
		}
		last = i
	}
	rates := regexp.MustCompile(`\((\d+)/(\d+), ([0-9.]+) (?:acks|msgs)/s\)`).FindAllStringSubmatch(stderr, -1)
	if len(rates) == 0 {
		t.Fatalf("no rate shown in:\n%q", stderr)
	}
	for _, m := range rates {
		if v, _ := strconv.ParseFloat(m[3], 64); v > 5e6 {
			t.Errorf("a rate of %s/s at %s of %s", m[3], m[1], m[2])
		}
	}
	if code, stderr := run(false); code != 0 || stderr != "" {
		t.Errorf("not a terminal: exit %d, stderr %q", code, stderr)
	}

	// Standard acks dropped on their way: the mode collects the messages
	// that come back, and says so.
	var out, errb lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = runWith(ctx, []string{"ack", "--mode", "standard", "-s", s.ClientURL(), "-n", "1000", "--drop-acks", "0.05", "--ack-wait", "1s", "--json"},
		streams{stdout: &out, stderr: &errb, stderrTTY: true, getenv: func(string) string { return "" }}, nil)
	if code != 0 || !strings.Contains(errb.String(), "standard  collect: messages of unapplied acks coming back") {
		t.Errorf("--drop-acks: exit %d; no collect phase in:\n%q", code, errb.String())
	}
}
