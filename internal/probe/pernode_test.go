package probe_test

import (
	"context"
	"encoding/json"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// slowDown pauses a nats-server process for a few milliseconds at a time
// (SIGSTOP, SIGCONT), most of the time, until stop is called: a node that
// stalls, as one with a slow disk or a starved CPU does.
func slowDown(t *testing.T, p *natstest.Process) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pid := p.Pid()
		for {
			select {
			case <-done:
				_ = syscall.Kill(pid, syscall.SIGCONT)
				return
			default:
			}
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(6 * time.Millisecond)
			_ = syscall.Kill(pid, syscall.SIGCONT)
			time.Sleep(time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// perNodeRun runs a per-node probe; slow, when not empty, names a node to
// slow down (slowDown) during the round it leads: a node that is slow
// when it leads, and can still be elected.
func perNodeRun(t *testing.T, c *natstest.ProcessCluster, id, slow string) *probe.Result {
	t.Helper()
	// Connected to n1 alone: the client's own route never goes through a
	// slowed node.
	nc, js := natstest.Connect(t, c.Nodes[0].URL, nats.DontRandomize(), nats.IgnoreDiscoveredServers())
	_, watcher := natstest.Connect(t, c.Nodes[0].URL)
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.ID, cfg.Count, cfg.PerNode = id, 400, true
	stop := func() {}
	cfg.Progress = func(p probe.Progress) {
		if slow == "" {
			return
		}
		if p.Phase == "done" {
			stop() // the round is over
			stop = func() {}
			return
		}
		if p.Phase != "publish" || p.Done != 0 {
			return
		}
		// A round begins, its leaders in place.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := watcher.Consumer(ctx, "ACKPROBE_"+id, "ACKPROBE_"+id)
		if err == nil && cons.CachedInfo().Cluster != nil && cons.CachedInfo().Cluster.Leader == slow {
			stop = slowDown(t, c.Nodes[c.Index(slow)])
		}
	}
	defer func() { stop() }()
	cfg.Timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := probe.Run(ctx, nc, js, cfg)
	if res != nil {
		b, _ := json.Marshal(res.Findings)
		t.Logf("findings %s", b)
		for _, n := range res.Nodes {
			var l probe.Latency
			if len(n.Modes) > 0 {
				l = n.Modes[0].AckLatencyUS
			}
			t.Logf("%s led %v placement %q p50 %.0fµs p90 %.0fµs mean %.0fµs leaders %v", n.Server, n.LedWholeRound, n.Placement, l.P50, l.P90, l.Mean, n.Leaders)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestPerNode moves the probe's leaders to each server of a 3-node
// cluster in turn: with one node slowed down, that node is named the
// slowest by a wide margin; with none, no node is named.
func TestPerNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of nats-server processes")
	}
	c := natstest.RunClusterProcesses(t, 3)
	check := func(res *probe.Result) {
		t.Helper()
		if len(res.Nodes) != 3 {
			t.Fatalf("nodes %+v", res.Nodes)
		}
		for _, n := range res.Nodes {
			if !n.Probed || !n.LedWholeRound || len(n.Modes) != 1 || n.Modes[0].Acks != 400 {
				t.Errorf("node %s: probed %v led %v placement %q modes %d", n.Server, n.Probed, n.LedWholeRound, n.Placement, len(n.Modes))
			}
		}
	}
	t.Run("even", func(t *testing.T) {
		res := perNodeRun(t, c, "EVEN", "")
		check(res)
		said := 0
		for _, f := range res.Findings {
			if f.Code == probe.CodeNoSystemData {
				said++
			}
		}
		if said != 1 {
			t.Errorf("without system account access, said %d times that the server list is unavailable, want once", said)
		}
		for _, f := range res.Findings {
			if f.Code == probe.CodeSlowNode {
				t.Errorf("a node was named slow on an even cluster: %s", f.Message)
			}
		}
	})
	t.Run("one slow", func(t *testing.T) {
		res := perNodeRun(t, c, "SLOW", "n3")
		check(res)
		var slow *probe.Finding
		for i, f := range res.Findings {
			if f.Code == probe.CodeSlowNode {
				slow = &res.Findings[i]
			}
		}
		if slow == nil || slow.Node != "n3" || slow.Severity != probe.SeverityWarn {
			t.Errorf("the slowed node n3 was not named: %+v", slow)
		}
	})
}
