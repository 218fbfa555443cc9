package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/ackprobe/ackprobe/internal/canary"
	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/faults"
	"github.com/ackprobe/ackprobe/internal/probe"
)

const canaryLong = `Run a continuous ack canary: a probe round (standard acks, then confirmed
acks, --count messages each) every --interval, with Prometheus metrics.

The canary sets up its own probe stream and consumer (ACKPROBE_CANARY_<id>,
distinct for every canary) and serves on --listen:
  /metrics   Prometheus metrics (text, OpenMetrics, native histograms)
  /status    JSON: the last --window rounds and the overall status
             (ok, degraded, failing; see the README)
  /healthz   200 while the process lives (liveness)
  /readyz    200 once a round reached the server (readiness)

A round that fails (server down, no leader, timeouts) is counted and
reported, never fatal: the canary rides out restarts and reconnects, and sets
its stream and consumer up again if they were deleted. On SIGTERM or Ctrl-C
it removes what it created and exits 0, within three --timeout.

On a terminal it prints a line per round on stderr; with --json, one JSON
document per round on stdout, one per line; otherwise only changes of the
overall status.

Its consumer has an inactive threshold of three intervals plus the longest
a round may take (at least 30s), and its stream's messages a max age of
twice that, so a canary killed with -9 leaves only an empty stream behind.`

// canaryDefaults differ from compare's: a few messages per round, and an
// AckWait short enough that a lost ack shows within the round.
const (
	canaryCount   = 10
	canaryAckWait = 5 * time.Second
	canaryListen  = "localhost:9464"
)

// canaryRun is a parsed canary invocation.
type canaryRun struct {
	g        *globalOptions
	cfg      canary.Config
	listen   string
	faults   *faults.Config
	colorErr bool
}

func newCanaryCmd(g *globalOptions, s streams, runF func(*canaryRun) error) *cobra.Command {
	o := &probeOptions{}
	var (
		interval time.Duration
		listen   string
		window   int
	)
	cmd := &cobra.Command{
		Use:   "canary",
		Short: "Run probe rounds continuously and serve Prometheus metrics",
		Long:  canaryLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config(g, cmd.Flags(), probe.Standard, probe.Confirmed)
			if err != nil {
				return err
			}
			if interval <= 0 {
				return usageErr(fmt.Sprintf("--interval must be positive, got %s", interval))
			}
			if window < 1 || window > 1000 {
				return usageErr(fmt.Sprintf("--window must be between 1 and 1000 rounds, got %d", window))
			}
			v := buildVersion()
			r := &canaryRun{
				g: g,
				cfg: canary.Config{Probe: cfg, Interval: interval, Window: window, Explain: explainRound,
					Build: canary.BuildInfo{Version: v.Version, Commit: v.Commit, NatsGo: v.NatsGo, NatsServer: v.NatsServer}},
				listen:   listen,
				faults:   o.faults(),
				colorErr: stderrColor(g, s),
			}
			if runF != nil {
				return runF(r)
			}
			return runCanary(cmd.Context(), r, s)
		},
	}
	f := cmd.Flags()
	addProbeFlags(f, o)
	o.count, o.ackWait = canaryCount, canaryAckWait
	f.Lookup("count").DefValue = fmt.Sprint(canaryCount)
	f.Lookup("ack-wait").DefValue = canaryAckWait.String()
	// The canary never exits on a check: a breach marks the round failed.
	f.Lookup("max-ack-latency").Usage = "check: mark a round failed (ackprobe_rounds_total{result=\"failed\"}) when the p99 of its confirmed ack calls is above this"
	f.Lookup("min-rate").Usage = "check: mark a round failed when its confirmed acks per second (until the server showed the last one) are below this"
	f.DurationVar(&interval, "interval", canary.DefaultInterval, "start a round this often")
	f.StringVar(&listen, "listen", canaryListen, "serve /metrics, /status, /healthz and /readyz on this host:port (:9464 for every interface, port 0 for any free one)")
	f.IntVar(&window, "window", canary.DefaultWindow, "rounds /status keeps and judges the overall status over")
	return cmd
}

