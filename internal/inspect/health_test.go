package inspect

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jsm.go"
	"github.com/nats-io/nats.go/jetstream"
)

var now = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// idle is a healthy consumer with nothing outstanding.
func idle() *jetstream.ConsumerInfo {
	created := now.Add(-time.Hour)
	return &jetstream.ConsumerInfo{
		Stream: "S", Name: "C", Created: created, TimeStamp: now,
		Config: jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000},
	}
}

// only turns every rule off but the one under test.
func only(warn, crit Limits) Thresholds { return Thresholds{Warn: warn, Critical: crit} }

func ago(d time.Duration) *time.Time { t := now.Add(-d); return &t }

// TestRuleBoundaries checks every threshold one below, exactly at and one
// over its warn and critical levels: a rule fires at its threshold, as
// `nats server check consumer` does.
func TestRuleBoundaries(t *testing.T) {
	type tc struct {
		name string
		set  func(ci *jetstream.ConsumerInfo, v int)
		th   Thresholds
		rule string
		warn int
		crit int
	}
	cases := []tc{
		{"outstanding ack", func(ci *jetstream.ConsumerInfo, v int) { ci.NumAckPending = v },
			only(Limits{OutstandingAck: 10}, Limits{OutstandingAck: 20}), "outstanding-ack", 10, 20},
		{"ack pending share", func(ci *jetstream.ConsumerInfo, v int) { ci.NumAckPending = v },
			only(Limits{AckPendingShare: 80}, Limits{AckPendingShare: 100}), "ack-pending", 800, 1000},
		{"redelivery", func(ci *jetstream.ConsumerInfo, v int) { ci.NumRedelivered = v },
			only(Limits{Redelivery: 1}, Limits{Redelivery: 5}), "redelivery", 1, 5},
		{"waiting", func(ci *jetstream.ConsumerInfo, v int) { ci.NumWaiting = v },
			only(Limits{Waiting: 3}, Limits{Waiting: 7}), "waiting", 3, 7},
		{"unprocessed", func(ci *jetstream.ConsumerInfo, v int) { ci.NumPending = uint64(v) },
			only(Limits{Unprocessed: 100}, Limits{Unprocessed: 1000}), "unprocessed", 100, 1000},
		{"last ack (seconds)", func(ci *jetstream.ConsumerInfo, v int) {
			ci.NumAckPending = 1
			ci.AckFloor.Last = ago(time.Duration(v) * time.Second)
		}, only(Limits{LastAck: time.Minute}, Limits{LastAck: 5 * time.Minute}), "last-ack", 60, 300},
		{"last delivery (seconds)", func(ci *jetstream.ConsumerInfo, v int) {
			ci.NumPending = 1
			ci.Delivered.Last = ago(time.Duration(v) * time.Second)
		}, only(Limits{LastDelivery: time.Minute}, Limits{LastDelivery: 5 * time.Minute}), "last-delivery", 60, 300},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, step := range []struct {
				v    int
				want Status
			}{
				{c.warn - 1, OK},
				{c.warn, Warn},
				{c.warn + 1, Warn},
				{c.crit - 1, Warn},
				{c.crit, Critical},
				{c.crit + 1, Critical},
			} {
				ci := idle()
				c.set(ci, step.v)
				h := Check(ci, now, c.th)
				if h.Status != step.want {
					t.Errorf("value %d: status %s, want %s (%+v)", step.v, h.Status, step.want, h.Reasons)
				}
				if step.want == OK {
					if len(h.Reasons) != 0 {
						t.Errorf("value %d: reasons %+v", step.v, h.Reasons)
					}
					continue
				}
				if len(h.Reasons) != 1 || h.Reasons[0].Rule != c.rule || h.Reasons[0].Status != step.want {
					t.Errorf("value %d: reasons %+v, want one %s %s", step.v, h.Reasons, c.rule, step.want)
				}
			}
		})
	}
}

func TestZeroThresholdIsOff(t *testing.T) {
	ci := idle()
	ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.NumPending = 1000, 1000, 1000, 1000
	ci.AckFloor.Last, ci.Delivered.Last = ago(1000*time.Hour), ago(1000*time.Hour)
	if h := Check(ci, now, Thresholds{}); h.Status != OK || len(h.Reasons) != 0 || h.Reasons == nil {
		t.Errorf("no thresholds: %+v", h)
	}
}

