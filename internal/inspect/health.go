package inspect

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jsm.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Status is a consumer's health: ok, warn or critical.
type Status int

// Statuses, from best to worst.
const (
	OK Status = iota
	Warn
	Critical
)

func (s Status) String() string {
	switch s {
	case Warn:
		return "warn"
	case Critical:
		return "critical"
	}
	return "ok"
}

// MarshalText renders the status as "ok", "warn" or "critical".
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses "ok", "warn" or "critical".
func (s *Status) UnmarshalText(b []byte) error {
	switch string(b) {
	case "ok":
		*s = OK
	case "warn":
		*s = Warn
	case "critical":
		*s = Critical
	default:
		return fmt.Errorf("unknown status %q", b)
	}
	return nil
}

// Health is a consumer's status and the reasons for it.
type Health struct {
	Status Status `json:"status"`
	// Reasons are the rules that fired; empty when the status is ok.
	Reasons []Reason `json:"reasons"`
	// Overrides are the io.nats.monitor.* metadata entries that replaced a
	// critical threshold for this consumer.
	Overrides []string `json:"overrides,omitempty"`
	// Thresholds are the ones that judged this consumer, metadata applied.
	Thresholds *Thresholds `json:"-"`
}

// Reason is one rule that fired.
type Reason struct {
	Rule    string `json:"rule"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Figure is the value the rule judged (seconds for times, per second
	// for rates, a percentage for ack-pending) and Threshold the level it
	// reached; both 0 for rules without a threshold.
	Figure    float64 `json:"figure"`
	Threshold float64 `json:"threshold,omitempty"`
}

// Limits are one level (warn or critical) of thresholds. A zero value turns
// its rule off. Every rule fires at or above its threshold, as
// `nats server check consumer` does.
type Limits struct {
	// OutstandingAck is the number of messages ack pending (num_ack_pending).
	OutstandingAck int
	// AckPendingShare is num_ack_pending as a percentage of max_ack_pending;
	// the server stops delivering at 100%.
	AckPendingShare float64
	// Redelivery is the number of messages redelivered and not yet acked
	// (num_redelivered).
	Redelivery int
	// Waiting is the number of pull requests waiting (num_waiting).
	Waiting int
	// Unprocessed is the number of messages not yet delivered (num_pending).
	Unprocessed int
	// LastDelivery is the time without a delivery while messages wait to be
	// delivered (num_pending > 0).
	LastDelivery time.Duration
	// LastAck is the time without an ack while messages are ack pending,
	// counted from the last ack or the delivery of the oldest ack-pending
	// message, whichever came later.
	LastAck time.Duration
	// AckWaitExpired is the number of ack-pending messages of a pull
	// consumer whose AckWait has passed while no pull request waits: they
	// are redelivered only at the next pull.
	AckWaitExpired int
	// MaxDeliverReached is the number of messages that reached MaxDeliver
	// without an ack and were dropped (MAX_DELIVERIES advisories under
	// --watch; otherwise at least one, from the ack floor).
	MaxDeliverReached int
	// LateAck is the number of sampled acks in a --watch interval that
	// took longer than the AckWait (ack metric events).
	LateAck int
	// RedeliveryStorm is redeliveries per second in a --watch interval.
	RedeliveryStorm float64
	// NakStorm is the number of MSG_NAKED advisories in a --watch interval.
	NakStorm int
	// Terminated is the number of client +TERM advisories in a --watch
	// interval.
	Terminated int
}

// Thresholds are the rules' warn and critical levels.
type Thresholds struct {
	Warn     Limits
	Critical Limits
	// Pinned makes a consumer critical unless it uses the pinned-client
	// priority policy and every priority group has a pinned client.
	Pinned bool
}

// DefaultThresholds warn on what an operator should look at, and are never
// critical on their own: criticals are opted into with flags or consumer
// metadata, as with `nats server check consumer`.
func DefaultThresholds() Thresholds {
	return Thresholds{Warn: Limits{
		AckPendingShare:   80,
		Redelivery:        1,
		LastDelivery:      5 * time.Minute,
		LastAck:           5 * time.Minute,
		AckWaitExpired:    1,
		MaxDeliverReached: 1,
		LateAck:           1,
		RedeliveryStorm:   10,
		NakStorm:          10,
		Terminated:        1,
	}}
}

// Consumer metadata that overrides critical thresholds, named as
// `nats server check consumer` (jsm.go's monitor package) names them.
const (
	MetaOutstandingAckCritical = "io.nats.monitor.outstanding-ack-critical"
	MetaWaitingCritical        = "io.nats.monitor.waiting-critical"
	MetaUnprocessedCritical    = "io.nats.monitor.unprocessed-critical"
	MetaLastDeliveryCritical   = "io.nats.monitor.last-delivery-critical"
	MetaLastAckCritical        = "io.nats.monitor.last-ack-critical"
	MetaRedeliveryCritical     = "io.nats.monitor.redelivery-critical"
	MetaPinned                 = "io.nats.monitor.pinned"

	// ackprobe's own rules, read the same way.
	MetaAckWaitExpiredCritical    = "io.nats.monitor.ack-wait-expired-critical"
	MetaMaxDeliverReachedCritical = "io.nats.monitor.max-deliver-reached-critical"
	MetaLateAckCritical           = "io.nats.monitor.late-ack-critical"
	MetaRedeliveryStormCritical   = "io.nats.monitor.redelivery-storm-critical"
	MetaNakStormCritical          = "io.nats.monitor.nak-storm-critical"
	MetaTerminatedCritical        = "io.nats.monitor.terminated-critical"
)

// Validate refuses a threshold no rule can use: a negative count, time or
// rate, a rate that is not a number, an ack pending share outside 0–100.
// The error names the flag that sets the threshold, with its value.
func (t Thresholds) Validate() error {
	for _, lv := range []struct {
		level string
		l     *Limits
	}{{"warn", &t.Warn}, {"critical", &t.Critical}} {
		for _, f := range lv.l.fields() {
			flag := "--" + f.name + "-" + lv.level
			switch {
			case f.count != nil && *f.count < 0:
				return fmt.Errorf("%s must not be negative, got %d", flag, *f.count)
			case f.time != nil && *f.time < 0:
				return fmt.Errorf("%s must not be negative, got %s", flag, *f.time)
			case f.number != nil && (math.IsNaN(*f.number) || math.IsInf(*f.number, 0)):
				return fmt.Errorf("%s must be a number, got %g", flag, *f.number)
			case f.number != nil && *f.number < 0:
				return fmt.Errorf("%s must not be negative, got %g", flag, *f.number)
			case f.number != nil && f.percent && *f.number > 100:
				return fmt.Errorf("%s is a percentage from 0 to 100, got %g", flag, *f.number)
			}
		}
	}
	return nil
}

// limitField is one threshold of a level, named as its rule's flags name
// it: --<name>-warn and --<name>-critical.
type limitField struct {
	name    string
	count   *int
	time    *time.Duration
	number  *float64
	percent bool
}

// fields lists every threshold of the level.
func (l *Limits) fields() []limitField {
	return []limitField{
		{name: "outstanding-ack", count: &l.OutstandingAck},
		{name: "ack-pending-share", number: &l.AckPendingShare, percent: true},
		{name: "redelivery", count: &l.Redelivery},
		{name: "unprocessed", count: &l.Unprocessed},
		{name: "waiting", count: &l.Waiting},
		{name: "last-delivery", time: &l.LastDelivery},
		{name: "last-ack", time: &l.LastAck},
		{name: "ack-wait-expired", count: &l.AckWaitExpired},
		{name: "max-deliver-reached", count: &l.MaxDeliverReached},
		{name: "late-ack", count: &l.LateAck},
		{name: "redelivery-storm", number: &l.RedeliveryStorm},
		{name: "nak-storm", count: &l.NakStorm},
		{name: "terminated", count: &l.Terminated},
	}
}

// ForConsumer applies a consumer's io.nats.monitor.* metadata to the
// thresholds. It returns the entries it applied and those it could not read.
func (t Thresholds) ForConsumer(meta map[string]string) (Thresholds, []string, []Reason) {
	var applied []string
	var bad []Reason
	count := func(key string, dst *int) {
		v, ok := meta[key]
		if !ok {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			bad = append(bad, Reason{Rule: "metadata", Status: Warn, Message: fmt.Sprintf("%s=%q ignored: not a whole number", key, v)})
			return
		}
		*dst = max(n, 0)
		applied = append(applied, key+"="+v)
	}
	rate := func(key string, dst *float64) {
		v, ok := meta[key]
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f != f {
			bad = append(bad, Reason{Rule: "metadata", Status: Warn, Message: fmt.Sprintf("%s=%q ignored: not a number", key, v)})
			return
		}
		*dst = max(f, 0)
		applied = append(applied, key+"="+v)
	}
	duration := func(key string, dst *time.Duration) {
		v, ok := meta[key]
		if !ok {
			return
		}
		// Read as the nats CLI reads the same metadata: Go's units plus
		// days, weeks, months and years ("2d", "1w").
		d, err := jsm.ParseDuration(v)
		if err != nil {
			bad = append(bad, Reason{Rule: "metadata", Status: Warn, Message: fmt.Sprintf("%s=%q ignored: not a duration", key, v)})
			return
		}
		*dst = max(d, 0)
		applied = append(applied, key+"="+v)
	}
	count(MetaOutstandingAckCritical, &t.Critical.OutstandingAck)
	count(MetaWaitingCritical, &t.Critical.Waiting)
	count(MetaUnprocessedCritical, &t.Critical.Unprocessed)
	count(MetaRedeliveryCritical, &t.Critical.Redelivery)
	duration(MetaLastDeliveryCritical, &t.Critical.LastDelivery)
	duration(MetaLastAckCritical, &t.Critical.LastAck)
	count(MetaAckWaitExpiredCritical, &t.Critical.AckWaitExpired)
	count(MetaMaxDeliverReachedCritical, &t.Critical.MaxDeliverReached)
	count(MetaLateAckCritical, &t.Critical.LateAck)
	rate(MetaRedeliveryStormCritical, &t.Critical.RedeliveryStorm)
	count(MetaNakStormCritical, &t.Critical.NakStorm)
	count(MetaTerminatedCritical, &t.Critical.Terminated)
	if v, ok := meta[MetaPinned]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			bad = append(bad, Reason{Rule: "metadata", Status: Warn, Message: fmt.Sprintf("%s=%q ignored: not true or false", MetaPinned, v)})
		} else {
			t.Pinned = b
			applied = append(applied, MetaPinned+"="+v)
		}
	}
	return t, applied, bad
}

// Check judges one consumer as the server reported it, at the time now
// (the report's own timestamp), from that one report alone.
func Check(ci *jetstream.ConsumerInfo, now time.Time, t Thresholds) Health {
	return Judge(ci, now, t, nil)
}

// Observation is what watching a consumer across refreshes adds to one
// report: the interval's movement and events, and what inspect could tell
// about acks that the report alone cannot.
type Observation struct {
	// Delta is the movement since the previous refresh, with the events
	// counted meanwhile.
	Delta *Delta
	// LastAck is the latest ack inspect proved (acks in an interval's
	// outflow), or the server's ack floor time before any was proved; nil
	// when none is known.
	LastAck *time.Time
	// OutstandingSince is the latest time at which the oldest ack-pending
	// message can have been delivered, from the delivered sequences and
	// times of the refreshes; nil when unknown.
	OutstandingSince *time.Time
}

// Judge is Check with what watching added; obs may be nil. Each rule that
// fires adds a reason; the status is the worst of them. The consumer's
// io.nats.monitor.* metadata overrides the critical thresholds.
func Judge(ci *jetstream.ConsumerInfo, now time.Time, t Thresholds, obs *Observation) Health {
	t, applied, reasons := t.ForConsumer(ci.Config.Metadata)
	add := func(rule string, s Status, figure, at float64, format string, args ...any) {
		if s != OK {
			reasons = append(reasons, Reason{Rule: rule, Status: s, Figure: figure, Threshold: at, Message: fmt.Sprintf(format, args...)})
		}
	}
	var d *Delta
	if obs != nil {
		d = obs.Delta
	}
	acks := ci.Config.AckPolicy != jetstream.AckNonePolicy

	if s, at := level(ci.NumAckPending, t.Warn.OutstandingAck, t.Critical.OutstandingAck); s != OK {
		add("outstanding-ack", s, float64(ci.NumAckPending), float64(at), "%d messages ack pending (%s at %d)", ci.NumAckPending, s, at)
	}
	if share, ok := ackPendingShare(ci); ok {
		if s, at := level(share, t.Warn.AckPendingShare, t.Critical.AckPendingShare); s != OK {
			add("ack-pending", s, share, at, "ack pending %d of max %d (%s); delivery stops at the maximum (%s at %g%%)",
				ci.NumAckPending, ci.Config.MaxAckPending, Percent(share), s, at)
		}
	}
	if s, at := level(ci.NumRedelivered, t.Warn.Redelivery, t.Critical.Redelivery); s != OK {
		add("redelivery", s, float64(ci.NumRedelivered), float64(at), "%d %s redelivered and not acked (%s at %d)", ci.NumRedelivered, Plural(ci.NumRedelivered, "message", "messages"), s, at)
	}
	if s, at := level(clampInt(ci.NumPending), t.Warn.Unprocessed, t.Critical.Unprocessed); s != OK {
		add("unprocessed", s, float64(ci.NumPending), float64(at), "%d %s not yet delivered (%s at %d)", ci.NumPending, Plural(int(min(ci.NumPending, 2)), "message", "messages"), s, at)
	}
	if s, at := level(ci.NumWaiting, t.Warn.Waiting, t.Critical.Waiting); s != OK {
		add("waiting", s, float64(ci.NumWaiting), float64(at), "%d pull %s waiting (%s at %d)", ci.NumWaiting, Plural(ci.NumWaiting, "request", "requests"), s, at)
	}
	// A paused consumer delivers nothing by design: the pause is the one
	// finding, not also a stalled delivery.
	if ci.NumPending > 0 && !ci.Paused {
		idle, never := since(ci.Delivered.Last, ci, now)
		if s, at := level(idle, t.Warn.LastDelivery, t.Critical.LastDelivery); s != OK {
			what := "nothing delivered for " + Short(idle)
			if never {
				what = "no delivery seen by the consumer leader in " + Short(idle)
			}
			add("last-delivery", s, idle.Seconds(), at.Seconds(), "%s while %d %s wait (%s at %s)", what, ci.NumPending, Plural(int(min(ci.NumPending, 2)), "message", "messages"), s, Short(at))
		}
	}
	if ci.NumAckPending > 0 && acks {
		if idle, what, ok := ackIdle(ci, now, obs); ok {
			if s, at := level(idle, t.Warn.LastAck, t.Critical.LastAck); s != OK {
				add("last-ack", s, idle.Seconds(), at.Seconds(), "%s while %d %s ack pending (%s at %s)", what, ci.NumAckPending, Plural(ci.NumAckPending, "message is", "messages are"), s, Short(at))
			}
		}
	}
	if n, since, wait, ok := ackWaitExpired(ci, now); ok {
		if s, at := level(n, t.Warn.AckWaitExpired, t.Critical.AckWaitExpired); s != OK {
			add("ack-wait-expired", s, float64(n), float64(at), "%d ack-pending %s past %s ack wait (delivered %s ago, ack wait %s); no pull request is waiting, so they come back only at the next pull (%s at %d)",
				n, Plural(n, "message is", "messages are"), Plural(n, "its", "their"), Short(since), Short(wait), s, at)
		}
	}
	maxDeliverReached(ci, d, t, add)
	if ci.Paused {
		msg := "paused for another " + Short(ci.PauseRemaining)
		if ci.NumPending > 0 {
			msg += fmt.Sprintf("; %d %s to be delivered", ci.NumPending, Plural(int(min(ci.NumPending, 2)), "message waits", "messages wait"))
		}
		add("paused", Warn, ci.PauseRemaining.Seconds(), 0, "%s", msg)
	}
	reasons = append(reasons, replicaReasons(ci.Cluster)...)
	if t.Pinned {
		if r, bad := pinnedReason(ci); bad {
			reasons = append(reasons, r)
		}
	}
	if d != nil && !d.Reset {
		watchRules(ci, d, t, add)
	}

	h := Health{Status: OK, Reasons: reasons, Overrides: applied, Thresholds: &t}
	if h.Reasons == nil {
		h.Reasons = []Reason{}
	}
	for _, r := range h.Reasons {
		h.Status = max(h.Status, r.Status)
	}
	// Worst first, in rule order otherwise.
	slices.SortStableFunc(h.Reasons, func(a, b Reason) int { return int(b.Status) - int(a.Status) })
	return h
}

type addFunc func(rule string, s Status, figure, at float64, format string, args ...any)

// ackIdle is how long the consumer has gone without an ack while it had
// messages to ack: from the last ack or the delivery of the oldest
// ack-pending message, whichever came later. Consumer info holds the time
// of the latest delivery, not of the oldest outstanding one: unless an ack
// came after the latest delivery, or watching narrowed it down, the time
// is counted from the latest delivery, and is a minimum. ok is false when
// nothing tells (a new leader knows no times yet and saw no ack).
func ackIdle(ci *jetstream.ConsumerInfo, now time.Time, obs *Observation) (time.Duration, string, bool) {
	lastAck := ci.AckFloor.Last
	if obs != nil && obs.Delta != nil {
		lastAck = obs.LastAck
	}
	delivered := ci.Delivered.Last
	if obs != nil && obs.OutstandingSince != nil && (delivered == nil || obs.OutstandingSince.Before(*delivered)) {
		delivered = obs.OutstandingSince
	}
	switch {
	case lastAck != nil && (delivered == nil || !lastAck.Before(*delivered)):
		idle := max(now.Sub(*lastAck), 0)
		return idle, "no ack for " + Short(idle), true
	case delivered != nil:
		idle := max(now.Sub(*delivered), 0)
		from := "the last delivery"
		if delivered != ci.Delivered.Last {
			from = "the oldest ack-pending delivery"
		}
		return idle, fmt.Sprintf("no ack in the %s since %s", Short(idle), from), true
	case ci.Cluster != nil && ci.Cluster.LeaderSince != nil:
		// The leader took over after the deliveries and has seen no ack.
		idle := max(now.Sub(*ci.Cluster.LeaderSince), 0)
		return idle, "no ack seen by the consumer leader in the " + Short(idle) + " since it took over", true
	}
	return 0, "", false
}

// ackWait is the longest a delivery of this consumer waits for its ack
// before the server may redeliver it: AckWait, or the longest BackOff step.
func ackWait(cfg jetstream.ConsumerConfig) time.Duration {
	w := cfg.AckWait
	if w <= 0 {
		w = 30 * time.Second
	}
	if len(cfg.BackOff) > 0 {
		w = slices.Max(cfg.BackOff)
	}
	return w
}

// ackWaitExpired counts a pull consumer's ack-pending messages whose ack
// wait has passed while no pull request waits (nats-server#1716): every
// ack-pending message was delivered at or before the latest delivery, so
// once that is older than the ack wait, all of them are past it.
func ackWaitExpired(ci *jetstream.ConsumerInfo, now time.Time) (n int, since, wait time.Duration, ok bool) {
	if ci.Config.DeliverSubject != "" || ci.Config.AckPolicy == jetstream.AckNonePolicy || ci.Paused ||
		ci.NumAckPending == 0 || ci.NumWaiting > 0 || ci.Delivered.Last == nil {
		return 0, 0, 0, false
	}
	wait = ackWait(ci.Config)
	since = max(now.Sub(*ci.Delivered.Last), 0)
	if since <= wait {
		return 0, 0, 0, false
	}
	return ci.NumAckPending, since, wait, true
}

// maxDeliverReached finds messages that reached MaxDeliver without an ack.
// Under --watch the server's MAX_DELIVERIES advisories count them. Without
// them, the sign is an ack floor behind the last delivery with nothing ack
// pending: the server dropped them from pending without moving the floor,
// and num_redelivered reads 0 with MaxDeliver 1 (nats-server#6874). The
// sign lasts until the next ack moves the floor.
func maxDeliverReached(ci *jetstream.ConsumerInfo, d *Delta, t Thresholds, add addFunc) {
	if ci.Config.MaxDeliver <= 0 || ci.Config.AckPolicy == jetstream.AckNonePolicy {
		return
	}
	if d != nil && d.Events != nil && d.Events.MaxDeliveries > 0 {
		n := d.Events.MaxDeliveries
		if s, at := level(n, t.Warn.MaxDeliverReached, t.Critical.MaxDeliverReached); s != OK {
			add("max-deliver-reached", s, float64(n), float64(at), "%d %s reached max deliver (%d) in the last %s without an ack and will not be delivered again (MAX_DELIVERIES advisories; %s at %d)",
				n, Plural(n, "message", "messages"), ci.Config.MaxDeliver, Short(time.Duration(d.Interval)), s, at)
		}
		return
	}
	if ci.NumAckPending != 0 || ci.AckFloor.Consumer >= ci.Delivered.Consumer {
		return
	}
	upTo := ci.Delivered.Stream - min(ci.AckFloor.Stream, ci.Delivered.Stream)
	if s, at := level(1, t.Warn.MaxDeliverReached, t.Critical.MaxDeliverReached); s != OK {
		add("max-deliver-reached", s, 1, float64(at), "messages reached max deliver (%d) without an ack and were dropped: the ack floor (stream seq %d) is behind the last delivery (stream seq %d) with nothing ack pending; at least 1, at most %d (%s at %d)",
			ci.Config.MaxDeliver, ci.AckFloor.Stream, ci.Delivered.Stream, max(upTo, 1), s, at)
	}
}

// watchRules are the rules that need an interval and its events.
func watchRules(ci *jetstream.ConsumerInfo, d *Delta, t Thresholds, add addFunc) {
	iv := Short(time.Duration(d.Interval))
	if s, at := level(d.RedeliveriesPerSec, t.Warn.RedeliveryStorm, t.Critical.RedeliveryStorm); s != OK {
		add("redelivery-storm", s, d.RedeliveriesPerSec, at, "%s redeliveries/s in the last %s (%d of %d deliveries; %s at %g/s)",
			rateText(d.RedeliveriesPerSec), iv, d.Redeliveries, d.Delivered, s, at)
	}
	ev := d.Events
	if ev == nil {
		return
	}
	if a := d.AckTimes; a != nil && a.Late > 0 {
		if s, at := level(a.Late, t.Warn.LateAck, t.Critical.LateAck); s != OK {
			add("late-ack", s, float64(a.Late), float64(at), "%d of %d sampled acks in the last %s took longer than the %s ack wait (p50 %s, p99 %s, max %s): the server could redeliver them meanwhile, and another worker may have processed the same message (%s at %d)",
				a.Late, a.Count, iv, Short(ci.Config.AckWait), Short(time.Duration(a.P50)), Short(time.Duration(a.P99)), Short(time.Duration(a.Max)), s, at)
		}
	}
	if s, at := level(ev.Naks, t.Warn.NakStorm, t.Critical.NakStorm); s != OK {
		add("nak-storm", s, float64(ev.Naks), float64(at), "%d %s in the last %s (%s/s; MSG_NAKED advisories; %s at %d)", ev.Naks, Plural(ev.Naks, "NAK", "NAKs"), iv, rateText(d.NaksPerSec), s, at)
	}
	if s, at := level(ev.Terminated, t.Warn.Terminated, t.Critical.Terminated); s != OK {
		add("terminated", s, float64(ev.Terminated), float64(at), "%d %s terminated by the client (+TERM) in the last %s: not acked, never delivered again (%s at %d)", ev.Terminated, Plural(ev.Terminated, "message", "messages"), iv, s, at)
	}
}

func rateText(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// level is the status of value v against warn and critical thresholds,
// and the threshold it reached. A threshold of zero is off.
func level[T int | float64 | time.Duration](v, warn, crit T) (Status, T) {
	switch {
	case crit > 0 && v >= crit:
		return Critical, crit
	case warn > 0 && v >= warn:
		return Warn, warn
	}
	return OK, 0
}

// since is how long ago last was. Without a time (the server keeps it only
// in the consumer leader's memory: none yet, or a new leader since), it is
// the time since the consumer was created or its leader took over,
// whichever came later, and never is true.
func since(last *time.Time, ci *jetstream.ConsumerInfo, now time.Time) (time.Duration, bool) {
	if last != nil && !last.IsZero() {
		return max(now.Sub(*last), 0), false
	}
	from := ci.Created
	if ci.Cluster != nil && ci.Cluster.LeaderSince != nil && ci.Cluster.LeaderSince.After(from) {
		from = *ci.Cluster.LeaderSince
	}
	if from.IsZero() {
		return 0, true
	}
	return max(now.Sub(from), 0), true
}

func replicaReasons(c *jetstream.ClusterInfo) []Reason {
	if c == nil {
		return nil
	}
	var out []Reason
	if c.Leader == "" {
		out = append(out, Reason{Rule: "replicas", Status: Critical, Message: "no leader: the consumer cannot deliver or take acks"})
	}
	for _, p := range c.Replicas {
		switch {
		case p == nil:
		case p.Offline:
			out = append(out, Reason{Rule: "replicas", Status: Warn, Message: fmt.Sprintf("replica %s offline (seen %s ago)", p.Name, Short(p.Active))})
		case !p.Current:
			out = append(out, Reason{Rule: "replicas", Status: Warn, Message: fmt.Sprintf("replica %s lagging: %d operations behind, seen %s ago", p.Name, p.Lag, Short(p.Active))})
		}
	}
	return out
}

func pinnedReason(ci *jetstream.ConsumerInfo) (Reason, bool) {
	r := Reason{Rule: "pinned", Status: Critical}
	if ci.Config.PriorityPolicy != jetstream.PriorityPolicyPinned || len(ci.Config.PriorityGroups) == 0 {
		r.Message = "not a pinned-client consumer"
		return r, true
	}
	pinned := 0
	for _, g := range ci.PriorityGroups {
		if g.PinnedClientID != "" {
			pinned++
		}
	}
	if pinned != len(ci.Config.PriorityGroups) {
		r.Message = fmt.Sprintf("%d of %d priority groups have a pinned client", pinned, len(ci.Config.PriorityGroups))
		return r, true
	}
	return r, false
}

// ackPendingShare is num_ack_pending as a percentage of max_ack_pending,
// when the consumer has such a limit.
func ackPendingShare(ci *jetstream.ConsumerInfo) (float64, bool) {
	if ci.Config.MaxAckPending <= 0 || ci.Config.AckPolicy == jetstream.AckNonePolicy {
		return 0, false
	}
	return float64(ci.NumAckPending) * 100 / float64(ci.Config.MaxAckPending), true
}

// Percent writes a share as "80%" or "80.5%".
func Percent(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d%%", int64(v))
	}
	return fmt.Sprintf("%.1f%%", v)
}

// Plural picks the word for n things.
func Plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func clampInt(v uint64) int {
	const maxInt = int(^uint(0) >> 1)
	if v > uint64(maxInt) {
		return maxInt
	}
	return int(v)
}

// Short renders a duration the way an operator reads an age: 850ms, 1.5s,
// 12s, 3m4s, 5m, 2h5m, 3d4h.
func Short(d time.Duration) string {
	// Each range rounds to its own precision; a value that rounds up into
	// the next range is written as that range writes it.
	switch {
	case d < 0:
		return "-" + Short(-d)
	case d == 0:
		return "0s"
	case d < time.Second:
		if r := d.Round(time.Millisecond); r < time.Second {
			return r.String()
		}
		return "1s"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Minute:
		if r := d.Round(time.Second); r < time.Minute {
			return r.String()
		}
		return "1m"
	case d < time.Hour:
		r := d.Round(time.Second)
		switch {
		case r >= time.Hour:
			return "1h"
		case r%time.Minute == 0:
			return fmt.Sprintf("%dm", int(r.Minutes()))
		}
		return r.String()
	case d < 24*time.Hour:
		r := d.Round(time.Minute)
		switch {
		case r >= 24*time.Hour:
			return "1d"
		case r%time.Hour == 0:
			return fmt.Sprintf("%dh", int(r.Hours()))
		}
		return fmt.Sprintf("%dh%dm", int(r.Hours()), int(r.Minutes())%60)
	}
	r := d.Round(time.Hour)
	if r%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", int(r.Hours())/24)
	}
	return fmt.Sprintf("%dd%dh", int(r.Hours())/24, int(r.Hours())%24)
}
