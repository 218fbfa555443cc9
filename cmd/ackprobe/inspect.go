package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/inspect"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

const inspectLong = `Show streams and consumers and judge each consumer's health, read-only:
inspect sends only list and info requests, and under --watch subscribes to
the server's advisories. It never publishes, acks, or creates, changes or
deletes a stream or consumer.

  ackprobe inspect -s URL                   every stream of the account and its consumers
  ackprobe inspect -s URL STREAM            the stream's configuration, state, cluster and consumers
  ackprobe inspect -s URL STREAM CONSUMER   everything about one consumer

inspect needs a server: -s/--server, NATS_URL or a nats context. --embedded
looks at an empty embedded server instead (a demo).

Figures are the server's own: Pending is num_pending (not yet delivered), Ack
Pending is num_ack_pending (delivered, not yet acked) of max_ack_pending,
Redelivered is num_redelivered, Waiting is num_waiting (pull requests).
Delivered and Ack Floor show a stream sequence and how long ago the consumer
leader last delivered, or last moved the ack floor (an ack, but also a
terminated message or one that left the stream). Streams and consumers that
ackprobe created are marked "ackprobe's".

HEALTH
Each consumer is ok, warn or critical: the worst of the rules below. A rule
fires when its figure is at or above the threshold; 0 turns it off.

  rule                 figure                                     flags (default warn)
  outstanding-ack      num_ack_pending                            --outstanding-ack-warn, -critical
  ack-pending          num_ack_pending, % of max_ack_pending      --ack-pending-share-warn (80), -critical
  redelivery           num_redelivered                            --redelivery-warn (1), -critical
  unprocessed          num_pending                                --unprocessed-warn, -critical
  waiting              num_waiting                                --waiting-warn, -critical
  last-delivery        time without a delivery while messages     --last-delivery-warn (5m), -critical
                       wait to be delivered (not when paused)
  last-ack             time without an ack while messages are     --last-ack-warn (5m), -critical
                       ack pending, from the last ack or the
                       delivery of the ack-pending ones
  ack-wait-expired     ack-pending messages of a pull consumer    --ack-wait-expired-warn (1), -critical
                       past their ack wait, no pull waiting
  max-deliver-reached  messages dropped at MaxDeliver unacked     --max-deliver-reached-warn (1), -critical
  paused               the consumer is paused                     warn
  replicas             a replica lagging or offline               warn
                       no leader                                  critical
  pinned               not every priority group has a pinned      with --pinned: critical
                       client
 under --watch, per interval:
  late-ack             sampled acks slower than the ack wait      --late-ack-warn (1), -critical
  redelivery-storm     redeliveries per second                    --redelivery-storm-warn (10), -critical
  nak-storm            MSG_NAKED advisories                       --nak-storm-warn (10), -critical
  terminated           client +TERM advisories                    --terminated-warn (1), -critical

By default nothing is critical: set critical thresholds with the flags, or per
consumer in its metadata the way "nats server check consumer" reads them:
io.nats.monitor.outstanding-ack-critical, io.nats.monitor.waiting-critical,
io.nats.monitor.unprocessed-critical, io.nats.monitor.redelivery-critical
(counts), io.nats.monitor.last-delivery-critical,
io.nats.monitor.last-ack-critical (durations: 90s, 1h, 2d, 1w) and
io.nats.monitor.pinned (true or false), and for ackprobe's own rules
io.nats.monitor.ack-wait-expired-critical,
io.nats.monitor.max-deliver-reached-critical, io.nats.monitor.late-ack-critical,
io.nats.monitor.nak-storm-critical, io.nats.monitor.terminated-critical
(counts) and io.nats.monitor.redelivery-storm-critical (per second). Metadata
wins over the flags; "0" turns a check off for that consumer.

WATCH
--watch DUR refreshes every DUR and shows what moved since the previous
refresh: deliveries and redeliveries per second, acks per second, and the
server's advisories (NAKs, terminations, max deliveries) and sampled ack
times. Messages that leave the stream (limits, max age, deletes, purges)
while ack pending are not acks: they are taken off, and when inspect cannot
tell (a purge announces nothing) acks are shown as a range. Ctrl-C stops it;
with --json each refresh is one JSON document on one line. A refresh that
fails (the server went away, a request outlived --timeout) is reported on
stderr and, with --json, as {"ok": false, "error": {...}} on its line, and
the watch goes on; it stops when its first look fails, a permission is
refused or the connection closed for good. With --format nagios or
prometheus, --watch DUR takes two looks DUR apart and reports once.

FORMATS
--format text (default), json (same as --json), nagios (one line with
performance data, as "nats server check consumer" prints it) or prometheus
(text exposition for node_exporter's textfile collector). --sort name,
pending, ack-pending, redelivered or health orders the consumers; --only warn
or --only critical lists just those.

EXIT STATUS
  text, json:  0 no consumer is critical, 1 at least one is, 2 it could not
               run (under --watch: at the last refresh; 2 when it failed)
  nagios:      0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (it could not run)
  prometheus:  0 it ran (the health is in the metrics), 2 it could not run`

