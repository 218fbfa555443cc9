package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// parse runs a command line with the probe replaced, returning the parsed
// run (nil when the command line was refused), the exit code and stderr.
func parse(args ...string) (*probeRun, int, string) {
	var got *probeRun
	var out, errb bytes.Buffer
	code := runWith(context.Background(), args, streams{stdout: &out, stderr: &errb}, func(r *probeRun) error {
		got = r
		return nil
	})
	return got, code, errb.String()
}

func TestFlagsToConfig(t *testing.T) {
	r, code, stderr := parse("compare", "-n", "500", "--stream", "S", "--subject", "s.x", "--consumer", "C",
		"--storage", "file", "--replicas", "3", "--ack-wait", "3s", "--concurrency", "8", "--retries", "5",
		"--keep", "--max-ack-latency", "2ms", "--min-rate", "100", "--server-sample", "50", "--timeout", "2s",
		"-s", "nats://a:4222,nats://b:4222", "--js-domain", "hub")
	if code != 0 || r == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	c := r.cfg
	want := probe.Config{Count: 500, Stream: "S", Subject: "s.x", Consumer: "C", Replicas: 3, AckWait: 3 * time.Second,
		Concurrency: 8, Retries: 5, Keep: true, Timeout: 2 * time.Second, ServerSample: "50"}
	if c.Count != want.Count || c.Stream != want.Stream || c.Subject != want.Subject || c.Consumer != want.Consumer ||
		c.Replicas != want.Replicas || c.AckWait != want.AckWait || c.Concurrency != want.Concurrency ||
		c.Retries != want.Retries || !c.Keep || c.Timeout != want.Timeout || c.ServerSample != want.ServerSample {
		t.Errorf("config = %+v", c)
	}
	if c.Thresholds.MaxAckLatency != 2*time.Millisecond || c.Thresholds.MinRate != 100 {
		t.Errorf("thresholds = %+v", c.Thresholds)
	}
	if len(c.Modes) != 2 || c.Modes[0] != probe.Standard || c.Modes[1] != probe.Confirmed {
		t.Errorf("modes = %v", c.Modes)
	}
	if r.g.conn.Servers != "nats://a:4222,nats://b:4222" || r.g.conn.JSDomain != "hub" || r.faults != nil || c.CollectRedeliveries {
		t.Errorf("conn = %+v faults = %+v", r.g.conn, r.faults)
	}

	// Fault injection shortens what was not set, and keeps what was.
	r, code, stderr = parse("ack", "--mode", "standard", "--drop-acks", "0.3")
	if code != 0 || r.faults == nil || r.faults.DropRate != 0.3 || !r.cfg.CollectRedeliveries ||
		r.cfg.AckWait != faultAckWait || r.cfg.Retries != faultRetries || r.cfg.AckTimeout != faultAckWait/10 {
		t.Errorf("fault defaults: exit %d %s %+v", code, stderr, r)
	}
	r, _, _ = parse("ack", "--cut-after", "5", "--ack-wait", "10s", "--retries", "1")
	if r.cfg.AckWait != 10*time.Second || r.cfg.Retries != 1 || r.faults.CutAfter != 5 {
		t.Errorf("explicit values overridden: %+v", r.cfg)
	}
}

// FuzzFlagValues gives every probe flag arbitrary values: the command line
// is either accepted or refused with exit code 2 and one "ackprobe: " line,
// never a panic.
func FuzzFlagValues(f *testing.F) {
	flags := []string{"count", "stream", "subject", "consumer", "storage", "replicas", "ack-wait", "concurrency",
		"retries", "max-ack-latency", "min-rate", "server-sample", "drop-acks", "cut-after", "ack-timeout",
		"timeout", "server", "mode"}
	for i := range flags {
		f.Add(uint8(i), "1")
	}
	f.Add(uint8(16), "nats://user:pass@[::1]:4222")
	f.Add(uint8(6), "1h2m")
	f.Add(uint8(12), "NaN")
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		flag := flags[int(which)%len(flags)]
		args := []string{"ack", "--" + flag + "=" + value}
		if flag != "server" {
			args = append(args, "-s", "nats://127.0.0.1:1")
		}
		r, code, stderr := parse(args...)
		switch code {
		case 0:
			if r == nil {
				t.Fatalf("%v: exit 0 without a run", args)
			}
			if err := r.cfg.Validate(); err != nil {
				t.Fatalf("%v: accepted an invalid config: %v", args, err)
			}
		case 2:
			if !strings.HasPrefix(stderr, "ackprobe: ") || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("%v: stderr %q", args, stderr)
			}
		default:
			t.Fatalf("%v: exit %d", args, code)
		}
	})
}
