package inspect

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// TestGatherCluster checks placement on an R3 stream and consumer: a
// leader and two current replicas, then a replica that stopped.
func TestGatherCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	servers := natstest.RunCluster(t, 3).Servers()
	_, js := natstest.Connect(t, servers[0].ClientURL())
	ctx := testCtx(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3"}, Replicas: 3, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	mustConsumer(t, js, "R3", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, Replicas: 3})
	publish(t, js, "r3", 3)

	var c *Consumer
	var st *Stream
	for deadline := time.Now().Add(10 * time.Second); ; {
		snap := gather(t, js, Options{Stream: "R3", Consumer: "c"})
		st, c = &snap.Streams[0], &snap.Streams[0].Consumers[0]
		if c.Health.Status == OK && st.Cluster != nil && len(st.Cluster.Replicas) == 2 && allCurrent(st.Cluster.Replicas) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Cluster == nil || c.Cluster.Leader == "" || c.Cluster.Name != "ackprobe-test" || len(c.Cluster.Replicas) != 2 {
		t.Fatalf("consumer cluster %+v", c.Cluster)
	}
	for _, r := range append(c.Cluster.Replicas, st.Cluster.Replicas...) {
		if r.State() != "current" {
			t.Errorf("replica %+v", r)
		}
	}
	if c.Health.Status != OK || c.NumPending != 3 {
		t.Errorf("consumer %+v", c)
	}

	// Stop a server that follows the consumer's leader: its replica stops
	// being current and the consumer warns.
	var follower *server.Server
	for _, s := range servers {
		if s.Name() == c.Cluster.Replicas[0].Name {
			follower = s
		}
	}
	follower.Shutdown()
	_, js = natstest.Connect(t, otherThan(servers, follower).ClientURL())
	var last *Snapshot
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		snap, err := Gather(testCtx(t), js, Options{Stream: "R3", Consumer: "c", Timeout: 2 * time.Second, Thresholds: DefaultThresholds()})
		if err != nil {
			continue
		}
		last = snap
		if snap.Streams[0].Consumers[0].Health.Status == Warn {
			break
		}
	}
	if last == nil {
		t.Fatal("no snapshot after stopping a replica")
	}
	h := last.Streams[0].Consumers[0].Health
	if h.Status != Warn || h.Reasons[0].Rule != "replicas" {
		t.Errorf("after stopping %s: %+v", follower.Name(), h)
	}
	t.Logf("%+v", h.Reasons)
}

func allCurrent(rs []Replica) bool {
	for _, r := range rs {
		if r.State() != "current" {
			return false
		}
	}
	return true
}

func otherThan(servers []*server.Server, not *server.Server) *server.Server {
	for _, s := range servers {
		if s != not {
			return s
		}
	}
	return nil
}