// inspectOptions is a parsed inspect invocation.
type inspectOptions struct {
	g          *globalOptions
	stream     string
	consumer   string
	watch      time.Duration
	thresholds inspect.Thresholds
	// format is text, json, nagios or prometheus (--format, --json).
	format   string
	sortBy   string
	onlyFlag string
	only     *inspect.Status
}

// minWatch keeps --watch from hammering the server's API.
const minWatch = 10 * time.Millisecond

func newInspectCmd(g *globalOptions, s streams, runF func(*inspectOptions) error) *cobra.Command {
	o := &inspectOptions{g: g, thresholds: inspect.DefaultThresholds()}
	cmd := &cobra.Command{
		Use:   "inspect [STREAM [CONSUMER]]",
		Short: "Read-only state and health of streams and consumers",
		Long:  inspectLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 2 {
				return o.fail(s, usageErr(fmt.Sprintf("inspect takes at most a stream and a consumer, got %d arguments", len(args))))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.parse(args); err != nil {
				return o.fail(s, err)
			}
			if runF != nil {
				return runF(o)
			}
			return o.fail(s, runInspect(cmd.Context(), o, s))
		},
	}
	// A bad flag is reported in the format asked for so far.
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return o.fail(s, usageErr(flagError(err))) })
	f := cmd.Flags()
	f.DurationVar(&o.watch, "watch", 0, "refresh every DUR and show what moved since the previous refresh (Ctrl-C stops); with --format nagios or prometheus, two looks DUR apart")
	f.StringVar(&o.format, "format", formatText, "output: text, json (as --json), nagios or prometheus")
	f.StringVar(&o.sortBy, "sort", inspect.SortName, "order consumers by name, pending, ack-pending, redelivered or health")
	f.StringVar(&o.onlyFlag, "only", "", "list only consumers at warn (warn and critical) or critical")
	addThresholdFlags(f, &o.thresholds)
	return cmd
}

