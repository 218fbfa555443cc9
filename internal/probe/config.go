package probe

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
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

// Config is everything one probe run needs to know.
type Config struct {
	// Modes run in this order, each on its own Count messages.
	Modes []Mode
	// Count is the number of messages per mode; 1 is the classic scenario.
	Count int
	// Stream, Subject and Consumer are empty for new ones named after ID.
	Stream, Subject, Consumer string
	// Storage is memory or file.
	Storage jetstream.StorageType
	// Replicas of the stream and consumer that ackprobe creates.
	Replicas int
	// AckWait of the consumer that ackprobe creates.
	AckWait time.Duration
	// Concurrency is the number of confirmed acks in flight at once.
	Concurrency int
	// Retries bounds how often a failed confirmed ack is sent again.
	Retries int
	// AckTimeout bounds one confirmed ack attempt; zero means Timeout.
	AckTimeout time.Duration
	// ServerSample is the sample_freq of a consumer ackprobe creates:
	// "auto", a percentage such as "100%", or empty for none.
	ServerSample string
	// Thresholds turn the measurements into checks.
	Thresholds Thresholds
	// Keep leaves what the probe created in place for the next run.
	Keep bool
	// Timeout bounds every request to the server.
	Timeout time.Duration
	// ID names the run; empty means a random one.
	ID string
	// CollectRedeliveries makes each mode, after acking, fetch until the
	// server holds none of its messages ack-pending, acking redeliveries
	// the same way; lost acks then show as redeliveries after AckWait.
	CollectRedeliveries bool
	// AckFrames, when set, returns how many ack frames have been sent and
	// how many were lost on the way so far (the fault proxy's counts).
	AckFrames func() (sent, lost int64)
	// Progress, when set, is told how many acks of how many are done.
	Progress func(done, total int)
}

// DefaultConfig returns the contract's defaults for the given modes.
func DefaultConfig(modes ...Mode) Config {
	return Config{
		Modes:       modes,
		Count:       1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    1,
		AckWait:     30 * time.Second,
		Concurrency: 1,
		Retries:     3,
		Timeout:     5 * time.Second,

		ServerSample: "auto",
	}
}

// ParseStorage turns a flag value into a storage type.
func ParseStorage(s string) (jetstream.StorageType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "memory", "mem":
		return jetstream.MemoryStorage, nil
	case "file":
		return jetstream.FileStorage, nil
	}
	return 0, fmt.Errorf("unknown storage %q: use memory or file", s)
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
	if c.Replicas < 1 || c.Replicas > 5 {
		return usage("--replicas must be between 1 and 5, got %d", c.Replicas)
	}
	if c.Retries < 0 {
		return usage("--retries must not be negative, got %d", c.Retries)
	}
	if c.AckWait <= 0 {
		return usage("--ack-wait must be positive, got %s", c.AckWait)
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
	return nil
}

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

// samplePercent resolves the sample frequency for count messages per mode:
// "auto" samples every ack up to 1,000 and about 1,000 acks per mode
// beyond, so the server's extra work stays small at any count.
func samplePercent(sample string, count int) string {
	sample, _ = ParseSample(sample)
	if sample != "auto" {
		return sample
	}
	if count <= 1000 {
		return "100%"
	}
	return fmt.Sprintf("%d%%", max(1, 100*1000/count))
}
