package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// result is what one ackprobe invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// ackprobe runs the command line in-process with the given environment.
func ackprobe(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, streams{stdout: &out, stderr: &errb, getenv: func(k string) string { return env[k] }})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func decode(t *testing.T, s string) probe.Result {
	t.Helper()
	var res probe.Result
	if err := json.Unmarshal([]byte(s), &res); err != nil {
		t.Fatalf("stdout is not the JSON document: %v\n%s", err, s)
	}
	return res
}

// figures are the (pending, ack pending) pairs of a mode's steps.
func figures(m *probe.ModeResult) []string {
	var out []string
	for _, s := range m.Steps {
		out = append(out, fmt.Sprintf("%s:%d/%d", s.Step, s.NumPending, s.NumAckPending))
	}
	return out
}

// assertClassic checks the server's figures at every step of the classic
// scenario. The standard "acked" read-back may or may not be stale: the
// server orders nothing between applying an ack and answering consumer info.
func assertClassic(t *testing.T, res probe.Result) {
	t.Helper()
	if !res.OK || len(res.Problems) != 0 {
		t.Fatalf("ok=%v problems=%v", res.OK, res.Problems)
	}
	std, conf := res.Mode(probe.Standard), res.Mode(probe.Confirmed)
	if std == nil || conf == nil {
		t.Fatalf("modes: %+v", res.Modes)
	}
	got := strings.Join(figures(std), " ")
	if got != "start:2/0 received:1/1 acked:1/1" && got != "start:2/0 received:1/1 acked:1/0" {
		t.Errorf("standard steps = %s", got)
	}
	if stale := std.Steps[2].NumAckPending == 1; stale != std.Steps[2].Stale || (std.Visibility.StaleReads == 1) != stale {
		t.Errorf("standard staleness not reported consistently: %+v %+v", std.Steps[2], std.Visibility)
	}
	if got := strings.Join(figures(conf), " "); got != "start:1/0 received:0/1 acked:0/0" {
		t.Errorf("confirmed steps = %s", got)
	}
	if conf.Steps[2].AckFloorStreamSeq != conf.Steps[1].DeliveredStreamSeq {
		t.Errorf("confirmed ack floor %d, delivered %d", conf.Steps[2].AckFloorStreamSeq, conf.Steps[1].DeliveredStreamSeq)
	}
	for _, m := range []*probe.ModeResult{std, conf} {
		if m.Acks != 1 || m.Errors != 0 || m.Redelivered != 0 || m.AckLatencyUS.Count != 1 {
			t.Errorf("%s: acks=%d errors=%d redelivered=%d latency=%+v", m.Mode, m.Acks, m.Errors, m.Redelivered, m.AckLatencyUS)
		}
	}
	if conf.Visibility.StaleReads != 0 || conf.Visibility.ReadBacks != 1 {
		t.Errorf("confirmed visibility %+v", conf.Visibility)
	}
}

func TestCompareJSONAgainstServer(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	r := ackprobe(t, nil, "compare", "--json", "-s", s.ClientURL())
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	res := decode(t, r.stdout)
	assertClassic(t, res)
	if res.Server.Embedded || res.Server.Version == "" || !strings.HasPrefix(res.Stream, "ACKPROBE_") {
		t.Errorf("server %+v stream %q", res.Server, res.Stream)
	}
	// Nothing is left behind.
	_, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		t.Errorf("stream %q left behind", n)
	}
}