func addThresholdFlags(f *pflag.FlagSet, t *inspect.Thresholds) {
	w, c := &t.Warn, &t.Critical
	f.IntVar(&w.OutstandingAck, "outstanding-ack-warn", w.OutstandingAck, "warn at this many messages ack pending (0: off)")
	f.IntVar(&c.OutstandingAck, "outstanding-ack-critical", c.OutstandingAck, "critical at this many messages ack pending (0: off)")
	f.Float64Var(&w.AckPendingShare, "ack-pending-share-warn", w.AckPendingShare, "warn when ack pending reaches this % of max_ack_pending (0: off)")
	f.Float64Var(&c.AckPendingShare, "ack-pending-share-critical", c.AckPendingShare, "critical when ack pending reaches this % of max_ack_pending (0: off)")
	f.IntVar(&w.Redelivery, "redelivery-warn", w.Redelivery, "warn at this many messages redelivered and not yet acked (0: off)")
	f.IntVar(&c.Redelivery, "redelivery-critical", c.Redelivery, "critical at this many messages redelivered and not yet acked (0: off)")
	f.IntVar(&w.Unprocessed, "unprocessed-warn", w.Unprocessed, "warn at this many messages not yet delivered (0: off)")
	f.IntVar(&c.Unprocessed, "unprocessed-critical", c.Unprocessed, "critical at this many messages not yet delivered (0: off)")
	f.IntVar(&w.Waiting, "waiting-warn", w.Waiting, "warn at this many pull requests waiting (0: off)")
	f.IntVar(&c.Waiting, "waiting-critical", c.Waiting, "critical at this many pull requests waiting (0: off)")
	f.DurationVar(&w.LastDelivery, "last-delivery-warn", w.LastDelivery, "warn after this long without a delivery while messages wait (0: off)")
	f.DurationVar(&c.LastDelivery, "last-delivery-critical", c.LastDelivery, "critical after this long without a delivery while messages wait (0: off)")
	f.DurationVar(&w.LastAck, "last-ack-warn", w.LastAck, "warn after this long without an ack while messages are ack pending (0: off)")
	f.DurationVar(&c.LastAck, "last-ack-critical", c.LastAck, "critical after this long without an ack while messages are ack pending (0: off)")
	f.IntVar(&w.AckWaitExpired, "ack-wait-expired-warn", w.AckWaitExpired, "warn at this many ack-pending messages past their ack wait with no pull waiting (0: off)")
	f.IntVar(&c.AckWaitExpired, "ack-wait-expired-critical", c.AckWaitExpired, "critical at this many ack-pending messages past their ack wait with no pull waiting (0: off)")
	f.IntVar(&w.MaxDeliverReached, "max-deliver-reached-warn", w.MaxDeliverReached, "warn at this many messages dropped at MaxDeliver without an ack (0: off)")
	f.IntVar(&c.MaxDeliverReached, "max-deliver-reached-critical", c.MaxDeliverReached, "critical at this many messages dropped at MaxDeliver without an ack (0: off)")
	f.IntVar(&w.LateAck, "late-ack-warn", w.LateAck, "--watch: warn at this many sampled acks per interval slower than the ack wait (0: off)")
	f.IntVar(&c.LateAck, "late-ack-critical", c.LateAck, "--watch: critical at this many sampled acks per interval slower than the ack wait (0: off)")
	f.Float64Var(&w.RedeliveryStorm, "redelivery-storm-warn", w.RedeliveryStorm, "--watch: warn at this many redeliveries per second (0: off)")
	f.Float64Var(&c.RedeliveryStorm, "redelivery-storm-critical", c.RedeliveryStorm, "--watch: critical at this many redeliveries per second (0: off)")
	f.IntVar(&w.NakStorm, "nak-storm-warn", w.NakStorm, "--watch: warn at this many NAKs per interval (0: off)")
	f.IntVar(&c.NakStorm, "nak-storm-critical", c.NakStorm, "--watch: critical at this many NAKs per interval (0: off)")
	f.IntVar(&w.Terminated, "terminated-warn", w.Terminated, "--watch: warn at this many client +TERMs per interval (0: off)")
	f.IntVar(&c.Terminated, "terminated-critical", c.Terminated, "--watch: critical at this many client +TERMs per interval (0: off)")
	f.BoolVar(&t.Pinned, "pinned", false, "critical unless the consumer pins a client in every priority group")
}

// parse validates the arguments and flags before anything touches the server.
func (o *inspectOptions) parse(args []string) error {
	if err := o.resolveFormat(); err != nil {
		return err
	}
	if len(args) > 0 {
		o.stream = args[0]
	}
	if len(args) > 1 {
		o.consumer = args[1]
	}
	for i, kind := range []string{"stream", "consumer"} {
		if len(args) <= i {
			break
		}
		if args[i] == "" {
			return usageErr(fmt.Sprintf("the %s name is empty", kind))
		}
		if err := probe.ValidateName(kind, args[i]); err != nil {
			var pu *probe.UsageError
			if errors.As(err, &pu) {
				// The probe's wording names a flag; here the name is an argument.
				return usageErr(strings.TrimPrefix(pu.Msg, "--"))
			}
			return err
		}
	}
	if o.watch < 0 || (o.watch > 0 && o.watch < minWatch) {
		return usageErr(fmt.Sprintf("--watch must be at least %s, got %s", minWatch, o.watch))
	}
	if err := o.thresholds.Validate(); err != nil {
		return usageErr(err.Error())
	}
	sortBy, err := inspect.ParseSort(o.sortBy)
	if err != nil {
		return usageErr(err.Error())
	}
	o.sortBy = sortBy
	if o.only, err = inspect.ParseOnly(o.onlyFlag); err != nil {
		return usageErr(err.Error())
	}
	if err := validateConn(o.g); err != nil {
		return err
	}
	if o.g.conn.UsesEmbedded() && !o.g.conn.Embedded {
		// A monitoring check that lost its NATS_URL must not pass by looking
		// at an empty server of its own.
		return usageErr("inspect needs a server to look at: give -s URL, NATS_URL or --context (or --embedded for an empty embedded server)")
	}
	return nil
}

