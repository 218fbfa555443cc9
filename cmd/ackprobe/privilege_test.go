package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// grant is one permission a command needs.
type grant struct {
	// pub or sub is the subject (filter) the user may publish or
	// subscribe to.
	pub, sub string
	// firstRun marks what only the first run needs, when the probe
	// creates its stream and consumer (later runs reuse them, --keep).
	firstRun bool
	// optional marks what the command does without (the server's ack
	// metric events: the report says they are unavailable).
	optional bool
	// pending says why removing this grant does not (yet) end the run
	// with the one line naming it: the test accepts it, and fails once
	// the reason is gone, so that the mark is removed.
	pending string
}

func (g grant) String() string {
	if g.pub != "" {
		return "publish " + g.pub
	}
	return "subscribe " + g.sub
}

// The fixed names of README "Least privilege".
const (
	ciStream   = "ACKPROBE_CI"
	ciConsumer = "ACKPROBE_CI"
	ciInbox    = "_PROBE_INBOX"
)

// probeGrants are exactly the permissions of compare and ack run as
//
//	ackprobe compare --stream ACKPROBE_CI --consumer ACKPROBE_CI --keep --inbox-prefix _PROBE_INBOX
//
// README "Least privilege" lists the same (TestReadmeListsGrants keeps
// them in step). When the probe needs one more subject, the run with
// exactly these fails naming it: add it here and to the README.
var probeGrants = []grant{
	{pub: "$JS.API.INFO"},
	{pub: "$JS.API.STREAM.INFO.ACKPROBE_CI"},
	{pub: "$JS.API.STREAM.CREATE.ACKPROBE_CI", firstRun: true},
	{pub: "$JS.API.STREAM.PURGE.ACKPROBE_CI"},
	{pub: "$JS.API.CONSUMER.INFO.ACKPROBE_CI.ACKPROBE_CI"},
	{pub: "$JS.API.CONSUMER.CREATE.ACKPROBE_CI.ACKPROBE_CI.>", firstRun: true},
	{pub: "$JS.API.CONSUMER.MSG.NEXT.ACKPROBE_CI.ACKPROBE_CI"},
	{pub: "$JS.ACK.ACKPROBE_CI.ACKPROBE_CI.>"},
	{pub: "ackprobe.>"},
	{sub: "_PROBE_INBOX.>"},
	{sub: "$JS.EVENT.METRIC.CONSUMER.ACK.ACKPROBE_CI.ACKPROBE_CI", optional: true},
}

// inspectGrants are exactly the permissions of read-only inspect, of every
// stream (STREAM.LIST), of one stream (STREAM.INFO, CONSUMER.LIST) and of
// one consumer (CONSUMER.INFO), with --inbox-prefix _PROBE_INBOX.
var inspectGrants = []grant{
	{pub: "$JS.API.STREAM.LIST"},
	{pub: "$JS.API.STREAM.INFO.*"},
	{pub: "$JS.API.CONSUMER.LIST.*"},
	{pub: "$JS.API.CONSUMER.INFO.*.*"},
	{sub: "_PROBE_INBOX.>"},
}

var probeArgs = []string{"--stream", ciStream, "--consumer", ciConsumer, "--keep", "--inbox-prefix", ciInbox}

// keptAfterRefusal says why a refused first run still leaves what it
// created (empty): the test accepts exactly that while it is set.
const keptAfterRefusal = ""

// permsConf is a server with an account holding an admin user and the
// user "probe" with exactly grants.
func permsConf(grants []grant) string {
	var pub, sub []string
	for _, g := range grants {
		if g.pub != "" {
			pub = append(pub, fmt.Sprintf("%q", g.pub))
		} else {
			sub = append(sub, fmt.Sprintf("%q", g.sub))
		}
	}
	list := func(s []string) string {
		if len(s) == 0 {
			return `deny: [">"]`
		}
		return "allow: [" + strings.Join(s, ", ") + "]"
	}
	return fmt.Sprintf(`
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A: { jetstream: enabled, users: [
    {user: admin, password: admin},
    {user: probe, password: probe, permissions: { publish: {%s}, subscribe: {%s} }}
  ] }
}
`, list(pub), list(sub))
}

// violations records the permission violations a server logs.
type violations struct {
	mu    sync.Mutex
	lines []string
}

func (v *violations) Noticef(string, ...any) {}
func (v *violations) Warnf(string, ...any)   {}
func (v *violations) Fatalf(string, ...any)  {}
func (v *violations) Debugf(string, ...any)  {}
func (v *violations) Tracef(string, ...any)  {}
func (v *violations) Errorf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if strings.Contains(line, "Violation") {
		v.mu.Lock()
		v.lines = append(v.lines, line)
		v.mu.Unlock()
	}
}

func (v *violations) take() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.lines
	v.lines = nil
	return out
}

// permServer runs a server for grants and records its violations.
func permServer(t *testing.T, grants []grant) (*server.Server, *violations) {
	t.Helper()
	s := natstest.RunServerConf(t, permsConf(grants))
	v := &violations{}
	s.SetLogger(v, false, false)
	return s, v
}

