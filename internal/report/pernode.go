package report

import (
	"fmt"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// nodesView writes a per-node probe: one row per server of the cluster,
// the figures of the round it led, and its findings; the verdict naming
// the slowest node comes from the findings.
func (v view) nodesView(b *strings.Builder) {
	res, p := v.res, v.p
	t := newTable()
	t.AppendHeader(table.Row{"Server", "Led Round", "Confirmed p50", "p90", "p99", "Max", "Std Visible p50", "Ack Legs p50", "API RTT p50", "Acks", "Placement"})
	alignRight(t, 3, 4, 5, 6, 7, 8, 9, 10)
	if v.narrow() {
		// The least important go: max, the ack legs, the API round trip,
		// the count and how the leaders got there.
		right := func(n int) table.ColumnConfig {
			return table.ColumnConfig{Number: n, Align: text.AlignRight, AlignHeader: text.AlignRight}
		}
		t.SetColumnConfigs([]table.ColumnConfig{right(3), right(4), right(5), right(7),
			{Number: 6, Hidden: true}, {Number: 8, Hidden: true}, {Number: 9, Hidden: true}, {Number: 10, Hidden: true}, {Number: 11, Hidden: true}})
	}
	for _, n := range res.Nodes {
		sev := v.nodeSeverity(n.Server)
		name := v.paint(sev, n.Server)
		if !n.Probed {
			t.AppendRow(table.Row{p.dim.Sprint(n.Server), p.dim.Sprint("not probed"), "", "", "", "", "", "", "", "", p.dim.Sprint(n.Placement)})
			continue
		}
		led := "yes"
		if !n.LedWholeRound {
			led = v.paint(probe.SeverityWarn, "no")
			if len(n.Leaders) > 0 {
				led = v.paint(probe.SeverityWarn, strings.Join(n.Leaders, "→"))
			}
		}
		conf, std := nodeMode(n, probe.Confirmed), nodeMode(n, probe.Standard)
		cell := func(m *probe.ModeResult, f func(probe.Latency) float64) string {
			if m == nil || m.AckLatencyUS.Count == 0 {
				return p.dim.Sprint("-")
			}
			return us(f(m.AckLatencyUS))
		}
		// Ack legs: the server's delivery → ack processed (its sampled
		// ack_time) less the client's hold time, i.e. the message's way
		// to the client and the ack's way back to the leader, without
		// the client's own time and before replication. The server's
		// ack_time alone is mostly the client's hold time (batches are
		// fetched ahead), so it said little about the node.
		visible, legs, acks := p.dim.Sprint("-"), p.dim.Sprint("-"), 0
		if std != nil {
			acks += std.Acks
			if std.Visibility.LagUS.Count > 0 {
				visible = us(std.Visibility.LagUS.P50)
			} else if std.Visibility.ReadBacks > 0 {
				visible = "at once"
			}
		}
		if conf != nil {
			acks += conf.Acks
			if conf.Server != nil && conf.Server.TransitUS.Count > 0 {
				legs = us(conf.Server.TransitUS.P50)
			}
		}
		rtt := p.dim.Sprint("-")
		if n.APIRoundTripUS.Count > 0 {
			rtt = us(n.APIRoundTripUS.P50)
		}
		t.AppendRow(table.Row{name, led,
			v.paint(sev, cell(conf, func(l probe.Latency) float64 { return l.P50 })),
			cell(conf, func(l probe.Latency) float64 { return l.P90 }),
			cell(conf, func(l probe.Latency) float64 { return l.P99 }),
			cell(conf, func(l probe.Latency) float64 { return l.Max }),
			visible, legs, rtt, num(acks), n.Placement})
	}
	b.WriteString(t.Render() + "\n\n")
	v.raftView(b)
	for _, n := range res.Nodes {
		if len(n.Findings) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s %s\n", v.mark(v.nodeSeverity(n.Server)), p.bold.Sprint(n.Server))
		for _, f := range n.Findings {
			msg := f.Message
			if f.Mode != "" {
				msg = string(f.Mode) + ": " + msg
			}
			fmt.Fprintf(b, "    %s %s\n", v.mark(f.Severity), v.wrap(msg, 6))
		}
	}
	for _, f := range res.Findings {
		if f.Code == probe.CodeSlowNode || f.Code == probe.CodeNodesEven {
			fmt.Fprintf(b, "\n%s %s\n", v.mark(f.Severity), v.wrap(f.Message, 2))
		}
	}
}

// nodeSeverity is the worst severity of the findings about a node.
func (v view) nodeSeverity(server string) probe.Severity {
	worst := probe.Severity("")
	for _, f := range v.res.Findings {
		if f.Node == server && f.Severity.Rank() > worst.Rank() {
			worst = f.Severity
		}
	}
	return worst
}

func nodeMode(n probe.NodeResult, m probe.Mode) *probe.ModeResult {
	for i := range n.Modes {
		if n.Modes[i].Mode == m {
			return &n.Modes[i]
		}
	}
	return nil
}

// raftView writes what each probed server said of the probe's raft groups
// and ack queue while it led its round, the peaks of the samples
// (NodeResult.System), when the account could ask the system account.
func (v view) raftView(b *strings.Builder) {
	p := v.p
	t := newTable()
	t.AppendHeader(table.Row{"Server", "Group", "Role", "Applied Lag", "Follower Lag", "Queues p/e/r/a", "Ack Queue"})
	alignRight(t, 4, 5, 6, 7)
	if v.narrow() {
		t.SetColumnConfigs([]table.ColumnConfig{{Number: 4, Align: text.AlignRight, AlignHeader: text.AlignRight},
			{Number: 5, Align: text.AlignRight, AlignHeader: text.AlignRight}, {Number: 6, Hidden: true},
			{Number: 7, Align: text.AlignRight, AlignHeader: text.AlignRight}})
	}
	rows := 0
	for _, n := range v.res.Nodes {
		if n.System == nil {
			continue
		}
		for _, g := range []struct {
			what string
			rg   *probe.RaftGroup
		}{{"stream", n.System.Stream}, {"consumer", n.System.Consumer}} {
			if g.rg == nil {
				continue
			}
			ackQueue := ""
			if g.what == "consumer" && n.System.AckQueuePending != nil {
				ackQueue = num(*n.System.AckQueuePending)
			}
			role := strings.ToLower(g.rg.State)
			if role != "leader" {
				role = v.paint(probe.SeverityWarn, role)
			}
			t.AppendRow(table.Row{n.Server, g.what, role, num(g.rg.AppliedLag), num(g.rg.FollowerLag),
				fmt.Sprintf("%d/%d/%d/%d", g.rg.ProposalQueue, g.rg.EntryQueue, g.rg.ResponseQueue, g.rg.ApplyQueue), ackQueue})
			rows++
		}
	}
	if rows == 0 {
		return
	}
	b.WriteString(p.dim.Sprint(v.wrap("what each server said of the probe's raft groups while it led (peaks; RAFTZ, IPQUEUESZ)", 0)) + "\n")
	b.WriteString(t.Render() + "\n\n")
}