// TestStaleness checks that an idle consumer is not stuck: the last-ack
// and last-delivery rules fire only while there is work outstanding.
func TestStaleness(t *testing.T) {
	th := only(Limits{}, Limits{LastAck: time.Minute, LastDelivery: time.Minute})
	ci := idle()
	ci.AckFloor.Last, ci.Delivered.Last = ago(time.Hour), ago(time.Hour)
	if h := Check(ci, now, th); h.Status != OK {
		t.Errorf("idle consumer: %+v", h)
	}

	// Never acked, delivered an hour ago: measured from the delivery.
	ci = idle()
	ci.NumAckPending = 2
	ci.Delivered.Last = ago(time.Hour)
	h := Check(ci, now, th)
	if h.Status != Critical || h.Reasons[0].Message != "no ack in the 1h since the last delivery while 2 messages are ack pending (critical at 1m)" || h.Reasons[0].Figure != 3600 {
		t.Errorf("never acked: %+v", h)
	}
	// Created an hour ago, delivered 1.5s ago: nothing was due for long.
	ci.Delivered.Last = ago(1500 * time.Millisecond)
	if h := Check(ci, now, th); h.Status != OK {
		t.Errorf("delivered 1.5s ago: %+v", h)
	}
	// An ack after the last delivery: counted from the ack.
	ci.Delivered.Last, ci.AckFloor.Last = ago(2*time.Hour), ago(90*time.Second)
	if h := Check(ci, now, th); h.Status != Critical || !strings.HasPrefix(h.Reasons[0].Message, "no ack for 1m30s while") {
		t.Errorf("acked after the last delivery: %+v", h)
	}
	// No times at all (a new leader): from the leader's election.
	ci.Delivered.Last, ci.AckFloor.Last = nil, nil
	ci.Cluster = &jetstream.ClusterInfo{Leader: "n1", LeaderSince: ago(30 * time.Second)}
	if h := Check(ci, now, th); h.Status != OK {
		t.Errorf("new leader 30s ago: %+v", h)
	}
	ci.Cluster.LeaderSince = ago(2 * time.Minute)
	if h := Check(ci, now, th); h.Status != Critical || !strings.Contains(h.Reasons[0].Message, "no ack seen by the consumer leader in the 2m since it took over") {
		t.Errorf("new leader 2m ago: %+v", h)
	}
	// No times and no cluster: nothing tells, nothing fires.
	ci.Cluster = nil
	if h := Check(ci, now, th); h.Status != OK {
		t.Errorf("no times: %+v", h)
	}
}

func TestAckPendingShareNeedsALimit(t *testing.T) {
	th := only(Limits{}, Limits{AckPendingShare: 50})
	for _, max := range []int{-1, 0} {
		ci := idle()
		ci.Config.MaxAckPending = max
		ci.NumAckPending = 10_000
		if h := Check(ci, now, th); h.Status != OK {
			t.Errorf("max_ack_pending %d: %+v", max, h)
		}
	}
	ci := idle()
	ci.NumAckPending = 500
	h := Check(ci, now, th)
	if h.Status != Critical || h.Reasons[0].Message != "ack pending 500 of max 1000 (50%); delivery stops at the maximum (critical at 50%)" {
		t.Errorf("at 50%%: %+v", h)
	}
}

func TestPausedAndReplicas(t *testing.T) {
	ci := idle()
	ci.Paused, ci.PauseRemaining = true, 4*time.Minute
	h := Check(ci, now, Thresholds{})
	if h.Status != Warn || h.Reasons[0].Rule != "paused" || h.Reasons[0].Message != "paused for another 4m" {
		t.Errorf("paused: %+v", h)
	}

	ci = idle()
	ci.Cluster = &jetstream.ClusterInfo{Leader: "n1", Replicas: []*jetstream.PeerInfo{
		{Name: "n2", Current: true, Active: time.Second},
		{Name: "n3", Current: false, Lag: 12, Active: 2 * time.Second},
	}}
	h = Check(ci, now, Thresholds{})
	if h.Status != Warn || len(h.Reasons) != 1 || h.Reasons[0].Message != "replica n3 lagging: 12 operations behind, seen 2s ago" {
		t.Errorf("lagging replica: %+v", h)
	}
	ci.Cluster.Replicas[1].Offline = true
	if h := Check(ci, now, Thresholds{}); h.Status != Warn || !strings.Contains(h.Reasons[0].Message, "n3 offline") {
		t.Errorf("offline replica: %+v", h)
	}
	ci.Cluster.Leader = ""
	if h := Check(ci, now, Thresholds{}); h.Status != Critical || !strings.Contains(h.Reasons[0].Message, "no leader") {
		t.Errorf("no leader: %+v", h)
	}
}

