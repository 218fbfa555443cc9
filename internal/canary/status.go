package canary

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// Overall statuses of /status and ackprobe_status.
const (
	StatusOK       = "ok"
	StatusDegraded = "degraded"
	StatusFailing  = "failing"
	// StatusUnknown is the status before the first round ended.
	StatusUnknown = "unknown"
)

// Verdicts of one round.
const (
	VerdictOK     = "ok"     // finished; no finding worse than info
	VerdictWarn   = "warn"   // finished; a warn finding, none failing
	VerdictFailed = "failed" // finished; a failing finding
	VerdictError  = "error"  // could not finish
)

// Error kinds of a round that could not finish.
const (
	ErrorConnect        = "connect"         // could not connect to the server
	ErrorConnectionLost = "connection_lost" // the connection went away during the round
	ErrorNotFound       = "not_found"       // the probe stream or consumer had vanished; set up again
	ErrorRefused        = "refused"         // setting up the probe was refused (not ackprobe's, a user's stream that changed)
	ErrorPermission     = "permission"      // the server denied a request
	ErrorTimeout        = "timeout"         // the server did not answer in time
	ErrorOther          = "other"
)

// Outcome is one round as the canary saw it.
type Outcome struct {
	// Round numbers the canary's rounds from 1, every attempt counted.
	Round          int
	Started, Ended time.Time
	// Result is the probe's Result, partial when Err is set; nil when the
	// round could not start (no connection, no probe stream).
	Result *probe.Result
	Err    error
	// ErrMessage is Err explained in one line (Config.Explain).
	ErrMessage string
	// Reached is set when the round reached the server: it finished, or
	// the server answered the request that ended it.
	Reached bool
	// Reconnects is the number of reconnects of the connection since the
	// previous round.
	Reconnects int
	// Recreated is set when, after this round, the probe stream and
	// consumer were set up again because they had vanished.
	Recreated bool
}

// Duration is the round's time from start to end.
func (o Outcome) Duration() time.Duration { return o.Ended.Sub(o.Started) }

// Verdict is ok, warn, failed or error: from the error, then from the
// worst severity among the findings.
func (o Outcome) Verdict() string {
	switch {
	case o.Err != nil:
		return VerdictError
	case o.Result == nil:
		return VerdictError
	case !o.Result.OK:
		return VerdictFailed
	}
	for _, f := range o.Result.Findings {
		if f.Severity == probe.SeverityWarn {
			return VerdictWarn
		}
	}
	return VerdictOK
}

// ResultLabel is the round's result label of ackprobe_rounds_total: ok
// (verdicts ok and warn), failed or error.
func (o Outcome) ResultLabel() string {
	switch o.Verdict() {
	case VerdictError:
		return ResultError
	case VerdictFailed:
		return ResultFailed
	}
	return ResultOK
}

// ErrorKind classes an error that ended a round ("" for none).
func ErrorKind(err error) string {
	var (
		lost    *probe.ConnectionLostError
		denied  *probe.PermissionError
		refused *probe.RefusedError
		notOurs *probe.NotOwnedError
		use     *probe.UsageError
		dial    *DialError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &dial):
		return ErrorConnect
	case errors.As(err, &lost):
		return ErrorConnectionLost
	case errors.As(err, &denied), errors.Is(err, nats.ErrPermissionViolation):
		return ErrorPermission
	case errors.As(err, &refused), errors.As(err, &notOurs), errors.As(err, &use):
		return ErrorRefused
	case gone(err):
		return ErrorNotFound
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return ErrorTimeout
	}
	return ErrorOther
}

// gone reports errors that mean the probe stream or consumer no longer
// exists on the server.
func gone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerDeleted)
}

// RoundSummary is one round in /status.
type RoundSummary struct {
	Round     int          `json:"round"`
	Started   time.Time    `json:"started"`
	Elapsed   doc.Duration `json:"elapsed"`
	ElapsedMS float64      `json:"elapsed_ms"`
	// Verdict is ok, warn, failed or error (see Outcome.Verdict).
	Verdict string `json:"verdict"`
	// ServerName is the server the connection was on; ConsumerLeader the
	// probe consumer's leader on a cluster.
	ServerName     string        `json:"server_name,omitempty"`
	ConsumerLeader string        `json:"consumer_leader,omitempty"`
	Modes          []ModeSummary `json:"modes,omitempty"`
	// Findings are the round's, as the probe derived them.
	Findings []probe.Finding `json:"findings"`
	Error    *RoundError     `json:"error,omitempty"`
}