func without(grants []grant, i int) []grant {
	return append(slices.Clone(grants[:i]), grants[i+1:]...)
}

// serverState is what an account holds, for before/after comparisons.
func serverState(t *testing.T, url string) string {
	t.Helper()
	_, js := natstest.Connect(t, url, nats.UserInfo("admin", "admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var parts []string
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		parts = append(parts, fmt.Sprintf("stream %s msgs=%d", si.Config.Name, si.State.Msgs))
		st, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		cons := st.ListConsumers(ctx)
		for ci := range cons.Info() {
			// Not num_waiting: a pull request cut short expires by itself.
			parts = append(parts, fmt.Sprintf("consumer %s/%s pending=%d ack_pending=%d", si.Config.Name, ci.Name, ci.NumPending, ci.NumAckPending))
		}
		if err := cons.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// emptyCI reports whether a serverState holds nothing but an empty
// ACKPROBE_CI stream and consumer.
func emptyCI(state string) bool {
	for _, part := range strings.Split(state, "; ") {
		switch part {
		case "stream ACKPROBE_CI msgs=0", "consumer ACKPROBE_CI/ACKPROBE_CI pending=0 ack_pending=0":
		default:
			return false
		}
	}
	return true
}

// runAs runs the built binary as user against url and returns its exit
// code, output and how long it took.
func runAs(t *testing.T, url, user string, args ...string) (int, string, string, time.Duration) {
	t.Helper()
	began := time.Now()
	p := start(t, nil, append(args, "-s", url, "--user", user, "--password", user)...)
	code := p.wait(t, time.Minute)
	return code, p.stdout.String(), p.stderr.String(), time.Since(began)
}

var deniedLine = regexp.MustCompile(`^ackprobe: (publish|subscribe) permission to (\S+) denied`)

// refusedFor asserts that stderr is the one line naming a refusal that g
// would have allowed.
func refusedFor(t *testing.T, g grant, code int, stderr string, took time.Duration) {
	t.Helper()
	m := deniedLine.FindStringSubmatch(stderr)
	switch {
	case code != exitCannotRun || m == nil || strings.Count(stderr, "\n") != 1:
		t.Errorf("without %s: exit %d, stderr %q; want one line naming the refused permission", g, code, stderr)
	case (m[1] == "publish") != (g.pub != ""):
		t.Errorf("without %s: %q names another kind of permission", g, stderr)
	case !server.SubjectMatchesFilter(m[2], g.pub+g.sub):
		t.Errorf("without %s: %q names a subject outside it: add that subject to the grants", g, stderr)
	}
	// The refusal comes at once; --timeout is 5s.
	if took > 3*time.Second {
		t.Errorf("without %s: took %s", g, took)
	}
}

// TestLeastPrivilegeProbe runs compare and ack as a user with exactly
// probeGrants (it works), and with each grant removed in turn (one line
// naming it, exit 2, at once, nothing of the run left behind), on the
// first run that creates the stream and consumer and on a later run that
// reuses them.
func TestLeastPrivilegeProbe(t *testing.T) {
	t.Parallel()
	binary(t)
	type scenario struct {
		name     string
		firstRun bool
	}
	for _, sc := range []scenario{{"first run", true}, {"later run", false}} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			prepare := func(t *testing.T, grants []grant) (string, *violations) {
				s, v := permServer(t, grants)
				if !sc.firstRun {
					code, _, stderr, _ := runAs(t, s.ClientURL(), "admin", append([]string{"compare"}, probeArgs...)...)
					if code != 0 {
						t.Fatalf("first run as admin: exit %d %s", code, stderr)
					}
					v.take()
				}
				return s.ClientURL(), v
			}
			t.Run("all grants", func(t *testing.T) {
				t.Parallel()
				url, v := prepare(t, probeGrants)
				for _, cmd := range [][]string{{"compare", "--json"}, {"ack", "--mode", "confirmed", "--json"}, {"ack", "--mode", "standard", "--json"}} {
					code, stdout, stderr, _ := runAs(t, url, "probe", append(cmd, probeArgs...)...)
					if code != 0 || stderr != "" {
						t.Fatalf("%v with exactly the grants: exit %d %s\nadd what it names to probeGrants", cmd, code, stderr)
					}
					var res struct {
						OK             bool   `json:"ok"`
						ServerSampling string `json:"server_sampling"`
					}
					if err := json.Unmarshal([]byte(stdout), &res); err != nil || !res.OK || !strings.HasPrefix(res.ServerSampling, "on") {
						t.Errorf("%v: %v %+v", cmd, err, res)
					}
					if got := v.take(); len(got) != 0 {
						t.Errorf("%v with exactly the grants was refused %q: add them to probeGrants", cmd, got)
					}
				}
			})
			for i, g := range probeGrants {
				t.Run("without "+g.String(), func(t *testing.T) {
					t.Parallel()
					url, _ := prepare(t, without(probeGrants, i))
					before := serverState(t, url)
					args := append([]string{"compare", "--json"}, probeArgs...)
					if g.pending != "" {
						args = append(args, "--timeout", "1s") // what is pending may wait for timeouts
					}
					code, stdout, stderr, took := runAs(t, url, "probe", args...)
					after := serverState(t, url)
					needed := !g.optional && (sc.firstRun || !g.firstRun)
					switch {
					case !needed && code == 0:
					case !needed:
						t.Errorf("without %s, which this run does not need: exit %d %s", g, code, stderr)
					case g.pending != "" && code == 0:
						t.Logf("without %s: still runs (%s)", g, g.pending)
					case g.pending != "":
						t.Errorf("without %s: exit %d %q: it is needed now; remove its pending mark", g, code, stderr)
					default:
						refusedFor(t, g, code, stderr, took)
					}
					if code == 0 && g.optional && !strings.Contains(stdout, `"server_sampling": "unavailable`) {
						t.Errorf("without %s: server sampling not reported unavailable", g)
					}
					switch {
					case code == 0 || after == before:
					case sc.firstRun && keptAfterRefusal != "" && emptyCI(after):
						t.Logf("without %s the refused run left %s: %s", g, after, keptAfterRefusal)
					default:
						t.Errorf("without %s the refused run left the server changed:\nbefore: %s\nafter:  %s", g, before, after)
					}
				})
			}
		})
	}
}

