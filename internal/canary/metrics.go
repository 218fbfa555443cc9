package canary

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// Metric names, as the contract lists them ("Canary metrics"), and the
// canary's additions.
const (
	MetricAckDuration   = "ackprobe_ack_duration_seconds"
	MetricAckVisibility = "ackprobe_ack_visibility_seconds"
	MetricServerAckTime = "ackprobe_server_ack_time_seconds"
	MetricRoundDuration = "ackprobe_round_duration_seconds"
	MetricAcks          = "ackprobe_acks_total"
	MetricAckErrors     = "ackprobe_ack_errors_total"
	MetricAckRetries    = "ackprobe_ack_retries_total"
	MetricStaleReads    = "ackprobe_stale_reads_total"
	MetricRedeliveries  = "ackprobe_redeliveries_total"
	MetricFindings      = "ackprobe_findings_total"
	MetricRounds        = "ackprobe_rounds_total"
	MetricLastRound     = "ackprobe_last_round_timestamp_seconds"
	MetricUp            = "ackprobe_up"
	MetricBuildInfo     = "ackprobe_build_info"

	// Additions beyond the contract's list.
	MetricProbeInfo     = "ackprobe_probe_info"
	MetricStatus        = "ackprobe_status"
	MetricInterval      = "ackprobe_round_interval_seconds"
	MetricReconnects    = "ackprobe_reconnects_total"
	MetricLeaderChanges = "ackprobe_consumer_leader_changes_total"
	MetricRecreated     = "ackprobe_probe_recreated_total"
	// With --per-node: ack calls and rounds by the server that led them.
	MetricNodeAckDuration = "ackprobe_node_ack_duration_seconds"
	MetricNodeRounds      = "ackprobe_node_rounds_total"
)

// Round results, the values of ackprobe_rounds_total's result label.
const (
	ResultOK     = "ok"     // the round finished and no finding failed
	ResultFailed = "failed" // the round finished and a finding failed
	ResultError  = "error"  // the round could not finish (or not start)
)