// ModeSummary is one mode of a round, in microseconds where the key says
// _us (the client's ack call; the visibility lag over stale read-backs).
type ModeSummary struct {
	Mode        probe.Mode `json:"mode"`
	Acks        int        `json:"acks"`
	Errors      int        `json:"errors"`
	Retries     int        `json:"retries"`
	StaleReads  int        `json:"stale_reads"`
	Redelivered int        `json:"redelivered"`
	AckP50US    float64    `json:"ack_p50_us"`
	AckP99US    float64    `json:"ack_p99_us"`
	AckMaxUS    float64    `json:"ack_max_us"`
	LagP99US    float64    `json:"visibility_lag_p99_us"`
}

// RoundError is why a round could not finish.
type RoundError struct {
	// Kind classes the error: connect, connection_lost, not_found,
	// refused, permission, timeout or other.
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Summarize turns an Outcome into its /status entry.
func Summarize(o Outcome) RoundSummary {
	s := RoundSummary{
		Round:     o.Round,
		Started:   o.Started.UTC(),
		Elapsed:   doc.Duration(o.Duration().Round(time.Microsecond)),
		ElapsedMS: doc.Millis(o.Duration()),
		Verdict:   o.Verdict(),
		Findings:  []probe.Finding{},
	}
	if o.Err != nil {
		msg := o.ErrMessage
		if msg == "" {
			msg = oneLine(o.Err.Error())
		}
		s.Error = &RoundError{Kind: ErrorKind(o.Err), Message: msg}
	}
	if res := o.Result; res != nil {
		s.ServerName = res.Server.Name
		s.ConsumerLeader = leaderOf(res)
		s.Findings = append(s.Findings, res.Findings...)
		for _, m := range res.Modes {
			s.Modes = append(s.Modes, ModeSummary{
				Mode: m.Mode, Acks: m.Acks, Errors: m.Errors, Retries: m.Retries,
				StaleReads: m.Visibility.StaleReads, Redelivered: m.Redelivered,
				AckP50US: m.AckLatencyUS.P50, AckP99US: m.AckLatencyUS.P99, AckMaxUS: m.AckLatencyUS.Max,
				LagP99US: m.Visibility.LagUS.P99,
			})
		}
	}
	return s
}

// Rules are the window rules of the overall status.
type Rules struct {
	// Rounds is the size of the window: the last Rounds rounds are kept
	// and judged.
	Rounds int `json:"rounds"`
	// FailingAfter is the number of rounds in a row that must fail or
	// error for the status to be failing.
	FailingAfter int `json:"failing_after"`
	// StalledAfter is how long without a round ending makes the status
	// failing: three intervals plus the longest a round may take.
	StalledAfter   doc.Duration `json:"stalled_after"`
	StalledAfterMS float64      `json:"stalled_after_ms"`
}

// Totals count every round since the canary started.
type Totals struct {
	Rounds int `json:"rounds"`
	OK     int `json:"ok"`
	Warn   int `json:"warn"`
	Failed int `json:"failed"`
	Error  int `json:"error"`
}

// Status is the /status document.
type Status struct {
	// Status is ok, degraded, failing, or unknown before the first round
	// ended; Reason says why in one sentence.
	Status string `json:"status"`
	Reason string `json:"reason"`
	// Ready is set once a round reached the server (it stays set); Up
	// when the last round did and the connection has not been down for
	// more than DisconnectGrace since.
	Ready bool `json:"ready"`
	Up    bool `json:"up"`
	// Connected is the canary's connection now; DisconnectedSince is
	// when it was first seen down (checked every 250ms), while it is.
	Connected         bool       `json:"connected"`
	DisconnectedSince *time.Time `json:"disconnected_since,omitempty"`
	Rules             Rules      `json:"window"`
	// Canary says what this canary probes and how often.
	Canary Info   `json:"canary"`
	Totals Totals `json:"totals"`
	// LastRoundEnded is when the last round ended, if any did.
	LastRoundEnded *time.Time `json:"last_round_ended,omitempty"`
	// Rounds are the rounds of the window, the newest first.
	Rounds []RoundSummary `json:"rounds"`
	// Leftovers are what the canary could not remove while it ran (a
	// cleanup cut short by a broken connection), each with the command
	// that removes it.
	Leftovers []probe.Leftover `json:"leftovers,omitempty"`
}

// Info describes the canary in /status.
type Info struct {
	ID         string         `json:"id"`
	Version    string         `json:"version"`
	Server     doc.ServerInfo `json:"server"`
	Stream     string         `json:"stream,omitempty"`
	Subject    string         `json:"subject,omitempty"`
	Consumer   string         `json:"consumer,omitempty"`
	Modes      []probe.Mode   `json:"modes"`
	Count      int            `json:"count"`
	Interval   doc.Duration   `json:"interval"`
	IntervalMS float64        `json:"interval_ms"`
	Started    time.Time      `json:"started"`
}

// History keeps the canary's last rounds (a fixed-size ring: its memory
// does not grow with the number of rounds) and judges the overall status
// over them, Burrow-style: a trend over a window, not a single round.
//
// The rules, in order:
//   - unknown: no round has ended yet;
//   - failing: no round ended for StalledAfter (the canary is stuck), or
//     the last FailingAfter rounds (all of the window's rounds, when it
//     holds fewer) all failed or errored;
//   - degraded: the connection has been down for more than
//     DisconnectGrace (a round in progress is waiting for the server: an
//     outage shows before that round ends), or a round of the window
//     failed, errored or warned;
//   - ok: every round of the window was ok (info findings allowed).
//
// It is safe for concurrent use.
type History struct {
	mu     sync.Mutex
	rules  Rules
	ring   []RoundSummary
	next   int
	n      int
	totals Totals
	ready  bool
	up     bool
	last   time.Time
	info   Info
	left   []probe.Leftover
	// down is when the connection was first seen down, zero while it is
	// up (see Connection).
	down time.Time
}

// DisconnectGrace is how long the canary's connection may be down (a
// reconnect to another server of the cluster) before /status and
// ackprobe_up say so.
const DisconnectGrace = 2 * time.Second

// Connection records whether the canary's connection is up at now.
func (h *History) Connection(up bool, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case up:
		h.down = time.Time{}
	case h.down.IsZero():
		h.down = now
	}
}

