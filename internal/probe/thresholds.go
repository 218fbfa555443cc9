package probe

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
)

// Thresholds are the limits that make a probe a check (exit code 1 when
// breached). Zero values are off. Both measure confirmed acks, so a run
// without them refuses thresholds (Config.Validate).
type Thresholds struct {
	// MaxAckLatency is the highest acceptable p99 of confirmed ack calls.
	MaxAckLatency time.Duration
	// MinRate is the lowest acceptable number of confirmed acks per second
	// (ModeResult.AcksPerSec).
	MinRate float64
}

func (t Thresholds) any() bool { return t.MaxAckLatency > 0 || t.MinRate > 0 }

// check returns a fail finding per breached threshold.
func (t Thresholds) check(modes []ModeResult) []Finding {
	var out []Finding
	for _, m := range modes {
		if m.Mode != Confirmed {
			continue
		}
		if t.MaxAckLatency > 0 && m.AckLatencyUS.Count > 0 {
			p99 := time.Duration(m.AckLatencyUS.P99 * float64(time.Microsecond))
			if p99 > t.MaxAckLatency {
				out = append(out, Finding{Code: CodeMaxAckLatency, Mode: Confirmed, Severity: SeverityFail, Count: 1,
					Message: fmt.Sprintf("--max-ack-latency breached: confirmed ack p99 %s > %s", usDuration(m.AckLatencyUS.P99), t.MaxAckLatency)})
			}
		}
		if t.MinRate > 0 && m.AcksPerSec < t.MinRate {
			out = append(out, Finding{Code: CodeMinRate, Mode: Confirmed, Severity: SeverityFail, Count: 1,
				Message: fmt.Sprintf("--min-rate breached: %s confirmed acks/s < %s/s", rateText(m.AcksPerSec), rateText(t.MinRate))})
		}
	}
	return out
}

// rateText writes a rate as the tables do: humanized, one decimal below 100.
func rateText(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return humanize.Comma(int64(v + 0.5))
}
