package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/faults"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

// probeOptions are the flags of compare and ack.
type probeOptions struct {
	count         int
	stream        string
	subject       string
	consumer      string
	storage       string
	replicas      int
	ackWait       time.Duration
	concurrency   int
	maxAckPending int
	perNode       bool
	retries       int
	keep          bool
	maxAckLatency time.Duration
	minRate       float64
	serverSample  string
	dropAcks      float64
	cutAfter      int
	ackTimeout    time.Duration
}

// Defaults that make a fault-injection run show its story within seconds.
const (
	faultAckWait = 2 * time.Second
	faultRetries = 10
)

func addProbeFlags(f *pflag.FlagSet, o *probeOptions) {
	d := probe.DefaultConfig()
	f.IntVarP(&o.count, "count", "n", d.Count, "messages per mode; 1 is the classic scenario")
	f.StringVar(&o.stream, "stream", "", "stream to probe (default: a new stream ACKPROBE_<id>, deleted at the end)")
	f.StringVar(&o.subject, "subject", "", "probe subject, covered by the stream (default: ackprobe.<id>)")
	f.StringVar(&o.consumer, "consumer", "", "consumer to probe with; only one that ackprobe created (default: a new one, deleted at the end)")
	f.StringVar(&o.storage, "storage", "", "storage of a stream ackprobe creates: memory (default) or file; for a stream that exists, must match it")
	f.IntVar(&o.replicas, "replicas", 0, "replicas of the stream ackprobe creates (default 1); for a stream that exists, must match it")
	f.DurationVar(&o.ackWait, "ack-wait", d.AckWait, "AckWait of the consumer ackprobe creates (at least 1ms); a consumer reused with --consumer must have this AckWait when given")
	f.IntVar(&o.concurrency, "concurrency", d.Concurrency, "confirmed acks in flight at once")
	f.IntVar(&o.maxAckPending, "max-ack-pending", 0, "max_ack_pending of the consumer ackprobe creates (default 1,000, or the account's max_ack_pending when lower)")
	f.IntVar(&o.retries, "retries", d.Retries, "most times a failed confirmed ack is sent again; -1: as often as fits before the message's AckWait runs out (at least one --timeout)")
	f.BoolVar(&o.keep, "keep", false, "keep the stream and consumer the probe created, for the next run to reuse")
	f.BoolVar(&o.perNode, "per-node", false, "on a cluster: a round with each server of the probe stream's peer set leading the stream and consumer, side by side, naming the slowest node (--replicas 3 by default; nats-server 2.11+)")
	f.DurationVar(&o.maxAckLatency, "max-ack-latency", 0, "check: fail (exit 1) when the p99 of confirmed ack calls is above this")
	f.Float64Var(&o.minRate, "min-rate", 0, "check: fail (exit 1) when confirmed acks per second (until the server showed the last one) are below this")
	f.Float64Var(&o.dropAcks, "drop-acks", 0, "fault injection: drop this share (0 to 1) of the ack frames ackprobe sends, through a proxy in front of the server")
	f.IntVar(&o.cutAfter, "cut-after", 0, "fault injection: sever the connection right after the Nth ack frame, then let the client reconnect")
	f.DurationVar(&o.ackTimeout, "ack-timeout", 0, "time limit of one confirmed-ack attempt; when given, used as given (default: a third of the consumer's AckWait, at least 50ms, at most --timeout; with fault injection a tenth)")
	f.StringVar(&o.serverSample, "server-sample", d.ServerSample, "share of acks the server reports in ack metric events (sample_freq): auto (every ack up to 1,000 per mode, then about 1,000, at least about 2%), off, or 1%-100% (the server reports about N+1% for N below 100)")
}

// config turns the flags into a validated probe configuration.
func (o *probeOptions) config(g *globalOptions, f *pflag.FlagSet, modes ...probe.Mode) (probe.Config, error) {
	cfg := probe.DefaultConfig(modes...)
	if o.storage != "" {
		storage, err := probe.ParseStorage(o.storage)
		if err != nil {
			return probe.Config{}, usageErr(err.Error())
		}
		cfg.Storage = storage
	}
	if f.Changed("replicas") && o.replicas < 1 {
		return probe.Config{}, usageErr(fmt.Sprintf("--replicas must be between 1 and 5, got %d", o.replicas))
	}
	cfg.Count = o.count
	cfg.Stream, cfg.Subject, cfg.Consumer = o.stream, o.subject, o.consumer
	cfg.Replicas = o.replicas
	cfg.AckWait, cfg.MatchAckWait = o.ackWait, f.Changed("ack-wait")
	cfg.Concurrency = o.concurrency
	cfg.MaxAckPending = o.maxAckPending
	cfg.Retries = o.retries
	cfg.Keep = o.keep
	cfg.PerNode = o.perNode
	cfg.ServerSample = o.serverSample
	cfg.Timeout = g.conn.Timeout
	cfg.Thresholds = probe.Thresholds{MaxAckLatency: o.maxAckLatency, MinRate: o.minRate}
	cfg.AckTimeout = o.ackTimeout
	if err := o.faultDefaults(&cfg, f); err != nil {
		return probe.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return probe.Config{}, err
	}
	return cfg, validateConn(g)
}

