// Package faults is a NATS-protocol-aware TCP proxy that drops or cuts
// JetStream acks, so ackprobe can show what a lost ack does.
//
// A Proxy listens on 127.0.0.1 and relays every accepted connection to a
// real nats-server. Bytes from the server to the client are copied as is.
// Bytes from the client to the server are parsed as the NATS client
// protocol: control lines are forwarded byte for byte, and every PUB or HPUB
// frame is forwarded whole, except frames published to a JetStream ack
// subject ($JS.ACK.>), which the proxy may drop (Config.DropRate) or after
// which it may sever the connection (Config.CutAfter).
//
// The proxy only understands the plaintext protocol. Through TLS it sees
// ciphertext, finds no ack frames, and passes everything on unchanged, so a
// run would silently inject nothing. A caller must therefore refuse to put
// the proxy in front of a server that requires TLS (its INFO says
// tls_required); faults does not check this itself.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of the proxy's own housekeeping.
const (
	// dialTimeout bounds the connection to the upstream server.
	dialTimeout = 5 * time.Second
	// drainTimeout bounds how long the proxy keeps reading from the server
	// after it half-closed the upstream side, waiting for the server to
	// close its side in turn.
	drainTimeout = 2 * time.Second
	// cutCountTimeout is how long the proxy keeps reading a cut client, to
	// count the ack frames it had sent but that never reach the server.
	cutCountTimeout = 50 * time.Millisecond
)

// Config says where the proxy forwards to and which faults it injects.
type Config struct {
	// Upstream is the host:port of the real nats-server.
	Upstream string
	// DropRate is the fraction, from 0 to 1, of client→server ack frames
	// (PUB or HPUB to $JS.ACK.>) that the proxy drops, writing nothing of
	// them upstream. 0 drops none and 1 drops all.
	DropRate float64
	// CutAfter, when positive, makes the proxy sever the client connection
	// that carries the CutAfter-th ack frame (counted over all connections,
	// dropped and forwarded alike) right after writing that frame upstream.
	// That frame is always forwarded, whatever DropRate says. The cut
	// happens once: later connections, such as the client's reconnect, are
	// proxied without cuts.
	CutAfter int
	// Seed seeds the random drop decisions, so a run with one connection
	// drops the same acks every time; 0 picks a random seed.
	Seed int64
}

// Stats is a snapshot of a proxy's counters. Each counter is read
// atomically, but the snapshot as a whole is not taken at one instant.
type Stats struct {
	// AckFrames is the number of ack frames seen from clients.
	AckFrames int64
	// AcksDropped is the number of ack frames dropped.
	AcksDropped int64
	// AcksCut is the number of ack frames the client sent on a cut
	// connection after the cut: they never reach the server.
	AcksCut int64
	// AcksForwarded is the number of ack frames passed on upstream.
	AcksForwarded int64
	// Cuts is the number of connections severed because of CutAfter.
	Cuts int64
	// Connections is the number of client connections accepted.
	Connections int64
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	cfg Config
	ln  net.Listener
	url string

	ctx    context.Context // cancelled by Close; bounds upstream dials
	cancel context.CancelFunc

	rngMu sync.Mutex
	rng   *rand.Rand

	ackFrames     atomic.Int64
	acksDropped   atomic.Int64
	acksCut       atomic.Int64
	acksForwarded atomic.Int64
	cuts          atomic.Int64
	connections   atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, listens on 127.0.0.1 on a free port and starts
// proxying connections to cfg.Upstream. Call Close to stop it.
func Start(cfg Config) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("faults: upstream %q: %w", cfg.Upstream, err)
	}
	if math.IsNaN(cfg.DropRate) || cfg.DropRate < 0 || cfg.DropRate > 1 {
		return nil, fmt.Errorf("faults: drop rate %v is outside [0, 1]", cfg.DropRate)
	}
	if cfg.CutAfter < 0 {
		return nil, fmt.Errorf("faults: cut-after %d is negative", cfg.CutAfter)
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faults: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		cfg:    cfg,
		ln:     ln,
		url:    "nats://" + ln.Addr().String(),
		ctx:    ctx,
		cancel: cancel,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		conns:  make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// URL returns the address clients connect to, as "nats://127.0.0.1:PORT".
func (p *Proxy) URL() string { return p.url }

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		AckFrames:     p.ackFrames.Load(),
		AcksDropped:   p.acksDropped.Load(),
		AcksCut:       p.acksCut.Load(),
		AcksForwarded: p.acksForwarded.Load(),
		Cuts:          p.cuts.Load(),
		Connections:   p.connections.Load(),
	}
}

