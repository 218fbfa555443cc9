package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/inspect"
)

var taken = time.Date(2025, 3, 4, 3, 0, 0, 0, time.UTC)

func dur(d time.Duration) *doc.Duration { pd := doc.Duration(d); return &pd }

func at(d time.Duration) *time.Time { t := taken.Add(-d); return &t }

func share(v float64) *float64 { return &v }

func reason(rule string, s inspect.Status, msg string) inspect.Reason {
	return inspect.Reason{Rule: rule, Status: s, Message: msg}
}

func health(rs ...inspect.Reason) inspect.Health {
	h := inspect.Health{Reasons: rs}
	if h.Reasons == nil {
		h.Reasons = []inspect.Reason{}
	}
	for _, r := range rs {
		h.Status = max(h.Status, r.Status)
	}
	return h
}

// orders is a hand-built stream with one consumer in each state an
// operator cares about.
func orders() inspect.Stream {
	cfg := func(maxAck int) jetstream.ConsumerConfig {
		return jetstream.ConsumerConfig{Durable: "x", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: maxAck, MaxWaiting: 512}
	}
	return inspect.Stream{
		Name: "ORDERS", Messages: 1200, Bytes: 63_488, FirstSeq: 1, LastSeq: 1200, LastAge: dur(4 * time.Second),
		ConsumerCount: 4, Created: taken.Add(-26 * time.Hour), TimeStamp: taken,
		Config: jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage, Replicas: 3, MaxAge: 24 * time.Hour,
			Metadata: map[string]string{"team": "shop", "_nats.ver": "2.15.2"}},
		Cluster: &inspect.Cluster{Name: "east", Leader: "n1", LeaderSince: at(3 * time.Hour), Replicas: []inspect.Replica{
			{Name: "n2", Current: true, Active: doc.Duration(200 * time.Millisecond)},
			{Name: "n3", Current: false, Lag: 12, Active: doc.Duration(2 * time.Second)},
		}},
		Status: inspect.Critical,
		Consumers: []inspect.Consumer{
			{
				Stream: "ORDERS", Name: "billing", NumPending: 680, NumAckPending: 20, MaxAckPending: 1000, AckPendingShare: share(2),
				Delivered: inspect.Sequence{ConsumerSeq: 520, StreamSeq: 520, Age: dur(1500 * time.Millisecond)},
				AckFloor:  inspect.Sequence{ConsumerSeq: 500, StreamSeq: 500, Age: dur(1600 * time.Millisecond)},
				Kind:      "pull", Created: taken.Add(-2 * time.Hour), TimeStamp: taken, Config: cfg(1000), Health: health(),
			},
			{
				Stream: "ORDERS", Name: "reports", NumPending: 1200, MaxAckPending: 1000, AckPendingShare: share(0),
				Paused: true, PauseRemaining: doc.Duration(2 * time.Hour), PauseUntil: at(-2 * time.Hour),
				Kind: "pull", Created: taken.Add(-time.Hour), TimeStamp: taken, Config: cfg(1000),
				Health: health(reason("paused", inspect.Warn, "paused for another 2h")),
			},
			{
				Stream: "ORDERS", Name: "shipping", NumPending: 1150, NumAckPending: 50, MaxAckPending: 50, AckPendingShare: share(100), NumRedelivered: 50, NumWaiting: 1,
				Delivered: inspect.Sequence{ConsumerSeq: 100, StreamSeq: 50, Age: dur(7 * time.Minute)},
				Kind:      "pull", Created: taken.Add(-3 * time.Hour), TimeStamp: taken, Config: cfg(50),
				Health: inspect.Health{Status: inspect.Critical, Reasons: []inspect.Reason{
					reason("redelivery", inspect.Critical, "50 messages redelivered and not acked (critical at 10)"),
					reason("ack-pending", inspect.Warn, "ack pending 50 of max 50 (100%); delivery stops at the maximum (warn at 80%)"),
					reason("last-ack", inspect.Warn, "no ack seen by the consumer leader in 3h while 50 messages are ack pending (warn at 5m)"),
				}, Overrides: []string{"io.nats.monitor.redelivery-critical=10"}},
			},
			{
				Stream: "ORDERS", Name: "notify", NumPending: 0, NumAckPending: 3, MaxAckPending: -1,
				Delivered: inspect.Sequence{ConsumerSeq: 1203, StreamSeq: 1200, Age: dur(2 * time.Second)},
				AckFloor:  inspect.Sequence{ConsumerSeq: 1200, StreamSeq: 1197, Age: dur(2 * time.Second)},
				Kind:      "push", PushBound: true, Created: taken.Add(-time.Hour), TimeStamp: taken,
				PriorityGroups: []inspect.PriorityGroup{{Group: "A", PinnedClientID: "mX3o"}},
				Config:         jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, DeliverSubject: "notify.deliver", MaxAckPending: -1},
				Health:         health(),
			},
		},
	}
}

