package report

import (
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// Prometheus label names, as the NATS exporters name them.
var (
	streamLabels   = []string{"server_name", "cluster", "stream_name"}
	consumerLabels = []string{"server_name", "cluster", "stream_name", "consumer_name"}
)

// InspectPrometheus writes a snapshot as Prometheus text exposition
// (client_golang's registry, encoded by prometheus/common's expfmt), for
// node_exporter's textfile collector. Figures keep the server's names:
// ackprobe_consumer_num_pending, _num_ack_pending, _num_redelivered,
// _num_waiting, _delivered_stream_seq, _ack_floor_stream_seq and the
// rest, labelled server_name, cluster, stream_name and consumer_name;
// ackprobe_consumer_health{status} is 1 for the consumer's status and 0
// for the others; ackprobe_rule_firing{rule,severity} is 1 for each rule
// that fired (absent when it did not).
func InspectPrometheus(w io.Writer, snap *inspect.Snapshot) error {
	reg := prometheus.NewRegistry()
	g := gauges{reg: reg}
	server := snap.Server.Name
	if server == "" {
		server = snap.Server.URL
	}
	cluster := snap.Server.Cluster

	up := g.plain("ackprobe_inspect_up", "1 when inspect could look at the account")
	up.Set(1)
	g.plain("ackprobe_inspect_duration_seconds", "Time the look took").Set(time.Duration(snap.Elapsed).Seconds())
	g.plain("ackprobe_inspect_requests", "JetStream API requests the look took").Set(float64(snap.Requests))
	byStatus := g.vec("ackprobe_inspect_consumers", "Consumers looked at, by health status", "status")
	byStatus.WithLabelValues("ok").Set(float64(snap.Summary.OK))
	byStatus.WithLabelValues("warn").Set(float64(snap.Summary.Warn))
	byStatus.WithLabelValues("critical").Set(float64(snap.Summary.Critical))

	sv := func(name, help string) *prometheus.GaugeVec { return g.vec(name, help, streamLabels...) }
	messages := sv("ackprobe_stream_total_messages", "Messages in the stream (state.messages)")
	bytes := sv("ackprobe_stream_total_bytes", "Bytes in the stream (state.bytes)")
	firstSeq := sv("ackprobe_stream_first_seq", "First sequence in the stream (state.first_seq)")
	lastSeq := sv("ackprobe_stream_last_seq", "Last sequence in the stream (state.last_seq)")
	consumerCount := sv("ackprobe_stream_consumer_count", "Consumers of the stream (state.consumer_count)")

	cv := func(name, help string, extra ...string) *prometheus.GaugeVec {
		return g.vec(name, help, append(append([]string{}, consumerLabels...), extra...)...)
	}
	numPending := cv("ackprobe_consumer_num_pending", "Messages not yet delivered (num_pending)")
	numAckPending := cv("ackprobe_consumer_num_ack_pending", "Messages delivered and not yet acked (num_ack_pending)")
	maxAckPending := cv("ackprobe_consumer_max_ack_pending", "Configured max_ack_pending; -1 or 0 for none")
	numRedelivered := cv("ackprobe_consumer_num_redelivered", "Messages redelivered and not yet acked (num_redelivered)")
	numWaiting := cv("ackprobe_consumer_num_waiting", "Pull requests waiting (num_waiting)")
	deliveredStream := cv("ackprobe_consumer_delivered_stream_seq", "Stream sequence of the last delivery (delivered.stream_seq)")
	deliveredConsumer := cv("ackprobe_consumer_delivered_consumer_seq", "Consumer sequence of the last delivery (delivered.consumer_seq)")
	floorStream := cv("ackprobe_consumer_ack_floor_stream_seq", "Stream sequence of the ack floor (ack_floor.stream_seq)")
	floorConsumer := cv("ackprobe_consumer_ack_floor_consumer_seq", "Consumer sequence of the ack floor (ack_floor.consumer_seq)")
	lastDelivery := cv("ackprobe_consumer_last_delivery_age_seconds", "Seconds since delivered.last_active, at the server's report time")
	floorAge := cv("ackprobe_consumer_ack_floor_age_seconds", "Seconds since ack_floor.last_active (acks, but also terminations and removals)")
	paused := cv("ackprobe_consumer_paused", "1 when the consumer is paused")
	health := cv("ackprobe_consumer_health", "1 for the consumer's health status (ok, warn, critical), 0 for the others", "status")
	firing := cv("ackprobe_rule_firing", "1 for each health rule that fired, with its severity", "rule", "severity")
	var (
		deliveredRate, ackedRate, ackedMaxRate, redeliveryRate *prometheus.GaugeVec
		naks, terminated, maxDeliveries, removed               *prometheus.GaugeVec
		ackTime                                                *prometheus.GaugeVec
	)
	if hasDeltas(snap) {
		deliveredRate = cv("ackprobe_consumer_delivered_per_second", "Deliveries per second in the --watch interval")
		ackedRate = cv("ackprobe_consumer_acked_per_second", "Acks per second proven in the --watch interval")
		ackedMaxRate = cv("ackprobe_consumer_acked_max_per_second", "Acks per second at most in the --watch interval")
		redeliveryRate = cv("ackprobe_consumer_redeliveries_per_second", "Redeliveries per second in the --watch interval")
		naks = cv("ackprobe_consumer_naks", "MSG_NAKED advisories in the --watch interval")
		terminated = cv("ackprobe_consumer_terminated", "Client +TERM advisories in the --watch interval")
		maxDeliveries = cv("ackprobe_consumer_max_deliveries", "MAX_DELIVERIES advisories in the --watch interval")
		removed = cv("ackprobe_consumer_removed_while_pending", "Ack-pending messages that left the stream in the --watch interval (MSG_TERMINATED advisories)")
		ackTime = cv("ackprobe_consumer_ack_time_seconds", "Sampled delivery to ack time in the --watch interval (ack metric events)", "quantile")
	}

	for i := range snap.Streams {
		st := &snap.Streams[i]
		sl := []string{server, cluster, st.Name}
		messages.WithLabelValues(sl...).Set(float64(st.Messages))
		bytes.WithLabelValues(sl...).Set(float64(st.Bytes))
		firstSeq.WithLabelValues(sl...).Set(float64(st.FirstSeq))
		lastSeq.WithLabelValues(sl...).Set(float64(st.LastSeq))
		consumerCount.WithLabelValues(sl...).Set(float64(st.ConsumerCount))
		for j := range st.Consumers {
			c := &st.Consumers[j]
			l := []string{server, cluster, st.Name, c.Name}
			with := func(extra ...string) []string { return append(append([]string{}, l...), extra...) }
			numPending.WithLabelValues(l...).Set(float64(c.NumPending))
			numAckPending.WithLabelValues(l...).Set(float64(c.NumAckPending))
			maxAckPending.WithLabelValues(l...).Set(float64(c.MaxAckPending))
			numRedelivered.WithLabelValues(l...).Set(float64(c.NumRedelivered))
			numWaiting.WithLabelValues(l...).Set(float64(c.NumWaiting))
			deliveredStream.WithLabelValues(l...).Set(float64(c.Delivered.StreamSeq))
			deliveredConsumer.WithLabelValues(l...).Set(float64(c.Delivered.ConsumerSeq))
			floorStream.WithLabelValues(l...).Set(float64(c.AckFloor.StreamSeq))
			floorConsumer.WithLabelValues(l...).Set(float64(c.AckFloor.ConsumerSeq))
			if c.Delivered.Age != nil {
				lastDelivery.WithLabelValues(l...).Set(time.Duration(*c.Delivered.Age).Seconds())
			}
			if c.AckFloor.Age != nil {
				floorAge.WithLabelValues(l...).Set(time.Duration(*c.AckFloor.Age).Seconds())
			}
			paused.WithLabelValues(l...).Set(boolFloat(c.Paused))
			for _, s := range []inspect.Status{inspect.OK, inspect.Warn, inspect.Critical} {
				health.WithLabelValues(with(s.String())...).Set(boolFloat(c.Health.Status == s))
			}
			for _, r := range c.Health.Reasons {
				firing.WithLabelValues(with(r.Rule, r.Status.String())...).Set(1)
			}
			d := c.Delta
			if d == nil || d.Reset || deliveredRate == nil {
				continue
			}
			deliveredRate.WithLabelValues(l...).Set(d.DeliveredPerSec)
			ackedRate.WithLabelValues(l...).Set(d.AckedPerSec)
			ackedMaxRate.WithLabelValues(l...).Set(d.AckedMaxPerSec)
			redeliveryRate.WithLabelValues(l...).Set(d.RedeliveriesPerSec)
			if ev := d.Events; ev != nil {
				naks.WithLabelValues(l...).Set(float64(ev.Naks))
				terminated.WithLabelValues(l...).Set(float64(ev.Terminated))
				maxDeliveries.WithLabelValues(l...).Set(float64(ev.MaxDeliveries))
				removed.WithLabelValues(l...).Set(float64(ev.Removed))
			}
			if a := d.AckTimes; a != nil {
				ackTime.WithLabelValues(with("0.5")...).Set(time.Duration(a.P50).Seconds())
				ackTime.WithLabelValues(with("0.99")...).Set(time.Duration(a.P99).Seconds())
				ackTime.WithLabelValues(with("1")...).Set(time.Duration(a.Max).Seconds())
			}
		}
	}
	return writeRegistry(w, reg)
}

// InspectPrometheusDown writes the exposition of a look that could not
// run: ackprobe_inspect_up 0, so that a textfile collector's file says so.
func InspectPrometheusDown(w io.Writer) error {
	reg := prometheus.NewRegistry()
	g := gauges{reg: reg}
	g.plain("ackprobe_inspect_up", "1 when inspect could look at the account").Set(0)
	return writeRegistry(w, reg)
}

func writeRegistry(w io.Writer, reg *prometheus.Registry) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// gauges registers gauges on one registry.
type gauges struct{ reg *prometheus.Registry }

func (g gauges) plain(name, help string) prometheus.Gauge {
	v := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	g.reg.MustRegister(v)
	return v
}

func (g gauges) vec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	g.reg.MustRegister(v)
	return v
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
