package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ackMetricPrefix is where the server publishes sampled ack metrics
// (io.nats.jetstream.metric.v1.consumer_ack) of a consumer with
// sample_freq set: $JS.EVENT.METRIC.CONSUMER.ACK.<stream>.<consumer>.
const ackMetricPrefix = "$JS.EVENT.METRIC.CONSUMER.ACK."

// ackMetric is the part of the server's consumer_ack event ackprobe uses.
type ackMetric struct {
	StreamSeq uint64 `json:"stream_seq"`
	AckTime   int64  `json:"ack_time"` // ns from delivery to the ack applied
}

// parseAckMetric reads stream_seq and ack_time from a consumer_ack event.
// It scans for the two keys instead of decoding the whole document: at
// thousands of events a second, that is the client's main cost of the
// server's view. Anything unexpected falls back to encoding/json.
func parseAckMetric(data []byte) (ackMetric, bool) {
	seq, ok1 := jsonInt(data, `"stream_seq":`)
	at, ok2 := jsonInt(data, `"ack_time":`)
	if ok1 && ok2 && seq > 0 {
		return ackMetric{StreamSeq: uint64(seq), AckTime: at}, true
	}
	var e ackMetric
	if err := json.Unmarshal(data, &e); err != nil || e.StreamSeq == 0 {
		return e, false
	}
	return e, true
}

// jsonInt returns the non-negative integer right after key.
func jsonInt(data []byte, key string) (int64, bool) {
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(data[i+len(key):], " ")
	var n int64
	digits := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		if n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	return n, digits > 0
}

// holdRing remembers, for recent stream sequences, how long the client held
// a message between receiving it and calling ack. Its size is fixed, so
// memory does not grow with the count.
type holdRing struct {
	seq  []uint64
	hold []time.Duration
}

const holdRingSize = 1 << 16

func newHoldRing() *holdRing {
	return &holdRing{seq: make([]uint64, holdRingSize), hold: make([]time.Duration, holdRingSize)}
}

// sampler collects the server's own ack metrics for the probe's consumer and
// sets them beside the client's figures: ack_time is delivery → ack applied
// on the server; subtracting the client's hold time leaves the time the
// message and its ack spent between the two (the delivery and ack legs).
// A nil *sampler collects nothing.
type sampler struct {
	sub    *nats.Subscription
	r      *roundRun
	reason string // why it is nil, or "on, sample_freq N%"
	mu     sync.Mutex
	ring   *holdRing
	// per mode
	ackTime []*recorder
	transit []*recorder
	events  []int64
	bad     int64
}

// startSampler subscribes to the consumer's ack metrics for this round.
// When the server's view is not available, the sampler records only why.
func (r *roundRun) startSampler(ctx context.Context) *sampler {
	p := r.p
	off := func(reason string) *sampler { return &sampler{reason: reason} }
	if p.sample == "" {
		if p.created.Consumer {
			return off("off (--server-sample 0)")
		}
		return off(fmt.Sprintf("unavailable: consumer %q has no sample_freq (it was created without it)", p.consumer))
	}
	s := &sampler{r: r, ring: newHoldRing()}
	for range p.cfg.Modes {
		s.ackTime = append(s.ackTime, newRecorder())
		s.transit = append(s.transit, newRecorder())
		s.events = append(s.events, 0)
	}
	subject := ackMetricPrefix + p.stream + "." + p.consumer
	before := p.nc.LastError()
	sub, err := p.nc.Subscribe(subject, s.handle)
	if err != nil {
		return off(fmt.Sprintf("unavailable: subscribe to %s: %v", subject, err))
	}
	// A denied subscription is reported asynchronously; a flush makes sure
	// the server has seen the SUB before we look.
	if err := p.nc.FlushWithContext(ctxTimeout(ctx, p.cfg.Timeout)); err != nil {
		_ = sub.Unsubscribe()
		return off(fmt.Sprintf("unavailable: %v", err))
	}
	if last := p.nc.LastError(); last != nil && last != before && errors.Is(last, nats.ErrPermissionViolation) &&
		strings.Contains(strings.ToLower(last.Error()), strings.ToLower(subject)) {
		_ = sub.Unsubscribe()
		return off(fmt.Sprintf("unavailable: this account may not subscribe to %s (permissions)", subject))
	}
	s.sub = sub
	s.reason = "on, sample_freq " + p.sample
	return s
}

func (s *sampler) on() bool { return s != nil && s.sub != nil }

// all reports whether the server reports every ack.
func (s *sampler) all() bool { return s.on() && s.r.p.sample == "100%" }

func (s *sampler) state() string {
	if s == nil {
		return ""
	}
	return s.reason
}

func ctxTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

// held records the client's hold time of a message about to be acked.
func (s *sampler) held(seq uint64, hold time.Duration) {
	if !s.on() {
		return
	}
	i := seq % holdRingSize
	s.mu.Lock()
	s.ring.seq[i], s.ring.hold[i] = seq, hold
	s.mu.Unlock()
}

func (s *sampler) handle(m *nats.Msg) {
	e, ok := parseAckMetric(m.Data)
	if !ok {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
		return
	}
	mode := s.r.l.ownerOf(e.StreamSeq)
	if mode < 0 {
		return
	}
	ackTime := time.Duration(e.AckTime)
	if o := s.r.p.cfg.Observer; o != nil {
		o.ServerAckTime(s.r.p.cfg.Modes[mode], ackTime)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[mode]++
	s.ackTime[mode].record(ackTime)
	if i := e.StreamSeq % holdRingSize; s.ring.seq[i] == e.StreamSeq {
		s.transit[mode].record(max(0, ackTime-s.ring.hold[i]))
	}
}

// wait gives the events of mode idx time to arrive: until want of them
// came (want < 0: a sample, of unknown size), or nothing arrived for a
// while.
func (s *sampler) wait(ctx context.Context, idx int, want int64) {
	if !s.on() {
		return
	}
	const quiet = 250 * time.Millisecond
	last, lastChange := int64(-1), time.Now()
	for {
		s.mu.Lock()
		n := s.events[idx]
		s.mu.Unlock()
		if want >= 0 && n >= want || time.Since(lastChange) > quiet || ctx.Err() != nil {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// view returns the server's figures for mode idx.
func (s *sampler) view(idx int, ackWait time.Duration) *ServerView {
	if !s.on() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ServerView{Events: s.events[idx], AckTimeUS: s.ackTime[idx].summary(), TransitUS: s.transit[idx].summary(),
		ReachedAckWait: s.ackTime[idx].atOrAbove(ackWait)}
}

func (s *sampler) stop() {
	if s.on() {
		_ = s.sub.Unsubscribe()
	}
}
