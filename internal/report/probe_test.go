package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./internal/report -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if intended):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// classic is a hand-built result of the classic scenario with a stale
// standard read-back.
func classic() *probe.Result {
	step := func(name string, pending uint64, ackPending int, floor, delivered uint64, stale bool) probe.Step {
		return probe.Step{Step: name, NumPending: pending, NumAckPending: ackPending, AckFloorStreamSeq: floor, DeliveredStreamSeq: delivered, Stale: stale}
	}
	lat := func(v float64) probe.Latency { return probe.Latency{Count: 1, P50: v, P90: v, P99: v, Max: v, Mean: v} }
	return &probe.Result{
		Server: doc.ServerInfo{URL: "nats://127.0.0.1:4222", Version: "2.15.2", Embedded: true},
		Stream: "ACKPROBE_TEST", Subject: "ackprobe.test", Consumer: "ACKPROBE_TEST",
		Count: 1, Storage: "memory", Replicas: 1, AckWait: doc.Duration(30 * time.Second),
		Created: probe.Ownership{Stream: true, Consumer: true},
		Modes: []probe.ModeResult{
			{
				Mode: probe.Standard,
				Steps: []probe.Step{
					step("start", 2, 0, 0, 0, false),
					step("received", 1, 1, 0, 1, false),
					step("acked", 1, 1, 0, 1, true),
				},
				Acks: 1, AckLatencyUS: lat(2.4),
				Visibility: probe.Visibility{ReadBacks: 1, StaleReads: 1, LagUS: lat(84)},
			},
			{
				Mode: probe.Confirmed,
				Steps: []probe.Step{
					step("start", 1, 0, 1, 1, false),
					step("received", 0, 1, 1, 2, false),
					step("acked", 0, 0, 2, 2, false),
				},
				Acks: 1, AckLatencyUS: lat(131),
				Visibility: probe.Visibility{ReadBacks: 1, LagUS: lat(0)},
			},
		},
		Findings: []probe.Finding{{Code: probe.CodeStaleRead, Mode: probe.Standard, Severity: probe.SeverityInfo, Count: 1,
			Message: "1 of 1 immediate read-backs after Ack() returned still showed the ack pending: the server had not applied it yet"}},
		OK:       true,
		Problems: []string{},
		Notes:    []string{"1 of 1 immediate read-backs after Ack() returned still showed the ack pending: the server had not applied it yet"},
	}
}

// scaled is a hand-built result of a larger run with a failed check.
func scaled() *probe.Result {
	r := classic()
	r.Count = 1000
	buckets := []probe.Bucket{{UpToUS: 50, Count: 3}, {UpToUS: 100, Count: 700}, {UpToUS: 200, Count: 250}, {UpToUS: 900, Count: 47}}
	r.Modes[0].Acks = 1000
	r.Modes[0].AckLatencyUS = probe.Latency{Count: 1000, P50: 1.2, P90: 2.5, P99: 9.9, Max: 140, Mean: 1.8, Buckets: []probe.Bucket{{UpToUS: 1, Count: 400}, {UpToUS: 2, Count: 500}, {UpToUS: 140, Count: 100}}}
	r.Modes[0].AcksPerSec = 41234
	r.Modes[0].Visibility = probe.Visibility{ReadBacks: 100, StaleReads: 96, LagUS: probe.Latency{Count: 100, P50: 80, P90: 120, P99: 300, Max: 310}}
	r.Modes[1].Acks = 1000
	r.Modes[1].AckLatencyUS = probe.Latency{Count: 1000, P50: 90, P90: 150, P99: 700, Max: 900, Mean: 110, Buckets: buckets}
	r.Modes[1].AcksPerSec = 8123.4
	r.Modes[1].Visibility = probe.Visibility{ReadBacks: 100}
	r.Modes[0].Steps = append(r.Modes[0].Steps, probe.Step{Step: "settled", NumPending: 1, AckFloorStreamSeq: 1, DeliveredStreamSeq: 1, VisibleAfterUS: 310})
	r.Modes[0].DeliveryToAckUS = probe.Latency{Count: 1000, P50: 30, P90: 60, P99: 120, Max: 400}
	r.Modes[1].DeliveryToAckUS = probe.Latency{Count: 1000, P50: 120, P90: 200, P99: 800, Max: 1000}
	r.Findings = []probe.Finding{
		{Code: probe.CodeStaleRead, Mode: probe.Standard, Severity: probe.SeverityInfo, Count: 96,
			Message: "96 of 100 immediate read-backs after Ack() returned still showed the ack pending: the server had not applied it yet"},
		{Code: probe.CodeMaxAckLatency, Mode: probe.Confirmed, Severity: probe.SeverityFail, Count: 1,
			Message: "--max-ack-latency breached: confirmed ack p99 700µs > 500µs"},
	}
	r.OK = false
	r.Problems = []string{"--max-ack-latency breached: confirmed ack p99 700µs > 500µs"}
	r.Notes = []string{r.Findings[0].Message}
	return r
}

