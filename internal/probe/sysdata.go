package probe

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodeSystem is what a server says about the probe's own raft groups and
// its consumer's ack queue, sampled from the system account's services
// every systemSampleEvery while the server led its round, and at its end: $SYS.REQ.SERVER.PING.RAFTZ (filtered to
// the account and group, answered by that server alone) and
// $SYS.REQ.SERVER.PING.IPQUEUESZ. An account reaches them only where the
// system account exports them and the account imports them (see the
// README's Per-node probes); elsewhere NodeResult.System is absent and a
// system_data_unavailable finding says so once.
type NodeSystem struct {
	// Stream and Consumer are the probe stream's and consumer's raft
	// groups on this server (RAFTZ); nil when the server did not report
	// the group.
	Stream   *RaftGroup `json:"stream_group,omitempty"`
	Consumer *RaftGroup `json:"consumer_group,omitempty"`
	// AckQueuePending is the largest number of acks this server had
	// received for the probe consumer and not yet processed, of the
	// samples taken in the round (IPQUEUESZ, the queue
	// "consumer '<name>' on stream '<stream>' ackMsgs"); nil when the
	// server did not report it.
	AckQueuePending *int `json:"ack_queue_pending,omitempty"`
}

// RaftGroup is one raft group as the server that holds it reports it
// (RAFTZ's RaftzGroup). Counts are raft log entries.
type RaftGroup struct {
	Group string `json:"group"`
	// State is the server's role in the group at the end of the round:
	// "LEADER", "FOLLOWER", "CANDIDATE" or "CLOSED"; Committed and
	// Applied are its indexes then.
	State     string `json:"state"`
	Committed uint64 `json:"committed"`
	Applied   uint64 `json:"applied"`
	// AppliedLag is Committed − Applied: entries this server knows are
	// committed and has not applied yet (the largest seen in the round).
	AppliedLag uint64 `json:"applied_lag"`
	// FollowerLag is, on the leader, the largest gap between its commit
	// and a peer's last replicated index (RAFTZ's peers), the largest
	// seen in the round; 0 elsewhere.
	FollowerLag uint64 `json:"follower_lag"`
	// The group's internal queues: proposals waiting to be sent, entries
	// waiting to be processed, responses, and committed entries waiting
	// to be applied (each the largest seen in the round).
	ProposalQueue int `json:"ipq_proposal_len"`
	EntryQueue    int `json:"ipq_entry_len"`
	ResponseQueue int `json:"ipq_resp_len"`
	ApplyQueue    int `json:"ipq_apply_len"`
}

// System account services a per-node probe asks, when it may.
const (
	sysUserInfo = "$SYS.REQ.USER.INFO"
	sysRaftz    = sysServerPing + ".RAFTZ"
	sysIPQueues = sysServerPing + ".IPQUEUESZ"
)

// account returns the name of the account the connection is bound to, as
// the server's user info service says ($SYS.REQ.USER.INFO, which every
// account may ask), or "" when it does not answer. RAFTZ filters by it.
func (p *Probe) account(ctx context.Context) string {
	if p.accountName != nil {
		return *p.accountName
	}
	name := ""
	cctx, cancel := context.WithTimeout(ctx, min(p.cfg.Timeout, time.Second))
	defer cancel()
	if msg, err := p.nc.RequestWithContext(cctx, sysUserInfo, nil); err == nil {
		var resp struct {
			Data struct {
				Account string `json:"account"`
			} `json:"data"`
		}
		if json.Unmarshal(msg.Data, &resp) == nil {
			name = resp.Data.Account
		}
	}
	p.accountName = &name
	return name
}