// runCanary serves the canary's endpoints and runs rounds until ctx ends,
// then cleans up within three --timeout.
func runCanary(ctx context.Context, r *canaryRun, s streams) error {
	ln, err := canary.Listen(r.listen)
	if err != nil {
		return usageErr(err.Error())
	}
	var proxy atomic.Pointer[faults.Proxy]
	if r.faults != nil {
		r.cfg.Probe.Faults = &probe.FaultInjection{DropRate: r.faults.DropRate, CutAfter: r.faults.CutAfter, Stats: func() probe.FaultStats {
			p := proxy.Load()
			if p == nil {
				return probe.FaultStats{}
			}
			st := p.Stats()
			return probe.FaultStats{AckFrames: st.AckFrames, AcksDropped: st.AcksDropped, AcksCut: st.AcksCut, Cuts: st.Cuts, Connections: st.Connections}
		}}
	}
	opts := withNotice(r.g.conn, s)
	opts.Faults = r.faults
	r.cfg.Dial = func(ctx context.Context) (*canary.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, 2*opts.Timeout)
		defer cancel()
		conn, err := connect.Connect(dctx, opts)
		if err != nil {
			return nil, err
		}
		opts.Notice = nil // the embedded server's notice once is enough
		proxy.Store(conn.Proxy)
		return &canary.Conn{NC: conn.NC, JS: conn.JS, Server: conn.ServerInfo, Close: func() { _ = conn.Close() }}, nil
	}
	var c *canary.Canary
	var status atomic.Value
	status.Store(canary.StatusUnknown)
	r.cfg.OnRound = func(o canary.Outcome, st string) {
		switch {
		case r.g.json:
			_ = json.NewEncoder(s.stdout).Encode(canary.Doc(o, st))
		case s.stderrTTY:
			fmt.Fprintln(s.stderr, canary.Line(o, st, r.colorErr, s.width))
		case status.Load() != st:
			_, why := c.History().Overall(time.Now())
			fmt.Fprintf(s.stderr, "ackprobe canary: status %s after round %d: %s\n", st, o.Round, why)
		}
		status.Store(st)
	}
	c, err = canary.New(r.cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := canary.Serve(ln, c.Handler())
	serving := fmt.Sprintf("ackprobe canary %s: serving http://%s%s (and /status, /healthz, /readyz); a round every %s",
		c.ProbeConfig().ID, srv.Addr(), canary.PathMetrics, r.cfg.Interval)
	if s.width > 0 && utf8.RuneCountInString(serving) > s.width {
		serving = strings.Replace(serving, " (and /status", "\n  (and /status", 1)
	}
	fmt.Fprintln(s.stderr, serving)

	// Three --timeout from the signal to the exit: the probe's cleanup
	// gets the most of it, the HTTP server the rest.
	limit := 3 * r.g.conn.Timeout
	left, runErr := c.Run(ctx, limit-limit/6)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit/12)
	_ = srv.Shutdown(sctx)
	cancel()
	if runErr != nil {
		return runErr
	}
	if len(left) > 0 {
		// As every command: what could not be removed is named, and the
		// canary did not finish its job.
		return &cleanupError{err: errLeftBehind, leftovers: left}
	}
	return nil
}

// explainRound says why a round could not finish: as any command says it,
// but a vanished probe stream or consumer is the canary's to set up again,
// not the user's to look for.
func explainRound(err error) string {
	if canary.ErrorKind(err) == canary.ErrorNotFound {
		return "the canary's stream or consumer vanished (deleted, or lost by a restarted server); it is set up again for the next round: " + err.Error()
	}
	return explain(err)
}

// stderrColor decides once whether the canary's lines on stderr get colors.
func stderrColor(g *globalOptions, s streams) bool {
	switch {
	case g.noColor, s.getenv("NO_COLOR") != "", s.getenv("TERM") == "dumb":
		return false
	case s.getenv("FORCE_COLOR") != "" && s.getenv("FORCE_COLOR") != "0":
		return true
	}
	return s.stderrTTY
}