// faulty is a hand-built result of a run with ack loss.
func faulty() *probe.Result {
	r := classic()
	r.Count = 100
	i64 := func(v int64) *int64 { return &v }
	r.Faults = &probe.Faults{DropRate: 0.2, AckFrames: 250, AcksDropped: 48, Connections: 1}
	r.Modes[0].AckFrames, r.Modes[0].AcksLost = i64(124), i64(24)
	r.Modes[0].Redelivered, r.Modes[0].RedeliveredMessages, r.Modes[0].RedeliveredAfterAck, r.Modes[0].AckedOnce = 24, 20, 20, 80
	r.Modes[1].AckFrames, r.Modes[1].AcksLost = i64(126), i64(24)
	r.Modes[1].Timeouts, r.Modes[1].Retries, r.Modes[1].AckedOnce = 24, 24, 100
	r.Modes[0].Classes.LostStandardAck = 20
	r.Modes[1].Classes.ConfirmedAfterRetry = 24
	r.Findings = []probe.Finding{
		{Code: probe.CodeLostStandardAck, Mode: probe.Standard, Severity: probe.SeverityWarn, Count: 20,
			Message: "20 standard ack(s) were sent in time and lost: Ack() returned no error, and the message came back after the AckWait (2s)"},
		{Code: probe.CodeConfirmedAfterRetry, Mode: probe.Confirmed, Severity: probe.SeverityInfo, Count: 24,
			Message: "24 confirmed ack(s) needed retries (24 timeouts, 24 retries); each landed within the AckWait"},
	}
	r.Notes = []string{r.Findings[0].Message, r.Findings[1].Message}
	return r
}

// perNode is a hand-built per-node result with one slow node.
func perNode() *probe.Result {
	r := classic()
	r.Count, r.Replicas, r.Modes = 1000, 3, []probe.ModeResult{}
	r.Server.Cluster, r.Server.Embedded = "east", false
	lat := func(p50, p90, p99, max float64) probe.Latency {
		return probe.Latency{Count: 1000, P50: p50, P90: p90, P99: p99, Max: max, Mean: p50}
	}
	node := func(name string, conf probe.Latency, lag, legs float64) probe.NodeResult {
		return probe.NodeResult{Server: name, Cluster: "east", Probed: true, LedWholeRound: true, Placement: "moved", Leaders: []string{name},
			APIRoundTripUS: lat(300, 400, 500, 600),
			Modes: []probe.ModeResult{
				{Mode: probe.Standard, Acks: 1000, AckLatencyUS: lat(0.2, 0.3, 0.9, 20), Visibility: probe.Visibility{ReadBacks: 100, StaleReads: 20, LagUS: lat(lag, lag, lag, lag)}},
				{Mode: probe.Confirmed, Acks: 1000, AckLatencyUS: conf, Server: &probe.ServerView{Events: 1000, AckTimeUS: lat(9000, 12000, 15000, 20000), TransitUS: lat(legs, 2*legs, 4*legs, 8*legs)}},
			}}
	}
	n3 := node("n3", lat(424, 6890, 9180, 15100), 7540, 2870)
	n3.Findings = []probe.Finding{}
	pending := 37
	n3.System = &probe.NodeSystem{
		Stream:          &probe.RaftGroup{Group: "S-R3M-XyG6j5Ag", State: "LEADER", Committed: 15, Applied: 15},
		Consumer:        &probe.RaftGroup{Group: "C-R3M-y2jp4gZi", State: "LEADER", Committed: 632, Applied: 611, AppliedLag: 21, FollowerLag: 140, EntryQueue: 12, ApplyQueue: 21},
		AckQueuePending: &pending,
	}
	r.Nodes = []probe.NodeResult{node("n1", lat(242, 415, 977, 8590), 815, 161), node("n2", lat(337, 565, 1930, 6220), 1300, 214), n3,
		{Server: "n4", Cluster: "east", Placement: "outside the probe stream's peer set", Modes: []probe.ModeResult{}}}
	r.Nodes[3].Findings = []probe.Finding{{Code: probe.CodeNotProbed, Node: "n4", Severity: probe.SeverityInfo, Count: 1, Message: "n4 was not probed: it is outside the probe stream's peer set (raise --replicas to cover it)"}}
	slow := probe.Finding{Code: probe.CodeSlowNode, Node: "n3", Severity: probe.SeverityWarn, Count: 1, Message: "n3 is the slowest node: confirmed ack p90 6.89ms there, 14.1× the median of the others (490µs)"}
	r.Findings = []probe.Finding{r.Nodes[3].Findings[0], slow}
	r.Notes = []string{r.Findings[0].Message, slow.Message}
	return r
}

