package natstest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ProcessCluster is a JetStream cluster of nats-server processes on
// loopback, built from the pinned module: what an operator runs, with
// real process deaths and restarts.
type ProcessCluster struct {
	t     testing.TB
	Nodes []*Process
}

// RunClusterProcesses starts n clustered JetStream nats-server processes
// named n1..nN on loopback and waits until JetStream answers through every
// node. They are killed when the test ends.
func RunClusterProcesses(t testing.TB, n int) *ProcessCluster {
	t.Helper()
	return RunClusterProcessesConf(t, n, "", "")
}

// RunClusterProcessesConf is RunClusterProcesses with a server
// configuration (accounts, users, limits) given to every node with -c, and
// the user information (user:password) the nodes' URLs carry to log in.
func RunClusterProcessesConf(t testing.TB, n int, conf, userinfo string) *ProcessCluster {
	t.Helper()
	bin := ServerBinary(t)
	var confArgs []string
	if conf != "" {
		file := filepath.Join(t.TempDir(), "server.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		confArgs = []string{"-c", file}
	}
	if userinfo != "" {
		userinfo += "@"
	}
	clusterPorts := make([]int, n)
	routes := make([]string, n)
	for i := range clusterPorts {
		clusterPorts[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[i])
	}
	c := &ProcessCluster{t: t}
	for i := 0; i < n; i++ {
		p := &Process{bin: bin, t: t}
		p.Port = freePort(t)
		p.URL = fmt.Sprintf("nats://%s127.0.0.1:%d", userinfo, p.Port)
		p.args = []string{"-a", "127.0.0.1", "-p", fmt.Sprint(p.Port), "-js", "-sd", t.TempDir(),
			"-n", fmt.Sprintf("n%d", i+1), "--cluster_name", "ackprobe-test",
			"--cluster", routes[i], "--routes", strings.Join(routes, ",")}
		p.args = slices.Concat(confArgs, p.args)
		c.Nodes = append(c.Nodes, p)
	}
	for _, p := range c.Nodes {
		p.Start()
		t.Cleanup(p.Stop)
	}
	c.WaitReady(60 * time.Second)
	return c
}

// URLs returns every node's client URL, comma separated.
func (c *ProcessCluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, p := range c.Nodes {
		urls[i] = p.URL
	}
	return strings.Join(urls, ",")
}

// Index returns the index of the node named name ("n2" is 1), or -1.
func (c *ProcessCluster) Index(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, "n%d", &i); err != nil || i < 1 || i > len(c.Nodes) {
		return -1
	}
	return i - 1
}

// WaitReady waits until every running node answers a JetStream account
// request, which needs a meta leader that sees the node.
func (c *ProcessCluster) WaitReady(limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for _, p := range c.Nodes {
		if !p.Running() {
			continue
		}
		for {
			if jsReady(p.URL) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("natstest: JetStream not ready on %s within %s", p.URL, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func jsReady(url string) bool {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}
