package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/doc"
)

// roundRun is one round: each mode in turn on its own messages, recorded
// in one ledger.
type roundRun struct {
	p       *Probe
	n       int
	l       *ledger
	started time.Time
	// upfront stores every mode's messages before the first mode starts:
	// the classic scenario (Count 1), a stream holding two messages.
	// Otherwise a mode's messages are stored when it starts, after the
	// mode before has settled, so that no mode can fetch another's.
	upfront bool
	sampler *sampler
	modes   []*modeRecord
	// handover holds, per mode, its messages that an earlier mode's fetch
	// received (Count 1 only, after a lost delivery); the mode starts with
	// them in hand.
	handover [][]*delivery
}

// modeRecord is what a mode recorded besides the ledger.
type modeRecord struct {
	steps      []Step
	dist       *disturbance
	t0         time.Time
	elapsed    time.Duration
	rateWindow time.Duration
	// measuring is the time of the mid-run read-backs, the probe's own
	// pauses: left out of the rate window.
	measuring time.Duration
	gaveUp    bool
	unsettled int
	// disturbance is what the mode rode out, taken when it ended.
	disturbance Disturbance
	ackFrames   *int64
	acksLost    *int64
	ran         bool
}

// Round probes once on the Probe's stream and consumer: it publishes each
// mode's messages, acks them in the mode's way while reading the consumer
// back, and returns the Result, built once from the round's ledger. An
// error means the round could not finish (the connection went away, the
// consumer vanished); the Result then holds what was measured until then.
func (p *Probe) Round(ctx context.Context) (*Result, error) {
	started := time.Now()
	r, err := p.round(ctx)
	return p.result(r, nil, nil, started), p.wrap(ctx, err)
}

// wrap names an error of the connection as a lost connection.
func (p *Probe) wrap(ctx context.Context, err error) error {
	var lost *ConnectionLostError
	if err == nil || errors.As(err, &lost) {
		return err
	}
	if ctx.Err() == nil && (!p.nc.IsConnected() || connectionError(err)) {
		return &ConnectionLostError{URL: p.conn.url, Err: err}
	}
	return err
}

func (p *Probe) round(ctx context.Context) (*roundRun, error) {
	if p.cons == nil {
		return nil, errors.New("probe is not open")
	}
	p.rounds++
	// What an earlier round saw of the connection (a refusal, a silent
	// server) is that round's: this one starts afresh.
	p.conn.rebase()
	p.conn.answered()
	r := &roundRun{p: p, n: p.rounds, started: time.Now(), upfront: p.cfg.Count == 1}
	for range p.cfg.Modes {
		r.modes = append(r.modes, &modeRecord{dist: newDisturbance(p.nc)})
	}
	r.handover = make([][]*delivery, len(p.cfg.Modes))
	ci, err := r.info(ctx, nil)
	if err != nil {
		return r, err
	}
	r.l = newLedger(p.cfg.Modes, p.cfg.Count, p.ackWait, ci.Delivered.Consumer, ci.NumAckPending)
	if r.upfront {
		for i := range p.cfg.Modes {
			if err := r.publish(ctx, i); err != nil {
				return r, err
			}
		}
	}
	r.sampler = r.startSampler(ctx)
	defer r.sampler.stop()
	for i := range p.cfg.Modes {
		if err := r.runMode(ctx, i); err != nil {
			return r, err
		}
	}
	return r, nil
}

// info reads the consumer's state from the server, retrying what a
// reconnect or a leader election interrupted.
func (r *roundRun) info(ctx context.Context, d *disturbance) (*jetstream.ConsumerInfo, error) {
	ci, err := retryCall(ctx, r.p, d, func(ctx context.Context) (*jetstream.ConsumerInfo, error) { return r.p.cons.Info(ctx) })
	if err != nil {
		return nil, fmt.Errorf("read consumer %q state: %w", r.p.consumer, err)
	}
	if ci.Cluster != nil {
		d.sawLeader(ci.Cluster.Leader)
	}
	return ci, nil
}