// remote is the classic result from a named server of a cluster, reached
// through a context, with the server's ack metrics unavailable and a
// leftover: every header line at its longest.
func remote() *probe.Result {
	r := classic()
	r.Server = doc.ServerInfo{URL: "nats://nats-0.nats.messaging.svc.cluster.local:4222", Name: "nats-0", Version: "2.15.2",
		Cluster: "messaging-east", Domain: "hub", Context: "prod-east-admin"}
	r.Replicas = 3
	r.ServerSampling = `unavailable: consumer "ACKPROBE_TEST" has no sample_freq (it was created without it)`
	r.Leftovers = []probe.Leftover{{What: "stream", Stream: "ACKPROBE_TEST", Error: "context deadline exceeded", Command: "nats stream rm ACKPROBE_TEST -f"}}
	return r
}

func TestProbeGolden(t *testing.T) {
	cases := []struct {
		file  string
		res   *probe.Result
		color bool
	}{
		{"classic.txt", classic(), false},
		{"classic.color.txt", classic(), true},
		{"scaled.txt", scaled(), false},
		{"scaled.color.txt", scaled(), true},
		{"faults.txt", faulty(), false},
		{"scaled.80.txt", scaled(), false},
		{"pernode.txt", perNode(), false},
		{"pernode.color.txt", perNode(), true},
		{"pernode.80.txt", perNode(), false},
		{"remote.txt", remote(), false},
		{"remote.80.txt", remote(), false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			var b bytes.Buffer
			width := 0
			if strings.Contains(c.file, ".80.") {
				width = 80
			}
			if err := Probe(&b, c.res, Options{Color: c.color, Command: "compare", Width: width}); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if hasANSI := strings.Contains(out, "\x1b["); hasANSI != c.color {
				t.Errorf("ANSI escapes present = %v, want %v", hasANSI, c.color)
			}
			golden(t, c.file, out)
			if width > 0 {
				for _, line := range strings.Split(out, "\n") {
					if n := utf8.RuneCountInString(line); n > width {
						t.Errorf("line of %d columns at width %d: %q", n, width, line)
					}
				}
			}
		})
	}
}

// TestFitsWidth80 renders every report at 80 columns, plain and colored:
// no line may be wider than the terminal.
func TestFitsWidth80(t *testing.T) {
	const width = 80
	check := func(t *testing.T, out string) {
		t.Helper()
		for _, line := range strings.Split(out, "\n") {
			if n := text.StringWidthWithoutEscSequences(line); n > width {
				t.Errorf("line of %d columns at width %d: %q", n, width, line)
			}
		}
	}
	results := map[string]func() *probe.Result{"classic": classic, "scaled": scaled, "faults": faulty, "pernode": perNode, "remote": remote}
	for name, res := range results {
		for _, color := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/color=%v", name, color), func(t *testing.T) {
				var b bytes.Buffer
				if err := Probe(&b, res(), Options{Color: color, Command: "compare", Width: width}); err != nil {
					t.Fatal(err)
				}
				check(t, b.String())
			})
		}
	}
	for _, color := range []bool{false, true} {
		t.Run(fmt.Sprintf("cleanup/color=%v", color), func(t *testing.T) {
			found := leftovers()
			var b bytes.Buffer
			if err := Cleanup(&b, cleanupServer, found, nil, nil, false, Options{Color: color, Width: width}); err != nil {
				t.Fatal(err)
			}
			failed := []FailedRemoval{{Orphan: found.Found[1], Error: "nats: timeout"}}
			if err := Cleanup(&b, cleanupServer, nil, found.Found[:1], failed, true, Options{Color: color, Width: width}); err != nil {
				t.Fatal(err)
			}
			check(t, b.String())
		})
	}
}

