package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
)

// NodeResult is one server of the probe stream's peer set, as a per-node
// probe found it: a round run while that server led the probe stream and
// consumer.
type NodeResult struct {
	Server  string `json:"server"`
	Cluster string `json:"cluster"`
	// Probed is false for a server of the cluster outside the probe
	// stream's peer set (listed when the account may read the system
	// account's server list), and for one the leaders could not be moved
	// to (Placement says why, and a not_placed finding).
	Probed bool `json:"probed"`
	// Placement says how the leaders got there: "moved", "already
	// leader", or why not ("step-down refused: …", "landed on n3").
	Placement string `json:"placement,omitempty"`
	// LedWholeRound is set when the server led the consumer when the
	// round began and when it ended, and no change of leader was seen
	// in between: the figures are this server's.
	LedWholeRound bool `json:"led_whole_round"`
	// Leaders are the consumer leaders seen during the round.
	Leaders []string     `json:"leaders,omitempty"`
	Modes   []ModeResult `json:"modes"`
	// Findings are this node's, also listed in Result.Findings with Node
	// set.
	Findings []Finding `json:"findings"`
	// APIRoundTripUS is the client's consumer-info round trip while this
	// server led, in microseconds.
	APIRoundTripUS Latency `json:"api_round_trip_us"`
	// Replicas is what the stream leader said of the other replicas at
	// the end of the round (consumer info's cluster section).
	Replicas []ReplicaState `json:"replicas,omitempty"`
	// System is what the server itself said of the probe's raft groups
	// and ack queue at the end of its round, where the account may ask
	// the system account (see NodeSystem).
	System *NodeSystem `json:"system,omitempty"`
}

// ReplicaState is a follower as the leader reports it.
type ReplicaState struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Offline bool   `json:"offline,omitempty"`
	Lag     uint64 `json:"lag"`
	// Active is how long ago the leader last heard from the replica;
	// ActiveMS the same in milliseconds.
	Active   doc.Duration `json:"active"`
	ActiveMS float64      `json:"active_ms"`
}

// nodeRun is a round on one node.
type nodeRun struct {
	server, cluster string
	probed          bool
	placement       string
	placed          bool
	leaders         []string
	led             bool
	r               *roundRun
	rtt             *recorder
	replicas        []ReplicaState
	system          *NodeSystem
}

// minPerNodeVersion is the first nats-server whose leader step-down takes a
// preferred server.
const minPerNodeVersion = "2.11.0"

// checkPerNode refuses a per-node probe that cannot move leaders: a
// server that is not clustered, an R1 stream, a server older than 2.11.
func (p *Probe) checkPerNode() error {
	if p.nc.ConnectedClusterName() == "" {
		return usage("--per-node needs a JetStream cluster: this server (%s) is not clustered", p.nc.ConnectedServerName())
	}
	if p.replicas < 2 {
		return usage("--per-node needs a replicated probe stream: stream %q has %d replica; use --replicas 3 (the default under --per-node)", p.stream, p.replicas)
	}
	if v := p.nc.ConnectedServerVersion(); versionBelow(v, minPerNodeVersion) {
		return usage("--per-node needs nats-server %s or later (its leader step-down takes a preferred server); this server is %s", minPerNodeVersion, v)
	}
	return nil
}