// Close stops accepting, closes every live client and upstream connection
// and waits for all of the proxy's goroutines to end. Only the first call
// does anything; later calls return the same error.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.cancel()
		p.closeErr = p.ln.Close()
		p.wg.Wait()
	})
	return p.closeErr
}

// track registers a live connection so Close can close it. It reports
// false, having closed c, when the proxy is already closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (p *Proxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, retry.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.connections.Add(1)
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve relays one client connection until either side ends.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)

	d := net.Dialer{Timeout: dialTimeout}
	upstream, err := d.DialContext(p.ctx, "tcp", p.cfg.Upstream)
	if err != nil {
		return // closing the client tells it the server is unreachable
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)

	// server → client: copied as is (spliced by the kernel on Linux).
	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		if _, err := io.Copy(client, upstream); err != nil {
			// The client side is gone. Keep reading until the server
			// closes too (or the drain deadline passes): closing a socket
			// with unread data resets it, which could make the server lose
			// frames we already wrote to it, such as the ack of a cut.
			_, _ = io.Copy(io.Discard, upstream)
		}
		_ = client.Close()
	}()

	// client → server: parsed, with faults.
	fw := forwarderPool.Get().(*forwarder)
	fw.reset(upstream, client, p.onAck)
	err = fw.run()
	if errors.Is(err, errCut) {
		// Whatever the client had sent past the cut frame is lost: count
		// its ack frames, forwarding nothing.
		_ = client.SetReadDeadline(time.Now().Add(cutCountTimeout))
		fw.w.Reset(io.Discard)
		fw.onAck = func(pubLine) ackAction {
			p.ackFrames.Add(1)
			p.acksCut.Add(1)
			return ackDrop
		}
		_ = fw.run()
	}
	fw.release()
	forwarderPool.Put(fw)

	switch {
	case err == nil || errors.Is(err, errCut):
		if errors.Is(err, errCut) {
			p.cuts.Add(1)
			_ = client.Close()
		}
		// Let the server read everything we wrote, then see EOF and close;
		// the goroutine above ends when it does.
		_ = upstream.SetReadDeadline(time.Now().Add(drainTimeout))
		if cw, ok := upstream.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = upstream.Close()
		}
	default:
		// The client connection failed or the server stopped reading.
		_ = upstream.Close()
	}
	<-done
}

// forwarderPool recycles forwarders and their buffers across connections.
var forwarderPool = sync.Pool{
	New: func() any {
		return newForwarder(nil, nil, defaultReadBufSize, nil)
	},
}

// onAck counts one ack frame and decides its fate.
func (p *Proxy) onAck(pubLine) ackAction {
	n := p.ackFrames.Add(1)
	if p.cfg.CutAfter > 0 && n == int64(p.cfg.CutAfter) {
		p.acksForwarded.Add(1)
		return ackForwardAndCut
	}
	if p.drop() {
		p.acksDropped.Add(1)
		return ackDrop
	}
	p.acksForwarded.Add(1)
	return ackForward
}

// drop draws one drop decision.
func (p *Proxy) drop() bool {
	switch {
	case p.cfg.DropRate <= 0:
		return false
	case p.cfg.DropRate >= 1:
		return true
	}
	p.rngMu.Lock()
	defer p.rngMu.Unlock()
	return p.rng.Float64() < p.cfg.DropRate
}
