package probe

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Run is one probe: Open, one Round (with Config.PerNode, one on each
// server of the peer set), Close. It returns a Result whenever
// the probe started, with OK false when a fail finding holds; an error
// means it could not run or finish, and the Result, if not nil, holds what
// was measured until then and what could not be cleaned up (Leftovers).
func Run(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg Config) (*Result, error) {
	started := time.Now()
	p, err := Open(ctx, nc, js, cfg)
	if p == nil {
		return nil, err
	}
	var r *roundRun
	var nodes []*nodeRun
	switch {
	case err != nil:
	case cfg.PerNode:
		nodes, err = p.perNode(ctx)
	default:
		r, err = p.round(ctx)
	}
	err = p.wrap(ctx, err)
	left := p.Close(ctx)
	return p.result(r, nodes, left, started), err
}
