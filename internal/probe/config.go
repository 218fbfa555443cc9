package probe

import (
	"crypto/rand"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
)

// Mode is a way of acknowledging a message.
type Mode string

const (
	// Standard is jetstream.Msg.Ack: a publish that returns once buffered.
	Standard Mode = "standard"
	// Confirmed is jetstream.Msg.DoubleAck: a request that returns once the
	// server has processed the ack.
	Confirmed Mode = "confirmed"
)

// ParseMode turns a flag value into a Mode.
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(strings.TrimSpace(s))) {
	case Standard:
		return Standard, nil
	case Confirmed:
		return Confirmed, nil
	}
	return "", fmt.Errorf("unknown ack mode %q: use standard or confirmed", s)
}

// Config is everything one probe (Open, then Rounds, then Close) needs.
type Config struct {
	// Modes run in this order, each on its own Count messages.
	Modes []Mode
	// Count is the number of messages per mode; 1 is the classic scenario.
	Count int
	// Stream, Subject and Consumer are empty for new ones named after ID.
	Stream, Subject, Consumer string
	// Storage is "memory" or "file" for a stream the probe creates; empty
	// means memory. For a stream that exists, a given value must match it.
	Storage string
	// Replicas of a stream the probe creates; 0 means 1. For a stream that
	// exists, a given value must match it.
	Replicas int
	// AckWait of a consumer the probe creates; a reused consumer keeps its
	// own, which the Result reports.
	AckWait time.Duration
	// MatchAckWait refuses to reuse a consumer whose AckWait is not
	// AckWait (*UsageError): set when the user gave AckWait, so that a
	// run never reports an AckWait it was not asked for.
	MatchAckWait bool
	// Concurrency is the number of confirmed acks in flight at once.
	Concurrency int
	// MaxAckPending of a consumer the probe creates; 0 means ackprobe's
	// default, lowered to the account's max_ack_pending when that is less.
	// A reused consumer must have the MaxAckPending given (*UsageError
	// otherwise); with 0 it keeps its own.
	MaxAckPending int
	// Retries bounds how often a failed confirmed ack is sent again; -1:
	// as often as fits before the delivery's AckWait runs out. Below -1 is
	// a *UsageError.
	Retries int
	// AckTimeout bounds one confirmed-ack attempt; zero means a third of
	// the AckWait (at least 50ms, at most Timeout), so that a retried ack
	// still lands in time.
	AckTimeout time.Duration
	// ServerSample is the sample_freq of a consumer ackprobe creates:
	// "auto", a percentage such as "100%", or empty for none.
	ServerSample string
	// Thresholds turn the measurements into checks.
	Thresholds Thresholds
	// Keep leaves what the probe created in place for the next run.
	Keep bool
	// PerNode runs a round with each server of the probe stream's peer set
	// leading the stream and consumer (a cluster, nats-server 2.11 or
	// later); Replicas defaults to 3 then.
	PerNode bool
	// Timeout bounds every request to the server.
	Timeout time.Duration
	// ID names the run; empty means a random one.
	ID string
	// CollectRedeliveries makes each mode, after acking, wait up to eight
	// AckWaits for the redeliveries of lost acks (fault injection); without
	// it a mode waits one AckWait.
	CollectRedeliveries bool
	// InactiveThreshold is the consumer's inactive_threshold when the probe
	// creates it without Keep, so that the server removes a consumer a
	// killed ackprobe left; zero means 10 minutes.
	InactiveThreshold time.Duration
	// MaxAge is the max_age of a stream the probe creates, so that even a
	// killed ackprobe's messages go; zero means one hour plus 5ms per
	// message.
	MaxAge time.Duration

	// Server is the server the connection reached, as the command knows
	// it (connect.Conn.ServerInfo); the Result reports it.
	Server doc.ServerInfo
	// Faults describes the fault injection in the path, if any.
	Faults *FaultInjection
	// Progress, when set, is told what the probe is doing.
	Progress func(Progress)
	// Observer, when set, receives every latency measurement as it is
	// taken (the canary's histograms).
	Observer Observer
}

