package probe

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
)

// Severity says what a finding means for the run: fail findings make it
// exit 1; warn and info findings are reported and do not.
type Severity string

// Severities, from the worst.
const (
	SeverityFail Severity = "fail"
	SeverityWarn Severity = "warn"
	SeverityInfo Severity = "info"
)

// Rank orders severities: fail 3, warn 2, info 1, none 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityFail:
		return 3
	case SeverityWarn:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Finding is one conclusion of a round, derived once from the ledger.
type Finding struct {
	// Code names the finding (see the Code constants); stable for scripts.
	Code string `json:"code"`
	// Mode is the ack mode it concerns, or "" for the round as a whole.
	Mode Mode `json:"mode"`
	// Node is the server it concerns in a per-node probe, or "".
	Node     string   `json:"node,omitempty"`
	Severity Severity `json:"severity"`
	// Count is how many messages (or acks, read-backs) it concerns.
	Count   int    `json:"count"`
	Message string `json:"message"`
}

// Finding codes. The contract lists them; scripts and the canary's
// ackprobe_findings_total{code} rely on them.
const (
	CodeRedeliveredAfterConfirmedAck = "redelivered_after_confirmed_ack"
	CodeLateAck                      = "late_ack"
	CodeConfirmedAfterRetry          = "confirmed_after_retry"
	CodeLostStandardAck              = "lost_standard_ack"
	CodeLostDelivery                 = "lost_delivery"
	CodeRedeliveredBeforeAck         = "redelivered_before_ack"
	CodeStaleRead                    = "stale_read"
	CodeAckWaitTooShort              = "ack_wait_too_short"
	CodeAckFailed                    = "ack_failed"
	CodeGaveUp                       = "gave_up"
	CodeUnsettled                    = "unsettled"
	CodeMaxAckLatency                = "max_ack_latency_breached"
	CodeMinRate                      = "min_rate_breached"
	CodeDisturbed                    = "disturbed"
	CodeFittedToLimits               = "fitted_to_limits"
	CodeSlowNode                     = "slow_node"
	CodeNodesEven                    = "nodes_even"
	CodeLeaderMoved                  = "leader_moved"
	CodeNotPlaced                    = "not_placed"
	CodeNotProbed                    = "not_probed"
	CodeNoSystemData                 = "system_data_unavailable"
)

// RedeliveryCodes are the codes that class redeliveries, as counted by
// ModeResult.Classes (the canary's ackprobe_redeliveries_total{code}).
var RedeliveryCodes = []string{
	CodeRedeliveredAfterConfirmedAck, CodeLostStandardAck, CodeLateAck,
	CodeRedeliveredBeforeAck, CodeLostDelivery,
}

// judge derives the findings of a round from its modes, once. It is the
// only place where the probe decides what is good or bad.
func judge(modes []ModeResult, ackWait time.Duration, th Thresholds) []Finding {
	out := []Finding{}
	add := func(code string, m Mode, sev Severity, n int, format string, args ...any) {
		out = append(out, Finding{Code: code, Mode: m, Severity: sev, Count: n, Message: fmt.Sprintf(format, args...)})
	}
	for _, r := range modes {
		m, c := r.Mode, r.Classes
		if n := c.RedeliveredAfterConfirmedAck; n > 0 {
			add(CodeRedeliveredAfterConfirmedAck, m, SeverityFail, n,
				"%s message(s) were delivered again after the server had confirmed their ack within the AckWait (%s): the server applied the ack and redelivered anyway", num(n), ackWait)
		}
		if r.GaveUp {
			add(CodeGaveUp, m, SeverityFail, r.Errors,
				"the %s run stopped after %d ack calls in a row failed after their retries: the server is not applying acks (last error: %s)", m, maxFailedInARow, r.LastError)
		}
		if n := r.Errors; n > 0 {
			sev := SeverityFail
			if m == Standard {
				sev = SeverityWarn // Ack() only fails when it cannot even buffer the ack
			}
			add(CodeAckFailed, m, sev, n, "%s %s ack call(s) failed after their retries (last error: %s)", num(n), m, r.LastError)
		}
		if v := r.Visibility; v.StaleReads > 0 {
			staleRead(add, r, v)
		}
		if n := c.LostStandardAck; n > 0 {
			add(CodeLostStandardAck, m, SeverityWarn, n,
				"%s standard ack(s) were sent in time and lost: Ack() returned no error, and the message came back after the AckWait (%s)", num(n), ackWait)
		}
		if n := c.LateAck; n > 0 {
			add(CodeLateAck, m, SeverityWarn, n,
				"%s ack(s) were sent or landed after the message's AckWait (%s) had expired, so the server could redeliver first%s%s", num(n), ackWait, redeliveredClause(r), pauseClause(r, ackWait))
		}
		if n := c.ConfirmedAfterRetry; n > 0 {
			sev, when := SeverityInfo, "each landed within the AckWait"
			if late := c.ConfirmedAfterRetryLate; late > 0 {
				sev, when = SeverityWarn, fmt.Sprintf("%s of them landed when the AckWait (%s) may already have expired", num(late), ackWait)
			}
			add(CodeConfirmedAfterRetry, m, sev, n, "%s confirmed ack(s) needed retries (%s timeouts, %s retries); %s", num(n), num(r.Timeouts), num(r.Retries), when)
		}
		if n := c.LostDelivery; n > 0 {
			add(CodeLostDelivery, m, SeverityInfo, n,
				"%s message(s) reached the probe only through a redelivery: the server's earlier delivery (%s in all) never arrived (a leader change or a reconnect), not an ack failure", num(n), num(r.LostDeliveries))
		}
		if n := c.RedeliveredBeforeAck; n > 0 {
			add(CodeRedeliveredBeforeAck, m, SeverityInfo, n,
				"%s message(s) were redelivered while the probe still held them, before their ack landed: held past the AckWait (%s), or sent again by a new consumer leader", num(n), ackWait)
		}
		if n := max(r.ReachedAckWait, serverReached(r)); n > 0 {
			add(CodeAckWaitTooShort, m, SeverityWarn, int(n),
				"%s ack(s) took the AckWait (%s) or longer from delivery to landing, so the server could redeliver them first: delivery→ack p50 %s, p99 %s, max %s%s",
				num(n), ackWait, usDuration(r.DeliveryToAckUS.P50), usDuration(r.DeliveryToAckUS.P99), usDuration(r.DeliveryToAckUS.Max), serverClause(r)+pauseClause(r, ackWait))
		}
		if n := r.Unsettled; n > 0 {
			add(CodeUnsettled, m, SeverityWarn, n,
				"%s of the %s run's messages were still ack pending on the server when the run moved on", num(n), m)
		}
		if d := r.Disturbance; d.Reconnects > 0 || d.LeaderChanges > 0 || d.WithoutLeader > 0 {
			add(CodeDisturbed, m, SeverityInfo, d.Reconnects+d.LeaderChanges,
				"the %s run rode out %d reconnect(s) and %d consumer leader change(s), %s without a leader; %s API call(s) were retried",
				m, d.Reconnects, d.LeaderChanges, time.Duration(d.WithoutLeader).Round(time.Millisecond), num(d.RetriedCalls))
		}
	}
	return append(out, th.check(modes)...)
}

