package canary

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestMain removes the nats-server binary the soak built.
func TestMain(m *testing.M) { os.Exit(natstest.Main(m)) }

// BenchmarkCanaryRounds is the soak: real rounds back to back (one
// message per mode) against a nats-server process (so the heap measured is
// the canary's alone), b.N of them.
// It reports the time of a round, and the live heap after the first tenth
// of the rounds and after the last (heap-first-B, heap-last-B): a canary
// whose memory grew with the rounds would show it here.
//
//	make soak   # 5,000 rounds
func BenchmarkCanaryRounds(b *testing.B) {
	s := natstest.RunServerProcess(b)
	cfg := probe.DefaultConfig(modes...)
	cfg.Count, cfg.AckWait, cfg.Timeout = 1, 2*time.Second, testTimeout
	var n atomic.Int64
	var first, last uint64
	total := int64(b.N)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := New(Config{Probe: cfg, Interval: time.Nanosecond, Dial: dialer(s.URL),
		OnRound: func(o Outcome, _ string) {
			if o.Verdict() == VerdictError {
				b.Errorf("round %d: %v", o.Round, o.Err)
			}
			i := n.Add(1)
			if i == max(1, total/10) {
				first = heap()
			}
			if i == total {
				last = heap()
				cancel()
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	left, err := c.Run(ctx, 3*testTimeout)
	b.StopTimer()
	if err != nil || len(left) > 0 {
		b.Fatalf("Run: %v, left %v", err, left)
	}
	b.ReportMetric(float64(first), "heap-first-B")
	b.ReportMetric(float64(last), "heap-last-B")
}