// Up reports whether the last round reached the server and the
// connection has not been down for more than DisconnectGrace since.
func (h *History) Up(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.upAt(now)
}

func (h *History) upAt(now time.Time) bool {
	return h.up && !h.downAt(now)
}

// downAt reports whether the connection has been down for more than
// DisconnectGrace at now. h.mu is held.
func (h *History) downAt(now time.Time) bool {
	return !h.down.IsZero() && now.Sub(h.down) > DisconnectGrace
}

// NewHistory keeps the last window rounds (at least 1); failingAfter
// rounds in a row that fail or error (at most window) make the status
// failing, and so does no round ending for stalledAfter.
func NewHistory(window, failingAfter int, stalledAfter time.Duration, info Info) *History {
	window = max(1, window)
	return &History{
		rules: Rules{Rounds: window, FailingAfter: min(max(1, failingAfter), window),
			StalledAfter: doc.Duration(stalledAfter), StalledAfterMS: doc.Millis(stalledAfter)},
		ring: make([]RoundSummary, window),
		info: info,
	}
}

// Add records a round.
func (h *History) Add(o Outcome) {
	s := Summarize(o)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
	h.totals.Rounds++
	switch s.Verdict {
	case VerdictOK:
		h.totals.OK++
	case VerdictWarn:
		h.totals.Warn++
	case VerdictFailed:
		h.totals.Failed++
	default:
		h.totals.Error++
	}
	h.up = o.Reached
	h.ready = h.ready || o.Reached
	h.last = o.Ended
	if res := o.Result; res != nil && o.Reached {
		h.info.Server = res.Server
		h.info.Stream, h.info.Subject, h.info.Consumer = res.Stream, res.Subject, res.Consumer
	}
}

