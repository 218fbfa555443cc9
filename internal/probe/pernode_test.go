package probe_test

import (
	"context"
	"encoding/json"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// systemImports is a server configuration whose application account
// imports the system account's server ping services, as an operator who
// wants per-node probes to show raft groups sets it up (see the README).
const systemImports = `
accounts {
  SYS { users: [{user: sys, password: sys}]
        exports: [{service: "$SYS.REQ.SERVER.PING", response: stream}, {service: "$SYS.REQ.SERVER.PING.*", response: stream}] }
  APP { jetstream: enabled, users: [{user: app, password: app}]
        imports: [{service: {account: SYS, subject: "$SYS.REQ.SERVER.PING"}}, {service: {account: SYS, subject: "$SYS.REQ.SERVER.PING.*"}}] }
}
system_account: SYS
`

// TestPerNodeSystemData runs a per-node probe on a 4-node cluster whose
// account may ask the system account's services: the fourth server is
// listed as not probed, each probed node reports the probe's raft groups
// with itself as their leader, and a user's stream and consumer on the
// same cluster keep their leaders and are all that is left afterwards.
func TestPerNodeSystemData(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of nats-server processes")
	}
	c := natstest.RunClusterProcessesConf(t, 4, systemImports, "app:app")
	nc, js := natstest.Connect(t, c.Nodes[0].URL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	user, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	worker, err := user.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "WORKER", AckPolicy: jetstream.AckExplicitPolicy, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	leaders := func() (string, string) {
		si, err := user.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := worker.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return si.Cluster.Leader, ci.Cluster.Leader
	}
	streamLeader, consumerLeader := leaders()

	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.ID, cfg.Count, cfg.PerNode, cfg.Timeout = "SYSDATA", 200, true, 2*time.Second
	res, err := probe.Run(ctx, nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.Code == probe.CodeNoSystemData {
			t.Errorf("the account may ask the system account, yet: %s", f.Message)
		}
	}
	probed := 0
	for _, n := range res.Nodes {
		b, _ := json.Marshal(n.System)
		t.Logf("%s probed %v led %v system %s", n.Server, n.Probed, n.LedWholeRound, b)
		if !n.Probed {
			if n.System != nil {
				t.Errorf("%s was not probed, yet reports raft groups", n.Server)
			}
			continue
		}
		probed++
		s := n.System
		if s == nil || s.Stream == nil || s.Consumer == nil || s.AckQueuePending == nil {
			t.Errorf("%s: incomplete system data %+v", n.Server, s)
			continue
		}
		if n.LedWholeRound && s.Consumer.State != "LEADER" {
			t.Errorf("%s led its round but its consumer group says %s", n.Server, s.Consumer.State)
		}
		if s.Stream.State != "LEADER" {
			t.Errorf("%s was placed as stream leader but its stream group says %s", n.Server, s.Stream.State)
		}
		if s.Stream.Group == "" || s.Consumer.Group == "" || s.Stream.Group == s.Consumer.Group {
			t.Errorf("%s: groups %q and %q", n.Server, s.Stream.Group, s.Consumer.Group)
		}
		if s.Consumer.Committed == 0 || s.Consumer.Applied > s.Consumer.Committed {
			t.Errorf("%s: consumer group committed %d applied %d", n.Server, s.Consumer.Committed, s.Consumer.Applied)
		}
	}
	if probed != 3 || len(res.Nodes) != 4 {
		t.Errorf("%d nodes listed, %d probed; want 4 listed (from the system account's server list), 3 probed", len(res.Nodes), probed)
	}

	if s, c := leaders(); s != streamLeader || c != consumerLeader {
		t.Errorf("the user's stream and consumer were moved: leaders %s/%s, were %s/%s", s, c, streamLeader, consumerLeader)
	}
	var left []string
	for name := range js.StreamNames(ctx).Name() {
		left = append(left, name)
	}
	if len(left) != 1 || left[0] != "ORDERS" {
		t.Errorf("streams left: %v, want the user's ORDERS alone", left)
	}
	cons := 0
	for range user.ConsumerNames(ctx).Name() {
		cons++
	}
	if cons != 1 {
		t.Errorf("ORDERS has %d consumers, want the user's WORKER alone", cons)
	}
}