// publish stores Count messages of mode i on the probe subject and enters
// their stream sequences in the ledger. Each message carries a message id
// (Nats-Msg-Id), so a publish retried after a reconnect or a leader
// election, whose first attempt may have been stored, is not stored twice:
// the stream answers the retry with the first sequence.
func (r *roundRun) publish(ctx context.Context, i int) error {
	const window = 1000
	p := r.p
	mode := p.cfg.Modes[i]
	d := r.modes[i].dist
	p.stored = true
	total := p.cfg.Count
	r.progress("publish", mode, 0, total)
	for sent := 0; sent < total; {
		n := min(window, total-sent)
		done := make([]bool, n)
		_, err := retry(ctx, p.budget(), 0, func(ctx context.Context) (struct{}, error) {
			if err := p.conn.lost(); err != nil {
				return struct{}{}, err
			}
			err := r.publishWindow(ctx, i, sent, done)
			if err == nil {
				return struct{}{}, nil
			}
			p.conn.check(err)
			if lost := p.conn.lost(); lost != nil {
				return struct{}{}, lost
			}
			if leaderless(err) && !transient(err) {
				// No stream leader for a moment, or no stream at all.
				if r.streamGone(ctx) {
					return struct{}{}, fmt.Errorf("stream %q: %w", p.stream, jetstream.ErrStreamNotFound)
				}
				err = &retryable{err}
			}
			return struct{}{}, err
		}, d.retried)
		if err != nil {
			return fmt.Errorf("publish probe message to %q: %w", p.subject, err)
		}
		d.answered()
		sent += n
		r.progress("publish", mode, sent, total)
	}
	return r.checkKept(ctx, i)
}

// streamGone reports, after a publish nobody answered, whether the probe
// stream is gone (deleted while the round ran) rather than leaderless.
func (r *roundRun) streamGone(ctx context.Context) bool {
	cctx, cancel := r.p.call(ctx)
	defer cancel()
	_, err := r.p.js.Stream(cctx, r.p.stream)
	return errors.Is(err, jetstream.ErrStreamNotFound)
}