// FaultInjection is the fault proxy's configuration and a way to read its
// counters (connect.Conn.Proxy.Stats).
type FaultInjection struct {
	DropRate float64
	CutAfter int
	Stats    func() FaultStats
}

// FaultStats are the fault proxy's running totals.
type FaultStats struct {
	AckFrames, AcksDropped, AcksCut, Cuts, Connections int64
}

// Progress says what a probe is doing: Phase is "publish", "ack",
// "settle" (the final read-back), "collect" (the server had not applied
// every ack: waiting for those messages to come back and acking them;
// Done of Total such messages), or "done" when the mode is over; Done of
// Total messages of Mode.
type Progress struct {
	Phase       string
	Mode        Mode
	Done, Total int
}

// Observer receives measurements as they are taken. Calls may come from
// several goroutines at once and must not block.
type Observer interface {
	// AckDuration is one ack call: Ack() or DoubleAck() until it returned.
	AckDuration(m Mode, d time.Duration)
	// AckVisibility is the time from an ack call's return until consumer
	// info showed the ack (one read round trip included).
	AckVisibility(m Mode, d time.Duration)
	// ServerAckTime is the server's delivery→ack-applied time from a
	// sampled consumer_ack metric event.
	ServerAckTime(m Mode, d time.Duration)
}

// DefaultConfig returns the contract's defaults for the given modes.
func DefaultConfig(modes ...Mode) Config {
	return Config{
		Modes:       modes,
		Count:       1,
		AckWait:     30 * time.Second,
		Concurrency: 1,
		Retries:     -1,
		Timeout:     5 * time.Second,

		ServerSample: "auto",
	}
}

// ackTimeout is the time limit of one confirmed-ack attempt.
func (c *Config) ackTimeout(ackWait time.Duration) time.Duration {
	if c.AckTimeout > 0 {
		return c.AckTimeout
	}
	// Below 50ms an attempt would time out on a busy machine's round
	// trip alone, failing acks the server applied.
	return min(c.Timeout, max(ackWait/3, 50*time.Millisecond))
}

// ParseStorage turns a flag value into a storage name: "memory" or "file".
func ParseStorage(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "memory", "mem":
		return "memory", nil
	case "file":
		return "file", nil
	}
	return "", fmt.Errorf("unknown storage %q: use memory or file", s)
}

func storageType(s string) jetstream.StorageType {
	if s == "file" {
		return jetstream.FileStorage
	}
	return jetstream.MemoryStorage
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.FileStorage {
		return "file"
	}
	return "memory"
}