func TestCompareEmbeddedTable(t *testing.T) {
	t.Parallel()
	r := ackprobe(t, map[string]string{}, "compare", "--no-color")
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "started an embedded nats-server") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr should be one line about the embedded server: %q", r.stderr)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colors with --no-color")
	}
	rows := tableRows(r.stdout)
	want := [][]string{
		{"standard", "start", "2", "", "0", ""},
		{"", "received", "1", "-1", "1", "+1"},
		{"confirmed", "start", "1", "±0"},
		{"", "received", "0", "-1", "1", "+1"},
		{"", "acked", "0", "±0", "0", "-1"},
	}
	for _, w := range want {
		if !hasRow(rows, w) {
			t.Errorf("no row starting %q in:\n%s", w, r.stdout)
		}
	}
	if !hasRow(rows, []string{"", "acked", "1", "±0", "1", "±0"}) && !hasRow(rows, []string{"", "acked", "1", "±0", "0", "-1"}) {
		t.Errorf("no standard acked row:\n%s", r.stdout)
	}
	for _, s := range []string{"(embedded)", "confirmed ack: DoubleAck() returned", "OK: every check held"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
}

// tableRows splits a rendered table into trimmed cells per row.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "│") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "│"), "│") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

func hasRow(rows [][]string, prefix []string) bool {
	for _, r := range rows {
		if len(r) < len(prefix) {
			continue
		}
		ok := true
		for i, p := range prefix {
			if r[i] != p {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestColors(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	cases := []struct {
		name  string
		env   map[string]string
		tty   bool
		args  []string
		color bool
	}{
		{"terminal", nil, true, nil, true},
		{"pipe", nil, false, nil, false},
		{"no-color flag", nil, true, []string{"--no-color"}, false},
		{"NO_COLOR", map[string]string{"NO_COLOR": "1"}, true, nil, false},
		{"TERM=dumb", map[string]string{"TERM": "dumb"}, true, nil, false},
		{"FORCE_COLOR", map[string]string{"FORCE_COLOR": "1"}, false, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"ack", "--mode", "confirmed", "-s", s.ClientURL()}, c.args...)
			code := run(context.Background(), args, streams{stdout: &out, stderr: &errb, stdoutTTY: c.tty, getenv: func(k string) string { return c.env[k] }})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if got := ansi.MatchString(out.String()); got != c.color {
				t.Errorf("colored = %v, want %v", got, c.color)
			}
		})
	}
}

func TestAckModes(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	for _, mode := range []probe.Mode{probe.Standard, probe.Confirmed} {
		r := ackprobe(t, nil, "ack", "--mode", string(mode), "--json", "-s", s.ClientURL())
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, r.code, r.stderr)
		}
		res := decode(t, r.stdout)
		if len(res.Modes) != 1 || res.Modes[0].Mode != mode {
			t.Fatalf("modes %+v", res.Modes)
		}
		m := res.Modes[0]
		got := strings.Join(figures(&m), " ")
		if !strings.HasPrefix(got, "start:1/0 received:0/1 acked:0/") {
			t.Errorf("%s steps %s", mode, got)
		}
		if mode == probe.Confirmed && got != "start:1/0 received:0/1 acked:0/0" {
			t.Errorf("confirmed ack not applied: %s", got)
		}
	}
}

