package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jedib0t/go-pretty/v6/text"
	"github.com/nats-io/jsm.go"
	"github.com/nats-io/jsm.go/api"
	"github.com/nats-io/jsm.go/monitor"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ackprobe/ackprobe/internal/inspect"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

// noDefaultWarns turns off the warn levels that ackprobe sets and
// `nats server check consumer` does not have, so that the two judge the
// same thresholds.
var noDefaultWarns = []string{"--ack-pending-share-warn", "0", "--redelivery-warn", "0", "--last-delivery-warn", "0", "--last-ack-warn", "0",
	"--ack-wait-expired-warn", "0", "--max-deliver-reached-warn", "0"}

// perfdata splits a Nagios line's performance data into name → value
// with thresholds, the times (unit s) masked: they are read at slightly
// different moments.
func perfdata(t *testing.T, line string) map[string]string {
	t.Helper()
	_, pd, ok := strings.Cut(strings.TrimSpace(line), " | ")
	if !ok {
		t.Fatalf("no performance data in %q", line)
	}
	out := map[string]string{}
	for _, item := range strings.Fields(pd) {
		name, v, _ := strings.Cut(item, "=")
		if strings.Contains(v, "s") {
			v = regexp.MustCompile(`^[0-9.]+s`).ReplaceAllString(v, "<seconds>s")
		}
		out[name] = v
	}
	return out
}

// TestInspectNagiosMatchesNatsCLI runs inspect --format nagios and jsm.go
// monitor's consumer check (what `nats server check consumer` runs) on
// the same consumers with the same critical thresholds: the status, check
// name, exit code and performance data agree.
func TestInspectNagiosMatchesNatsCLI(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	nc, err := nats.Connect(is.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mgr, err := jsm.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		consumer string
		flags    []string
		opts     monitor.CheckConsumerHealthOptions
		code     int
	}{
		{"worker", []string{"--outstanding-ack-critical", "3"}, monitor.CheckConsumerHealthOptions{AckOutstandingCritical: 3}, 2},
		{"worker", []string{"--outstanding-ack-critical", "4"}, monitor.CheckConsumerHealthOptions{AckOutstandingCritical: 4}, 0},
		{"retry", []string{"--redelivery-critical", "2"}, monitor.CheckConsumerHealthOptions{RedeliveryCritical: 2}, 2},
		{"retry", []string{"--redelivery-critical", "3"}, monitor.CheckConsumerHealthOptions{RedeliveryCritical: 3}, 0},
		{"idle", []string{"--unprocessed-critical", "10"}, monitor.CheckConsumerHealthOptions{UnprocessedCritical: 10}, 2},
		{"idle", []string{"--unprocessed-critical", "11", "--waiting-critical", "1"}, monitor.CheckConsumerHealthOptions{UnprocessedCritical: 11, WaitingCritical: 1}, 0},
		{"worker", nil, monitor.CheckConsumerHealthOptions{}, 0},
	}
	for _, c := range cases {
		args := append([]string{"inspect", "ORDERS", c.consumer, "--format", "nagios", "-s", is.url}, append(noDefaultWarns, c.flags...)...)
		r := ackprobe(t, nil, args...)

		check := &monitor.Result{Name: "ORDERS_" + c.consumer, Check: "consumer", RenderFormat: monitor.NagiosFormat}
		c.opts.StreamName, c.opts.ConsumerName = "ORDERS", c.consumer
		if err := monitor.CheckConsumerHealthWithConnection(mgr, check, c.opts, api.NewDiscardLogger()); err != nil {
			t.Fatal(err)
		}
		natscli := check.String()
		natscliCode := map[monitor.Status]int{monitor.OKStatus: 0, monitor.WarningStatus: 1, monitor.CriticalStatus: 2}[check.Status]

		if r.code != c.code || natscliCode != c.code {
			t.Errorf("%s %v: exit %d, nats server check %d, want %d\nackprobe: %s\nnats:     %s", c.consumer, c.flags, r.code, natscliCode, c.code, r.stdout, natscli)
		}
		if strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
			t.Errorf("not one line: %q, stderr %q", r.stdout, r.stderr)
		}
		ours, theirs := strings.Fields(r.stdout), strings.Fields(natscli)
		if ours[0] != theirs[0] || ours[1] != theirs[1] {
			t.Errorf("status and name: %q, nats server check %q", r.stdout, natscli)
		}
		if a, b := perfdata(t, r.stdout), perfdata(t, natscli); !reflect.DeepEqual(a, b) {
			t.Errorf("%s %v: performance data\nackprobe %v\nnats     %v", c.consumer, c.flags, a, b)
		}
	}
}

