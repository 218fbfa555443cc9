package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

const cleanupLong = `List, and remove, what ackprobe runs left behind on the account: probe
streams, and probe consumers (with their probe messages) in streams that are
not ackprobe's. A run that is killed, or loses its server, cannot clean up.

Only streams and consumers that carry ackprobe's mark (the metadata
io.ackprobe.owner=ackprobe) are ever listed or removed; each is checked again
right before it is removed. Skipped: anything created, or last delivering or
taking an ack, less than --older-than ago (a run still going, such as a
canary), and what a run kept on purpose with --keep (unless --include-kept).

Without --force it lists what it found and, on a terminal, asks before
removing; otherwise it removes nothing. It also says how many of ackprobe's
own it skipped for being younger, or more recently active, than
--older-than (under --json: "skipped", each with its "reason").

Activity is the consumer leader's own record (consumer info's last delivery
and last ack times). A server that restarts replays its consumers' records
and stamps them with the restart time: right after a cluster restart (or a
whole-cluster failure), leftovers look active for --older-than; pass
--older-than 0s (whatever their age or activity) if you know no run or
canary is going.

EXIT STATUS
  0    listed, and removed what was asked
  1    something could not be removed
  2    it could not run`

// cleanupOptions are the flags of cleanup.
type cleanupOptions struct {
	olderThan   time.Duration
	force       bool
	includeKept bool
}

func newCleanupCmd(g *globalOptions, s streams) *cobra.Command {
	o := &cleanupOptions{}
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "List and remove what ackprobe runs left behind (only ackprobe's own)",
		Long:  cleanupLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.olderThan < 0 {
				return usageErr(fmt.Sprintf("--older-than must not be negative, got %s", o.olderThan))
			}
			// The connection settings first: a nats context names the
			// server too.
			if err := validateConn(g); err != nil {
				return err
			}
			if g.conn.UsesEmbedded() && !g.conn.Embedded {
				return usageErr("cleanup needs a server: give -s/--server, NATS_URL or --context (an embedded server holds nothing to clean up)")
			}
			return runCleanup(cmd.Context(), g, o, s)
		},
	}
	cmd.Flags().DurationVar(&o.olderThan, "older-than", time.Hour, "only what was created, and last active, at least this long ago")
	cmd.Flags().BoolVar(&o.force, "force", false, "remove without asking")
	cmd.Flags().BoolVar(&o.includeKept, "include-kept", false, "also what a run kept on purpose (--keep)")
	return cmd
}

// cleanupResult is cleanup's JSON document.
type cleanupResult struct {
	Found []probe.Orphan `json:"found"`
	// Skipped are ackprobe's own, left alone for being younger, or more
	// recently active, than --older-than.
	Skipped     []probe.Skipped        `json:"skipped"`
	OlderThan   doc.Duration           `json:"older_than"`
	OlderThanMS float64                `json:"older_than_ms"`
	Removed     []probe.Orphan         `json:"removed"`
	Failed      []report.FailedRemoval `json:"failed,omitempty"`
	OK          bool                   `json:"ok"`
}

func runCleanup(ctx context.Context, g *globalOptions, o *cleanupOptions, s streams) error {
	conn, err := connect.Connect(ctx, withNotice(g.conn, s))
	if err != nil {
		return err
	}
	defer conn.Close()
	found, err := probe.FindOrphans(ctx, conn.JS, probe.FindOptions{OlderThan: o.olderThan, IncludeKept: o.includeKept, Timeout: g.conn.Timeout})
	if err != nil {
		return withAsync(err, conn)
	}
	res := cleanupResult{Found: found.Found, Skipped: found.Skipped, OlderThan: doc.Duration(found.OlderThan),
		OlderThanMS: doc.Millis(found.OlderThan), Removed: []probe.Orphan{}, OK: true}
	ropts := report.Options{Color: colorOn(g, s), Width: s.width}
	remove := o.force
	listed := found
	if !remove && len(found.Found) > 0 && !g.json && s.stdinTTY && s.stderrTTY {
		_ = report.Orphans(s.stdout, conn.ServerInfo(), found, ropts)
		fmt.Fprint(s.stderr, report.Prompt(found.Found))
		answer, _ := bufio.NewReader(s.stdin).ReadString('\n')
		remove = strings.EqualFold(strings.TrimSpace(answer), "y") || strings.EqualFold(strings.TrimSpace(answer), "yes")
		listed = nil // listed already
	}
	if remove {
		for _, orphan := range res.Found {
			rctx, cancel := context.WithTimeout(ctx, g.conn.Timeout)
			err := probe.RemoveOrphan(rctx, conn.JS, orphan)
			cancel()
			if err != nil {
				res.Failed = append(res.Failed, report.FailedRemoval{Orphan: orphan, Error: err.Error()})
				continue
			}
			res.Removed = append(res.Removed, orphan)
		}
	}
	res.OK = len(res.Failed) == 0
	if g.json {
		err = report.JSON(s.stdout, res)
	} else {
		err = report.Cleanup(s.stdout, conn.ServerInfo(), listed, res.Removed, res.Failed, remove, ropts)
	}
	if err != nil {
		return err
	}
	if !res.OK {
		return errCheckFailed
	}
	return nil
}
