package inspect

import (
	"fmt"
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
}

// Reason is one rule that fired.
type Reason struct {
	Rule    string `json:"rule"`
	Status  Status `json:"status"`
	Message string `json:"message"`
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
	// LastAck is the time without an ack while messages are ack pending.
	LastAck time.Duration
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
		AckPendingShare: 80,
		Redelivery:      1,
		LastDelivery:    5 * time.Minute,
		LastAck:         5 * time.Minute,
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
)

// Validate refuses negative thresholds.
func (t Thresholds) Validate() error {
	for _, l := range []struct {
		level string
		l     Limits
	}{{"warn", t.Warn}, {"critical", t.Critical}} {
		switch {
		case l.l.OutstandingAck < 0, l.l.Redelivery < 0, l.l.Waiting < 0, l.l.Unprocessed < 0:
			return fmt.Errorf("%s thresholds must not be negative", l.level)
		case l.l.AckPendingShare < 0 || l.l.AckPendingShare > 100:
			return fmt.Errorf("the ack pending share %s threshold is a percentage from 0 to 100, got %g", l.level, l.l.AckPendingShare)
		case l.l.LastDelivery < 0, l.l.LastAck < 0:
			return fmt.Errorf("%s durations must not be negative", l.level)
		}
	}
	return nil
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
// (the report's own timestamp). Each rule that fires adds a reason; the
// status is the worst of them. The consumer's io.nats.monitor.* metadata
// overrides the critical thresholds.
func Check(ci *jetstream.ConsumerInfo, now time.Time, t Thresholds) Health {
	t, applied, reasons := t.ForConsumer(ci.Config.Metadata)
	add := func(rule string, s Status, format string, args ...any) {
		if s != OK {
			reasons = append(reasons, Reason{Rule: rule, Status: s, Message: fmt.Sprintf(format, args...)})
		}
	}

	if s, at := level(ci.NumAckPending, t.Warn.OutstandingAck, t.Critical.OutstandingAck); s != OK {
		add("outstanding-ack", s, "%d messages ack pending (%s at %d)", ci.NumAckPending, s, at)
	}
	if share, ok := ackPendingShare(ci); ok {
		if s, at := level(share, t.Warn.AckPendingShare, t.Critical.AckPendingShare); s != OK {
			add("ack-pending", s, "ack pending %d of max %d (%s); delivery stops at the maximum (%s at %g%%)",
				ci.NumAckPending, ci.Config.MaxAckPending, Percent(share), s, at)
		}
	}
	if s, at := level(ci.NumRedelivered, t.Warn.Redelivery, t.Critical.Redelivery); s != OK {
		add("redelivery", s, "%d %s redelivered and not yet acked (%s at %d)", ci.NumRedelivered, Plural(ci.NumRedelivered, "message", "messages"), s, at)
	}
	if s, at := level(clampInt(ci.NumPending), t.Warn.Unprocessed, t.Critical.Unprocessed); s != OK {
		add("unprocessed", s, "%d %s not yet delivered (%s at %d)", ci.NumPending, Plural(int(min(ci.NumPending, 2)), "message", "messages"), s, at)
	}
	if s, at := level(ci.NumWaiting, t.Warn.Waiting, t.Critical.Waiting); s != OK {
		add("waiting", s, "%d pull %s waiting (%s at %d)", ci.NumWaiting, Plural(ci.NumWaiting, "request", "requests"), s, at)
	}
	if ci.NumPending > 0 {
		idle, never := since(ci.Delivered.Last, ci, now)
		if s, at := level(idle, t.Warn.LastDelivery, t.Critical.LastDelivery); s != OK {
			what := "nothing delivered for " + Short(idle)
			if never {
				what = "no delivery seen by the consumer leader in " + Short(idle)
			}
			add("last-delivery", s, "%s while %d %s wait (%s at %s)", what, ci.NumPending, Plural(int(min(ci.NumPending, 2)), "message", "messages"), s, Short(at))
		}
	}
	if ci.NumAckPending > 0 {
		idle, never := since(ci.AckFloor.Last, ci, now)
		if s, at := level(idle, t.Warn.LastAck, t.Critical.LastAck); s != OK {
			what := "no ack for " + Short(idle)
			if never {
				what = "no ack seen by the consumer leader in " + Short(idle)
			}
			add("last-ack", s, "%s while %d %s ack pending (%s at %s)", what, ci.NumAckPending, Plural(ci.NumAckPending, "message is", "messages are"), s, Short(at))
		}
	}
	if ci.Paused {
		add("paused", Warn, "paused for another %s", Short(ci.PauseRemaining))
	}
	reasons = append(reasons, replicaReasons(ci.Cluster)...)
	if t.Pinned {
		if r, bad := pinnedReason(ci); bad {
			reasons = append(reasons, r)
		}
	}

	h := Health{Status: OK, Reasons: reasons, Overrides: applied}
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
