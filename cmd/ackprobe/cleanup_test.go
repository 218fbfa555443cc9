package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/marks"
	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestCleanupSaysWhatItSkipped: cleanup names, in its table and in its
// JSON, what of ackprobe's it left alone for being younger than
// --older-than, and --older-than 0s removes it; the user's stream is
// never listed. On a terminal it asks in words that fit the count.
func TestCleanupSaysWhatItSkipped(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	url := s.ClientURL()
	_, js := natstest.Connect(t, url)
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	mk := func(name string, meta map[string]string) {
		t.Helper()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)}, Storage: jetstream.MemoryStorage, Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	owned := func(created time.Time) map[string]string {
		return map[string]string{marks.Owner: marks.OwnerValue, marks.Created: created.UTC().Format(time.RFC3339)}
	}
	mk("ACKPROBE_OLD", owned(time.Now().Add(-2*time.Hour)))
	mk("ACKPROBE_NEW", owned(time.Now().Add(-3*time.Minute)))
	mk("ORDERS", nil)

	type doc struct {
		Found       []probe.Orphan  `json:"found"`
		Skipped     []probe.Skipped `json:"skipped"`
		OlderThan   string          `json:"older_than"`
		OlderThanMS float64         `json:"older_than_ms"`
		Removed     []probe.Orphan  `json:"removed"`
		OK          bool            `json:"ok"`
	}
	decodeCleanup := func(t *testing.T, r result) (doc, map[string]json.RawMessage) {
		t.Helper()
		var d doc
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || json.Unmarshal([]byte(r.stdout), &raw) != nil || r.code != 0 {
			t.Fatalf("exit %d, %v:\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		return d, raw
	}

	t.Run("json", func(t *testing.T) {
		d, _ := decodeCleanup(t, ackprobe(t, nil, "cleanup", "-s", url, "--json"))
		if len(d.Found) != 1 || d.Found[0].Stream != "ACKPROBE_OLD" || len(d.Removed) != 0 || !d.OK {
			t.Errorf("found %+v removed %+v ok %v", d.Found, d.Removed, d.OK)
		}
		if len(d.Skipped) != 1 || d.Skipped[0].Stream != "ACKPROBE_NEW" || d.Skipped[0].Reason != "young" || d.Skipped[0].Command != "nats stream rm ACKPROBE_NEW -f" {
			t.Errorf("skipped %+v", d.Skipped)
		}
		if d.OlderThan != "1h0m0s" || d.OlderThanMS != 3_600_000 {
			t.Errorf("older_than %q, older_than_ms %v", d.OlderThan, d.OlderThanMS)
		}
		// Nothing found is an empty list, not null.
		_, raw := decodeCleanup(t, ackprobe(t, nil, "cleanup", "-s", url, "--json", "--older-than", "3h"))
		for _, k := range []string{"found", "skipped", "removed"} {
			if !strings.HasPrefix(string(raw[k]), "[") {
				t.Errorf("%s is %s, want a list", k, raw[k])
			}
		}
	})

	t.Run("text", func(t *testing.T) {
		r := ackprobe(t, nil, "cleanup", "-s", url, "--no-color")
		for _, w := range []string{"ACKPROBE_OLD", "1 skipped: younger than --older-than 1h (newest created 3m ago); pass --older-than 0s to remove it too",
			"nothing removed: pass --force to remove it"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("missing %q:\n%s", w, r.stdout)
			}
		}
		if r.code != 0 || strings.Contains(r.stdout, "ORDERS") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	terminal := func(answer string, args ...string) result {
		var out, errb bytes.Buffer
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		defer rcancel()
		code := run(rctx, append([]string{"cleanup", "-s", url, "--no-color"}, args...), streams{stdin: strings.NewReader(answer), stdinTTY: true,
			stdout: &out, stderr: &errb, stderrTTY: true, width: 80, getenv: func(string) string { return "" }})
		return result{code: code, stdout: out.String(), stderr: errb.String()}
	}
	exists := func(name string) bool {
		_, err := js.Stream(ctx, name)
		return err == nil
	}

	t.Run("prompt", func(t *testing.T) {
		r := terminal("n\n")
		if r.code != 0 || r.stderr != "remove this stream? [y/N] " || !strings.Contains(r.stdout, "nothing removed") || !exists("ACKPROBE_OLD") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = terminal("y\n", "--older-than", "0s")
		if r.code != 0 || r.stderr != "remove these 2 streams? [y/N] " || strings.Contains(r.stdout, "skipped") {
			t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, name := range []string{"ACKPROBE_OLD", "ACKPROBE_NEW"} {
			if !strings.Contains(r.stdout, "✓ removed stream "+name) || exists(name) {
				t.Errorf("%s not removed:\n%s", name, r.stdout)
			}
		}
		if !exists("ORDERS") {
			t.Error("the user's stream is gone")
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if len([]rune(line)) > 80 {
				t.Errorf("line wider than 80: %q", line)
			}
		}
	})
}