// runInspect connects, takes one snapshot (or one per refresh under
// --watch), renders it and fails the check as the format's exit codes say.
func runInspect(ctx context.Context, o *inspectOptions, s streams) error {
	conn, err := connect.Connect(ctx, withNotice(o.g.conn, s))
	if err != nil {
		return err
	}
	defer conn.Close()
	server := conn.ServerInfo()
	// A refused permission fails a look at once, not after --timeout;
	// but under --watch, an account that may not subscribe to the
	// advisories is still watched, and told what cannot be counted.
	var optional []string
	if o.watch > 0 {
		optional = append(optional, "$JS.EVENT.>")
	}
	watched, stop := conn.Watch(ctx, optional...)
	defer stop()
	take := func() (*inspect.Snapshot, error) {
		if si := conn.ServerInfo(); si.URL != "" {
			// Under --watch the client may have reconnected to another
			// server of the cluster since the last refresh.
			server = si
		}
		snap, err := inspect.Gather(watched, conn.JS, inspect.Options{
			Stream:     o.stream,
			Consumer:   o.consumer,
			Timeout:    o.g.conn.Timeout,
			Thresholds: o.thresholds,
			Server:     server,
		})
		if err != nil {
			return nil, withAsync(err, conn)
		}
		return snap, nil
	}
	if o.watch == 0 {
		snap, err := take()
		if err != nil {
			return err
		}
		return o.render(s, snap, 0)
	}
	l, err := inspect.Listen(conn.NC, inspect.Scope{Stream: o.stream, Consumer: o.consumer}, o.g.conn.Timeout)
	if err != nil {
		return err
	}
	defer l.Close()
	w := inspect.NewWatch(o.thresholds, l)
	if o.format == formatNagios || o.format == formatPrometheus {
		return twoLooks(ctx, o, s, w, take)
	}
	return watchInspect(ctx, o, s, w, server, take)
}

// twoLooks is --watch for a check: two snapshots o.watch apart, with the
// events in between, reported once.
func twoLooks(ctx context.Context, o *inspectOptions, s streams, w *inspect.Watch, take func() (*inspect.Snapshot, error)) error {
	first, err := take()
	if err != nil {
		return err
	}
	w.Next(first)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.watch):
	}
	second, err := take()
	if err != nil {
		return err
	}
	w.Next(second)
	return o.render(s, second, 0)
}

// Terminal control for redrawing in place.
const (
	hideCursor  = "\x1b[?25l"
	showCursor  = "\x1b[?25h"
	clearScreen = "\x1b[2J"
	home        = "\x1b[H"
	clearLine   = "\x1b[K"
	clearBelow  = "\x1b[J"
)

