// Package bench measures ackprobe's probe against a plain nats.go loop doing
// the same work on the same nats-server, a separate process built from the
// pinned module. Run with: make bench
package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// roundSize is the number of messages acked per round by each side.
const roundSize = 4000

var (
	serverOnce sync.Once
	serverURL  string
	cleanups   []func()
)

// TestMain stops the shared server after the last benchmark.
func TestMain(m *testing.M) {
	os.Exit(natstest.Main(m, func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}))
}

// server starts one separate nats-server process for all benchmarks.
func server(b *testing.B) string {
	b.Helper()
	serverOnce.Do(func() {
		p := natstest.RunServerProcess(deferred{b})
		serverURL = p.URL
	})
	return serverURL
}

// deferred hands natstest a TB whose cleanups run in TestMain, so the
// server outlives the benchmark that started it.
type deferred struct{ testing.TB }

func (deferred) Cleanup(f func()) { cleanups = append(cleanups, f) }

func (deferred) TempDir() string {
	d, _ := os.MkdirTemp("", "ackprobe-bench-")
	cleanups = append(cleanups, func() { os.RemoveAll(d) })
	return d
}

func connect(b *testing.B) (*nats.Conn, jetstream.JetStream) {
	b.Helper()
	nc, err := nats.Connect(server(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return nc, js
}

// side by side: each round runs ackprobe, then the plain loop, on the same
// server; the reported figures are totals over all rounds.
func sideBySide(b *testing.B, mode probe.Mode, inflight int) {
	nc, js := connect(b)
	var probeAcks, plainAcks float64
	var probeTime, plainTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg := probe.DefaultConfig(mode)
		cfg.Count = roundSize
		cfg.Concurrency = inflight
		if os.Getenv("ACKPROBE_BENCH_NOSAMPLE") != "" {
			cfg.ServerSample = ""
		}
		res, err := probe.Run(context.Background(), nc, js, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if !res.OK {
			b.Fatalf("probe problems: %v", res.Problems)
		}
		m := res.Modes[0]
		probeAcks += float64(m.Acks)
		probeTime += time.Duration(float64(m.Acks) / m.AcksPerSec * float64(time.Second))

		n, d := plainLoop(b, js, mode, inflight)
		plainAcks += float64(n)
		plainTime += d
	}
	b.StopTimer()
	ours, theirs := probeAcks/probeTime.Seconds(), plainAcks/plainTime.Seconds()
	b.ReportMetric(ours, "ackprobe-acks/s")
	b.ReportMetric(theirs, "plain-acks/s")
	b.ReportMetric(ours/theirs, "ratio")
	b.ReportMetric(0, "ns/op")
}

// plainLoop is what an application would write with nats.go alone: fetch in
// batches, ack each message (with inflight confirmed acks at once), and for
// standard acks wait until the consumer shows them all, as the probe does.
func plainLoop(b *testing.B, js jetstream.JetStream, mode probe.Mode, inflight int) (int, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := fmt.Sprintf("PLAIN_%d", time.Now().UnixNano())
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"plain." + name}, Storage: jetstream.MemoryStorage})
	if err != nil {
		b.Fatal(err)
	}
	defer js.DeleteStream(context.Background(), name)
	for i := 0; i < roundSize; i++ {
		if _, err := js.PublishAsync("plain."+name, []byte("plain")); err != nil {
			b.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000})
	if err != nil {
		b.Fatal(err)
	}
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	acked := 0
	start := time.Now()
	for acked < roundSize {
		batch, err := cons.Fetch(min(256, roundSize-acked), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for msg := range batch.Messages() {
			acked++
			if mode == probe.Standard {
				if err := msg.Ack(); err != nil {
					b.Fatal(err)
				}
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(m jetstream.Msg) {
				defer func() { <-sem; wg.Done() }()
				if err := m.DoubleAck(ctx); err != nil {
					b.Error(err)
				}
			}(msg)
		}
	}
	wg.Wait()
	for mode == probe.Standard {
		ci, err := cons.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if ci.NumAckPending == 0 {
			break
		}
	}
	return acked, time.Since(start)
}

// BenchmarkConfirmedSerial: one confirmed ack at a time.
func BenchmarkConfirmedSerial(b *testing.B) { sideBySide(b, probe.Confirmed, 1) }

// BenchmarkConfirmed16: 16 confirmed acks in flight.
func BenchmarkConfirmed16(b *testing.B) { sideBySide(b, probe.Confirmed, 16) }

// BenchmarkStandard: standard acks.
func BenchmarkStandard(b *testing.B) { sideBySide(b, probe.Standard, 1) }

// BenchmarkPeakMemory runs the ackprobe binary against the separate server
// with --count 1000 and --count 1000000 and reports its peak resident
// memory for each, and their ratio.
func BenchmarkPeakMemory(b *testing.B) {
	url := server(b)
	bin := filepath.Join(b.TempDir(), "ackprobe")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ackprobe/ackprobe/cmd/ackprobe").CombinedOutput(); err != nil {
		b.Fatalf("build ackprobe: %v\n%s", err, out)
	}
	peak := func(count int) float64 {
		cmd := exec.Command(bin, "compare", "--json", "-s", url, "--count", fmt.Sprint(count), "--concurrency", "16")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ackprobe --count %d: %v\n%s", count, err, out)
		}
		return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024 // MiB
	}
	for i := 0; i < b.N; i++ {
		small := peak(1000)
		large := peak(1_000_000)
		b.ReportMetric(small, "MiB@1k")
		b.ReportMetric(large, "MiB@1M")
		b.ReportMetric(large/small, "ratio")
		b.ReportMetric(0, "ns/op")
	}
}