// TestPerNodeAckLegs: the per-node table shows the ack legs (the
// server's ack time less the client's hold), never the server's ack time
// itself, and "-" for a node whose legs could not be measured.
func TestPerNodeAckLegs(t *testing.T) {
	res := perNode()
	res.Nodes[1].Modes[1].Server.TransitUS = probe.Latency{}
	var b bytes.Buffer
	if err := Probe(&b, res, Options{Command: "compare"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "Ack Legs p50") || strings.Contains(out, "Server Ack") || strings.Contains(out, "9.00ms") {
		t.Fatalf("the server's ack time is shown, or the legs are not:\n%s", out)
	}
	want := map[string]string{"n1": "161µs", "n2": "-", "n3": "2.87ms"}
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(line, "│")
		if len(cells) < 9 {
			continue
		}
		node := strings.TrimSpace(cells[1])
		if w, ok := want[node]; ok {
			if got := strings.TrimSpace(cells[8]); got != w {
				t.Errorf("%s: ack legs %q, want %q", node, got, w)
			}
			delete(want, node)
		}
	}
	if len(want) > 0 {
		t.Errorf("rows not found: %v\n%s", want, out)
	}
}

// TestColorDoesNotShiftColumns checks that the table measures widths
// without the escape codes: stripped colored output equals plain output.
func TestColorDoesNotShiftColumns(t *testing.T) {
	var plain, colored bytes.Buffer
	_ = Probe(&plain, scaled(), Options{})
	_ = Probe(&colored, scaled(), Options{Color: true})
	stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(colored.String(), "")
	if stripped != plain.String() {
		t.Errorf("colored output, stripped, differs from plain output:\n%s\n---\n%s", stripped, plain.String())
	}
}

func TestJSONKeys(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, classic()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server", "stream", "subject", "consumer", "modes", "ok", "problems"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	server := doc["server"].(map[string]any)
	for _, k := range []string{"url", "version", "embedded", "cluster"} {
		if _, ok := server[k]; !ok {
			t.Errorf("missing server key %q", k)
		}
	}
	mode := doc["modes"].([]any)[0].(map[string]any)
	for _, k := range []string{"mode", "steps", "acks", "errors", "retries", "redelivered", "ack_latency_us", "acks_per_sec"} {
		if _, ok := mode[k]; !ok {
			t.Errorf("missing mode key %q", k)
		}
	}
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		if _, ok := mode["ack_latency_us"].(map[string]any)[k]; !ok {
			t.Errorf("missing ack_latency_us key %q", k)
		}
	}
	step := mode["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"step", "num_pending", "num_ack_pending"} {
		if _, ok := step[k]; !ok {
			t.Errorf("missing step key %q", k)
		}
	}
	if doc["problems"] == nil {
		t.Errorf("problems must be a list, not null")
	}
}

// TestHistogramOneBarPerLabel: buckets whose bounds read the same at the
// table's precision are one bar, with their counts added; a label never
// appears twice.
func TestHistogramOneBarPerLabel(t *testing.T) {
	res := scaled()
	res.Modes[0].AckLatencyUS.Buckets = []probe.Bucket{{UpToUS: 0.2, Count: 194}, {UpToUS: 0.2, Count: 2}, {UpToUS: 0.3, Count: 4}, {UpToUS: 0.31, Count: 1}}
	var b bytes.Buffer
	if err := Probe(&b, res, Options{Command: "compare"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		label, rest, ok := strings.Cut(strings.TrimSpace(line), "│")
		if !ok || !strings.HasPrefix(label, "≤") {
			continue
		}
		label = strings.Join(strings.Fields(label), " ")
		if _, dup := seen[label]; dup {
			t.Errorf("label %q drawn twice:\n%s", label, b.String())
		}
		f := strings.Fields(rest)
		seen[label] = f[len(f)-1]
	}
	if seen["≤ 0.2µs"] != "196" || seen["≤ 0.3µs"] != "5" {
		t.Errorf("bars %v, want ≤ 0.2µs 196 and ≤ 0.3µs 5", seen)
	}
}
