package probe

import (
	"fmt"
	"time"
)

// Thresholds are the limits that make a probe a check (exit code 1 when
// breached). Zero values are off.
type Thresholds struct {
	// MaxAckLatency is the highest acceptable p99 of confirmed acks.
	MaxAckLatency time.Duration
	// MinRate is the lowest acceptable number of confirmed acks per second.
	MinRate float64
}

// check returns one line per breached threshold.
func (t Thresholds) check(res *Result) []string {
	var out []string
	m := res.Mode(Confirmed)
	if m == nil {
		return nil
	}
	if t.MaxAckLatency > 0 && m.AckLatencyUS.Count > 0 {
		p99 := time.Duration(m.AckLatencyUS.P99 * float64(time.Microsecond))
		if p99 > t.MaxAckLatency {
			out = append(out, fmt.Sprintf("--max-ack-latency breached: confirmed ack p99 %s > %s", p99.Round(time.Microsecond), t.MaxAckLatency))
		}
	}
	if t.MinRate > 0 && m.AcksPerSec < t.MinRate {
		out = append(out, fmt.Sprintf("--min-rate breached: %.0f confirmed acks/s < %.0f", m.AcksPerSec, t.MinRate))
	}
	return out
}
