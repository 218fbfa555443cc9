package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options say what to look at and how.
type Options struct {
	// Stream narrows the look to one stream; empty means every stream.
	Stream string
	// Consumer narrows it to one consumer of Stream.
	Consumer string
	// Timeout bounds every request to the server.
	Timeout time.Duration
	// Workers is how many streams' consumer lists are fetched at once.
	Workers int
	// Thresholds judge each consumer's health.
	Thresholds Thresholds
	// Server describes the server reached, for the snapshot's header
	// (connect.Conn.ServerInfo: the URL redacted).
	Server doc.ServerInfo
}

// DefaultWorkers is how many consumer lists are fetched at once by default:
// enough to hide round trips, few enough not to crowd the server's API queue.
const DefaultWorkers = 8

// NotFoundError is a stream or consumer that does not exist.
type NotFoundError struct {
	Stream   string
	Consumer string // empty when the stream is missing
}

func (e *NotFoundError) Error() string {
	if e.Consumer != "" {
		return fmt.Sprintf("consumer %q not found on stream %q", e.Consumer, e.Stream)
	}
	return fmt.Sprintf("stream %q not found", e.Stream)
}

// Gather takes one snapshot. It sends only JetStream API list and info
// requests, each bounded by o.Timeout: all streams come from paged
// $JS.API.STREAM.LIST requests and each stream's consumers from paged
// $JS.API.CONSUMER.LIST requests, never one request per consumer.
func Gather(ctx context.Context, js jetstream.JetStream, o Options) (*Snapshot, error) {
	c := newClient(js, o.Timeout)
	start := time.Now()
	snap := &Snapshot{
		Server:  o.Server,
		Scope:   Scope{Stream: o.Stream, Consumer: o.Consumer},
		Taken:   start.UTC(),
		Streams: []Stream{},
	}
	var err error
	switch {
	case o.Stream == "":
		err = c.gatherAll(ctx, snap, o)
	case o.Consumer == "":
		err = c.gatherStream(ctx, snap, o)
	default:
		err = c.gatherConsumer(ctx, snap, o)
	}
	if err != nil {
		return nil, err
	}
	snap.summarize()
	snap.Requests = int(c.requests.Load())
	snap.Elapsed = doc.Duration(time.Since(start).Round(time.Microsecond))
	snap.ElapsedMS = snap.Elapsed.Millis()
	return snap, nil
}

func (c *client) gatherAll(ctx context.Context, snap *Snapshot, o Options) error {
	infos, missing, err := c.listStreams(ctx)
	if err != nil {
		return err
	}
	snap.Missing = missing
	for _, si := range infos {
		snap.Streams = append(snap.Streams, streamOf(si))
	}
	return c.fillConsumers(ctx, snap, o)
}

// fillConsumers lists the consumers of every stream that has any, a few
// streams at a time.
func (c *client) fillConsumers(ctx context.Context, snap *Snapshot, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := o.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	jobs := make(chan int)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		gone     = make([]bool, len(snap.Streams))
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				st := &snap.Streams[i]
				infos, missing, err := c.listConsumers(ctx, st.Name)
				switch {
				case errors.Is(err, jetstream.ErrStreamNotFound):
					gone[i] = true // deleted since the stream list
				case err != nil:
					fail(fmt.Errorf("list consumers of stream %q: %w", st.Name, err))
				default:
					for _, ci := range infos {
						st.Consumers = append(st.Consumers, consumerOf(ci, o.Thresholds))
					}
					st.MissingConsumers = missing
				}
			}
		})
	}
	for i := range snap.Streams {
		// The stream list carries each stream's consumer count: streams
		// without consumers cost no request.
		if snap.Streams[i].ConsumerCount == 0 {
			continue
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	kept := snap.Streams[:0]
	for i, st := range snap.Streams {
		if !gone[i] {
			kept = append(kept, st)
		}
	}
	snap.Streams = kept
	return nil
}

func (c *client) gatherStream(ctx context.Context, snap *Snapshot, o Options) error {
	si, err := c.streamInfo(ctx, o.Stream)
	if err != nil {
		return err
	}
	snap.Streams = append(snap.Streams, streamOf(si))
	infos, missing, err := c.listConsumers(ctx, o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &NotFoundError{Stream: o.Stream}
	}
	if err != nil {
		return fmt.Errorf("list consumers of stream %q: %w", o.Stream, err)
	}
	st := &snap.Streams[0]
	for _, ci := range infos {
		st.Consumers = append(st.Consumers, consumerOf(ci, o.Thresholds))
	}
	st.MissingConsumers = missing
	return nil
}

func (c *client) gatherConsumer(ctx context.Context, snap *Snapshot, o Options) error {
	si, err := c.streamInfo(ctx, o.Stream)
	if err != nil {
		return err
	}
	ci, err := c.consumerInfo(ctx, o.Stream, o.Consumer)
	if err != nil {
		return err
	}
	st := streamOf(si)
	st.Consumers = append(st.Consumers, consumerOf(ci, o.Thresholds))
	snap.Streams = append(snap.Streams, st)
	return nil
}

// client sends JetStream API requests on the connection of a JetStream
// handle, honouring its domain or API prefix.
type client struct {
	nc       *nats.Conn
	prefix   string
	timeout  time.Duration
	requests atomic.Int64
}

func newClient(js jetstream.JetStream, timeout time.Duration) *client {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	opts := js.Options()
	prefix := jetstream.DefaultAPIPrefix
	switch {
	case opts.Domain != "":
		prefix = "$JS." + opts.Domain + ".API."
	case opts.APIPrefix != "":
		prefix = strings.TrimSuffix(opts.APIPrefix, ".") + "."
	}
	return &client{nc: js.Conn(), prefix: prefix, timeout: timeout}
}

// apiError is the error part every JetStream API response may carry.
type apiError struct {
	Error *jetstream.APIError `json:"error,omitempty"`
}

func (c *client) request(ctx context.Context, subject string, req, resp any) error {
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	c.requests.Add(1)
	msg, err := c.nc.RequestWithContext(ctx, c.prefix+subject, data)
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return fmt.Errorf("%s: cannot read the server's answer: %w", subject, err)
	}
	return nil
}