// Validate checks the configuration before anything touches the server.
func (c *Config) Validate() error {
	if len(c.Modes) == 0 {
		return usage("no ack mode to probe")
	}
	for _, m := range c.Modes {
		if m != Standard && m != Confirmed {
			return usage("unknown ack mode %q: use standard or confirmed", m)
		}
	}
	if c.Count < 1 {
		return usage("--count must be at least 1, got %d", c.Count)
	}
	if c.Concurrency < 1 {
		return usage("--concurrency must be at least 1, got %d", c.Concurrency)
	}
	if c.MaxAckPending < 0 {
		return usage("--max-ack-pending must not be negative, got %d", c.MaxAckPending)
	}
	if c.MaxAckPending > 0 && c.MaxAckPending < c.Concurrency {
		return usage("--max-ack-pending %d is below --concurrency %d: the server would hold back the acks' messages", c.MaxAckPending, c.Concurrency)
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return usage("--replicas must be between 1 and 5, got %d", c.Replicas)
	}
	if c.PerNode && c.Replicas == 1 {
		return usage("--per-node moves the leaders of a replicated stream: --replicas 1 has one server only; use --replicas 3 (the default under --per-node)")
	}
	if c.Storage != "" {
		if _, err := ParseStorage(c.Storage); err != nil {
			return usage("--storage: %v", err)
		}
	}
	if c.AckWait < time.Millisecond {
		// Below 1ms every ack is late by construction: one round trip to
		// the server takes longer, so the run would measure nothing.
		return usage("--ack-wait must be at least 1ms, got %s", c.AckWait)
	}
	if c.AckTimeout < 0 {
		return usage("--ack-timeout must not be negative, got %s", c.AckTimeout)
	}
	if c.Timeout <= 0 {
		return usage("--timeout must be positive, got %s", c.Timeout)
	}
	if err := ValidateName("stream", c.Stream); err != nil {
		return err
	}
	if err := ValidateName("consumer", c.Consumer); err != nil {
		return err
	}
	if _, err := ParseSample(c.ServerSample); err != nil {
		return err
	}
	if c.Subject != "" && !server.IsValidPublishSubject(c.Subject) {
		return usage("--subject %q is not a valid subject to publish to (no wildcards, spaces or empty tokens)", c.Subject)
	}
	if c.Subject != "" && strings.HasPrefix(c.Subject, "$") {
		return usage("--subject %q is in a reserved namespace ($JS, $SYS, ...)", c.Subject)
	}
	// The longest request the probe sends is the consumer create, whose
	// subject holds the stream, consumer and subject; nats-server closes
	// a connection whose protocol line passes max_control_line (4096
	// bytes by default), which would leak the stream created before it.
	if n := len("$JS.API.CONSUMER.CREATE...") + max(len(c.Stream), 17) + max(len(c.Consumer), 17) + max(len(c.Subject), 17); n > maxRequestSubject {
		return usage("--stream, --consumer and --subject are %d bytes together: the consumer-create request would pass the server's protocol line limit (max_control_line, 4096 bytes by default); keep them under %d", n, maxRequestSubject)
	}
	if c.Thresholds.any() && !slices.Contains(c.Modes, Confirmed) {
		return usage("--max-ack-latency and --min-rate measure confirmed acks, and this run has none: use them with compare or ack --mode confirmed")
	}
	if c.Thresholds.MaxAckLatency < 0 {
		return usage("--max-ack-latency must not be negative, got %s", c.Thresholds.MaxAckLatency)
	}
	if r := c.Thresholds.MinRate; r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return usage("--min-rate must be a rate in acks per second, 0 or more, got %g", r)
	}
	if c.Retries < -1 {
		return usage("--retries must be -1 (as often as fits before the AckWait runs out) or more, got %d", c.Retries)
	}
	return nil
}

// maxRequestSubject leaves room, in a 4096-byte protocol line, for the
// verb, the reply inbox (with any --inbox-prefix) and the size.
const maxRequestSubject = 3072

// ValidateName checks a stream or consumer name against JetStream's rules;
// an empty name is allowed (it means "a new one").
func ValidateName(kind, name string) error {
	if name == "" {
		return nil
	}
	if strings.ContainsAny(name, " \t\r\n\f.*>/\\") {
		return usage("--%s %q is not a valid %s name: no spaces, dots, wildcards (* >) or path separators", kind, name, kind)
	}
	if len(name) > 255 {
		return usage("--%s name is longer than 255 characters", kind)
	}
	return nil
}

// newID returns a short random identifier made of upper case letters and
// digits, safe in stream, consumer and subject names.
func newID() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// UsageError is a configuration that cannot run.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usage(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ParseSample checks a --server-sample value: "auto", "off", "0" or a
// percentage from 1 to 100 with or without "%". It returns the normal form
// ("auto", "N%", or "" for off).
func ParseSample(v string) (string, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	switch v {
	case "auto":
		return v, nil
	case "", "off", "0", "0%":
		return "", nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
	if err != nil || n < 1 || n > 100 {
		return "", usage("--server-sample %q: use auto, off or a percentage from 1%% to 100%%", v)
	}
	return fmt.Sprintf("%d%%", n), nil
}

// samplePercent resolves the sample frequency for count messages per mode.
// nats-server samples an ack when rand.Int32N(100) <= sample_freq
// (consumer.go shouldSample), so "N%" below 100 reports about N+1 percent
// of acks. "auto" samples every ack up to 1,000 per mode and aims at about
// 1,000 per mode beyond; the smallest share the server offers, "1%", reports
// about 2%, so above 50,000 messages auto reports about 2% of them.
func samplePercent(sample string, count int) string {
	sample, _ = ParseSample(sample)
	if sample != "auto" {
		return sample
	}
	if count <= 1000 {
		return "100%"
	}
	return fmt.Sprintf("%d%%", max(1, 100*1000/count-1))
}
