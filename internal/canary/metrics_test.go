package canary

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

var modes = []probe.Mode{probe.Standard, probe.Confirmed}

// result is a hand-built round Result: 10 acks per mode, 9 stale standard
// read-backs, one lost standard ack and, when broken, one message
// redelivered after its confirmed ack (a fail finding).
func result(broken bool, leader string) *probe.Result {
	res := &probe.Result{
		Server: doc.ServerInfo{Name: "n1", Cluster: "east", Version: "2.15.2"},
		Stream: "ACKPROBE_CANARY_T", Subject: "ackprobe.canary_t", Consumer: "ACKPROBE_CANARY_T",
		Modes: []probe.ModeResult{
			{Mode: probe.Standard, Acks: 10, Visibility: probe.Visibility{ReadBacks: 10, StaleReads: 9, LagUS: probe.Latency{Count: 9, P99: 180}},
				Classes: probe.Classes{LostStandardAck: 1}, Steps: []probe.Step{{Step: "start", Leader: leader}},
				AckLatencyUS: probe.Latency{Count: 10, P50: 1, P99: 3}},
			{Mode: probe.Confirmed, Acks: 10, Errors: 1, Retries: 2, Visibility: probe.Visibility{ReadBacks: 10},
				Steps: []probe.Step{{Step: "acked", Leader: leader}}, Disturbance: probe.Disturbance{LeaderChanges: 1},
				AckLatencyUS: probe.Latency{Count: 10, P50: 310, P99: 1210}},
		},
		Findings: []probe.Finding{
			{Code: probe.CodeStaleRead, Mode: probe.Standard, Severity: probe.SeverityInfo, Count: 9, Message: "9 of 10 read-backs stale"},
			{Code: probe.CodeLostStandardAck, Mode: probe.Standard, Severity: probe.SeverityWarn, Count: 1, Message: "1 standard ack lost"},
		},
		OK: true,
	}
	if broken {
		res.Modes[1].Classes.RedeliveredAfterConfirmedAck = 1
		res.Findings = append(res.Findings, probe.Finding{Code: probe.CodeRedeliveredAfterConfirmedAck, Mode: probe.Confirmed,
			Severity: probe.SeverityFail, Count: 1, Message: "1 message delivered again after its confirmed ack"})
		res.OK = false
	}
	return res
}

// outcome is hand-built round n, started n milliseconds from now (so that
// the history never finds the canary stalled) and ended 20ms later.
func outcome(n int, res *probe.Result, err error) Outcome {
	start := time.Now().Add(time.Duration(n) * time.Millisecond)
	return Outcome{Round: n, Started: start, Ended: start.Add(20 * time.Millisecond), Result: res, Err: err,
		Reached: err == nil || answered(err)}
}

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the series of family name with exactly the
// given label values (name=value pairs), and whether it exists.
func value(t *testing.T, m *Metrics, name string, labels ...string) (float64, bool) {
	t.Helper()
	mf := gather(t, m)[name]
	if mf == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, s := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range s.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue(), true
		case s.Gauge != nil:
			return s.GetGauge().GetValue(), true
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, m *Metrics, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(t, m, name, labels...)
	if !ok {
		t.Fatalf("%s%v: no such series", name, labels)
	}
	if got != want {
		t.Errorf("%s%v = %g, want %g", name, labels, got, want)
	}
}