// TestInspectNagiosExitCodes: warn is WARNING (1), critical CRITICAL (2),
// could not run UNKNOWN (3), for one consumer and for the account.
func TestInspectNagiosExitCodes(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	for _, c := range []struct {
		args   []string
		code   int
		prefix string
	}{
		{[]string{"inspect", "ORDERS", "worker"}, 0, "OK ORDERS_worker | ack_pending=3 pull_waiting=0 pending=7 redelivered=0;1 last_delivery="},
		{[]string{"inspect", "ORDERS", "retry"}, 1, "WARNING ORDERS_retry Warn:2 messages redelivered and not acked (warn at 1) | "},
		{[]string{"inspect", "ORDERS", "retry", "--redelivery-critical", "2"}, 2, "CRITICAL ORDERS_retry Crit:2 messages redelivered and not acked (critical at 2) | "},
		{[]string{"inspect", "--only", "warn", "--sort", "redelivered"}, 1, "WARNING JetStream Warn:ORDERS_retry: 2 messages redelivered and not acked (warn at 1) Warn:ORDERS_paused: paused for another "},
		{[]string{"inspect", "ORDERS", "--outstanding-ack-critical", "3"}, 2, "CRITICAL ORDERS Crit:ORDERS_worker: 3 messages ack pending (critical at 3)"},
		{[]string{"inspect", "ORDERS", "nope"}, 3, `UNKNOWN ORDERS_nope consumer "nope" not found on stream "ORDERS"`},
		{[]string{"inspect", "NOPE"}, 3, `UNKNOWN NOPE stream "NOPE" not found`},
		{[]string{"inspect", "--watch", "1ms"}, 3, "UNKNOWN JetStream --watch must be at least 10ms"},
	} {
		r := ackprobe(t, nil, append(c.args, "--format", "nagios", "-s", is.url)...)
		if r.code != c.code || !strings.HasPrefix(r.stdout, c.prefix) || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("%v: exit %d, want %d\nstdout %q\nwant   %q...", c.args, r.code, c.code, r.stdout, c.prefix)
		}
		if (c.code == 3) != (r.stderr != "") {
			t.Errorf("%v: stderr %q", c.args, r.stderr)
		}
	}
	// A port nothing listens on: UNKNOWN, not CRITICAL.
	r := ackprobe(t, nil, "inspect", "--format", "nagios", "--timeout", "1s", "-s", "nats://127.0.0.1:1")
	if r.code != 3 || !strings.HasPrefix(r.stdout, "UNKNOWN JetStream cannot connect to") {
		t.Errorf("no server: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestInspectPrometheus: the exposition parses, and its figures are the
// server's.
func TestInspectPrometheus(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	want := is.infos(t)
	r := ackprobe(t, nil, "inspect", "--format", "prometheus", "-s", is.url)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	get := func(name, consumer string, extra ...string) float64 {
		t.Helper()
		for _, m := range mfs[name].GetMetric() {
			l := map[string]string{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["consumer_name"] != consumer || l["stream_name"] != "ORDERS" || l["server_name"] == "" {
				continue
			}
			if len(extra) == 2 && l[extra[0]] != extra[1] {
				continue
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("no %s for %s %v", name, consumer, extra)
		return 0
	}
	for _, name := range []string{"worker", "retry", "paused", "idle"} {
		ci := want["ORDERS/"+name]
		figures := map[string]float64{
			"ackprobe_consumer_num_pending":          float64(ci.NumPending),
			"ackprobe_consumer_num_ack_pending":      float64(ci.NumAckPending),
			"ackprobe_consumer_num_redelivered":      float64(ci.NumRedelivered),
			"ackprobe_consumer_num_waiting":          float64(ci.NumWaiting),
			"ackprobe_consumer_delivered_stream_seq": float64(ci.Delivered.Stream),
			"ackprobe_consumer_ack_floor_stream_seq": float64(ci.AckFloor.Stream),
		}
		for metric, v := range figures {
			if got := get(metric, name); got != v {
				t.Errorf("%s{consumer_name=%q} = %v, server %v", metric, name, got, v)
			}
		}
	}
	if get("ackprobe_consumer_health", "retry", "status", "warn") != 1 || get("ackprobe_consumer_health", "retry", "status", "ok") != 0 ||
		get("ackprobe_rule_firing", "retry", "rule", "redelivery") != 1 || get("ackprobe_rule_firing", "paused", "rule", "paused") != 1 {
		t.Errorf("health and rules wrong:\n%s", r.stdout)
	}
}

// TestInspectSortAndOnly: --only lists the consumers that need a look,
// --sort orders them.
func TestInspectSortAndOnly(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	names := func(r result) []string {
		snap := decodeSnapshot(t, r.stdout)
		var out []string
		for _, st := range snap.Streams {
			for _, c := range st.Consumers {
				out = append(out, st.Name+"/"+c.Name)
			}
		}
		return out
	}
	r := ackprobe(t, nil, "inspect", "--json", "--only", "warn", "-s", is.url)
	if got := strings.Join(names(r), " "); got != "ORDERS/paused ORDERS/retry" || r.code != 0 {
		t.Errorf("--only warn: %s (exit %d)", got, r.code)
	}
	if snap := decodeSnapshot(t, r.stdout); snap.Summary.Consumers != 5 || snap.Selection.Hidden != 3 {
		t.Errorf("summary %+v selection %+v", snap.Summary, snap.Selection)
	}
	r = ackprobe(t, nil, "inspect", "--json", "--only", "critical", "-s", is.url)
	if got := names(r); len(got) != 0 {
		t.Errorf("--only critical: %v", got)
	}
	r = ackprobe(t, nil, "inspect", "ORDERS", "--json", "--sort", "pending", "-s", is.url)
	if got := strings.Join(names(r), " "); got != "ORDERS/idle ORDERS/paused ORDERS/retry ORDERS/worker" {
		t.Errorf("--sort pending: %s", got)
	}
	r = ackprobe(t, nil, "inspect", "ORDERS", "--json", "--sort", "ack-pending", "-s", is.url)
	if got := strings.Join(names(r), " "); got != "ORDERS/worker ORDERS/retry ORDERS/idle ORDERS/paused" {
		t.Errorf("--sort ack-pending: %s", got)
	}
	r = ackprobe(t, nil, "inspect", "--json", "--sort", "health", "-s", is.url, "--redelivery-critical", "2")
	if got := names(r); len(got) != 5 || got[0] != "ORDERS/retry" || got[1] != "ORDERS/paused" {
		t.Errorf("--sort health: %v", got)
	}
	r = ackprobe(t, nil, "inspect", "--no-color", "--only", "warn", "-s", is.url)
	if !strings.Contains(r.stdout, "(--only warn: 2 shown, 3 left out)") || strings.Contains(r.stdout, "ACKPROBE_T") {
		t.Errorf("text --only:\n%s", r.stdout)
	}
}

// TestInspectOnlyCounts: under --only (and --sort) the stream row counts
// every consumer of the stream and says how many are shown, and the
// figures agree with the verdict line and the JSON selection.
func TestInspectOnlyCounts(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	for _, extra := range [][]string{nil, {"--sort", "pending"}, {"--sort", "health"}} {
		// ORDERS: paused and retry warn, worker and idle ok.
		r := ackprobe(t, nil, append([]string{"inspect", "--no-color", "--only", "warn", "-s", is.url}, extra...)...)
		row := ""
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "│ ORDERS ") {
				row = line
			}
		}
		if !strings.Contains(row, "│ showing 2 of 4 consumers ") || !strings.Contains(r.stdout, "WARN: 2 of 5 consumers worth a look") ||
			!strings.Contains(r.stdout, "(--only warn: 2 shown, 3 left out)") {
			t.Errorf("%v: ORDERS row %q in:\n%s", extra, row, r.stdout)
		}
		// On a narrow terminal the stream and consumer names share a column.
		r = runWidth(t, 80, append([]string{"inspect", "--only", "warn", "-s", is.url}, extra...)...)
		if !strings.Contains(r.stdout, "│ ORDERS  showing 2 of 4 ") {
			t.Errorf("%v, 80 columns:\n%s", extra, r.stdout)
		}
		r = ackprobe(t, nil, append([]string{"inspect", "--json", "--only", "warn", "-s", is.url}, extra...)...)
		snap := decodeSnapshot(t, r.stdout)
		st := snap.Stream("ORDERS")
		if len(snap.Streams) != 1 || st == nil || len(st.Consumers) != 2 || st.HiddenConsumers != 2 || st.ConsumerCount != 4 ||
			snap.Selection.Shown != 2 || snap.Selection.Hidden != 3 || snap.Summary.Consumers != 5 {
			t.Errorf("%v: JSON streams %+v selection %+v summary %+v", extra, snap.Streams, snap.Selection, snap.Summary)
		}
	}
	// --only shapes lists, not the verdict: a Nagios check with --only
	// critical still warns about the warn consumers it does not list.
	r := ackprobe(t, nil, "inspect", "--format", "nagios", "--only", "critical", "-s", is.url)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "WARNING") {
		t.Errorf("nagios --only critical: exit %d %q", r.code, r.stdout)
	}
	// Without --only nothing is hidden: "4 consumers", and no
	// hidden_consumers in JSON.
	r = ackprobe(t, nil, "inspect", "--no-color", "-s", is.url)
	if !strings.Contains(r.stdout, "│ ORDERS     │ 4 consumers ") || strings.Contains(r.stdout, "showing") {
		t.Errorf("without --only:\n%s", r.stdout)
	}
	if r = ackprobe(t, nil, "inspect", "--json", "-s", is.url); strings.Contains(r.stdout, "hidden_consumers") {
		t.Errorf("hidden_consumers without --only")
	}
	// The one stream asked for keeps its view when none of its consumers
	// is at that status.
	r = ackprobe(t, nil, "inspect", "ORDERS", "--no-color", "--only", "critical", "-s", is.url)
	for _, s := range []string{"Stream ORDERS\n", "No consumer of this stream at critical or worse.", "(1 stream, 4 consumers; 2 ok)", "(--only critical: 0 shown, 4 left out)"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("ORDERS --only critical: no %q in:\n%s", s, r.stdout)
		}
	}
	// Streams without consumers are not "no streams".
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	if _, err := js.CreateStream(inspectCtx(t), jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	r = ackprobe(t, nil, "inspect", "--no-color", "--only", "warn", "-s", s.ClientURL())
	if !strings.Contains(r.stdout, "No consumer at warn or worse.") || strings.Contains(r.stdout, "No streams") {
		t.Errorf("--only warn, one stream without consumers:\n%s", r.stdout)
	}
	r = ackprobe(t, nil, "inspect", "AUDIT", "--no-color", "--only", "warn", "-s", s.ClientURL())
	if !strings.Contains(r.stdout, "Stream AUDIT\n") || !strings.Contains(r.stdout, "No consumers on this stream.") {
		t.Errorf("AUDIT --only warn:\n%s", r.stdout)
	}
}

// runWidth runs a command line with stdout a terminal of the given width.
func runWidth(t *testing.T, width int, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, args, streams{stdout: &out, stderr: &errb, width: width, getenv: func(k string) string {
		return map[string]string{"NO_COLOR": "1"}[k]
	}})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestInspectNarrowTerminal: at 80 columns every view fits, with its
// figures still there.
func TestInspectNarrowTerminal(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	for _, args := range [][]string{{"inspect"}, {"inspect", "ORDERS"}, {"inspect", "ORDERS", "retry"}} {
		r := runWidth(t, 80, append(args, "-s", is.url)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d %s", args, r.code, r.stderr)
		}
		for i, line := range strings.Split(r.stdout, "\n") {
			if w := text.StringWidthWithoutEscSequences(line); w > 80 {
				t.Errorf("%v: line %d is %d wide: %q", args, i+1, w, line)
			}
		}
		if len(args) == 1 && !hasRow(tableRows(r.stdout), []string{"retry", "", "8", "2", "2"}) {
			t.Errorf("%v: no retry row with its figures:\n%s", args, r.stdout)
		}
	}
	wide := runWidth(t, 200, "inspect", "-s", is.url)
	if !strings.Contains(wide.stdout, "Ack Pending") || !strings.Contains(wide.stdout, "Redelivered") {
		t.Errorf("200 columns shortened the headers:\n%s", wide.stdout)
	}
}

// TestInspectWatchFindsStorms watches an account where a worker NAKs
// everything on a consumer with MaxDeliver 2: the refreshes name the NAK
// storm and the max deliveries, count no acks, and change nothing.
func TestInspectWatchFindsStorms(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	nak := is.consumer(t, "ORDERS", jetstream.ConsumerConfig{Durable: "nakker", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 2})
	args := []string{"inspect", "ORDERS", "--watch", "100ms", "--json", "--nak-storm-warn", "4", "-s", is.url}
	started := false
	// The advisories may straddle refreshes: add the intervals up.
	type sums struct {
		naks, maxDeliveries int
		acked               int64
		rules               map[string]bool
	}
	add := func(out string) sums {
		s := sums{rules: map[string]bool{}}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var snap inspect.Snapshot
			if json.Unmarshal([]byte(line), &snap) != nil {
				continue
			}
			c := snap.Stream("ORDERS").Consumer("nakker")
			if c == nil || c.Delta == nil || c.Delta.Events == nil {
				continue
			}
			s.naks += c.Delta.Events.Naks
			s.maxDeliveries += c.Delta.Events.MaxDeliveries
			s.acked += c.Delta.AckedMax
			for _, r := range c.Health.Reasons {
				s.rules[r.Rule] = true
			}
		}
		return s
	}
	code, out, errOut := watch(t, false, args, func(out string) bool {
		if out == "" {
			return false
		}
		if !started {
			// NAK the 10 messages twice each: 20 NAKs and 10
			// redeliveries; the next pull finds them at MaxDeliver 2 and
			// drops them.
			for range 2 {
				for _, m := range natstest.Fetch(t, nak, 10) {
					if err := m.Nak(); err != nil {
						t.Error(err)
					}
				}
			}
			// The NAKs are applied after this pull arrives, or before: a
			// waiting pull sees them either way.
			batch, err := nak.Fetch(10, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				t.Error(err)
			} else {
				for range batch.Messages() {
					t.Error("a message came back past MaxDeliver")
				}
			}
			started = true
			return false
		}
		s := add(out)
		return s.naks == 20 && s.maxDeliveries == 10
	})
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	s := add(out)
	if s.naks != 20 || s.maxDeliveries != 10 || s.acked != 0 || !s.rules["nak-storm"] || !s.rules["max-deliver-reached"] || !s.rules["redelivery-storm"] {
		t.Errorf("%d NAKs, %d max deliveries, %d acks counted, rules %v, in %d refreshes", s.naks, s.maxDeliveries, s.acked, s.rules, strings.Count(out, "\n"))
	}
}

// TestInspectWatchIsReadOnly: refreshes with their subscriptions change no
// consumer's state.
func TestInspectWatchIsReadOnly(t *testing.T) {
	t.Parallel()
	is := newInspectServer(t)
	before := is.infos(t)
	for _, format := range []string{"--json", "--no-color"} {
		code, _, errOut := watch(t, false, []string{"inspect", "--watch", "20ms", format, "-s", is.url}, func(out string) bool {
			return strings.Count(out, `"streams"`) >= 3 || strings.Count(out, "ackprobe inspect ") >= 3
		})
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	}
	r := ackprobe(t, nil, "inspect", "ORDERS", "retry", "--format", "nagios", "--watch", "50ms", "-s", is.url)
	if r.code != 1 || !strings.Contains(r.stdout, " delivered_rate=0 acked_rate=0 redelivery_rate=0;10 naks=0;10 terminated=0;1 max_deliveries=0;1") {
		t.Errorf("nagios with two looks: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	if after := is.infos(t); !reflect.DeepEqual(before, after) {
		t.Errorf("watching changed consumer state:\nbefore %+v\nafter  %+v", before, after)
	}
}