// probeRun is a parsed compare or ack invocation.
type probeRun struct {
	name   string
	g      *globalOptions
	cfg    probe.Config
	faults *faults.Config
}

// runProbe connects, probes, renders and maps the outcome to an error.
// The probe gets everything it reports (the server reached, the fault
// proxy's counters) up front, and its Result is rendered as it comes.
func runProbe(ctx context.Context, r *probeRun, s streams) error {
	opts := withNotice(r.g.conn, s)
	opts.Faults = r.faults
	conn, err := connect.Connect(ctx, opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	r.cfg.Server = conn.ServerInfo()
	// A refused permission ends the run at once, not after --timeout;
	// the server's ack metric events are optional.
	ctx, stop := conn.Watch(ctx, probe.OptionalSubjects...)
	defer stop()
	if conn.Proxy != nil {
		r.cfg.Faults = &probe.FaultInjection{DropRate: r.faults.DropRate, CutAfter: r.faults.CutAfter, Stats: func() probe.FaultStats {
			st := conn.Proxy.Stats()
			return probe.FaultStats{AckFrames: st.AckFrames, AcksDropped: st.AcksDropped, AcksCut: st.AcksCut, Cuts: st.Cuts, Connections: st.Connections}
		}}
	}
	update, done := progress(s, r.cfg)
	r.cfg.Progress = update
	res, err := probe.Run(ctx, conn.NC, conn.JS, r.cfg)
	done()
	if err != nil {
		err = withAsync(err, conn)
		if res != nil && len(res.Leftovers) > 0 {
			err = &cleanupError{err: err, leftovers: res.Leftovers}
		}
		return &runError{err: err, partial: res}
	}
	if r.g.json {
		err = report.JSON(s.stdout, res)
	} else {
		err = report.Probe(s.stdout, res, report.Options{Color: colorOn(r.g, s), Command: r.name, Width: s.width})
	}
	if err != nil {
		return err
	}
	if len(res.Leftovers) > 0 {
		// The measurement stands, but something is left on the server:
		// the run did not finish its job (exit 2), and says why.
		var cause error = errLeftBehind
		if d := conn.Denied(); d != nil {
			cause = d
		}
		return &cleanupError{err: cause, leftovers: res.Leftovers, reported: true}
	}
	if !res.OK {
		return errCheckFailed
	}
	return nil
}

// errLeftBehind is a run that could not remove what it created.
var errLeftBehind = errors.New("could not clean up what the run created on the server")

// runError is a run that could not finish, with what it measured until
// then (nil when it did not start): under --json it is printed with the
// error.
type runError struct {
	err     error
	partial any
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func withNotice(o connect.Options, s streams) connect.Options {
	o.Notice = s.stderr
	return o
}

// newProbeCmd builds compare or ack around the shared probe flags.
func newProbeCmd(use, short, long string, g *globalOptions, s streams, modes func() ([]probe.Mode, error), extra func(*pflag.FlagSet), runF func(*probeRun) error) *cobra.Command {
	o := &probeOptions{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := modes()
			if err != nil {
				return err
			}
			cfg, err := o.config(g, cmd.Flags(), ms...)
			if err != nil {
				return err
			}
			r := &probeRun{name: cmd.Name(), g: g, cfg: cfg, faults: o.faults()}
			if runF != nil {
				return runF(r)
			}
			return runProbe(cmd.Context(), r, s)
		},
	}
	addProbeFlags(cmd.Flags(), o)
	if extra != nil {
		extra(cmd.Flags())
	}
	return cmd
}

// faults returns the fault proxy's configuration, or nil for none.
func (o *probeOptions) faults() *faults.Config {
	if o.dropAcks == 0 && o.cutAfter == 0 {
		return nil
	}
	return &faults.Config{DropRate: o.dropAcks, CutAfter: o.cutAfter}
}

// faultDefaults checks the fault flags and, when faults are on, shortens
// what the user did not set so lost acks come back within seconds.
func (o *probeOptions) faultDefaults(cfg *probe.Config, f *pflag.FlagSet) error {
	if o.dropAcks < 0 || o.dropAcks > 1 || math.IsNaN(o.dropAcks) {
		return usageErr(fmt.Sprintf("--drop-acks must be between 0 and 1, got %g", o.dropAcks))
	}
	if o.cutAfter < 0 {
		return usageErr(fmt.Sprintf("--cut-after must not be negative, got %d", o.cutAfter))
	}
	if o.ackTimeout < 0 {
		return usageErr(fmt.Sprintf("--ack-timeout must not be negative, got %s", o.ackTimeout))
	}
	if o.faults() == nil {
		return nil
	}
	cfg.CollectRedeliveries = true
	if !f.Changed("ack-wait") {
		cfg.AckWait = faultAckWait
	}
	if !f.Changed("retries") {
		cfg.Retries = faultRetries
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = min(cfg.Timeout, max(cfg.AckWait/10, 50*time.Millisecond))
	}
	return nil
}

// cleanupError is a run that left something behind; reported is set when
// its result was printed already.
type cleanupError struct {
	err       error
	leftovers []probe.Leftover
	reported  bool
}

func (e *cleanupError) Error() string { return e.err.Error() }
func (e *cleanupError) Unwrap() error { return e.err }