// LatencyBuckets are the classic histogram buckets of the ack latency
// histograms, in seconds: an R1 memory consumer on loopback acks in tens
// of microseconds (a standard ack, a buffered publish, in a few), an R3 consumer across zones in milliseconds, and an
// ack retried through a leader election in seconds.
var LatencyBuckets = []float64{
	0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// RoundBuckets are the classic buckets of ackprobe_round_duration_seconds:
// a round of a few messages per mode takes milliseconds, one that waits
// out a lost ack's AckWait or an outage takes tens of seconds.
var RoundBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Native histogram settings: buckets about 10% wide, at most 160 of them
// per histogram (memory stays bounded whatever is observed), and a reset
// at most once an hour when they do not fit.
const (
	nativeFactor     = 1.1
	nativeMaxBuckets = 160
	nativeMinReset   = time.Hour
)

// BuildInfo is what ackprobe_build_info reports.
type BuildInfo struct {
	Version, Commit, NatsGo, NatsServer string
}

// Metrics holds the canary's Prometheus collectors in their own registry
// (no global state): the histograms, fed as measurements are taken through
// the probe.Observer methods, and the counters and gauges, set once per
// round by Record. Its memory is fixed once the label values have been
// seen: the labels take values from small closed sets (modes, finding
// codes, severities, results).
type Metrics struct {
	reg *prometheus.Registry

	ackDuration, ackVisibility, serverAckTime *prometheus.HistogramVec
	roundDuration                             prometheus.Histogram

	acks, ackErrors, ackRetries, staleReads *prometheus.CounterVec
	redeliveries, findings, rounds          *prometheus.CounterVec
	reconnects, leaderChanges, recreated    prometheus.Counter

	lastRound, interval prometheus.Gauge
	// up is ackprobe_up as the rounds set it; once WatchStatus gave the
	// History, ackprobe_up is the History's judgement at each scrape.
	up        atomic.Bool
	history   atomic.Pointer[History]
	probeInfo *prometheus.GaugeVec

	// nodeAckDuration and nodeRounds label the rounds of a per-node
	// canary with the server that was made to lead them.
	nodeAckDuration *prometheus.HistogramVec
	nodeRounds      *prometheus.CounterVec
	node            atomic.Pointer[string]

	// observers are the per-mode histogram children, looked up once.
	observers map[probe.Mode]*modeObservers
	info      [5]string
}

type modeObservers struct{ duration, visibility, serverAck prometheus.Observer }

// NewMetrics registers the canary's collectors, with the Go runtime's and
// the process's own, in a new registry. Every series of the modes, and of
// each redelivery code of each mode, exists from the start at zero, so
// that rate() and increase() see the first increment.
func NewMetrics(b BuildInfo, modes []probe.Mode, interval time.Duration) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), observers: map[probe.Mode]*modeObservers{}}
	opts := func(name, help string, buckets []float64) prometheus.HistogramOpts {
		return prometheus.HistogramOpts{
			Name: name, Help: help, Buckets: buckets,
			NativeHistogramBucketFactor:     nativeFactor,
			NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
			NativeHistogramMinResetDuration: nativeMinReset,
		}
	}
	hist := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(opts(name, help, buckets), labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m.ackDuration = hist(MetricAckDuration, "Ack calls, from the call until it returned: Msg.Ack() (standard: buffered) or Msg.DoubleAck() (confirmed: the server applied the ack), measured by the client.", LatencyBuckets, "mode")
	m.ackVisibility = hist(MetricAckVisibility, "From an ack call's return until consumer info showed the ack applied, for the read-backs that first showed it pending (one consumer-info round trip included).", LatencyBuckets, "mode")
	m.serverAckTime = hist(MetricServerAckTime, "The server's own time from delivering a message to applying its ack (ack_time of its sampled consumer_ack metric events).", LatencyBuckets, "mode")
	m.roundDuration = prometheus.NewHistogram(opts(MetricRoundDuration, "Rounds, from start to end (both modes, whatever the result).", RoundBuckets))
	m.acks = counter(MetricAcks, "Acks that landed: Ack() returned without error, or the server answered DoubleAck().", "mode")
	m.ackErrors = counter(MetricAckErrors, "Ack calls that still failed after their retries.", "mode")
	m.ackRetries = counter(MetricAckRetries, "Ack attempts beyond each call's first (confirmed acks retried after a timeout or without a consumer leader).", "mode")
	m.staleReads = counter(MetricStaleReads, "Immediate read-backs after an ack call returned that still showed the ack pending.", "mode")
	m.redeliveries = counter(MetricRedeliveries, "Probe messages delivered again, classed by what the probe proved about them (code: the finding code of the class).", "mode", "code")
	m.findings = counter(MetricFindings, "Findings of rounds: each round adds one per finding it made (a finding per mode, per node, or about the round).", "code", "severity")
	m.rounds = counter(MetricRounds, "Rounds by result: ok (finished, no failing finding), failed (finished with a failing finding), error (could not finish: server down, no leader, timeouts).", "result")
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: MetricReconnects, Help: "Reconnects of the canary's NATS connection."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: MetricLeaderChanges, Help: "Changes of the probe consumer's leader seen during rounds."})
	m.recreated = prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRecreated, Help: "Times the canary set up its probe stream and consumer again because they had vanished (deleted, or lost with a server's memory)."})
	m.lastRound = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastRound, Help: "Unix time at which the last round ended, whatever its result."})
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricUp, Help: "1 when the last round reached the server (it finished, or the server answered its error) and the connection has not been down for more than 2s since, 0 otherwise; judged at each scrape."}, func() float64 {
		v := m.up.Load()
		if h := m.history.Load(); h != nil {
			v = h.Up(time.Now())
		}
		if v {
			return 1
		}
		return 0
	})
	m.interval = prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricInterval, Help: "The canary's --interval: a round starts this often."})
	m.nodeAckDuration = hist(MetricNodeAckDuration, "With --per-node: ack calls as ackprobe_ack_duration_seconds, by the server made to lead the probe stream and consumer for the round (consumer_leader).", LatencyBuckets, "mode", "consumer_leader")
	m.nodeRounds = counter(MetricNodeRounds, "With --per-node: rounds by the server made to lead them, and result (ok, failed, error, or not_led: the leaders did not get there, or moved during the round).", "consumer_leader", "result")
	m.probeInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricProbeInfo, Help: "What the last round probed (value 1), labelled as the NATS exporters label it, to join on: the server connected to, its cluster, the probe stream and consumer, and the consumer's leader."},
		[]string{"server_name", "cluster", "stream_name", "consumer_name", "consumer_leader"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricBuildInfo, Help: "ackprobe's version and commit, and the nats.go and nats-server versions it was built with (value 1)."},
		[]string{"version", "commit", "nats_go", "nats_server"})
	build.WithLabelValues(b.Version, b.Commit, b.NatsGo, b.NatsServer).Set(1)

	m.reg.MustRegister(m.ackDuration, m.ackVisibility, m.serverAckTime, m.roundDuration,
		m.acks, m.ackErrors, m.ackRetries, m.staleReads, m.redeliveries, m.findings, m.rounds,
		m.reconnects, m.leaderChanges, m.recreated, m.nodeAckDuration, m.nodeRounds,
		m.lastRound, up, m.interval, m.probeInfo, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.interval.Set(interval.Seconds())
	for _, mode := range modes {
		l := string(mode)
		m.observers[mode] = &modeObservers{
			duration:   m.ackDuration.WithLabelValues(l),
			visibility: m.ackVisibility.WithLabelValues(l),
			serverAck:  m.serverAckTime.WithLabelValues(l),
		}
		for _, c := range []*prometheus.CounterVec{m.acks, m.ackErrors, m.ackRetries, m.staleReads} {
			c.WithLabelValues(l)
		}
		for _, code := range probe.RedeliveryCodes {
			m.redeliveries.WithLabelValues(l, code)
		}
	}
	for _, r := range []string{ResultOK, ResultFailed, ResultError} {
		m.rounds.WithLabelValues(r)
	}
	return m
}

