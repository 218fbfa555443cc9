package probe

import "testing"

// TestSlowest feeds slowest the per-node figures of real runs (the
// "slow" row is TestPerNode's slowed n3, the "hiccup" row the even
// cluster on a loaded machine that once named a node slow) and figures
// at the edges of each criterion.
func TestSlowest(t *testing.T) {
	node := func(server string, p90, mean float64) NodeResult {
		return NodeResult{Server: server, LedWholeRound: true, Modes: []ModeResult{{Mode: Confirmed, AckLatencyUS: Latency{Count: 400, P90: p90, Mean: mean}}}}
	}
	for _, tc := range []struct {
		name  string
		nodes []NodeResult
		want  string // the node named slow, "" for nodes_even
	}{
		{"slow", []NodeResult{node("n3", 6738, 2564), node("n1", 316, 236), node("n2", 398, 301)}, "n3"},
		{"hiccup", []NodeResult{node("n1", 600, 450), node("n2", 648, 470), node("n3", 1290, 560)}, ""},
		{"tail alone", []NodeResult{node("n1", 500, 400), node("n2", 520, 410), node("n3", 5000, 700)}, ""},
		{"too close in time", []NodeResult{node("n1", 100, 80), node("n2", 110, 85), node("n3", 900, 500)}, ""},
		{"just slow enough", []NodeResult{node("n1", 500, 400), node("n2", 500, 400), node("n3", 1500, 800)}, "n3"},
		{"did not lead", []NodeResult{node("n1", 500, 400), node("n2", 500, 400), {Server: "n3", Modes: []ModeResult{{Mode: Confirmed, AckLatencyUS: Latency{Count: 400, P90: 9000, Mean: 9000}}}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := slowest(tc.nodes)
			if len(f) != 1 {
				t.Fatalf("findings %+v, want one", f)
			}
			switch {
			case tc.want == "" && f[0].Code != CodeNodesEven:
				t.Errorf("%s: %s, want nodes_even", f[0].Code, f[0].Message)
			case tc.want != "" && (f[0].Code != CodeSlowNode || f[0].Node != tc.want):
				t.Errorf("%s %q: %s, want slow_node %s", f[0].Code, f[0].Node, f[0].Message, tc.want)
			}
		})
	}
}

// TestNodeResultsPlacement feeds nodeResults the rounds a per-node probe
// can end with: a step-down that landed elsewhere, a round whose leader
// moved, a server outside the peer set, and a round led throughout; each
// gets its own finding, tagged with the node, and only the round led
// throughout is judged for speed.
func TestNodeResultsPlacement(t *testing.T) {
	p := &Probe{noSystemData: true}
	nodes := []*nodeRun{
		{server: "n1", probed: true, placed: true, led: true, placement: "moved", leaders: []string{"n1"}, r: &roundRun{}, rtt: newRecorder()},
		{server: "n2", probed: true, placement: "the consumer leader landed on n3, not n2", rtt: newRecorder()},
		{server: "n3", probed: true, placed: true, placement: "moved", leaders: []string{"n3", "n1"}, r: &roundRun{}, rtt: newRecorder()},
		{server: "n4", placement: "outside the probe stream's peer set", rtt: newRecorder()},
	}
	out, findings := p.nodeResults(nodes)
	if len(out) != 4 {
		t.Fatalf("%d node results, want 4", len(out))
	}
	want := map[string]string{"n2": CodeNotPlaced, "n3": CodeLeaderMoved, "n4": CodeNotProbed}
	got := map[string]string{}
	for _, f := range findings {
		if f.Node != "" {
			got[f.Node] = f.Code
		}
		if f.Code == CodeSlowNode {
			t.Errorf("a slow node was named with one node led throughout: %s", f.Message)
		}
	}
	for node, code := range want {
		if got[node] != code {
			t.Errorf("%s: finding %q, want %q (findings %+v)", node, got[node], code, findings)
		}
	}
	if _, ok := got["n1"]; ok {
		t.Errorf("n1 led its round throughout, yet has a finding: %+v", findings)
	}
	if !out[0].LedWholeRound || out[2].LedWholeRound || !out[0].Probed || out[1].Probed || !out[2].Probed || out[3].Probed {
		t.Errorf("led/probed: %+v", out)
	}
	sys := 0
	for _, f := range findings {
		if f.Code == CodeNoSystemData {
			sys++
		}
	}
	if sys != 1 {
		t.Errorf("said %d times that the system account's data is unavailable, want once", sys)
	}
}
