package probe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

func clusterConn(t *testing.T, c *natstest.Cluster) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := natstest.Connect(t, c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	return nc, js
}

// whenDelivered calls f once the probe's consumer has delivered at least n
// messages, from a connection of its own; it gives up when ctx ends.
func whenDelivered(ctx context.Context, t *testing.T, c *natstest.Cluster, stream, consumer string, n uint64, f func()) {
	_, js := natstest.Connect(t, c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		cons, err := js.Consumer(cctx, stream, consumer)
		if err == nil {
			if ci, err := cons.Info(cctx); err == nil && ci.Delivered.Stream >= n {
				cancel()
				f()
				return
			}
		}
		cancel()
		time.Sleep(5 * time.Millisecond)
	}
}

// disturb runs f beside a probe; stop ends f's context and waits for it.
func disturb(f func(ctx context.Context)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	return ctx, func() { cancel(); <-done }
}

func r3Config(id string, modes ...probe.Mode) probe.Config {
	cfg := probe.DefaultConfig(modes...)
	cfg.ID = id
	cfg.Replicas = 3
	cfg.Count = 1500
	cfg.Timeout = 2 * time.Second
	cfg.AckTimeout = 250 * time.Millisecond
	cfg.Retries = 20
	cfg.AckWait = 5 * time.Second
	return cfg
}

func TestClusterR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	nc, js := clusterConn(t, c)
	cfg := probe.DefaultConfig(probe.Standard, probe.Confirmed)
	cfg.Replicas, cfg.Count = 3, 300
	res, err := probe.Run(context.Background(), nc, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkScaled(t, res, cfg.Count)
	if res.Server.Cluster != "ackprobe-test" || res.Replicas != 3 {
		t.Errorf("server %+v replicas %d", res.Server, res.Replicas)
	}
	// More replicas than the cluster has servers: the server's own error,
	// by its code, and nothing left behind.
	cfg.Replicas = 5
	_, err = probe.Run(context.Background(), nc, js, cfg)
	var api *jetstream.APIError
	if !errors.As(err, &api) || api.ErrorCode != 10005 {
		t.Errorf("R5 on 3 servers: %v", err)
	}
}

// TestClusterLeaderChanges steps the consumer leader and then the stream
// leader down while confirmed acks are in flight, and restarts a node:
// every confirmed ack must end confirmed, with no redelivery of an acked
// message.
func TestClusterLeaderChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	nc, js := clusterConn(t, c)
	cfg := r3Config("LEADERS", probe.Confirmed)
	name := "ACKPROBE_LEADERS"
	ctx, stop := disturb(func(ctx context.Context) {
		req := func(subject string) {
			if _, err := nc.Request(subject, nil, 2*time.Second); err != nil {
				t.Logf("%s: %v", subject, err)
			}
		}
		whenDelivered(ctx, t, c, name, name, 300, func() { req("$JS.API.CONSUMER.LEADER.STEPDOWN." + name + "." + name) })
		whenDelivered(ctx, t, c, name, name, 700, func() { req("$JS.API.STREAM.LEADER.STEPDOWN." + name) })
		whenDelivered(ctx, t, c, name, name, 1100, func() {
			// Restart a node that is not the one the probe reads from.
			c.Restart(2)
		})
	})
	res, err := probe.Run(ctx, nc, js, cfg)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	m := res.Modes[0]
	t.Logf("confirmed across leader changes: acks %d errors %d retries %d timeouts %d redelivered %d (after ack %d), p99 %.0fµs max %.0fµs",
		m.Acks, m.Errors, m.Retries, m.Timeouts, m.Redelivered, m.RedeliveredAfterAck, m.AckLatencyUS.P99, m.AckLatencyUS.Max)
	if m.Acks != cfg.Count || m.Errors != 0 || m.RedeliveredAfterAck != 0 || m.Visibility.StaleReads != 0 {
		t.Errorf("confirmed acks did not survive: %+v", m)
	}
	if !res.OK {
		t.Errorf("problems: %v", res.Problems)
	}
}

// TestClusterStandardAcrossStepDown: standard acks lost in a consumer
// leader change show up as redeliveries, collected after AckWait, and the
// run ends with the server showing every ack.
func TestClusterStandardAcrossStepDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	nc, js := clusterConn(t, c)
	cfg := r3Config("STDLEADER", probe.Standard)
	cfg.CollectRedeliveries = true
	cfg.AckWait = time.Second
	name := "ACKPROBE_STDLEADER"
	ctx, stop := disturb(func(ctx context.Context) {
		whenDelivered(ctx, t, c, name, name, 500, func() {
			if _, err := nc.Request("$JS.API.CONSUMER.LEADER.STEPDOWN."+name+"."+name, nil, 2*time.Second); err != nil {
				t.Logf("step down: %v", err)
			}
		})
	})
	res, err := probe.Run(ctx, nc, js, cfg)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	m := res.Modes[0]
	t.Logf("standard across a step-down: acks %d redelivered %d (messages %d), steps %+v", m.Acks, m.Redelivered, m.RedeliveredMessages, m.Steps[len(m.Steps)-1])
	// The server shows every ack at the end: at once, or after the lost
	// ones came back and were acked again ("collected").
	if last := m.Steps[len(m.Steps)-1]; last.NumAckPending != 0 || last.NumPending != 0 || m.Acks != cfg.Count {
		t.Errorf("not every message ended acked: %+v", last)
	}
}