func TestPinned(t *testing.T) {
	th := Thresholds{Pinned: true}
	ci := idle()
	if h := Check(ci, now, th); h.Status != Critical || h.Reasons[0].Message != "not a pinned-client consumer" {
		t.Errorf("not pinned policy: %+v", h)
	}
	ci.Config.PriorityPolicy = jetstream.PriorityPolicyPinned
	ci.Config.PriorityGroups = []string{"A"}
	ci.PriorityGroups = []jetstream.PriorityGroupState{{Group: "A"}}
	if h := Check(ci, now, th); h.Status != Critical || h.Reasons[0].Message != "0 of 1 priority groups have a pinned client" {
		t.Errorf("unpinned group: %+v", h)
	}
	ci.PriorityGroups[0].PinnedClientID = "abc"
	if h := Check(ci, now, th); h.Status != OK {
		t.Errorf("pinned: %+v", h)
	}
}

// TestMetadataOverrides checks that io.nats.monitor.*-critical metadata
// replaces the critical thresholds, as `nats server check consumer` reads it.
func TestMetadataOverrides(t *testing.T) {
	base := Thresholds{Critical: Limits{Redelivery: 100, LastAck: time.Hour}}
	cases := []struct {
		name   string
		meta   map[string]string
		set    func(ci *jetstream.ConsumerInfo)
		want   Status
		reason string
	}{
		{"lower redelivery", map[string]string{MetaRedeliveryCritical: "3"},
			func(ci *jetstream.ConsumerInfo) { ci.NumRedelivered = 3 }, Critical, "redelivery"},
		{"below the override", map[string]string{MetaRedeliveryCritical: "3"},
			func(ci *jetstream.ConsumerInfo) { ci.NumRedelivered = 2 }, OK, ""},
		{"zero turns it off", map[string]string{MetaRedeliveryCritical: "0"},
			func(ci *jetstream.ConsumerInfo) { ci.NumRedelivered = 1000 }, OK, ""},
		{"last ack in days", map[string]string{MetaLastAckCritical: "1d"},
			func(ci *jetstream.ConsumerInfo) { ci.NumAckPending = 1; ci.AckFloor.Last = ago(2 * time.Hour) }, OK, ""},
		{"last ack short", map[string]string{MetaLastAckCritical: "30s"},
			func(ci *jetstream.ConsumerInfo) { ci.NumAckPending = 1; ci.AckFloor.Last = ago(30 * time.Second) }, Critical, "last-ack"},
		{"outstanding ack", map[string]string{MetaOutstandingAckCritical: "5"},
			func(ci *jetstream.ConsumerInfo) { ci.NumAckPending = 5 }, Critical, "outstanding-ack"},
		{"waiting", map[string]string{MetaWaitingCritical: "2"},
			func(ci *jetstream.ConsumerInfo) { ci.NumWaiting = 2 }, Critical, "waiting"},
		{"unprocessed", map[string]string{MetaUnprocessedCritical: "10"},
			func(ci *jetstream.ConsumerInfo) { ci.NumPending = 10 }, Critical, "unprocessed"},
		{"last delivery", map[string]string{MetaLastDeliveryCritical: "1m"},
			func(ci *jetstream.ConsumerInfo) { ci.NumPending = 1; ci.Delivered.Last = ago(time.Minute) }, Critical, "last-delivery"},
		{"pinned", map[string]string{MetaPinned: "true"}, func(*jetstream.ConsumerInfo) {}, Critical, "pinned"},
		{"ack wait expired", map[string]string{MetaAckWaitExpiredCritical: "2"}, func(ci *jetstream.ConsumerInfo) {
			ci.NumAckPending = 2
			ci.Config.AckWait = time.Second
			ci.Delivered.Last = ago(2 * time.Second)
		}, Critical, "ack-wait-expired"},
		{"max deliver reached", map[string]string{MetaMaxDeliverReachedCritical: "1"}, func(ci *jetstream.ConsumerInfo) {
			ci.Config.MaxDeliver = 1
			ci.Delivered = jetstream.SequenceInfo{Consumer: 3, Stream: 3}
		}, Critical, "max-deliver-reached"},
		{"unreadable rate", map[string]string{MetaRedeliveryStormCritical: "fast"},
			func(ci *jetstream.ConsumerInfo) { ci.NumRedelivered = 3 }, Warn, "metadata"},
		{"unreadable", map[string]string{MetaRedeliveryCritical: "lots"},
			func(ci *jetstream.ConsumerInfo) { ci.NumRedelivered = 3 }, Warn, "metadata"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ci := idle()
			ci.Config.Metadata = c.meta
			c.set(ci)
			h := Check(ci, now, base)
			if h.Status != c.want {
				t.Fatalf("status %s, want %s: %+v", h.Status, c.want, h)
			}
			if c.reason != "" && (len(h.Reasons) == 0 || h.Reasons[0].Rule != c.reason) {
				t.Errorf("reasons %+v, want %s", h.Reasons, c.reason)
			}
			if c.reason != "metadata" && len(h.Overrides) != 1 {
				t.Errorf("overrides %v", h.Overrides)
			}
		})
	}
}