func (c *client) streamInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	var resp struct {
		apiError
		*jetstream.StreamInfo
	}
	if err := c.request(ctx, "STREAM.INFO."+stream, nil, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return nil, &NotFoundError{Stream: stream}
	case resp.Error != nil:
		return nil, fmt.Errorf("stream %q: %w", stream, resp.Error)
	case resp.StreamInfo == nil:
		return nil, fmt.Errorf("stream %q: %w", stream, jetstream.ErrInvalidJetStreamResponse)
	}
	return resp.StreamInfo, nil
}

func (c *client) consumerInfo(ctx context.Context, stream, consumer string) (*jetstream.ConsumerInfo, error) {
	var resp struct {
		apiError
		*jetstream.ConsumerInfo
	}
	if err := c.request(ctx, "CONSUMER.INFO."+stream+"."+consumer, nil, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return nil, &NotFoundError{Stream: stream}
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeConsumerNotFound:
		return nil, &NotFoundError{Stream: stream, Consumer: consumer}
	case resp.Error != nil:
		return nil, fmt.Errorf("consumer %q on stream %q: %w", consumer, stream, resp.Error)
	case resp.ConsumerInfo == nil:
		return nil, fmt.Errorf("consumer %q on stream %q: %w", consumer, stream, jetstream.ErrInvalidJetStreamResponse)
	}
	return resp.ConsumerInfo, nil
}

// listPage is one page of a STREAM.LIST or CONSUMER.LIST answer.
type listPage struct {
	apiError
	Total     int                       `json:"total"`
	Offset    int                       `json:"offset"`
	Limit     int                       `json:"limit"`
	Streams   []*jetstream.StreamInfo   `json:"streams"`
	Consumers []*jetstream.ConsumerInfo `json:"consumers"`
	Missing   []string                  `json:"missing"`
	Offline   map[string]string         `json:"offline"`
}

// pages requests subject page by page until the server's total is reached.
// A page covers the entries it reports and those it names missing, so the
// next offset counts both (nats.go's listers count only the former, and so
// repeat entries when some are offline).
func (c *client) pages(ctx context.Context, subject string, each func(*listPage)) error {
	offset := 0
	for {
		var page listPage
		if err := c.request(ctx, subject, map[string]int{"offset": offset}, &page); err != nil {
			return err
		}
		if page.Error != nil {
			return page.Error
		}
		each(&page)
		n := len(page.Streams) + len(page.Consumers) + len(page.Missing)
		offset += n
		if n == 0 || offset >= page.Total {
			return nil
		}
	}
}

func missingOf(names []string, offline map[string]string, seen map[string]bool) []Missing {
	var out []Missing
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		reason := offline[n]
		if reason == "" {
			reason = "no answer from its leader in time"
		}
		out = append(out, Missing{Name: n, Reason: reason})
	}
	return out
}

func (c *client) listStreams(ctx context.Context) ([]*jetstream.StreamInfo, []Missing, error) {
	var (
		infos   []*jetstream.StreamInfo
		missing []Missing
		seen    = map[string]bool{}
	)
	err := c.pages(ctx, "STREAM.LIST", func(p *listPage) {
		for _, si := range p.Streams {
			if si != nil && !seen[si.Config.Name] {
				seen[si.Config.Name] = true
				infos = append(infos, si)
			}
		}
		missing = append(missing, missingOf(p.Missing, p.Offline, seen)...)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list streams: %w", err)
	}
	return infos, missing, nil
}

func (c *client) listConsumers(ctx context.Context, stream string) ([]*jetstream.ConsumerInfo, []Missing, error) {
	var (
		infos   []*jetstream.ConsumerInfo
		missing []Missing
		seen    = map[string]bool{}
	)
	err := c.pages(ctx, "CONSUMER.LIST."+stream, func(p *listPage) {
		for _, ci := range p.Consumers {
			if ci != nil && !seen[ci.Name] {
				seen[ci.Name] = true
				infos = append(infos, ci)
			}
		}
		missing = append(missing, missingOf(p.Missing, p.Offline, seen)...)
	})
	return infos, missing, err
}