// TestLeastPrivilegeInspect runs inspect as a user with exactly
// inspectGrants, and with each removed in turn.
func TestLeastPrivilegeInspect(t *testing.T) {
	t.Parallel()
	binary(t)
	prepare := func(t *testing.T, grants []grant) string {
		s, _ := permServer(t, grants)
		_, js := natstest.Connect(t, s.ClientURL(), nats.UserInfo("admin", "admin"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "WORKER", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatal(err)
		}
		return s.ClientURL()
	}
	views := [][]string{{"inspect"}, {"inspect", "ORDERS"}, {"inspect", "ORDERS", "WORKER"}}
	url := prepare(t, inspectGrants)
	for _, view := range views {
		code, stdout, stderr, _ := runAs(t, url, "probe", append(view, "--json", "--inbox-prefix", ciInbox)...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, `"WORKER"`) {
			t.Errorf("%v with exactly the grants: exit %d %s %s", view, code, stderr, stdout)
		}
	}
	for i, g := range inspectGrants {
		t.Run("without "+g.String(), func(t *testing.T) {
			t.Parallel()
			url := prepare(t, without(inspectGrants, i))
			refused := 0
			for _, view := range views {
				code, _, stderr, took := runAs(t, url, "probe", append(view, "--inbox-prefix", ciInbox)...)
				if code == 0 {
					continue // this view does not need it
				}
				refused++
				refusedFor(t, g, code, stderr, took)
			}
			if refused == 0 {
				t.Errorf("no view of inspect needs %s: drop it from inspectGrants", g)
			}
		})
	}
}

// TestReadmeListsGrants keeps README "Least privilege" in step with the
// tables above.
func TestReadmeListsGrants(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(readme), "## Least privilege")
	if i < 0 {
		t.Fatal(`README has no "## Least privilege" section`)
	}
	section := string(readme[i:])
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	for _, g := range append(slices.Clone(probeGrants), inspectGrants...) {
		if !strings.Contains(section, `"`+g.pub+g.sub+`"`) {
			t.Errorf("README Least privilege does not list %s", g)
		}
	}
}

// TestReadmeServerConfig runs the server configuration README "Least
// privilege" prints, and the commands it prints, as its users.
func TestReadmeServerConfig(t *testing.T) {
	t.Parallel()
	binary(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "As server configuration:\n\n```\n")
	conf, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal(`README "Least privilege" has no server configuration block`)
	}
	conf = strings.NewReplacer("$ACKPROBE_PASSWORD", `"probe-pw"`, "$INSPECT_PASSWORD", `"inspect-pw"`).Replace(conf)
	s := natstest.RunServerConf(t, "listen: \"127.0.0.1:-1\"\njetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }\n"+conf)
	v := &violations{}
	s.SetLogger(v, false, false)
	for run := 1; run <= 2; run++ {
		p := start(t, nil, append([]string{"compare", "--json", "-s", s.ClientURL(), "--user", "ackprobe", "--password", "probe-pw"}, probeArgs...)...)
		if code := p.wait(t, time.Minute); code != 0 || p.stderr.Len() != 0 {
			t.Fatalf("run %d: exit %d %s", run, code, p.stderr.String())
		}
	}
	p := start(t, nil, "inspect", "ACKPROBE_CI", "--json", "-s", s.ClientURL(), "--user", "ackprobe-inspect", "--password", "inspect-pw", "--inbox-prefix", ciInbox)
	if code := p.wait(t, time.Minute); code != 0 || !strings.Contains(p.stdout.String(), `"ACKPROBE_CI"`) {
		t.Errorf("inspect: exit %d %s", code, p.stderr.String())
	}
	if got := v.take(); len(got) != 0 {
		t.Errorf("refused: %q", got)
	}
}