func overviewSnapshot() *inspect.Snapshot {
	ap := inspect.Stream{
		Name: "ACKPROBE_RAKRW3LV", Ackprobe: true, ConsumerCount: 1, Config: jetstream.StreamConfig{Name: "ACKPROBE_RAKRW3LV", Replicas: 1},
		Consumers: []inspect.Consumer{{Name: "ACKPROBE_RAKRW3LV", Stream: "ACKPROBE_RAKRW3LV", Ackprobe: true, Kind: "pull", MaxAckPending: 1000, AckPendingShare: share(0), Health: health()}},
	}
	empty := inspect.Stream{Name: "AUDIT", Messages: 40, Bytes: 1120, Config: jetstream.StreamConfig{Name: "AUDIT", Replicas: 1}, Consumers: []inspect.Consumer{}}
	snap := &inspect.Snapshot{
		Server:  doc.ServerInfo{URL: "nats://nats-1:4222", Version: "2.15.2", Cluster: "east"},
		Taken:   taken,
		Streams: []inspect.Stream{ap, empty, orders()},
		Missing: []inspect.Missing{{Name: "LEGACY", Reason: "no answer from its leader in time"}},
		Summary: inspect.Summary{Streams: 3, Consumers: 5, OK: 3, Warn: 1, Critical: 1, Status: inspect.Critical},
	}
	return snap
}

// watched is the overview at a later refresh, with deltas and the
// interval's events: billing acks everything (its acks sampled), reports
// lost 5 ack-pending messages to a purge, shipping NAKs everything and
// drops messages at MaxDeliver.
func watched() *inspect.Snapshot {
	snap := overviewSnapshot()
	o := &snap.Streams[2]
	iv := doc.Duration(2 * time.Second)
	o.Delta = &inspect.StreamDelta{Interval: iv, Messages: 30, Stored: 30, StoredPerSec: 15}
	o.Consumers[0].Config.SampleFrequency = "100%"
	o.Consumers[0].Delta = &inspect.Delta{Interval: iv, Pending: 10, AckPending: -2, Delivered: 20, Outflow: 22, Acked: 22, AckedMax: 22, AckFloor: 22, DeliveredPerSec: 10, AckedPerSec: 11, AckedMaxPerSec: 11,
		Events: &inspect.Events{}, AckTimes: &inspect.AckTimes{Count: 22, P50: doc.Duration(840 * time.Microsecond), P99: doc.Duration(12 * time.Millisecond), Max: doc.Duration(15 * time.Millisecond)}}
	o.Consumers[0].LastAck = &inspect.LastAck{At: at(1600 * time.Millisecond), Age: dur(1600 * time.Millisecond), Proven: true}
	o.Consumers[1].Delta = &inspect.Delta{Interval: iv, Pending: 30, AckPending: -5, Outflow: 5, LeftUnknown: 5, AckedMax: 5, AckedMaxPerSec: 2.5, Events: &inspect.Events{}}
	o.Consumers[2].Delta = &inspect.Delta{Interval: iv, Pending: 30, Delivered: 90, Redeliveries: 60, DeliveredPerSec: 45, RedeliveriesPerSec: 30,
		Events: &inspect.Events{Naks: 85, MaxDeliveries: 5}, NaksPerSec: 42.5}
	o.Consumers[2].Health.Reasons = append(o.Consumers[2].Health.Reasons,
		reason("redelivery-storm", inspect.Warn, "30.0 redeliveries/s in the last 2s (60 of 90 deliveries; warn at 10/s)"),
		reason("nak-storm", inspect.Warn, "85 NAKs in the last 2s (42.5/s; MSG_NAKED advisories; warn at 10)"))
	snap.Top = []inspect.Top{
		{Kind: "redeliveries", Stream: "ORDERS", Consumer: "shipping", Count: 60, PerSec: 30},
		{Kind: "naks", Stream: "ORDERS", Consumer: "shipping", Count: 85, PerSec: 42.5},
		{Kind: "max_deliveries", Stream: "ORDERS", Consumer: "shipping", Count: 5, PerSec: 2.5},
	}
	return snap
}