// TestAgainstServerProcess runs the probe over a real socket against
// nats-server built from the pinned module and running as its own process.
func TestAgainstServerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server")
	}
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	r := ackprobe(t, map[string]string{"NATS_URL": srv.URL}, "compare", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := decode(t, r.stdout)
	assertClassic(t, res)
	if res.Server.Embedded {
		t.Errorf("NATS_URL was ignored: %+v", res.Server)
	}
	if res.Server.URL != srv.URL {
		t.Errorf("server url %q, want %q", res.Server.URL, srv.URL)
	}
	r = ackprobe(t, nil, "compare", "--no-color", "-s", srv.URL)
	if r.code != 0 || !strings.Contains(r.stdout, "OK: every check held") || r.stderr != "" {
		t.Errorf("table run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dead := natstest.RefusedURL(t)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not listening", []string{"compare", "-s", dead}, 2, "cannot connect"},
		{"count zero", []string{"compare", "-n", "0"}, 2, "--count must be at least 1"},
		{"count negative", []string{"compare", "--count", "-3"}, 2, "--count must be at least 1"},
		{"count not a number", []string{"compare", "--count", "many"}, 2, "is not a whole number"},
		{"bad duration", []string{"compare", "--ack-wait", "soon"}, 2, "is not a duration"},
		{"unknown mode", []string{"ack", "--mode", "maybe"}, 2, "unknown ack mode"},
		{"unknown storage", []string{"compare", "--storage", "tape"}, 2, "unknown storage"},
		{"unknown flag", []string{"compare", "--frobnicate"}, 2, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad stream name", []string{"compare", "--stream", "a.b"}, 2, "not a valid stream name"},
		{"bad subject", []string{"compare", "--subject", "a.*"}, 2, "not a valid subject"},
		{"bad url", []string{"compare", "-s", "http://x:4222"}, 2, "unknown scheme"},
		{"bad port", []string{"compare", "-s", "nats://x:99999"}, 2, "port"},
		{"zero timeout", []string{"compare", "--timeout", "0s"}, 2, "--timeout must be positive"},
		{"zero concurrency", []string{"compare", "--concurrency", "0"}, 2, "--concurrency must be at least 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := ackprobe(t, nil, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ackprobe: ") || !strings.Contains(lines[0], c.msg) {
				t.Errorf("stderr = %q, want one line 'ackprobe: ...%s...'", r.stderr, c.msg)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q", r.stdout)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := ackprobe(t, nil, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "nats.go 1.55.0") || !strings.Contains(r.stdout, "nats-server 2.15.2") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
	// --version, as every cobra tool has it, says the same.
	if flag := ackprobe(t, nil, "--version"); flag.code != 0 || flag.stdout != r.stdout {
		t.Errorf("--version: %d %q, want %q", flag.code, flag.stdout, r.stdout)
	}
	// The help of --js-domain names its environment variable, as the
	// other connection flags do.
	help := ackprobe(t, nil, "compare", "--help")
	if !strings.Contains(help.stdout, "(NATS_JS_DOMAIN)") {
		t.Errorf("--js-domain help:\n%s", help.stdout)
	}
}

// TestNothingLeftBehindOnCheckFailure makes a check fail (an impossible
// threshold) and asserts exit code 1 and a clean server.
func TestCheckFailure(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	r := ackprobe(t, nil, "compare", "--json", "-s", s.ClientURL(), "--min-rate", "1e12")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	res := decode(t, r.stdout)
	if res.OK || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "--min-rate") {
		t.Errorf("ok=%v problems=%v", res.OK, res.Problems)
	}
	_, js := natstest.Connect(t, s.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Stream(ctx, res.Stream); err != jetstream.ErrStreamNotFound {
		t.Errorf("stream after failed check: %v", err)
	}
}

// TestDropAcksCommand runs compare with injected ack loss end to end and
// checks the story in the JSON document against the proxy's counts.
func TestDropAcksCommand(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	r := ackprobe(t, nil, "compare", "--json", "-s", s.ClientURL(), "-n", "60", "--drop-acks", "0.25", "--ack-wait", "1s")
	if r.code != 0 {
		t.Fatalf("exit %d: %s\n%s", r.code, r.stderr, r.stdout)
	}
	res := decode(t, r.stdout)
	if res.Faults == nil || res.Faults.DropRate != 0.25 || res.Faults.AcksDropped == 0 {
		t.Fatalf("faults %+v", res.Faults)
	}
	var lost int64
	for _, m := range res.Modes {
		lost += *m.AcksLost
	}
	// Every ack frame the proxy saw is the modes': the setup's permission
	// check sends none through a fault injection proxy.
	if dropped := res.Faults.AcksDropped + res.Faults.AcksCut; lost != dropped {
		t.Errorf("modes lost %d acks, the proxy dropped %d", lost, dropped)
	}
	std, conf := res.Mode(probe.Standard), res.Mode(probe.Confirmed)
	if std.RedeliveredAfterAck == 0 || std.AckedOnce+std.RedeliveredMessages != 60 {
		t.Errorf("standard: %+v", std)
	}
	// No confirmed ack may be followed by a redelivery. On a loaded machine
	// a message can still outlast AckWait in the probe's hands while the
	// acks before it are retried: that is counted apart, before the ack.
	if conf.RedeliveredAfterAck != 0 || conf.RedeliveredMessages != conf.RedeliveredBeforeAck || conf.Retries == 0 || conf.Errors != 0 || conf.AckedOnce != 60-conf.RedeliveredMessages {
		t.Errorf("confirmed: %+v", conf)
	}
	if res.Server.URL != s.ClientURL() {
		t.Errorf("server url %q: the report should name the server, not the proxy", res.Server.URL)
	}
}

func TestFaultFlagsRefused(t *testing.T) {
	t.Parallel()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"compare", "--drop-acks", "1.5"}, "--drop-acks must be between 0 and 1"},
		{[]string{"compare", "--drop-acks", "-0.1"}, "--drop-acks must be between 0 and 1"},
		{[]string{"compare", "--cut-after", "-2"}, "--cut-after must not be negative"},
		{[]string{"compare", "--drop-acks", "0.2", "-s", "tls://127.0.0.1:4222"}, "need a plain (non-TLS) connection"},
		{[]string{"compare", "--cut-after", "3", "-s", "127.0.0.1:4222", "--tlsca", ca}, "need a plain (non-TLS) connection"},
	}
	for _, c := range cases {
		r := ackprobe(t, nil, c.args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "ackprobe: ") || !strings.Contains(r.stderr, c.msg) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.msg)
		}
	}
}