type addFunc func(code string, m Mode, sev Severity, n int, format string, args ...any)

// staleRead judges read-backs that still showed an ack pending: expected
// of standard acks; for confirmed acks a failure, unless a leader change
// (or an earlier run's messages) accounts for every one of them.
func staleRead(add addFunc, r ModeResult, v Visibility) {
	never := ""
	if v.NotVisible > 0 {
		never = fmt.Sprintf("; %s never showed within the wait", num(v.NotVisible))
	}
	if r.Mode == Standard {
		add(CodeStaleRead, r.Mode, SeverityInfo, v.StaleReads,
			"%s of %s immediate read-backs after Ack() returned still showed the ack pending: the server had not applied it yet%s", num(v.StaleReads), num(v.ReadBacks), never)
		return
	}
	if unexplained := v.StaleReads - v.Explained; unexplained > 0 {
		add(CodeStaleRead, r.Mode, SeverityFail, unexplained,
			"%s of %s immediate read-backs after DoubleAck() returned still showed the ack pending: the server answered before its state showed the ack%s", num(unexplained), num(v.ReadBacks), never)
		return
	}
	add(CodeStaleRead, r.Mode, SeverityInfo, v.StaleReads,
		"%s of %s read-backs after DoubleAck() showed the ack pending while the consumer leader changed: the new leader had not applied it yet%s", num(v.StaleReads), num(v.ReadBacks), never)
}

func redeliveredClause(r ModeResult) string {
	if n := r.Classes.LateAckRedelivered; n > 0 {
		return fmt.Sprintf("; %s of them were redelivered", num(n))
	}
	return ""
}

// pauseClause says when the probe's own read-backs held its acks back for
// longer than the AckWait in all: part of the lateness is then the
// probe's measuring, which a consumer without read-backs does not have.
func pauseClause(r ModeResult, ackWait time.Duration) string {
	pause := time.Duration(r.ReadBackPause)
	if pause < ackWait || r.Visibility.ReadBacks == 0 {
		return ""
	}
	return fmt.Sprintf("; the probe's own %d read-backs held its acks back for %s in all, longer than the AckWait: part of this is its measuring (a larger --count spreads them over more messages)",
		r.Visibility.ReadBacks, pause.Round(100*time.Microsecond))
}

func serverReached(r ModeResult) int64 {
	if r.Server == nil {
		return 0
	}
	return r.Server.ReachedAckWait
}

func serverClause(r ModeResult) string {
	if r.Server == nil || r.Server.Events == 0 {
		return ""
	}
	v := r.Server.AckTimeUS
	return fmt.Sprintf(" (the server's own ack_time: p50 %s, p99 %s, max %s)", usDuration(v.P50), usDuration(v.P99), usDuration(v.Max))
}

// outcome fills OK, Problems and Notes from the findings.
func outcome(fs []Finding) (ok bool, problems, notes []string) {
	problems = []string{}
	for _, f := range fs {
		if f.Severity == SeverityFail {
			problems = append(problems, f.Message)
		} else {
			notes = append(notes, f.Message)
		}
	}
	return len(problems) == 0, problems, notes
}

func num[T ~int | ~int64](v T) string { return humanize.Comma(int64(v)) }

func usDuration(us float64) string {
	d := time.Duration(us * float64(time.Microsecond))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