// summed sets a hand-built snapshot's summary as inspect would.
func summed(snap *inspect.Snapshot) *inspect.Snapshot {
	sum := inspect.Summary{Streams: len(snap.Streams)}
	for _, st := range snap.Streams {
		for _, c := range st.Consumers {
			sum.Consumers++
			switch c.Health.Status {
			case inspect.Critical:
				sum.Critical++
			case inspect.Warn:
				sum.Warn++
			default:
				sum.OK++
			}
			sum.Status = max(sum.Status, c.Health.Status)
		}
	}
	snap.Summary = sum
	return snap
}

func TestInspectGolden(t *testing.T) {
	streamSnap := &inspect.Snapshot{
		Server: doc.ServerInfo{URL: "nats://nats-1:4222", Version: "2.15.2", Cluster: "east"}, Taken: taken,
		Scope: inspect.Scope{Stream: "ORDERS"}, Streams: []inspect.Stream{orders()},
	}
	o := orders()
	o.Consumers = o.Consumers[2:3]
	consumerSnap := &inspect.Snapshot{
		Server: doc.ServerInfo{URL: "nats://nats-1:4222", Version: "2.15.2", Cluster: "east"}, Taken: taken,
		Scope: inspect.Scope{Stream: "ORDERS", Consumer: "shipping"}, Streams: []inspect.Stream{o},
	}
	watchedConsumer := watched()
	wc := watchedConsumer.Streams[2]
	wc.Consumers = wc.Consumers[0:1]
	wc.Consumers[0].Cluster = wc.Cluster
	watchedConsumer.Streams = []inspect.Stream{wc}
	watchedConsumer.Scope = inspect.Scope{Stream: "ORDERS", Consumer: "billing"}
	watchedStream := watched()
	watchedStream.Streams = watchedStream.Streams[2:]
	watchedStream.Scope = inspect.Scope{Stream: "ORDERS"}
	emptySnap := &inspect.Snapshot{Server: doc.ServerInfo{URL: "nats://127.0.0.1:4222", Version: "2.15.2", Embedded: true}, Taken: taken, Streams: []inspect.Stream{}}
	// --only warn: ORDERS shows 2 of its 4 consumers, ACKPROBE_RAKRW3LV and
	// AUDIT none.
	warn := inspect.Warn
	onlySnap := overviewSnapshot().Select(inspect.SortHealth, &warn)

	cases := []struct {
		name string
		snap *inspect.Snapshot
		o    InspectOptions
	}{
		{"inspect_overview", overviewSnapshot(), InspectOptions{}},
		{"inspect_watch", watched(), InspectOptions{Watch: 2 * time.Second, Refresh: 3}},
		{"inspect_stream", summed(streamSnap), InspectOptions{}},
		{"inspect_stream_watch", summed(watchedStream), InspectOptions{Watch: 2 * time.Second, Refresh: 5}},
		{"inspect_consumer", summed(consumerSnap), InspectOptions{}},
		{"inspect_consumer_watch", summed(watchedConsumer), InspectOptions{Watch: 2 * time.Second, Refresh: 2}},
		{"inspect_only", onlySnap, InspectOptions{}},
		{"inspect_empty", emptySnap, InspectOptions{}},
	}
	var sized []struct {
		name string
		snap *inspect.Snapshot
		o    InspectOptions
	}
	for _, c := range cases[:len(cases)-1] {
		for _, w := range []int{80, 200} {
			o := c.o
			o.Width = w
			sized = append(sized, struct {
				name string
				snap *inspect.Snapshot
				o    InspectOptions
			}{fmt.Sprintf("%s_w%d", c.name, w), c.snap, o})
		}
	}
	for _, c := range sized {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Inspect(&b, c.snap, c.o); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".txt", b.String())
			// Every line fits: nothing is left to the terminal to wrap.
			for i, line := range strings.Split(b.String(), "\n") {
				if w := textWidth(line); w > c.o.Width {
					t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, w, c.o.Width, line)
				}
			}
			// And colors change nothing of the layout.
			var colored bytes.Buffer
			o := c.o
			o.Color = true
			_ = Inspect(&colored, c.snap, o)
			if stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(colored.String(), ""); stripped != b.String() {
				t.Errorf("colored output, stripped, differs from plain output at width %d", c.o.Width)
			}
		})
	}
	for _, c := range cases {
		for _, color := range []bool{false, true} {
			file := c.name + ".txt"
			if color {
				file = c.name + ".color.txt"
			}
			t.Run(file, func(t *testing.T) {
				var b bytes.Buffer
				o := c.o
				o.Color = color
				if err := Inspect(&b, c.snap, o); err != nil {
					t.Fatal(err)
				}
				out := b.String()
				if hasANSI := strings.Contains(out, "\x1b["); hasANSI != color {
					t.Errorf("ANSI escapes present = %v, want %v", hasANSI, color)
				}
				golden(t, file, out)
				if color {
					var plain bytes.Buffer
					o.Color = false
					_ = Inspect(&plain, c.snap, o)
					stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
					if stripped != plain.String() {
						t.Errorf("colored output, stripped, differs from plain output")
					}
				}
			})
		}
	}
}

