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
	"github.com/ackprobe/ackprobe/internal/inspect"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

const inspectLong = `Show streams and consumers and judge each consumer's health, read-only:
inspect sends only list and info requests. It never publishes, acks, or
creates, changes or deletes a stream or consumer.

  ackprobe inspect                   every stream of the account and its consumers
  ackprobe inspect STREAM            the stream's configuration, state, cluster and consumers
  ackprobe inspect STREAM CONSUMER   everything about one consumer

Figures are the server's own: Pending is num_pending (not yet delivered), Ack
Pending is num_ack_pending (delivered, not yet acked) of max_ack_pending,
Redelivered is num_redelivered, Waiting is num_waiting (pull requests).
Delivered and Ack Floor show a stream sequence and how long ago the consumer
leader last delivered or took an ack. Streams and consumers that ackprobe
created are marked "ackprobe's".

HEALTH
Each consumer is ok, warn or critical: the worst of the rules below. A rule
fires when its figure is at or above the threshold; 0 turns it off.

  rule             figure                                    flags (default)
  outstanding-ack  num_ack_pending                           --outstanding-ack-warn, -critical
  ack-pending      num_ack_pending, % of max_ack_pending     --ack-pending-share-warn (80), -critical
  redelivery       num_redelivered                           --redelivery-warn (1), -critical
  unprocessed      num_pending                               --unprocessed-warn, -critical
  waiting          num_waiting                               --waiting-warn, -critical
  last-delivery    time without a delivery while             --last-delivery-warn (5m), -critical
                   messages wait to be delivered
  last-ack         time without an ack while messages        --last-ack-warn (5m), -critical
                   are ack pending
  paused           the consumer is paused                    warn
  replicas         a replica lagging or offline              warn
                   no leader                                 critical
  pinned           not every priority group has a            with --pinned: critical
                   pinned client

By default nothing is critical: set critical thresholds with the flags, or per
consumer in its metadata the way "nats server check consumer" reads them:
io.nats.monitor.outstanding-ack-critical, io.nats.monitor.waiting-critical,
io.nats.monitor.unprocessed-critical, io.nats.monitor.redelivery-critical
(counts), io.nats.monitor.last-delivery-critical,
io.nats.monitor.last-ack-critical (durations: 90s, 1h, 2d, 1w) and
io.nats.monitor.pinned (true or false). Metadata wins over the flags; "0"
turns a check off for that consumer. Unlike nats server check, last-delivery
and last-ack fire only while work is outstanding: an idle consumer is not a
stuck one.

WATCH
--watch DUR refreshes every DUR and shows what moved since the previous
refresh: the change of pending, ack pending and redelivered, deliveries per
second (how far the delivered consumer sequence moved) and acks per second
(deliveries less the growth of ack pending; consumer info counts no acks, so
a redelivery in the interval counts as one more). On a terminal the view is
redrawn in place; otherwise each refresh is printed after a blank line, and
with --json each refresh is one JSON document on one line. Ctrl-C stops it.

EXIT STATUS
  0  no consumer is critical
  1  at least one consumer is critical (under --watch: at the last refresh)
  2  it could not run: bad arguments, cannot connect, unknown stream or
     consumer, JetStream unavailable`

// inspectOptions is a parsed inspect invocation.
type inspectOptions struct {
	g          *globalOptions
	stream     string
	consumer   string
	watch      time.Duration
	thresholds inspect.Thresholds
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
				return usageErr(fmt.Sprintf("inspect takes at most a stream and a consumer, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.parse(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runInspect(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.watch, "watch", 0, "refresh every DUR and show what moved since the previous refresh (Ctrl-C stops)")
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
	f.BoolVar(&t.Pinned, "pinned", false, "critical unless the consumer pins a client in every priority group")
}

// parse validates the arguments and flags before anything touches the server.
func (o *inspectOptions) parse(args []string) error {
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
	return validateConn(o.g)
}

// runInspect connects, takes one snapshot (or one per refresh under
// --watch), renders it and fails the check when a consumer is critical.
func runInspect(ctx context.Context, o *inspectOptions, s streams) error {
	conn, err := connect.Connect(ctx, withNotice(o.g.conn, s))
	if err != nil {
		return err
	}
	defer conn.Close()
	// A refused permission fails a look at once, not after --timeout.
	watched, stop := conn.Watch(ctx)
	defer stop()
	take := func() (*inspect.Snapshot, error) {
		snap, err := inspect.Gather(watched, conn.JS, inspect.Options{
			Stream:     o.stream,
			Consumer:   o.consumer,
			Timeout:    o.g.conn.Timeout,
			Thresholds: o.thresholds,
		})
		if err != nil {
			return nil, withAsync(err, conn)
		}
		snap.Server.Embedded = conn.Embedded != nil
		snap.Server.Domain = o.g.conn.JSDomain
		return snap, nil
	}
	if o.watch > 0 {
		return watchInspect(ctx, o, s, take)
	}
	snap, err := take()
	if err != nil {
		return err
	}
	if o.g.json {
		err = report.JSON(s.stdout, snap)
	} else {
		err = report.Inspect(s.stdout, snap, report.InspectOptions{Color: colorOn(o.g, s)})
	}
	if err != nil {
		return err
	}
	return inspectVerdict(snap)
}

func inspectVerdict(snap *inspect.Snapshot) error {
	if snap.Summary.Critical > 0 {
		return errCheckFailed
	}
	return nil
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
// returns the verdict of the last refresh.
func watchInspect(ctx context.Context, o *inspectOptions, s streams, take func() (*inspect.Snapshot, error)) error {
	inPlace := s.stdoutTTY && !o.g.json
	if inPlace {
		fmt.Fprint(s.stdout, hideCursor+clearScreen)
		defer fmt.Fprint(s.stdout, showCursor)
	}
	ticker := time.NewTicker(o.watch)
	defer ticker.Stop()
	var last *inspect.Snapshot
	for refresh := 1; ; refresh++ {
		snap, err := take()
		switch {
		case ctx.Err() != nil:
		case err != nil && last == nil:
			return err
		case err != nil:
			// Keep watching through a passing failure; the next refresh
			// diffs against the last good one.
			fmt.Fprintf(s.stderr, "ackprobe: refresh %d failed: %s\n", refresh, oneLine(explain(err)))
		default:
			inspect.Diff(last, snap)
			if err := renderRefresh(s, o, snap, refresh, inPlace); err != nil {
				return err
			}
			last = snap
		}
		select {
		case <-ctx.Done():
			if inPlace {
				fmt.Fprintln(s.stdout)
			}
			if last == nil {
				return ctx.Err()
			}
			return inspectVerdict(last)
		case <-ticker.C:
		}
	}
}

func renderRefresh(s streams, o *inspectOptions, snap *inspect.Snapshot, refresh int, inPlace bool) error {
	if o.g.json {
		return report.JSONLine(s.stdout, snap)
	}
	var frame bytes.Buffer
	if err := report.Inspect(&frame, snap, report.InspectOptions{Color: colorOn(o.g, s), Watch: o.watch, Refresh: refresh}); err != nil {
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