// TestContractMetrics pins the contract's metric names, types and label
// names: dashboards and alerts are written against them.
func TestContractMetrics(t *testing.T) {
	t.Parallel()
	m := NewMetrics(BuildInfo{Version: "v1", Commit: "abc", NatsGo: "1.55.0", NatsServer: "2.15.2"}, modes, 10*time.Second)
	m.WatchStatus(NewHistory(10, 3, time.Minute, Info{}))
	m.AckDuration(probe.Confirmed, time.Millisecond)
	m.AckVisibility(probe.Standard, time.Millisecond)
	m.ServerAckTime(probe.Confirmed, time.Millisecond)
	m.Record(outcome(1, result(true, "n2"), nil))
	want := map[string]struct {
		typ    dto.MetricType
		labels []string
	}{
		MetricAckDuration:   {dto.MetricType_HISTOGRAM, []string{"mode"}},
		MetricAckVisibility: {dto.MetricType_HISTOGRAM, []string{"mode"}},
		MetricServerAckTime: {dto.MetricType_HISTOGRAM, []string{"mode"}},
		MetricRoundDuration: {dto.MetricType_HISTOGRAM, nil},
		MetricAcks:          {dto.MetricType_COUNTER, []string{"mode"}},
		MetricAckErrors:     {dto.MetricType_COUNTER, []string{"mode"}},
		MetricAckRetries:    {dto.MetricType_COUNTER, []string{"mode"}},
		MetricStaleReads:    {dto.MetricType_COUNTER, []string{"mode"}},
		MetricRedeliveries:  {dto.MetricType_COUNTER, []string{"code", "mode"}},
		MetricFindings:      {dto.MetricType_COUNTER, []string{"code", "severity"}},
		MetricRounds:        {dto.MetricType_COUNTER, []string{"result"}},
		MetricLastRound:     {dto.MetricType_GAUGE, nil},
		MetricUp:            {dto.MetricType_GAUGE, nil},
		MetricBuildInfo:     {dto.MetricType_GAUGE, []string{"commit", "nats_go", "nats_server", "version"}},
		MetricProbeInfo:     {dto.MetricType_GAUGE, []string{"cluster", "consumer_leader", "consumer_name", "server_name", "stream_name"}},
		MetricStatus:        {dto.MetricType_GAUGE, []string{"status"}},
		MetricInterval:      {dto.MetricType_GAUGE, nil},
		MetricReconnects:    {dto.MetricType_COUNTER, nil},
		MetricLeaderChanges: {dto.MetricType_COUNTER, nil},
		MetricRecreated:     {dto.MetricType_COUNTER, nil},
	}
	got := gather(t, m)
	for name, w := range want {
		mf := got[name]
		if mf == nil {
			t.Errorf("%s: not exported", name)
			continue
		}
		if mf.GetType() != w.typ {
			t.Errorf("%s: type %s, want %s", name, mf.GetType(), w.typ)
		}
		for _, s := range mf.GetMetric() {
			var names []string
			for _, l := range s.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Equal(names, w.labels) {
				t.Errorf("%s: labels %v, want %v", name, names, w.labels)
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && strings.HasPrefix(name, "ackprobe_") {
			t.Errorf("%s: exported but not pinned here (add it to the contract or the README)", name)
		}
	}
	mustValue(t, m, 1, MetricBuildInfo, "commit", "abc", "nats_go", "1.55.0", "nats_server", "2.15.2", "version", "v1")
	// Lint with the library's own promlint (the naming guide's rules).
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "ackprobe_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestNativeHistograms checks that the latency histograms carry native
// buckets alongside the classic ones.
func TestNativeHistograms(t *testing.T) {
	t.Parallel()
	m := NewMetrics(BuildInfo{}, modes, time.Second)
	for _, d := range []time.Duration{30 * time.Microsecond, 300 * time.Microsecond, 3 * time.Millisecond} {
		m.AckDuration(probe.Confirmed, d)
	}
	m.Record(outcome(1, result(false, ""), nil))
	for _, name := range []string{MetricAckDuration, MetricRoundDuration} {
		for _, s := range gather(t, m)[name].GetMetric() {
			h := s.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			if len(h.GetBucket()) < 10 {
				t.Errorf("%s: %d classic buckets", name, len(h.GetBucket()))
			}
			if h.Schema == nil || len(h.GetPositiveSpan()) == 0 {
				t.Errorf("%s: no native buckets (schema %v, spans %v)", name, h.Schema, h.GetPositiveSpan())
			}
		}
	}
	if got, _ := value(t, m, MetricAckDuration, "mode", "confirmed"); got != 3 {
		t.Errorf("confirmed ack durations observed: %g, want 3", got)
	}
}

func TestRecord(t *testing.T) {
	t.Parallel()
	m := NewMetrics(BuildInfo{}, modes, time.Second)
	// Every series of the modes exists at zero before the first round.
	mustValue(t, m, 0, MetricAcks, "mode", "confirmed")
	mustValue(t, m, 0, MetricRedeliveries, "code", probe.CodeRedeliveredAfterConfirmedAck, "mode", "confirmed")
	mustValue(t, m, 0, MetricRounds, "result", ResultError)
	mustValue(t, m, 0, MetricUp)

	m.Record(outcome(1, result(false, "n2"), nil))
	m.Record(outcome(2, result(true, "n3"), nil))
	lost := &probe.ConnectionLostError{Err: errors.New("not connected for 2s")}
	o3 := outcome(3, nil, lost)
	m.Record(o3)

	mustValue(t, m, 20, MetricAcks, "mode", "standard")
	mustValue(t, m, 20, MetricAcks, "mode", "confirmed")
	mustValue(t, m, 2, MetricAckErrors, "mode", "confirmed")
	mustValue(t, m, 4, MetricAckRetries, "mode", "confirmed")
	mustValue(t, m, 18, MetricStaleReads, "mode", "standard")
	mustValue(t, m, 2, MetricRedeliveries, "code", probe.CodeLostStandardAck, "mode", "standard")
	mustValue(t, m, 1, MetricRedeliveries, "code", probe.CodeRedeliveredAfterConfirmedAck, "mode", "confirmed")
	mustValue(t, m, 2, MetricFindings, "code", probe.CodeStaleRead, "severity", "info")
	mustValue(t, m, 1, MetricFindings, "code", probe.CodeRedeliveredAfterConfirmedAck, "severity", "fail")
	mustValue(t, m, 1, MetricRounds, "result", ResultOK)
	mustValue(t, m, 1, MetricRounds, "result", ResultFailed)
	mustValue(t, m, 1, MetricRounds, "result", ResultError)
	mustValue(t, m, 3, MetricRoundDuration)
	mustValue(t, m, 2, MetricLeaderChanges)
	mustValue(t, m, 0, MetricUp) // the last round did not reach the server
	mustValue(t, m, float64(o3.Ended.UnixNano())/1e9, MetricLastRound)
	// One info series, the latest round's that reached the server.
	if n := testutil.CollectAndCount(m.probeInfo); n != 1 {
		t.Errorf("%d probe info series, want 1", n)
	}
	mustValue(t, m, 1, MetricProbeInfo, "cluster", "east", "consumer_leader", "n3", "consumer_name", "ACKPROBE_CANARY_T", "server_name", "n1", "stream_name", "ACKPROBE_CANARY_T")

	o := outcome(4, nil, jetstreamNotFound())
	o.Recreated, o.Reconnects = true, 2
	m.Record(o)
	mustValue(t, m, 1, MetricUp) // the server answered: not found
	mustValue(t, m, 1, MetricRecreated)
	mustValue(t, m, 2, MetricReconnects)
}

// TestRedeliveriesCoverCodes fails when the probe adds a redelivery class
// that the canary does not export.
func TestRedeliveriesCoverCodes(t *testing.T) {
	t.Parallel()
	got := Redeliveries(probe.Classes{RedeliveredAfterConfirmedAck: 1, LostStandardAck: 2, LateAckRedelivered: 3, LateAck: 100, RedeliveredBeforeAck: 4, LostDelivery: 5})
	if len(got) != len(probe.RedeliveryCodes) {
		t.Errorf("Redeliveries has %d codes, probe.RedeliveryCodes %d", len(got), len(probe.RedeliveryCodes))
	}
	for _, code := range probe.RedeliveryCodes {
		if _, ok := got[code]; !ok {
			t.Errorf("code %s not mapped", code)
		}
	}
	if got[probe.CodeLateAck] != 3 {
		t.Errorf("late_ack redeliveries = %d, want the late acks that were redelivered (3), not every late ack", got[probe.CodeLateAck])
	}
}

// TestMemoryFlat records 100 rounds, then 9,900 more, with their
// measurements, and checks that the canary holds no more memory after
// 10,000 rounds than after 100: the metrics' series, the history's window
// and the per-round work are all bounded.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("records 10,000 rounds")
	}
	m := NewMetrics(BuildInfo{}, modes, time.Second)
	h := NewHistory(10, 3, time.Minute, Info{})
	m.WatchStatus(h)
	lat := make([]time.Duration, 64)
	for i := range lat {
		lat[i] = time.Duration(20+i*i*37) * time.Microsecond
	}
	round := func(n int) {
		for i := range 10 {
			d := lat[(n*10+i)%len(lat)]
			m.AckDuration(probe.Standard, d/10)
			m.AckDuration(probe.Confirmed, d)
			m.AckVisibility(probe.Standard, d)
			m.ServerAckTime(probe.Confirmed, d)
		}
		var o Outcome
		switch n % 7 {
		case 3:
			o = outcome(n, nil, &probe.ConnectionLostError{Err: errors.New("down")})
		case 5:
			o = outcome(n, result(true, fmt.Sprintf("n%d", n%3)), nil)
		default:
			o = outcome(n, result(false, fmt.Sprintf("n%d", n%3)), nil)
		}
		m.Record(o)
		h.Add(o)
		if n%10 == 0 {
			_, _ = m.Registry().Gather()
			_ = h.Status(o.Ended)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for n := 1; n <= 100; n++ {
		round(n)
	}
	after100 := heap()
	start := time.Now()
	for n := 101; n <= 10_000; n++ {
		round(n)
	}
	after10k := heap()
	t.Logf("heap after 100 rounds %d B, after 10,000 rounds %d B; %s per round", after100, after10k, time.Since(start)/9900)
	if after10k > after100+64<<10 {
		t.Errorf("heap grew from %d B after 100 rounds to %d B after 10,000", after100, after10k)
	}
}

func BenchmarkRecord(b *testing.B) {
	m := NewMetrics(BuildInfo{}, modes, time.Second)
	h := NewHistory(10, 3, time.Minute, Info{})
	res := result(false, "n1")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for range 10 {
			m.AckDuration(probe.Confirmed, 300*time.Microsecond)
		}
		o := outcome(i, res, nil)
		m.Record(o)
		h.Add(o)
	}
}