// WatchStatus exports h's overall status as the ackprobe_status state set,
// and ackprobe_up as h judges it, both when Prometheus scrapes (so a
// canary stuck in a round shows as failing, and an outage as down,
// without a round ending; /status and /metrics agree).
func (m *Metrics) WatchStatus(h *History) {
	m.history.Store(h)
	m.reg.MustRegister(&statusCollector{h: h, desc: prometheus.NewDesc(MetricStatus,
		"The canary's overall status over its window of recent rounds, as /status judges it: 1 for the current one of ok, degraded, failing, unknown.",
		[]string{"status"}, nil)})
}

// statusCollector is ackprobe_status: a state set judged at each scrape.
type statusCollector struct {
	h    *History
	desc *prometheus.Desc
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	current, _ := c.h.Overall(time.Now())
	for _, s := range []string{StatusOK, StatusDegraded, StatusFailing, StatusUnknown} {
		v := 0.0
		if s == current {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, s)
	}
}

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observer(mode probe.Mode) *modeObservers {
	if o := m.observers[mode]; o != nil {
		return o
	}
	l := string(mode)
	return &modeObservers{m.ackDuration.WithLabelValues(l), m.ackVisibility.WithLabelValues(l), m.serverAckTime.WithLabelValues(l)}
}

// AckDuration implements probe.Observer: ackprobe_ack_duration_seconds,
// and in a per-node round ackprobe_node_ack_duration_seconds.
func (m *Metrics) AckDuration(mode probe.Mode, d time.Duration) {
	m.observer(mode).duration.Observe(d.Seconds())
	if node := m.node.Load(); node != nil {
		m.nodeAckDuration.WithLabelValues(string(mode), *node).Observe(d.Seconds())
	}
}

// Leading says which server the leaders were moved to for the round now
// running ("" when none).
func (m *Metrics) Leading(server string) {
	if server == "" {
		m.node.Store(nil)
		return
	}
	m.node.Store(&server)
}

// AckVisibility implements probe.Observer: ackprobe_ack_visibility_seconds.
func (m *Metrics) AckVisibility(mode probe.Mode, d time.Duration) {
	m.observer(mode).visibility.Observe(d.Seconds())
}