// TestShortAckWaitCommands runs the reproductions of a too-short
// AckWait as a user types them: each exits 0, with no failing finding;
// acks that reached the AckWait are said as ack_wait_too_short, acks sent
// after it as late_ack, both warnings.
func TestShortAckWaitCommands(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"ack", "--mode", "confirmed", "-n", "3000", "--ack-wait", "1ms"},
		{"ack", "--mode", "confirmed", "-n", "3000", "--ack-wait", "3ms"},
		{"compare", "-n", "300", "--ack-wait", "2ms"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			r := ackprobe(t, nil, append(args, "--embedded", "--json")...)
			if r.code != exitOK {
				t.Fatalf("exit %d, want 0: %s", r.code, r.stderr)
			}
			res := decode(t, r.stdout)
			has := func(code string) bool {
				for _, f := range res.Findings {
					if f.Code == code && f.Severity == probe.SeverityWarn {
						return true
					}
				}
				return false
			}
			for _, f := range res.Findings {
				if f.Severity == probe.SeverityFail {
					t.Errorf("failing finding: %s %s", f.Code, f.Message)
				}
			}
			for _, m := range res.Modes {
				if m.Classes.LateAck > 0 && !has(probe.CodeLateAck) {
					t.Errorf("%s: %d late acks, no late_ack warning", m.Mode, m.Classes.LateAck)
				}
				if m.ReachedAckWait > 0 && !has(probe.CodeAckWaitTooShort) {
					t.Errorf("%s: %d acks reached the AckWait, no ack_wait_too_short warning", m.Mode, m.ReachedAckWait)
				}
				// The probe's own read-back pauses, when they add up to
				// more than the AckWait, are named in the late acks.
				if m.Classes.LateAck > 0 && time.Duration(m.ReadBackPause) >= time.Duration(res.AckWait) {
					for _, f := range res.Findings {
						if f.Code == probe.CodeLateAck && f.Mode == m.Mode && !strings.Contains(f.Message, "read-backs held its acks back") {
							t.Errorf("%s: read-backs paused %s, more than the AckWait, and the late acks do not say so: %s", m.Mode, time.Duration(m.ReadBackPause), f.Message)
						}
					}
				}
			}
		})
	}
}