// versionBelow compares dotted versions ("2.10.22" < "2.11.0").
func versionBelow(v, min string) bool {
	parse := func(s string) []int {
		s, _, _ = strings.Cut(strings.TrimPrefix(s, "v"), "-")
		var out []int
		for _, f := range strings.Split(s, ".") {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	return slices.Compare(parse(v), parse(min)) < 0
}

// Peers returns the cluster's name and the servers of the probe stream's
// peer set, its leader first (stream info's cluster section).
func (p *Probe) Peers(ctx context.Context) (string, []string, error) { return p.peers(ctx) }

// RoundOn moves the probe stream's and consumer's leaders to server (one
// of Peers) and runs a round there, as a per-node probe does for each
// server: the Result's Modes are the round's, and its one NodeResult says
// how the leaders got there and whether server led the whole round. The
// canary with --per-node probes one server a round, in turn.
func (p *Probe) RoundOn(ctx context.Context, server string) (*Result, error) {
	started := time.Now()
	cluster, _, _ := p.peers(ctx)
	n := &nodeRun{server: server, cluster: cluster, probed: true, rtt: newRecorder()}
	n.placement, n.placed = p.place(ctx, server)
	var err error
	if n.placed {
		err = p.roundThere(ctx, n)
	}
	return p.result(n.r, []*nodeRun{n}, nil, started), p.wrap(ctx, err)
}

// roundThere runs a round on a node whose leaders are in place, reading
// the consumer's leader before and after it.
func (p *Probe) roundThere(ctx context.Context, n *nodeRun) error {
	before := p.roundTrips(ctx, n)
	system := p.watchSystem(ctx, n.server)
	r, err := p.round(ctx)
	n.system = system()
	n.r = r
	after, replicas := p.leaderNow(ctx)
	n.replicas = replicas
	if r != nil {
		n.leaders = r.leadersSeen()
	}
	n.led = before == n.server && after == n.server && len(n.leaders) <= 1
	return err
}

// peers returns the servers of the probe stream's peer set, leader first.
func (p *Probe) peers(ctx context.Context) (string, []string, error) {
	si, err := retryCall(ctx, p, nil, func(ctx context.Context) (*jetstream.StreamInfo, error) { return p.streamHandle.Info(ctx) })
	if err != nil {
		return "", nil, fmt.Errorf("read stream %q: %w", p.stream, err)
	}
	if si.Cluster == nil || si.Cluster.Leader == "" {
		return "", nil, fmt.Errorf("stream %q reports no cluster leader", p.stream)
	}
	names := []string{si.Cluster.Leader}
	for _, r := range si.Cluster.Replicas {
		names = append(names, r.Name)
	}
	sort.Strings(names[1:])
	return si.Cluster.Name, names, nil
}

// PerNode runs one round with each server of the probe stream's peer set
// leading the stream and the consumer: it moves both leaders there with the
// leader step-down API's preferred server, reads who led before and after
// the round, and reports the rounds side by side, with a finding naming
// the slowest node.
func (p *Probe) perNode(ctx context.Context) ([]*nodeRun, error) {
	cluster, names, err := p.peers(ctx)
	if err != nil {
		return nil, err
	}
	var nodes []*nodeRun
	servers := p.clusterServers(ctx, cluster)
	p.noSystemData = len(servers) == 0
	p.systemServers = !p.noSystemData
	for _, other := range servers {
		if !slices.Contains(names, other) {
			nodes = append(nodes, &nodeRun{server: other, cluster: cluster, placement: "outside the probe stream's peer set", rtt: newRecorder()})
		}
	}
	for _, name := range names {
		n := &nodeRun{server: name, cluster: cluster, probed: true, rtt: newRecorder()}
		nodes = append(nodes, n)
		n.placement, n.placed = p.place(ctx, name)
		if !n.placed {
			continue
		}
		if err := p.roundThere(ctx, n); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// place makes server the leader of the probe stream and consumer and
// reports how it went.
func (p *Probe) place(ctx context.Context, server string) (string, bool) {
	if why := p.unreachable(ctx, server); why != "" {
		return why, false
	}
	moved := false
	for _, target := range []struct{ what, stepdown string }{
		{"stream", fmt.Sprintf("STREAM.LEADER.STEPDOWN.%s", p.stream)},
		{"consumer", fmt.Sprintf("CONSUMER.LEADER.STEPDOWN.%s.%s", p.stream, p.consumer)},
	} {
		leader := func() string {
			if target.what == "stream" {
				cctx, cancel := p.call(ctx)
				defer cancel()
				si, err := p.streamHandle.Info(cctx)
				if err != nil || si.Cluster == nil {
					return ""
				}
				return si.Cluster.Leader
			}
			l, _ := p.leaderNow(ctx)
			return l
		}
		if leader() == server {
			continue
		}
		moved = true
		body, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": server}})
		now := ""
		// A raft leadership transfer to the preferred server is not
		// certain (another candidate may win the election): try again.
		for attempt := 0; attempt < 3 && now != server; attempt++ {
			if err := p.stepDown(ctx, target.stepdown, body); err != nil {
				if now = leader(); now == server {
					break // it moved after all, or was already there
				}
				return fmt.Sprintf("%s step-down refused: %v", target.what, err), false
			}
			deadline := time.Now().Add(p.budget())
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if now = leader(); now != "" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if now != server {
			if now == "" {
				now = "no server"
			}
			return fmt.Sprintf("the %s leader landed on %s, not %s", target.what, now, server), false
		}
	}
	if moved {
		return "moved", true
	}
	return "already leader", true
}

// unreachable says why server cannot lead the probe stream, as the
// stream's leader sees it (stream info's replicas): offline; "" when it
// can, or when the leader cannot be asked. (A replica that is merely not
// current is tried: it catches up between rounds.)
func (p *Probe) unreachable(ctx context.Context, server string) string {
	cctx, cancel := p.call(ctx)
	defer cancel()
	si, err := p.streamHandle.Info(cctx)
	if err != nil || si.Cluster == nil {
		return ""
	}
	for _, r := range si.Cluster.Replicas {
		if r.Name != server {
			continue
		}
		if r.Offline {
			since := ""
			if r.Active > 0 {
				since = " for " + r.Active.Round(time.Millisecond).String()
			}
			return fmt.Sprintf("it is offline (the stream leader %s has not heard from it%s)", si.Cluster.Leader, since)
		}
	}
	return ""
}

// stepDown sends a leader step-down request and reads its answer.
func (p *Probe) stepDown(ctx context.Context, subject string, body []byte) error {
	_, err := retryCall(ctx, p, nil, func(ctx context.Context) (struct{}, error) {
		msg, err := p.nc.RequestWithContext(ctx, p.apiPrefix()+subject, body)
		if err != nil {
			return struct{}{}, err
		}
		var resp struct {
			Success bool                `json:"success"`
			Error   *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return struct{}{}, err
		}
		if resp.Error != nil {
			return struct{}{}, resp.Error
		}
		if !resp.Success {
			return struct{}{}, errors.New("the server did not say it stepped down")
		}
		return struct{}{}, nil
	})
	return err
}

// leaderNow reads the consumer's leader and its followers' state.
func (p *Probe) leaderNow(ctx context.Context) (string, []ReplicaState) {
	ci, err := retryCall(ctx, p, nil, func(ctx context.Context) (*jetstream.ConsumerInfo, error) { return p.cons.Info(ctx) })
	if err != nil || ci.Cluster == nil {
		return "", nil
	}
	var reps []ReplicaState
	for _, r := range ci.Cluster.Replicas {
		reps = append(reps, ReplicaState{Name: r.Name, Current: r.Current, Offline: r.Offline, Lag: r.Lag, Active: doc.Duration(r.Active), ActiveMS: doc.Millis(r.Active)})
	}
	return ci.Cluster.Leader, reps
}

// roundTrips times a few consumer-info requests, which the consumer
// leader answers, and returns the leader they named.
func (p *Probe) roundTrips(ctx context.Context, n *nodeRun) string {
	leader := ""
	for range 10 {
		t := time.Now()
		l, _ := p.leaderNow(ctx)
		n.rtt.record(time.Since(t))
		leader = l
	}
	return leader
}

// leadersSeen lists the consumer leaders the round's reads named, in order.
func (r *roundRun) leadersSeen() []string {
	var out []string
	for _, m := range r.modes {
		for _, st := range m.steps {
			if st.Leader != "" && (len(out) == 0 || out[len(out)-1] != st.Leader) {
				out = append(out, st.Leader)
			}
		}
	}
	return out
}

// nodeResults builds each node's result and judges them side by side: the
// findings of each node's round, tagged with the node, and one verdict
// naming the slowest node against the median of the others.
func (p *Probe) nodeResults(nodes []*nodeRun) ([]NodeResult, []Finding) {
	var out []NodeResult
	var all []Finding
	for _, n := range nodes {
		nr := NodeResult{Server: n.server, Cluster: n.cluster, Probed: n.probed && n.placed, Placement: n.placement,
			LedWholeRound: n.led, Leaders: n.leaders, Modes: []ModeResult{}, Findings: []Finding{},
			APIRoundTripUS: n.rtt.summary(), Replicas: n.replicas, System: n.system}
		if n.r != nil {
			for i := range n.r.modes {
				if n.r.modes[i].ran {
					nr.Modes = append(nr.Modes, n.r.modeResult(i))
				}
			}
			nr.Findings = judge(nr.Modes, p.ackWait, p.cfg.Thresholds)
		}
		switch {
		case !n.probed:
			nr.Findings = append(nr.Findings, Finding{Code: CodeNotProbed, Severity: SeverityInfo, Count: 1,
				Message: fmt.Sprintf("%s was not probed: it is outside the probe stream's peer set (raise --replicas to cover it)", n.server)})
		case n.probed && !n.placed:
			nr.Findings = append(nr.Findings, Finding{Code: CodeNotPlaced, Severity: SeverityWarn, Count: 1,
				Message: fmt.Sprintf("%s was not probed: %s", n.server, n.placement)})
		case n.r != nil && !n.led:
			nr.Findings = append(nr.Findings, Finding{Code: CodeLeaderMoved, Severity: SeverityInfo, Count: 1,
				Message: fmt.Sprintf("the round meant for %s was led by %s: its figures are not %s's alone", n.server, strings.Join(n.leaders, " then "), n.server)})
		}
		for i := range nr.Findings {
			nr.Findings[i].Node = n.server
		}
		all = append(all, nr.Findings...)
		out = append(out, nr)
	}
	switch {
	case p.noSystemData:
		all = append(all, Finding{Code: CodeNoSystemData, Severity: SeverityInfo, Count: 1,
			Message: "this account may not ask the system account's server ping ($SYS.REQ.SERVER.PING): servers of the cluster outside the probe stream's peer set are not listed, and what each server says of the probe's raft groups is not shown; each node's replica lag comes from the consumer's own info"})
	case p.systemServers && !slices.ContainsFunc(out, func(n NodeResult) bool { return n.System != nil }):
		all = append(all, Finding{Code: CodeNoSystemData, Severity: SeverityInfo, Count: 1,
			Message: "the system account listed the cluster's servers but did not answer " + sysRaftz + " or " + sysIPQueues + " for this account: what each server says of the probe's raft groups and ack queue is not shown"})
	}
	return out, append(all, slowest(out)...)
}

// slowNodeRatio, slowNodeMeanRatio and slowNodeMargin are how much slower
// than the median of the others a node's acks must be to be called slow:
// at p90 by slowNodeRatio and at least slowNodeMargin, and on average by
// slowNodeMeanRatio. Both figures must stand out: on a loaded machine one
// node's p90 alone reaches twice the others' now and then (a scheduler
// hiccup during its round), while a node that stalls again and again
// moves its mean as well.
const (
	slowNodeRatio     = 3.0
	slowNodeMeanRatio = 2.0
	slowNodeMargin    = time.Millisecond
)

// slowest names the slowest node among those that led their whole round:
// by confirmed ack p90 and mean (by the standard acks' visibility lag when
// the run has no confirmed acks), each against the median of the others.
// p90 ranks: a node that stalls now and then (a slow disk, a starved CPU)
// delays a share of the acks a lot, which p50 hides; the mean confirms
// that the stalls are many rather than one pause of the client's own
// machine.
func slowest(nodes []NodeResult) []Finding {
	type figure struct {
		server   string
		p90, avg float64
	}
	var figs []figure
	what := "confirmed ack p90"
	for _, n := range nodes {
		if !n.LedWholeRound {
			continue
		}
		for _, m := range n.Modes {
			switch {
			case m.Mode == Confirmed && m.AckLatencyUS.Count > 0:
				figs = append(figs, figure{n.Server, m.AckLatencyUS.P90, m.AckLatencyUS.Mean})
			case m.Mode == Standard && len(n.Modes) == 1 && m.Visibility.LagUS.Count > 0:
				what = "standard ack visibility lag p90"
				figs = append(figs, figure{n.Server, m.Visibility.LagUS.P90, m.Visibility.LagUS.Mean})
			}
		}
	}
	if len(figs) < 2 {
		return nil
	}
	sort.Slice(figs, func(i, j int) bool { return figs[i].p90 > figs[j].p90 })
	top := figs[0]
	median := func(pick func(figure) float64) float64 {
		var v []float64
		for _, f := range figs[1:] {
			v = append(v, pick(f))
		}
		sort.Float64s(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	med := median(func(f figure) float64 { return f.p90 })
	medAvg := median(func(f figure) float64 { return f.avg })
	ratio := top.p90 / max(med, 1)
	avgRatio := top.avg / max(medAvg, 1)
	margin := time.Duration((top.p90 - med) * float64(time.Microsecond))
	if ratio >= slowNodeRatio && avgRatio >= slowNodeMeanRatio && margin >= slowNodeMargin {
		return []Finding{{Code: CodeSlowNode, Node: top.server, Severity: SeverityWarn, Count: 1,
			Message: fmt.Sprintf("%s is the slowest node: %s %s there, %.1f× the median of the others (%s); mean %.1f× theirs", top.server, what, usDuration(top.p90), ratio, usDuration(med), avgRatio)}}
	}
	return []Finding{{Code: CodeNodesEven, Severity: SeverityInfo, Count: len(figs),
		Message: fmt.Sprintf("no node stands out: %s from %s (%s) to %s (%s), %.1f× the median of the others at most",
			what, usDuration(figs[len(figs)-1].p90), figs[len(figs)-1].server, usDuration(top.p90), top.server, ratio)}}
}

// clusterServers lists the servers of the cluster by name when the account
// may ask the system account's server ping ($SYS.REQ.SERVER.PING); nil
// otherwise (most accounts may not, and the run goes on without it).
func (p *Probe) clusterServers(ctx context.Context, cluster string) []string {
	inbox := p.nc.NewRespInbox()
	sub, err := p.nc.SubscribeSync(inbox)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := p.nc.PublishRequest(sysServerPing, inbox, nil); err != nil {
		return nil
	}
	var names []string
	deadline := time.Now().Add(min(p.cfg.Timeout, time.Second))
	for {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var resp struct {
			Server struct {
				Name    string `json:"name"`
				Cluster string `json:"cluster"`
			} `json:"server"`
		}
		if json.Unmarshal(msg.Data, &resp) == nil && resp.Server.Name != "" && resp.Server.Cluster == cluster {
			names = append(names, resp.Server.Name)
		}
	}
	sort.Strings(names)
	return names
}

// sysServerPing asks every server for its identity (system account only).
const sysServerPing = "$SYS.REQ.SERVER.PING"

// OptionalSubjects are subjects the probe may be refused without harm: the
// server's ack metric events, and the system account's server ping of a
// per-node probe. A command watching for refused permissions passes them
// as optional.
var OptionalSubjects = []string{"$JS.EVENT.METRIC.>", sysServerPing, sysUserInfo}