// watchInspect refreshes until the context is cancelled (Ctrl-C) and
// returns the verdict of the last refresh: that of its snapshot, or exit 2
// when it failed.
//
// A refresh that fails is reported like a run that could not run: one
// "ackprobe: refresh N failed: …" line on stderr and, under --json, the
// failure document on its own line, so that every refresh prints one
// document. The watch then goes on: a server restarting, a cluster
// electing leaders or a slow answer pass, and the next refresh diffs
// against the last good one. It ends at once (exit 2) when the first
// refresh fails, as a single look would (a wrong stream name, no
// JetStream: nothing to watch), and when no later refresh can succeed: a
// permission the server refused, a connection closed for good.
func watchInspect(ctx context.Context, o *inspectOptions, s streams, w *inspect.Watch, server doc.ServerInfo, take func() (*inspect.Snapshot, error)) error {
	inPlace := s.stdoutTTY && o.format == formatText
	if inPlace {
		fmt.Fprint(s.stdout, hideCursor+clearScreen)
		defer fmt.Fprint(s.stdout, showCursor)
	}
	ticker := time.NewTicker(o.watch)
	defer ticker.Stop()
	var (
		last  *inspect.Snapshot
		ended error // the last refresh's verdict
		ran   bool  // a refresh ended, well or not
	)
	for refresh := 1; ; refresh++ {
		started := time.Now().UTC()
		snap, err := take()
		switch {
		case ctx.Err() != nil:
			// Interrupted: the refresh does not count.
		case err != nil:
			ended, ran = o.refreshFailed(s, refresh, last, refreshFailure{Server: server, Taken: started}, err), true
			if last == nil || unrecoverable(err) {
				return ended
			}
		default:
			w.Next(snap)
			if err := renderRefresh(s, o, snap, refresh, inPlace); err != nil {
				return err
			}
			last, ended, ran = snap, inspectVerdict(snap), true
		}
		select {
		case <-ctx.Done():
			if inPlace {
				fmt.Fprintln(s.stdout)
			}
			if !ran {
				return o.interruptedWatch(s)
			}
			return ended
		case <-ticker.C:
		}
	}
}

// refreshFailure is what a failed refresh's JSON document holds besides
// "ok" and "error": the keys of a snapshot that it still knows (the server
// of the last good refresh, or the one connected to at first).
type refreshFailure struct {
	Server doc.ServerInfo `json:"server"`
	Scope  inspect.Scope  `json:"scope"`
	Taken  time.Time      `json:"taken"`
}

// refreshFailed reports a refresh that failed and returns the error that
// carries its exit code (2), already reported.
func (o *inspectOptions) refreshFailed(s streams, refresh int, last *inspect.Snapshot, f refreshFailure, err error) error {
	// Printed here, not by the command's exit: scrub the connection's
	// secrets as that would.
	msg := oneLine(explain(&secretsError{err: err, scrub: o.g.conn.Scrub}))
	if last == nil {
		// The first look: as inspect without --watch says it.
		fmt.Fprintln(s.stderr, "ackprobe: "+msg)
	} else {
		fmt.Fprintf(s.stderr, "ackprobe: refresh %d failed: %s\n", refresh, msg)
	}
	if o.format == formatJSON {
		f.Scope = inspect.Scope{Stream: o.stream, Consumer: o.consumer}
		if last != nil {
			f.Server = last.Server
		}
		_ = report.FailureLine(s.stdout, f, exitCannotRun, msg)
	}
	return &exitError{code: exitCannotRun}
}

// interruptedWatch ends a watch interrupted before its first refresh
// ended: under --json with the failure document on one line, as every
// other document of a watch.
func (o *inspectOptions) interruptedWatch(s streams) error {
	fmt.Fprintln(s.stderr, "ackprobe: interrupted")
	if o.format == formatJSON {
		_ = report.FailureLine(s.stdout, nil, exitInterrupted, "interrupted")
	}
	return &exitError{code: exitInterrupted}
}

// unrecoverable reports whether no later refresh can succeed after err:
// the server refused a permission, or the connection closed for good.
func unrecoverable(err error) bool {
	var (
		pe *connect.PermissionError
		ce *connect.ClosedError
	)
	return errors.As(err, &pe) || errors.As(err, &ce)
}

func renderRefresh(s streams, o *inspectOptions, snap *inspect.Snapshot, refresh int, inPlace bool) error {
	view := snap.Select(o.sortBy, o.only)
	if o.format == formatJSON {
		return report.JSONLine(s.stdout, view)
	}
	var frame bytes.Buffer
	if err := report.Inspect(&frame, view, report.InspectOptions{Color: colorOn(o.g, s), Watch: o.watch, Refresh: refresh, Width: s.width}); err != nil {
		return err
	}
	out := frame.String()
	switch {
	case inPlace:
		// Overwrite the previous frame line by line rather than clearing
		// the screen first, so that it does not flicker.
		out = home + strings.ReplaceAll(strings.TrimSuffix(out, "\n"), "\n", clearLine+"\n") + clearLine + clearBelow
	case refresh > 1:
		out = "\n" + out
	}
	_, err := fmt.Fprint(s.stdout, out)
	return err
}