func (h *History) setLeftovers(left []probe.Leftover) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.left = slices.Clone(left)
}

// Ready reports whether a round has reached the server.
func (h *History) Ready() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ready
}

// recent returns the window's rounds, newest first. h.mu is held.
func (h *History) recent() []RoundSummary {
	out := make([]RoundSummary, 0, h.n)
	for i := 1; i <= h.n; i++ {
		out = append(out, h.ring[(h.next-i+len(h.ring))%len(h.ring)])
	}
	return out
}

// Overall judges the window at now: the status and why.
func (h *History) Overall(now time.Time) (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.judge(now)
}

func (h *History) judge(now time.Time) (string, string) {
	if h.n == 0 {
		return StatusUnknown, "no round has ended yet"
	}
	if stalled := time.Duration(h.rules.StalledAfter); stalled > 0 && now.Sub(h.last) > stalled {
		return StatusFailing, fmt.Sprintf("no round has ended for %s (more than %s): the canary is stuck", now.Sub(h.last).Round(time.Second), stalled)
	}
	rounds := h.recent()
	bad := func(s RoundSummary) bool { return s.Verdict == VerdictFailed || s.Verdict == VerdictError }
	k := min(h.rules.FailingAfter, len(rounds))
	if !slices.ContainsFunc(rounds[:k], func(s RoundSummary) bool { return !bad(s) }) {
		return StatusFailing, fmt.Sprintf("the last %d round(s) all failed or could not finish; round %d: %s", k, rounds[0].Round, why(rounds[0]))
	}
	if h.downAt(now) {
		return StatusDegraded, fmt.Sprintf("not connected to the server for %s (since %s); rounds resume when it is back",
			now.Sub(h.down).Round(100*time.Millisecond), h.down.UTC().Format("15:04:05 UTC"))
	}
	var failed, errored, warned int
	var worst *RoundSummary
	for i := range rounds {
		switch rounds[i].Verdict {
		case VerdictFailed:
			failed++
		case VerdictError:
			errored++
		case VerdictWarn:
			warned++
		default:
			continue
		}
		if worst == nil || rank(rounds[i].Verdict) > rank(worst.Verdict) {
			worst = &rounds[i]
		}
	}
	if worst != nil {
		return StatusDegraded, fmt.Sprintf("of the last %d rounds %d failed, %d could not finish, %d warned; round %d: %s",
			len(rounds), failed, errored, warned, worst.Round, why(*worst))
	}
	return StatusOK, fmt.Sprintf("the last %d round(s) were ok", len(rounds))
}

func rank(verdict string) int {
	switch verdict {
	case VerdictFailed:
		return 3
	case VerdictError:
		return 2
	case VerdictWarn:
		return 1
	}
	return 0
}

// why is a round's worst finding or its error, in one line.
func why(s RoundSummary) string {
	if s.Error != nil {
		return s.Error.Message
	}
	var worst *probe.Finding
	for i := range s.Findings {
		if worst == nil || s.Findings[i].Severity.Rank() > worst.Severity.Rank() {
			worst = &s.Findings[i]
		}
	}
	if worst == nil {
		return "ok"
	}
	return fmt.Sprintf("%s (%s): %s", worst.Code, worst.Severity, worst.Message)
}

// Status returns the /status document at now.
func (h *History) Status(now time.Time) Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, reason := h.judge(now)
	s := Status{Status: st, Reason: reason, Ready: h.ready, Up: h.upAt(now), Connected: h.down.IsZero(), Rules: h.rules, Canary: h.info,
		Totals: h.totals, Rounds: h.recent(), Leftovers: slices.Clone(h.left)}
	if !h.down.IsZero() {
		t := h.down.UTC()
		s.DisconnectedSince = &t
	}
	s.Canary.Modes = slices.Clone(h.info.Modes)
	if !h.last.IsZero() {
		t := h.last.UTC()
		s.LastRoundEnded = &t
	}
	return s
}
