package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is an in-process JetStream cluster on loopback.
type Cluster struct {
	t       testing.TB
	opts    []*server.Options
	servers []*server.Server
}

// RunCluster starts n clustered JetStream servers on 127.0.0.1 and waits
// for a meta leader that sees all n peers. The servers stop when the test
// ends.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	var routes []*url.URL
	for i := range ports {
		ports[i] = freePort(t)
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	c := &Cluster{t: t, opts: make([]*server.Options, n), servers: make([]*server.Server, n)}
	for i := range c.opts {
		o := Options(t)
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster.Name = "ackprobe-test"
		o.Cluster.Host = "127.0.0.1"
		o.Cluster.Port = ports[i]
		o.Routes = routes
		c.opts[i] = o
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	for i := range c.servers {
		c.start(i)
	}
	c.WaitReady()
	return c
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i])
	if err != nil {
		c.t.Fatalf("natstest: cluster node %d: %v", i, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		c.t.Fatalf("natstest: cluster node %d not ready", i)
	}
	c.servers[i] = s
}

// WaitReady waits for a JetStream meta leader that sees every peer.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.servers {
			if s != nil && s.Running() && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(c.servers) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("natstest: no JetStream meta leader with %d peers", len(c.servers))
}

// Servers returns the running servers, in node order.
func (c *Cluster) Servers() []*server.Server { return c.servers }

// URLs returns every node's client URL, comma separated.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// Index returns the node index of the server named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// Restart shuts node i down and starts it again with the same options
// (the client port it got the first time is kept).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.servers[i].Shutdown()
	c.servers[i].WaitForShutdown()
	// Give the port back to the same node.
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.opts[i].Port)); err == nil {
		l.Close()
	}
	c.start(i)
}
