package report

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ackprobe/ackprobe/internal/inspect"
)

// oneConsumer is the overview narrowed to ORDERS › shipping, with the
// thresholds that judged it.
func oneConsumer(i int) *inspect.Snapshot {
	snap := watched()
	st := snap.Streams[2]
	st.Consumers = st.Consumers[i : i+1]
	th := inspect.DefaultThresholds()
	th.Critical.Redelivery = 10
	st.Consumers[0].Health.Thresholds = &th
	snap.Streams = []inspect.Stream{st}
	snap.Scope = inspect.Scope{Stream: "ORDERS", Consumer: st.Consumers[0].Name}
	return summed(snap)
}

func TestInspectNagios(t *testing.T) {
	var b bytes.Buffer
	code, err := InspectNagios(&b, oneConsumer(2))
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if code != NagiosCritical || strings.Count(out, "\n") != 1 {
		t.Fatalf("code %d, output %q", code, out)
	}
	for _, s := range []string{
		"CRITICAL ORDERS_shipping Crit:50 messages redelivered and not acked (critical at 10) Warn:ack pending 50 of max 50 (100%)",
		" | ack_pending=50 pull_waiting=1 pending=1150 redelivered=50;1;10 last_delivery=420.0000s;300.0000 ",
		" delivered_rate=45 acked_rate=0 redelivery_rate=30;10 naks=85;10 terminated=0;1 max_deliveries=5;1\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("no %q in %q", s, out)
		}
	}

	b.Reset()
	code, _ = InspectNagios(&b, oneConsumer(0))
	if code != NagiosOK || !strings.HasPrefix(b.String(), "OK ORDERS_billing | ack_pending=20 pull_waiting=0 pending=680 redelivered=0;1;10 last_delivery=1.5000s;300.0000 last_ack=1.6000s;300.0000 ") ||
		!strings.Contains(b.String(), " ack_time_p50=0.0008s ack_time_p99=0.0120s") {
		t.Errorf("billing: %d %q", code, b.String())
	}
	b.Reset()
	code, _ = InspectNagios(&b, oneConsumer(1))
	if code != NagiosWarning || !strings.HasPrefix(b.String(), "WARNING ORDERS_reports Warn:paused for another 2h | ") {
		t.Errorf("reports: %d %q", code, b.String())
	}

	b.Reset()
	code, _ = InspectNagios(&b, watched())
	out = b.String()
	if code != NagiosCritical || !strings.HasPrefix(out, "CRITICAL JetStream Crit:ORDERS_shipping: 50 messages redelivered") ||
		!strings.Contains(out, "Warn:ORDERS_reports: paused for another 2h") || !strings.Contains(out, "Warn:stream LEGACY did not report") ||
		!strings.HasSuffix(out, "| streams=3 consumers=5 consumers_ok=3 consumers_warn=1 consumers_critical=1\n") {
		t.Errorf("account: %d %q", code, out)
	}

	b.Reset()
	if err := InspectNagiosUnknown(&b, inspect.Scope{Stream: "S", Consumer: "C"}, `stream "S" not found | or so`); err != nil || b.String() != "UNKNOWN S_C stream \"S\" not found / or so\n" {
		t.Errorf("unknown: %q", b.String())
	}
}

func TestInspectPrometheus(t *testing.T) {
	var b bytes.Buffer
	snap := watched()
	snap.Server.Name = "n1"
	snap.Elapsed = 0
	if err := InspectPrometheus(&b, snap); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("not Prometheus text: %v\n%s", err, b.String())
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		mf := mfs[name]
		if mf == nil {
			return 0, false
		}
	next:
		for _, m := range mf.Metric {
			got := map[string]string{}
			for _, l := range m.Label {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if mf.GetType() != dto.MetricType_GAUGE {
				t.Errorf("%s is %s", name, mf.GetType())
			}
			return m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	shipping := map[string]string{"server_name": "n1", "cluster": "east", "stream_name": "ORDERS", "consumer_name": "shipping"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range shipping {
			m[a] = b
		}
		return m
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"ackprobe_consumer_num_pending", shipping, 1150},
		{"ackprobe_consumer_num_ack_pending", shipping, 50},
		{"ackprobe_consumer_num_redelivered", shipping, 50},
		{"ackprobe_consumer_num_waiting", shipping, 1},
		{"ackprobe_consumer_delivered_stream_seq", shipping, 50},
		{"ackprobe_consumer_ack_floor_stream_seq", shipping, 0},
		{"ackprobe_consumer_health", with("status", "critical"), 1},
		{"ackprobe_consumer_health", with("status", "ok"), 0},
		{"ackprobe_rule_firing", map[string]string{"consumer_name": "shipping", "rule": "redelivery", "severity": "critical"}, 1},
		{"ackprobe_rule_firing", map[string]string{"consumer_name": "shipping", "rule": "nak-storm", "severity": "warn"}, 1},
		{"ackprobe_rule_firing", map[string]string{"consumer_name": "reports", "rule": "paused", "severity": "warn"}, 1},
		{"ackprobe_consumer_naks", shipping, 85},
		{"ackprobe_consumer_redeliveries_per_second", shipping, 30},
		{"ackprobe_consumer_ack_time_seconds", map[string]string{"consumer_name": "billing", "quantile": "0.99"}, 0.012},
		{"ackprobe_stream_total_messages", map[string]string{"stream_name": "ORDERS"}, 1200},
		{"ackprobe_inspect_consumers", map[string]string{"status": "critical"}, 1},
		{"ackprobe_inspect_up", nil, 1},
	} {
		got, ok := value(c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value("ackprobe_rule_firing", map[string]string{"consumer_name": "billing"}); ok {
		t.Error("a rule fires for billing")
	}

	b.Reset()
	if err := InspectPrometheusDown(&b); err != nil || !strings.Contains(b.String(), "ackprobe_inspect_up 0\n") {
		t.Errorf("down: %q", b.String())
	}
}
