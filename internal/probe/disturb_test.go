package probe_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// These tests disturb a cluster of separate nats-server processes while
// the probe runs, as operators do: rolling restarts and a crashed
// consumer leader. The probe must finish, tell the truth and leave
// nothing behind.

// processConn connects to every node of the cluster, reconnecting forever.
func processConn(t *testing.T, c *natstest.ProcessCluster) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return natstest.Connect(t, c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
}

// trigger runs f in its own goroutine the first time a mode's ack phase
// reaches each share of its messages, one f at a time, in order.
type trigger struct {
	mu    sync.Mutex
	at    []triggerPoint
	next  int
	queue chan func()
	done  chan struct{}
}

type triggerPoint struct {
	mode  probe.Mode
	share float64
	f     func()
}

func newTrigger(points ...triggerPoint) *trigger {
	tr := &trigger{at: points, queue: make(chan func(), len(points)), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for f := range tr.queue {
			f()
		}
	}()
	return tr
}

func (tr *trigger) progress(p probe.Progress) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for tr.next < len(tr.at) {
		pt := tr.at[tr.next]
		if p.Phase != "ack" || p.Mode != pt.mode || float64(p.Done) < pt.share*float64(p.Total) {
			return
		}
		tr.queue <- pt.f
		tr.next++
	}
}

// wait waits for every disturbance that was started to end, and reports
// how many were.
func (tr *trigger) wait() int {
	tr.mu.Lock()
	n := tr.next
	close(tr.queue)
	tr.mu.Unlock()
	<-tr.done
	return n
}

func noProbeStreams(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, "ACKPROBE_") {
			t.Errorf("stream %s left behind", name)
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("list streams: %v", err)
	}
}

// TestRollingRestart restarts each node of a 3-node cluster in turn
// (SIGTERM, then started again) during an R3 file-storage compare of tens
// of thousands of messages.
func TestRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of nats-server processes")
	}
	c := natstest.RunClusterProcesses(t, 3)
	nc, js := processConn(t, c)
	restart := func(i int) func() {
		return func() {
			c.Nodes[i].Term(10 * time.Second)
			c.Nodes[i].Start()
			c.WaitReady(60 * time.Second)
		}
	}
	tr := newTrigger(
		triggerPoint{probe.Standard, 0.3, restart(0)},
		triggerPoint{probe.Confirmed, 0.1, restart(1)},
		triggerPoint{probe.Confirmed, 0.5, restart(2)},
	)
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Count, cfg.Replicas, cfg.Storage = 20000, 3, "file"
	cfg.AckWait, cfg.Timeout = 5*time.Second, 2*time.Second
	cfg.Progress = tr.progress
	res, err := probe.Run(context.Background(), nc, js, cfg)
	restarts := tr.wait()
	if res != nil {
		b, _ := json.Marshal(res.Findings)
		t.Logf("%d restarts; findings %s", restarts, b)
		for _, m := range res.Modes {
			t.Logf("%s: acks %d retries %d disturbance %+v classes %+v", m.Mode, m.Acks, m.Retries, m.Disturbance, m.Classes)
		}
	}
	if err != nil {
		t.Fatalf("the run did not ride out the restarts: %v", err)
	}
	if !res.OK {
		t.Errorf("problems: %v", res.Problems)
	}
	rode := 0
	for _, m := range res.Modes {
		if m.Acks != cfg.Count || m.Classes.RedeliveredAfterConfirmedAck != 0 {
			t.Errorf("%s: acks %d, classes %+v", m.Mode, m.Acks, m.Classes)
		}
		rode += m.Disturbance.Reconnects + m.Disturbance.LeaderChanges
	}
	if restarts < 3 {
		t.Errorf("only %d of 3 restarts happened during the run", restarts)
	}
	// The client's own node went down once: at least that reconnect shows.
	if rode == 0 {
		t.Errorf("no reconnect or leader change counted across %d restarts", restarts)
	}
	noProbeStreams(t, js)
}

// TestKillConsumerLeader kills the consumer leader's node (SIGKILL) during
// an R3 confirmed run and starts it again once another node leads: every
// ack ends confirmed, none is called broken. A batch the dead leader had
// sent towards the client is lost with it; the new leader redelivers it
// after AckWait, and the run says so (lost_delivery, info).
func TestKillConsumerLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of nats-server processes")
	}
	c := natstest.RunClusterProcesses(t, 3)
	nc, js := processConn(t, c)
	cfg := probe.DefaultConfig(probe.Confirmed)
	cfg.ID = "KILL"
	cfg.Count, cfg.Replicas = 5000, 3
	cfg.AckWait, cfg.Timeout = 10*time.Second, 2*time.Second
	var killed string
	kill := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cons, err := js.Consumer(ctx, "ACKPROBE_KILL", "ACKPROBE_KILL")
		if err != nil || cons.CachedInfo().Cluster == nil {
			t.Errorf("find the consumer leader: %v", err)
			return
		}
		killed = cons.CachedInfo().Cluster.Leader
		i := c.Index(killed)
		c.Nodes[i].Stop()
		// Start it again once another node leads the consumer.
		for ctx.Err() == nil {
			if ci, err := cons.Info(ctx); err == nil && ci.Cluster != nil && ci.Cluster.Leader != "" && ci.Cluster.Leader != killed {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Nodes[i].Start()
	}
	tr := newTrigger(triggerPoint{probe.Confirmed, 0.25, kill})
	cfg.Progress = tr.progress
	res, err := probe.Run(context.Background(), nc, js, cfg)
	tr.wait()
	if res != nil {
		b, _ := json.Marshal(res.Findings)
		t.Logf("killed %s; findings %s", killed, b)
	}
	if err != nil {
		t.Fatalf("the run did not ride out the leader's death: %v", err)
	}
	m := res.Modes[0]
	t.Logf("acks %d errors %d retries %d timeouts %d redelivered %d disturbance %+v", m.Acks, m.Errors, m.Retries, m.Timeouts, m.Redelivered, m.Disturbance)
	if killed == "" {
		t.Fatal("no node was killed")
	}
	c2 := m.Classes
	if !res.OK || m.Acks != cfg.Count || m.Errors != 0 || c2.RedeliveredAfterConfirmedAck != 0 || c2.LateAck != 0 || m.RedeliveredMessages != c2.LostDelivery+c2.RedeliveredBeforeAck {
		t.Errorf("confirmed acks did not survive the leader's death: ok %v acks %d errors %d classes %+v problems %v", res.OK, m.Acks, m.Errors, m.Classes, res.Problems)
	}
	c.WaitReady(60 * time.Second)
	noProbeStreams(t, js)
}
