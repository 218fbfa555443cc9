package probe

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSamplePercent(t *testing.T) {
	cases := []struct {
		sample string
		count  int
		want   string
	}{
		{"auto", 1, "100%"},
		{"auto", 1000, "100%"},
		{"auto", 1001, "98%"},
		{"auto", 4000, "24%"},
		{"auto", 50_000, "1%"},
		{"auto", 1_000_000, "1%"},
		{"50", 10, "50%"},
		{"7%", 10, "7%"},
		{"off", 10, ""},
		{"0", 10, ""},
	}
	for _, c := range cases {
		if got := samplePercent(c.sample, c.count); got != c.want {
			t.Errorf("samplePercent(%q, %d) = %q, want %q", c.sample, c.count, got, c.want)
		}
	}
	for _, bad := range []string{"101", "-1", "half", "1.5%"} {
		if _, err := ParseSample(bad); err == nil {
			t.Errorf("ParseSample(%q) accepted", bad)
		}
	}
}

func TestParseAckMetric(t *testing.T) {
	event := `{"type":"io.nats.jetstream.metric.v1.consumer_ack","id":"x","timestamp":"2026-11-25T06:00:00Z","stream":"S","consumer":"C","consumer_seq":7,"stream_seq":42,"ack_time":123456,"deliveries":1}`
	got, ok := parseAckMetric([]byte(event))
	if !ok || got.StreamSeq != 42 || got.AckTime != 123456 {
		t.Errorf("parseAckMetric = %+v, %v", got, ok)
	}
	if _, ok := parseAckMetric([]byte(`{"stream_seq":0}`)); ok {
		t.Error("a zero stream sequence was accepted")
	}
}

// FuzzParseAckMetric checks the fast path against encoding/json on every
// document both accept.
func FuzzParseAckMetric(f *testing.F) {
	f.Add(`{"stream_seq":42,"ack_time":123}`)
	f.Add(`{"ack_time": 5, "stream_seq": 9}`)
	f.Add(`{"stream_seq":"1"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := parseAckMetric([]byte(doc))
		var want ackMetric
		if err := json.Unmarshal([]byte(doc), &want); err != nil || want.StreamSeq == 0 || !ok {
			return
		}
		// Keys may repeat or appear nested; compare only plain documents.
		if strings.Count(doc, `"stream_seq"`) == 1 && strings.Count(doc, `"ack_time"`) == 1 && strings.Count(doc, "{") == 1 && got != want {
			t.Errorf("parseAckMetric(%q) = %+v, encoding/json says %+v", doc, got, want)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"ORDERS", "a.b", "a b", "*", ">", "", "x/y", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName("stream", name)
		bad := strings.ContainsAny(name, " \t\r\n\f.*>/\\") || len(name) > 255
		if (err != nil) != bad {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	})
}