// ServerAckTime implements probe.Observer: ackprobe_server_ack_time_seconds.
func (m *Metrics) ServerAckTime(mode probe.Mode, d time.Duration) {
	m.observer(mode).serverAck.Observe(d.Seconds())
}

var _ probe.Observer = (*Metrics)(nil)

// Record counts one round: res is its Result (nil when the round could not
// start: no connection, no probe stream), reached says whether it reached
// the server. The counters add what the round's ledger counted, also from
// the partial Result of a round that could not finish.
func (m *Metrics) Record(o Outcome) {
	if res := o.Result; res != nil {
		for i := range res.Modes {
			m.recordMode(&res.Modes[i])
		}
		for _, f := range res.Findings {
			m.findings.WithLabelValues(f.Code, string(f.Severity)).Inc()
		}
		if o.Reached {
			m.setInfo(res)
		}
	}
	m.rounds.WithLabelValues(o.ResultLabel()).Inc()
	if res := o.Result; res != nil && len(res.Nodes) == 1 {
		result := o.ResultLabel()
		if !res.Nodes[0].LedWholeRound {
			result = "not_led"
		}
		m.nodeRounds.WithLabelValues(res.Nodes[0].Server, result).Inc()
	}
	m.roundDuration.Observe(o.Duration().Seconds())
	m.lastRound.Set(float64(o.Ended.UnixNano()) / 1e9)
	m.SetUp(o.Reached)
	if o.Reconnects > 0 {
		m.reconnects.Add(float64(o.Reconnects))
	}
	if o.Recreated {
		m.recreated.Inc()
	}
}

func (m *Metrics) recordMode(r *probe.ModeResult) {
	l := string(r.Mode)
	m.acks.WithLabelValues(l).Add(float64(r.Acks))
	m.ackErrors.WithLabelValues(l).Add(float64(r.Errors))
	m.ackRetries.WithLabelValues(l).Add(float64(r.Retries))
	m.staleReads.WithLabelValues(l).Add(float64(r.Visibility.StaleReads))
	for code, n := range Redeliveries(r.Classes) {
		if n > 0 {
			m.redeliveries.WithLabelValues(l, code).Add(float64(n))
		}
	}
	if n := r.Disturbance.LeaderChanges; n > 0 {
		m.leaderChanges.Add(float64(n))
	}
}

// setInfo keeps one ackprobe_probe_info series: the latest.
func (m *Metrics) setInfo(res *probe.Result) {
	info := [5]string{res.Server.Name, res.Server.Cluster, res.Stream, res.Consumer, leaderOf(res)}
	if info == m.info {
		return
	}
	m.info = info
	m.probeInfo.Reset()
	m.probeInfo.WithLabelValues(info[:]...).Set(1)
}

// Redeliveries returns a mode's redelivered messages by class, keyed by
// the codes of probe.RedeliveryCodes: after a confirmed ack, after a lost
// standard ack, after a late ack, before the ack, and deliveries that
// never arrived.
func Redeliveries(c probe.Classes) map[string]int {
	return map[string]int{
		probe.CodeRedeliveredAfterConfirmedAck: c.RedeliveredAfterConfirmedAck,
		probe.CodeLostStandardAck:              c.LostStandardAck,
		probe.CodeLateAck:                      c.LateAckRedelivered,
		probe.CodeRedeliveredBeforeAck:         c.RedeliveredBeforeAck,
		probe.CodeLostDelivery:                 c.LostDelivery,
	}
}

// leaderOf is the consumer leader the round's last snapshot showed ("" on
// a server that is not clustered).
func leaderOf(res *probe.Result) string {
	for i := len(res.Modes) - 1; i >= 0; i-- {
		steps := res.Modes[i].Steps
		for j := len(steps) - 1; j >= 0; j-- {
			if steps[j].Leader != "" {
				return steps[j].Leader
			}
		}
	}
	return ""
}

// SetUp sets ackprobe_up: 1 when the last round reached the server and
// the connection has not been down since for more than DisconnectGrace.
func (m *Metrics) SetUp(up bool) { m.up.Store(up) }
