package canary

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/probe"
)

func TestLine(t *testing.T) {
	t.Parallel()
	o := outcome(12, result(true, "n2"), nil)
	o.Result.Nodes = []probe.NodeResult{{Server: "n2", Probed: true}} // a per-node round
	got := Line(o, StatusDegraded, false, 0)
	for _, want := range []string{"round 12", "failed", "on n2", "confirmed p50 310µs p99 1.21ms", "visibility lag p99 180µs",
		"fail redelivered_after_confirmed_ack/confirmed×1", "warn lost_standard_ack/standard×1", "[status degraded]"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q has no %q", got, want)
		}
	}
	if strings.Contains(got, "\n") || strings.Contains(got, "\x1b[") {
		t.Errorf("line %q: not one plain line", got)
	}
	if colored := Line(o, StatusOK, true, 0); !strings.Contains(colored, "\x1b[") || strings.Contains(colored, "[status") {
		t.Errorf("colored line %q", colored)
	}

	o = outcome(13, nil, &probe.ConnectionLostError{Err: errors.New("not connected for 2s")})
	o.ErrMessage = "lost the connection to the server: not connected for 2s"
	got = Line(o, StatusFailing, false, 0)
	for _, want := range []string{"round 13", "error", "connection_lost: lost the connection", "[status failing]"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q has no %q", got, want)
		}
	}
	if strings.Contains(got, "confirmed p50") || strings.Contains(got, "visibility lag") {
		t.Errorf("a round without modes shows figures: %q", got)
	}

	// On a terminal of 80 columns, the findings go below the figures,
	// and no line is wider than the terminal.
	o = outcome(12, result(true, "n2"), nil)
	got = Line(o, StatusDegraded, true, 80)
	lines := strings.Split(got, "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "confirmed p50") || strings.Contains(lines[0], "findings") {
		t.Errorf("at 80 columns:\n%s", got)
	}
	for _, l := range lines {
		if w := text.RuneWidthWithoutEscSequences(l); w > 80 {
			t.Errorf("line of %d columns at 80: %q", w, l)
		}
	}
	if plain := Line(o, StatusDegraded, false, 80); !strings.Contains(strings.Join(strings.Fields(plain), " "), "fail redelivered_after_confirmed_ack/confirmed×1") {
		t.Errorf("wrapped line lost a finding:\n%s", plain)
	}
}

func TestDoc(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	res := result(false, "n2")
	res.Round = 4 // the probe's own count, since its last setup
	if err := enc.Encode(Doc(outcome(12, res, nil), StatusOK)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Encode(Doc(outcome(13, nil, &DialError{Err: errors.New("refused")}), StatusDegraded)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one document per line:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["round"] != 12.0 || first["ok"] != true || first["verdict"] != VerdictWarn || first["status"] != StatusOK ||
		first["stream"] != "ACKPROBE_CANARY_T" || len(first["modes"].([]any)) != 2 || first["error"] != nil {
		t.Errorf("round document: %s", lines[0])
	}
	if second["round"] != 13.0 || second["ok"] != false || second["verdict"] != VerdictError ||
		second["error"].(map[string]any)["kind"] != ErrorConnect || second["modes"] != nil {
		t.Errorf("error document: %s", lines[1])
	}
}