func TestReasonsWorstFirst(t *testing.T) {
	ci := idle()
	ci.NumRedelivered = 1
	ci.NumWaiting = 9
	h := Check(ci, now, only(Limits{Redelivery: 1}, Limits{Waiting: 9}))
	if h.Status != Critical || len(h.Reasons) != 2 || h.Reasons[0].Rule != "waiting" || h.Reasons[1].Rule != "redelivery" {
		t.Errorf("%+v", h)
	}
}

func TestDefaultThresholdsAreNeverCritical(t *testing.T) {
	ci := idle()
	ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.NumPending = 1000, 1000, 1000, 1000
	ci.AckFloor.Last, ci.Delivered.Last = ago(1000*time.Hour), ago(1000*time.Hour)
	h := Check(ci, now, DefaultThresholds())
	if h.Status != Warn {
		t.Errorf("%+v", h)
	}
	rules := map[string]bool{}
	for _, r := range h.Reasons {
		rules[r.Rule] = true
	}
	for _, r := range []string{"ack-pending", "redelivery", "last-ack", "last-delivery"} {
		if !rules[r] {
			t.Errorf("default thresholds do not warn on %s: %+v", r, h.Reasons)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []struct {
		th   Thresholds
		want string
	}{
		{Thresholds{Warn: Limits{Redelivery: -1}}, "--redelivery-warn must not be negative, got -1"},
		{Thresholds{Critical: Limits{OutstandingAck: -3}}, "--outstanding-ack-critical must not be negative, got -3"},
		{Thresholds{Critical: Limits{AckPendingShare: 101}}, "--ack-pending-share-critical is a percentage from 0 to 100, got 101"},
		{Thresholds{Warn: Limits{AckPendingShare: -5}}, "--ack-pending-share-warn must not be negative, got -5"},
		{Thresholds{Critical: Limits{LastAck: -time.Second}}, "--last-ack-critical must not be negative, got -1s"},
		{Thresholds{Warn: Limits{RedeliveryStorm: math.NaN()}}, "--redelivery-storm-warn must be a number, got NaN"},
		{Thresholds{Critical: Limits{RedeliveryStorm: math.Inf(1)}}, "--redelivery-storm-critical must be a number, got +Inf"},
		{Thresholds{Warn: Limits{Terminated: -1, Redelivery: -2}}, "--redelivery-warn must not be negative, got -2"},
	}
	for _, c := range bad {
		if err := c.th.Validate(); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %q", c.th, err, c.want)
		}
	}
	if err := DefaultThresholds().Validate(); err != nil {
		t.Error(err)
	}
}

// TestLimitFields: Validate checks every threshold of a level, each once;
// a new field of Limits must be added to fields().
func TestLimitFields(t *testing.T) {
	var l Limits
	listed := map[uintptr]string{}
	for _, f := range l.fields() {
		var v reflect.Value
		switch {
		case f.count != nil:
			v = reflect.ValueOf(f.count)
		case f.time != nil:
			v = reflect.ValueOf(f.time)
		case f.number != nil:
			v = reflect.ValueOf(f.number)
		default:
			t.Fatalf("field %q has no value", f.name)
		}
		if other, dup := listed[v.Pointer()]; dup {
			t.Errorf("fields %q and %q are the same threshold", other, f.name)
		}
		listed[v.Pointer()] = f.name
	}
	lv := reflect.ValueOf(&l).Elem()
	for i := range lv.NumField() {
		if _, ok := listed[lv.Field(i).Addr().Pointer()]; !ok {
			t.Errorf("Limits.%s is not in fields(): Validate does not check it", lv.Type().Field(i).Name)
		}
	}
}

// TestParseDuration pins how metadata durations are read: with jsm.go's
// parser, as the nats CLI reads the same keys.
func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{
		"0": 0, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "2d": 48 * time.Hour,
		"1w": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, " 5m ": 5 * time.Minute, "1.5d": 36 * time.Hour,
		// As the nats CLI reads them: months, and text after the last unit ignored.
		"1M": 30 * 24 * time.Hour, "1d soon": 24 * time.Hour,
	}
	for in, want := range cases {
		got, err := jsm.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "5x", "d"} {
		if _, err := jsm.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestShort(t *testing.T) {
	cases := map[time.Duration]string{
		0: "0s", 850 * time.Millisecond: "850ms", 1500 * time.Millisecond: "1.5s", 12 * time.Second: "12s",
		3*time.Minute + 4*time.Second: "3m4s", 3*time.Minute + 10*time.Second: "3m10s", 5 * time.Minute: "5m",
		2*time.Hour + 5*time.Minute: "2h5m", 76 * time.Hour: "3d4h", 2 * time.Hour: "2h", 48 * time.Hour: "2d", 59*time.Minute + 59*time.Second + 600*time.Millisecond: "1h",
	}
	for in, want := range cases {
		if got := Short(in); got != want {
			t.Errorf("Short(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestWatchRuleOverrides: the --watch rules read their critical levels
// from metadata too, rates as numbers.
func TestWatchRuleOverrides(t *testing.T) {
	ci := idle()
	ci.Config.AckWait = time.Second
	ci.Config.Metadata = map[string]string{MetaRedeliveryStormCritical: "2.5", MetaNakStormCritical: "4", MetaTerminatedCritical: "1", MetaLateAckCritical: "1"}
	d := &Delta{Interval: 2000000000, Delivered: 10, Redeliveries: 5, RedeliveriesPerSec: 2.5,
		Events: &Events{Naks: 4, Terminated: 1}, AckTimes: &AckTimes{Count: 3, Late: 1}}
	h := Judge(ci, now, Thresholds{}, &Observation{Delta: d})
	got := map[string]Status{}
	for _, r := range h.Reasons {
		got[r.Rule] = r.Status
	}
	for _, rule := range []string{"redelivery-storm", "nak-storm", "terminated", "late-ack"} {
		if got[rule] != Critical {
			t.Errorf("%s: %v (%+v)", rule, got[rule], h.Reasons)
		}
	}
	if len(h.Overrides) != 4 {
		t.Errorf("overrides %v", h.Overrides)
	}
}

func TestSelect(t *testing.T) {
	mk := func(name string, pending uint64, st Status) Consumer {
		return Consumer{Name: name, NumPending: pending, Health: Health{Status: st}}
	}
	snap := &Snapshot{Streams: []Stream{
		{Name: "A", Consumers: []Consumer{mk("a1", 5, OK), mk("a2", 50, Warn)}},
		{Name: "B", Consumers: []Consumer{mk("b1", 500, Critical), mk("b2", 1, OK)}},
		{Name: "C", Consumers: []Consumer{}},
	}}
	snap.summarize()
	view := snap.Select(SortPending, nil)
	var order []string
	for _, st := range view.Streams {
		for _, c := range st.Consumers {
			order = append(order, c.Name)
		}
		order = append(order, "|")
	}
	if got := strings.Join(order, " "); got != "b1 b2 | a2 a1 | |" {
		t.Errorf("by pending: %s", got)
	}
	warn := Warn
	view = snap.Select(SortName, &warn)
	order = nil
	for _, st := range view.Streams {
		for _, c := range st.Consumers {
			order = append(order, st.Name+"/"+c.Name)
		}
	}
	if got := strings.Join(order, " "); got != "A/a2 B/b1" || view.Selection.Hidden != 2 || view.Selection.Shown != 2 || view.Summary.Consumers != 4 {
		t.Errorf("only warn: %s %+v", got, view.Selection)
	}
	if len(snap.Streams) != 3 || snap.Streams[0].Consumers[0].Name != "a1" || len(snap.Streams[1].Consumers) != 2 {
		t.Errorf("Select changed the snapshot: %+v", snap.Streams)
	}
	if _, err := ParseSort("size"); err == nil {
		t.Error("ParseSort accepted size")
	}
	if _, err := ParseOnly("ok"); err == nil {
		t.Error("ParseOnly accepted ok")
	}
}

// TestSelectCounts: whatever --sort and --only keep, every stream says how
// many of its consumers it shows and how many it has, and those figures
// add up to the selection's and the summary's.
func TestSelectCounts(t *testing.T) {
	mk := func(name string, st Status) Consumer { return Consumer{Name: name, Health: Health{Status: st}} }
	snap := &Snapshot{Streams: []Stream{
		{Name: "A", Consumers: []Consumer{mk("a1", OK), mk("a2", Warn), mk("a3", OK)}},
		{Name: "B", Consumers: []Consumer{mk("b1", Critical)}},
		{Name: "C", Consumers: []Consumer{mk("c1", OK)}},
		{Name: "D", Consumers: []Consumer{}},
	}}
	snap.summarize()
	warn, critical := Warn, Critical
	for _, only := range []*Status{nil, &warn, &critical} {
		for _, sortBy := range SortOrders {
			for _, scope := range []Scope{{}, {Stream: "A"}} {
				s := *snap
				s.Scope = scope
				if scope.Stream != "" {
					s.Streams = snap.Streams[:1]
					s.summarize()
				}
				view := s.Select(sortBy, only)
				shown, hidden := 0, 0
				total := map[string]int{}
				for _, st := range view.Streams {
					shown += len(st.Consumers)
					hidden += st.HiddenConsumers
					total[st.Name] = len(st.Consumers) + st.HiddenConsumers
				}
				for _, st := range s.Streams {
					if n, kept := total[st.Name]; kept && n != len(st.Consumers) {
						t.Errorf("only %v, sort %s, scope %+v: stream %s counts %d consumers, has %d", only, sortBy, scope, st.Name, n, len(st.Consumers))
					} else if !kept {
						hidden += len(st.Consumers)
					}
				}
				sel := view.Selection
				if shown != sel.Shown || hidden != sel.Hidden || shown+hidden != view.Summary.Consumers || view.Summary != s.Summary {
					t.Errorf("only %v, sort %s, scope %+v: rows show %d and hide %d; selection %+v, summary %+v", only, sortBy, scope, shown, hidden, sel, view.Summary)
				}
				if scope.Stream != "" && (len(view.Streams) != 1 || view.Streams[0].Name != "A") {
					t.Errorf("only %v: the stream asked for is not in the view: %+v", only, view.Streams)
				}
			}
		}
	}
	view := snap.Select(SortName, &warn)
	if a := view.Stream("A"); a == nil || len(a.Consumers) != 1 || a.HiddenConsumers != 2 {
		t.Errorf("A under --only warn: %+v", a)
	}
	if view.Stream("C") != nil || view.Stream("D") != nil {
		t.Errorf("streams with nothing at warn are listed: %+v", view.Streams)
	}
	if snap.Streams[0].HiddenConsumers != 0 {
		t.Error("Select changed the snapshot")
	}
}