// watchSystem samples what server says of the probe's raft groups and ack
// queue every systemSampleEvery while a round runs, and once more when
// stop is called; stop returns the peaks (the largest lags and queues seen,
// the last role and indexes), or nil when the account may not ask.
func (p *Probe) watchSystem(ctx context.Context, server string) (stop func() *NodeSystem) {
	if p.noSystemData || p.account(ctx) == "" {
		return func() *NodeSystem { return nil }
	}
	var groups [2]string
	if si, err := retryCall(ctx, p, nil, func(ctx context.Context) (*jetstream.StreamInfo, error) { return p.streamHandle.Info(ctx) }); err == nil && si.Cluster != nil {
		groups[0] = si.Cluster.RaftGroup
	}
	if ci, err := retryCall(ctx, p, nil, func(ctx context.Context) (*jetstream.ConsumerInfo, error) { return p.cons.Info(ctx) }); err == nil && ci.Cluster != nil {
		groups[1] = ci.Cluster.RaftGroup
	}
	var peak *NodeSystem
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(systemSampleEvery)
		defer t.Stop()
		for {
			peak = peak.merge(p.nodeSystem(wctx, server, groups))
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() *NodeSystem {
		cancel()
		<-done
		return peak.merge(p.nodeSystem(ctx, server, groups))
	}
}

// systemSampleEvery is how often a per-node round asks the system account
// about the leader's raft groups: a few requests a tick, to one server.
const systemSampleEvery = 100 * time.Millisecond

// merge keeps the largest lags and queues of s and next, and next's role
// and indexes.
func (s *NodeSystem) merge(next *NodeSystem) *NodeSystem {
	if s == nil {
		return next
	}
	if next == nil {
		return s
	}
	out := *next
	peak := func(a, b *RaftGroup) *RaftGroup {
		if a == nil || b == nil || a.Group != b.Group {
			return cmp.Or(b, a)
		}
		m := *b
		m.AppliedLag, m.FollowerLag = max(a.AppliedLag, b.AppliedLag), max(a.FollowerLag, b.FollowerLag)
		m.ProposalQueue, m.EntryQueue = max(a.ProposalQueue, b.ProposalQueue), max(a.EntryQueue, b.EntryQueue)
		m.ResponseQueue, m.ApplyQueue = max(a.ResponseQueue, b.ResponseQueue), max(a.ApplyQueue, b.ApplyQueue)
		return &m
	}
	out.Stream, out.Consumer = peak(s.Stream, next.Stream), peak(s.Consumer, next.Consumer)
	if s.AckQueuePending != nil && (out.AckQueuePending == nil || *s.AckQueuePending > *out.AckQueuePending) {
		out.AckQueuePending = s.AckQueuePending
	}
	return &out
}

// nodeSystem reads once what server says of the probe's raft groups
// (groups: the stream's and the consumer's) and ack queue. It returns nil
// when nothing came back: no responders, a refusal, or no answer within a
// second.
func (p *Probe) nodeSystem(ctx context.Context, server string, groups [2]string) *NodeSystem {
	acc := p.account(ctx)
	out := &NodeSystem{}
	got := false
	for i, into := range []**RaftGroup{&out.Stream, &out.Consumer} {
		name := groups[i]
		if name == "" || ctx.Err() != nil {
			continue
		}
		var resp struct {
			Data map[string]map[string]struct {
				State       string `json:"state"`
				Committed   uint64 `json:"committed"`
				Applied     uint64 `json:"applied"`
				IPQPropLen  int    `json:"ipq_proposal_len"`
				IPQEntryLen int    `json:"ipq_entry_len"`
				IPQRespLen  int    `json:"ipq_resp_len"`
				IPQApplyLen int    `json:"ipq_apply_len"`
				Peers       map[string]struct {
					LastReplicatedIndex uint64 `json:"last_replicated_index"`
				} `json:"peers"`
			} `json:"data"`
		}
		if !p.askServer(ctx, sysRaftz, server, map[string]any{"account": acc, "group": name}, &resp) {
			continue
		}
		rg, ok := resp.Data[acc][name]
		if !ok {
			continue
		}
		r := &RaftGroup{Group: name, State: rg.State, Committed: rg.Committed, Applied: rg.Applied,
			ProposalQueue: rg.IPQPropLen, EntryQueue: rg.IPQEntryLen, ResponseQueue: rg.IPQRespLen, ApplyQueue: rg.IPQApplyLen}
		if rg.Committed > rg.Applied {
			r.AppliedLag = rg.Committed - rg.Applied
		}
		if rg.State == "LEADER" {
			for _, peer := range rg.Peers {
				if peer.LastReplicatedIndex < rg.Committed {
					r.FollowerLag = max(r.FollowerLag, rg.Committed-peer.LastReplicatedIndex)
				}
			}
		}
		*into, got = r, true
	}
	var queues struct {
		Data map[string]struct {
			Pending int `json:"pending"`
		} `json:"data"`
	}
	name := fmt.Sprintf("consumer '%s' on stream '%s' ackMsgs", p.consumer, p.stream)
	if ctx.Err() == nil && p.askServer(ctx, sysIPQueues, server, map[string]any{"all": true, "filter": name}, &queues) {
		for _, q := range queues.Data {
			pending := q.Pending
			out.AckQueuePending, got = &pending, true
			break
		}
	}
	if !got {
		return nil
	}
	return out
}

// askServer sends a system account ping to server alone (the ping's
// server_name filter, exact) and decodes its answer into into. It reports
// false when nothing usable came back within a second.
func (p *Probe) askServer(ctx context.Context, subject, server string, opts map[string]any, into any) bool {
	opts["server_name"], opts["exact_match"] = server, true
	body, err := json.Marshal(opts)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, min(p.cfg.Timeout, time.Second))
	defer cancel()
	msg, err := p.nc.RequestWithContext(cctx, subject, body)
	if err != nil {
		return false
	}
	var head struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(msg.Data, &head) != nil || head.Error != nil {
		return false
	}
	return json.Unmarshal(msg.Data, into) == nil
}