// TestInspectColorsFollowStatus checks that a critical consumer's status
// and the figure that made it so are red, and a warn one's yellow.
func TestInspectColorsFollowStatus(t *testing.T) {
	var b bytes.Buffer
	if err := Inspect(&b, overviewSnapshot(), InspectOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	red, yellow := "\x1b[31;1m", "\x1b[33m"
	for _, want := range []string{red + "critical", red + "50\x1b", yellow + "warn", yellow + "50 / 50", red + "CRITICAL: 1 of 5 consumers critical"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%q", want, out)
		}
	}
}

func TestInspectJSONKeys(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, overviewSnapshot()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	streams := doc["streams"].([]any)
	st := streams[2].(map[string]any)
	for _, k := range []string{"name", "messages", "bytes", "consumers", "ackprobe", "cluster", "config", "status"} {
		if _, ok := st[k]; !ok {
			t.Errorf("missing stream key %q", k)
		}
	}
	c := st["consumers"].([]any)[2].(map[string]any)
	for _, k := range []string{"name", "num_pending", "num_ack_pending", "num_redelivered", "num_waiting",
		"max_ack_pending", "delivered", "ack_floor", "health", "paused", "config", "ackprobe"} {
		if _, ok := c[k]; !ok {
			t.Errorf("missing consumer key %q", k)
		}
	}
	h := c["health"].(map[string]any)
	if h["status"] != "critical" || len(h["reasons"].([]any)) != 3 {
		t.Errorf("health %v", h)
	}
	if c["num_pending"].(float64) != 1150 || c["num_redelivered"].(float64) != 50 {
		t.Errorf("figures %v", c)
	}
	for _, k := range []string{"ok", "elapsed", "elapsed_ms"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("missing snapshot key %q", k)
		}
	}
	if empty := streams[1].(map[string]any)["consumers"]; empty == nil {
		t.Errorf("consumers must be a list, not null")
	}
	var line bytes.Buffer
	if err := JSONLine(&line, overviewSnapshot()); err != nil {
		t.Fatal(err)
	}
	if strings.Count(line.String(), "\n") != 1 {
		t.Errorf("JSONLine wrote %d lines", strings.Count(line.String(), "\n"))
	}
}

// TestInspectEmptyStreamSequences: a stream whose messages all left shows
// where it stands, not an inverted range.
func TestInspectEmptyStreamSequences(t *testing.T) {
	s := orders()
	s.Messages, s.Bytes, s.FirstSeq, s.LastSeq = 0, 0, 5, 4
	var b bytes.Buffer
	snap := &inspect.Snapshot{Scope: inspect.Scope{Stream: "ORDERS"}, Streams: []inspect.Stream{s}}
	if err := Inspect(&b, snap, InspectOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "empty after sequence 4") || strings.Contains(out, "5–4") {
		t.Errorf("empty stream:\n%s", out)
	}
}

// TestFailureLine: the failure document of a --watch refresh is Failure's,
// on one line.
func TestFailureLine(t *testing.T) {
	partial := map[string]any{"scope": inspect.Scope{Stream: "ORDERS"}, "server": doc.ServerInfo{URL: "nats://n1:4222"}}
	var line, indented bytes.Buffer
	if err := FailureLine(&line, partial, 2, "lost the connection\nto n1"); err != nil {
		t.Fatal(err)
	}
	if err := Failure(&indented, partial, 2, "lost the connection\nto n1"); err != nil {
		t.Fatal(err)
	}
	if strings.Count(line.String(), "\n") != 1 || !strings.HasSuffix(line.String(), "}\n") {
		t.Fatalf("not one line: %q", line.String())
	}
	var a, b any
	if err := json.Unmarshal(line.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(indented.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("FailureLine %s, Failure %s", line.String(), indented.String())
	}
}