// publishWindow publishes the messages of a window not yet stored and
// waits for their acknowledgements; it returns the first error, after
// marking what was stored.
func (r *roundRun) publishWindow(ctx context.Context, i, offset int, done []bool) error {
	p := r.p
	mode := p.cfg.Modes[i]
	type pending struct {
		j int
		f jetstream.PubAckFuture
	}
	var futures []pending
	var firstErr error
	for j := range done {
		if done[j] {
			continue
		}
		f, err := p.js.PublishMsgAsync(p.message(r.n, mode, offset+j+1))
		if err != nil {
			firstErr = err
			break
		}
		futures = append(futures, pending{j, f})
	}
	timeout := time.NewTimer(p.cfg.Timeout)
	defer timeout.Stop()
	for _, pf := range futures {
		select {
		case ack := <-pf.f.Ok():
			r.l.published(i, ack.Sequence)
			done[pf.j] = true
		case err := <-pf.f.Err():
			firstErr = cmpErr(firstErr, err)
		case <-timeout.C:
			return cmpErr(firstErr, fmt.Errorf("no acknowledgement from the stream within %s: %w", p.cfg.Timeout, context.DeadlineExceeded))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return firstErr
}

// message is the probe message seq of mode in round n, as published: the
// run and mode headers, a message id (Nats-Msg-Id) unique to the run,
// round, mode and sequence, and the expected stream
// (Nats-Expected-Stream), so that a stream that is not the probe's never
// stores it.
func (p *Probe) message(n int, mode Mode, seq int) *nats.Msg {
	return &nats.Msg{
		Subject: p.subject,
		Header: nats.Header{
			headerRun:                      []string{p.cfg.ID},
			headerMode:                     []string{string(mode)},
			jetstream.MsgIDHeader:          []string{fmt.Sprintf("ackprobe-%s-%d-%s-%d", p.cfg.ID, n, mode, seq)},
			jetstream.ExpectedStreamHeader: []string{p.stream},
		},
		Data: fmt.Appendf(nil, "ackprobe %s round %d %s %d", p.cfg.ID, n, mode, seq),
	}
}

// checkKept reads the stream's first sequence after mode i's messages were
// stored: a stream whose limits dropped any of them (discard old) would
// leave the probe waiting for deliveries that cannot come, so that is an
// error here, loud and at once, rather than lost_delivery findings later.
func (r *roundRun) checkKept(ctx context.Context, i int) error {
	first := r.l.firstStored(i)
	if first == 0 {
		return nil
	}
	si, err := retryCall(ctx, r.p, r.modes[i].dist, func(ctx context.Context) (*jetstream.StreamInfo, error) { return r.p.streamHandle.Info(ctx) })
	if err != nil {
		return fmt.Errorf("read stream %q: %w", r.p.stream, err)
	}
	if si.State.FirstSeq > first {
		return fmt.Errorf("stream %q no longer holds this round's messages from sequence %d (its first is now %d; max_bytes %d, max_msgs %d, discard %s): its limits dropped them as they were stored",
			r.p.stream, first, si.State.FirstSeq, si.Config.MaxBytes, si.Config.MaxMsgs, si.Config.Discard)
	}
	return nil
}

func cmpErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// awaitPending waits, briefly, until the consumer counts the messages just
// stored as pending: the server updates the count apart from storing, and
// the "start" snapshot should show what was published.
func (r *roundRun) awaitPending(ctx context.Context, want uint64, d *disturbance) {
	deadline := time.Now().Add(r.p.cfg.Timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ci, err := r.info(ctx, d)
		if err != nil || ci.NumPending >= want {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *roundRun) progress(phase string, m Mode, done, total int) {
	if f := r.p.cfg.Progress; f != nil {
		f(Progress{Phase: phase, Mode: m, Done: done, Total: total})
	}
}

// result builds the Result of a round (nil: none ran), or of the rounds of
// a per-node probe, once, with what Close left behind.
func (p *Probe) result(r *roundRun, nodes []*nodeRun, left []Leftover, started time.Time) *Result {
	res := &Result{
		Server:        p.cfg.Server,
		Stream:        p.stream,
		Subject:       p.subject,
		Consumer:      p.consumer,
		Count:         p.cfg.Count,
		Storage:       p.storage,
		Replicas:      p.replicas,
		AckWait:       doc.Duration(p.ackWait),
		AckWaitMS:     doc.Millis(p.ackWait),
		Created:       p.created,
		MaxAckPending: p.maxAckPending,
		Round:         p.rounds,
		Modes:         []ModeResult{},
		Leftovers:     left,
		Started:       started.UTC(),
	}
	res.Created.Kept = p.cfg.Keep && (p.created.Stream || p.created.Consumer)
	if p.cons != nil {
		res.AckTimeout = doc.Duration(p.cfg.ackTimeout(p.ackWait))
		res.AckTimeoutMS = doc.Millis(p.cfg.ackTimeout(p.ackWait))
	}
	if res.Server.Version == "" && p.nc != nil {
		// A caller that did not say: what the connection reports.
		res.Server = doc.ServerInfo{URL: p.nc.ConnectedUrlRedacted(), Name: p.nc.ConnectedServerName(),
			Version: p.nc.ConnectedServerVersion(), Cluster: p.nc.ConnectedClusterName()}
	}
	for _, l := range left {
		res.CleanupFailures = append(res.CleanupFailures, l.String())
	}
	if f := p.cfg.Faults; f != nil {
		st := f.Stats()
		res.Faults = &Faults{DropRate: f.DropRate, CutAfter: f.CutAfter, AckFrames: st.AckFrames,
			AcksDropped: st.AcksDropped, AcksCut: st.AcksCut, Cuts: st.Cuts, Connections: st.Connections}
	}
	if r != nil {
		res.ServerSampling = r.sampler.state()
		for i := range r.modes {
			if r.modes[i].ran {
				res.Modes = append(res.Modes, r.modeResult(i))
			}
		}
	}
	res.Findings = judge(res.Modes, p.ackWait, p.cfg.Thresholds)
	if nodes != nil {
		var found []Finding
		res.Nodes, found = p.nodeResults(nodes)
		if r != nil {
			// A round on one node (RoundOn): its findings are the
			// round's, judged above; only what is about the node itself
			// is added.
			found = slices.DeleteFunc(found, func(f Finding) bool { return f.Mode != "" })
		}
		res.Findings = append(res.Findings, found...)
		for _, n := range nodes {
			if n.r != nil && res.ServerSampling == "" {
				res.ServerSampling = n.r.sampler.state()
			}
		}
	}
	if p.fit != nil {
		for _, n := range p.fit.Notes {
			res.Findings = append(res.Findings, Finding{Code: CodeFittedToLimits, Severity: SeverityInfo, Count: 1, Message: n})
		}
	}
	res.OK, res.Problems, res.Notes = outcome(res.Findings)
	elapsed := time.Since(started)
	res.Elapsed, res.ElapsedMS = doc.Duration(elapsed.Round(time.Microsecond)), doc.Millis(elapsed)
	return res
}

// modeResult derives mode i's result from the ledger and its record.
func (r *roundRun) modeResult(i int) ModeResult {
	rec := r.modes[i]
	l := r.l
	l.mu.Lock()
	m := l.modes[i]
	c := m.cls
	res := ModeResult{
		Mode:                 m.mode,
		Steps:                rec.steps,
		Acks:                 m.acked,
		Errors:               m.callErrors,
		Retries:              m.retries,
		Timeouts:             m.timeouts,
		Redelivered:          m.redelivered,
		RedeliveredMessages:  m.redeliveredMsgs,
		RedeliveredAfterAck:  c.afterConfirmed + c.lostStandard + c.lateRedelivered,
		RedeliveredBeforeAck: c.beforeAck,
		AckedOnce:            max(0, m.acked-m.redeliveredMsgs),
		LostDeliveries:       m.lost,
		Classes: Classes{
			RedeliveredAfterConfirmedAck: c.afterConfirmed,
			LostStandardAck:              c.lostStandard,
			LateAck:                      m.late,
			RedeliveredBeforeAck:         c.beforeAck,
			LostDelivery:                 c.lostDelivery,
			ConfirmedAfterRetry:          c.retried,
			ConfirmedAfterRetryLate:      c.retriedLate,
			LateAckRedelivered:           c.lateRedelivered,
		},
		AckFrames:       rec.ackFrames,
		AcksLost:        rec.acksLost,
		AckLatencyUS:    m.call.summary(),
		DeliveryToAckUS: m.toAck.summary(),
		ReachedAckWait:  m.toAck.atOrAbove(l.ackWait),
		RateWindow:      doc.Duration(rec.rateWindow.Round(time.Microsecond)),
		RateWindowMS:    doc.Millis(rec.rateWindow),
		ReadBackPause:   doc.Duration(rec.measuring.Round(time.Microsecond)),
		ReadBackPauseMS: doc.Millis(rec.measuring),
		Elapsed:         doc.Duration(rec.elapsed.Round(time.Microsecond)),
		ElapsedMS:       doc.Millis(rec.elapsed),
		Visibility: Visibility{
			ReadBacks:  m.readBacks,
			StaleReads: m.stale,
			Explained:  m.staleExplained,
			LagUS:      m.lag.summary(),
			NotVisible: m.notVisible,
		},
		LastError:   m.lastErr,
		GaveUp:      rec.gaveUp,
		Unsettled:   rec.unsettled,
		Disturbance: rec.disturbance,
	}
	l.mu.Unlock()
	if rec.rateWindow > 0 && res.Acks > 0 {
		res.AcksPerSec = float64(res.Acks) / rec.rateWindow.Seconds()
	}
	res.Server = r.sampler.view(i, r.l.ackWait)
	return res
}
