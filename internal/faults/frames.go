package faults

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// ackPrefix is the subject prefix of every JetStream acknowledgement:
// +ACK, -NAK, +WPI, +TERM and the rest all go to the reply subject of the
// delivered message, which the server builds as $JS.ACK.<...>.
const ackPrefix = "$JS.ACK."

// Buffer sizes of one forwarder. The read buffer must hold a whole control
// line: nats-server's default max_control_line is 4 KiB, so 64 KiB leaves a
// wide margin. Longer lines are forwarded unparsed (see forwarder.run).
const (
	defaultReadBufSize  = 64 << 10
	defaultWriteBufSize = 32 << 10
)

// maxSizeDigits mirrors nats-server's parseSize, which refuses sizes of
// more than nine digits.
const maxSizeDigits = 9

// opcode identifies the control lines the forwarder has to understand.
type opcode uint8

// The zero opcode is any other line: no payload, forwarded as is.
const (
	// opPub is "PUB <subject> [reply] <#bytes>".
	opPub opcode = iota + 1
	// opHpub is "HPUB <subject> [reply] <#header bytes> <#total bytes>".
	opHpub
)

// String returns the protocol spelling of the opcode.
func (o opcode) String() string {
	switch o {
	case opPub:
		return "PUB"
	case opHpub:
		return "HPUB"
	default:
		return "other"
	}
}

// pubLine is a parsed PUB or HPUB control line. Subject and reply alias the
// line they were parsed from.
type pubLine struct {
	op      opcode
	subject []byte
	reply   []byte // nil when the line has no reply subject
	hdrSize int    // HPUB only: bytes of the header block
	size    int    // payload bytes (HPUB: headers included), without the trailing CRLF
}

// isAck reports whether the frame publishes to a JetStream ack subject.
func (p pubLine) isAck() bool {
	return bytes.HasPrefix(p.subject, []byte(ackPrefix))
}

// parseOp parses one client control line, with or without its trailing
// "\r\n" or "\n". It returns ok only for a well-formed PUB or HPUB line, that
// is one the server would accept as the start of a frame with a payload;
// for everything else (other ops, malformed PUBs) ok is false and the caller
// forwards the line as is. Ops are case-insensitive, arguments are separated
// by spaces or tabs, as in nats-server. parseOp does not allocate.
func parseOp(line []byte) (p pubLine, ok bool) {
	line = trimEOL(line)
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		// The op must start the line; the server rejects leading blanks.
		return pubLine{}, false
	}

	// Split on spaces and tabs into at most five fields without allocating.
	var f [5][]byte
	n, start := 0, -1
	for i, b := range line {
		if b == ' ' || b == '\t' {
			if start >= 0 {
				if n == len(f) {
					return pubLine{}, false
				}
				f[n] = line[start:i]
				n++
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		if n == len(f) {
			return pubLine{}, false
		}
		f[n] = line[start:]
		n++
	}

	switch {
	case bytes.EqualFold(f[0], []byte("PUB")):
		p.op = opPub
		switch n {
		case 3:
			p.subject, p.size = f[1], parseSize(f[2])
		case 4:
			p.subject, p.reply, p.size = f[1], f[2], parseSize(f[3])
		default:
			return pubLine{}, false
		}
	case bytes.EqualFold(f[0], []byte("HPUB")):
		p.op = opHpub
		switch n {
		case 4:
			p.subject, p.hdrSize, p.size = f[1], parseSize(f[2]), parseSize(f[3])
		case 5:
			p.subject, p.reply, p.hdrSize, p.size = f[1], f[2], parseSize(f[3]), parseSize(f[4])
		default:
			return pubLine{}, false
		}
		if p.hdrSize < 0 || p.hdrSize > p.size {
			return pubLine{}, false
		}
	default:
		return pubLine{}, false
	}
	if p.size < 0 {
		return pubLine{}, false
	}
	return p, true
}

// trimEOL removes a trailing "\n" or "\r\n".
func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	return line
}

// parseSize parses a decimal payload size the way nats-server does: one to
// nine ASCII digits, nothing else. It returns -1 for anything invalid.
func parseSize(d []byte) int {
	if len(d) == 0 || len(d) > maxSizeDigits {
		return -1
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ackAction is what the forwarder does with one ack frame.
type ackAction uint8

const (
	// ackForward writes the frame upstream.
	ackForward ackAction = iota
	// ackDrop discards the frame; nothing of it is written upstream.
	ackDrop
	// ackForwardAndCut writes the frame upstream, flushes, and makes
	// forwarder.run return errCut.
	ackForwardAndCut
)

// errCut is returned by forwarder.run after an ackForwardAndCut frame has
// been written and flushed upstream.
var errCut = errors.New("faults: connection cut after ack")

// forwarder copies the client→server half of a NATS connection frame by
// frame, handing every ack frame to onAck. Everything that is not a dropped
// ack frame is written byte for byte in the order it was read. Writes are
// buffered and flushed whenever the next read could block, so batching
// never delays a frame the client is waiting on.
type forwarder struct {
	r     *bufio.Reader
	w     *bufio.Writer
	onAck func(p pubLine) ackAction
}

// newForwarder returns a forwarder from src to dst with a read buffer of
// readBufSize bytes (at least 16); control lines longer than that are
// forwarded without being parsed.
func newForwarder(dst io.Writer, src io.Reader, readBufSize int, onAck func(pubLine) ackAction) *forwarder {
	return &forwarder{
		r:     bufio.NewReaderSize(src, readBufSize),
		w:     bufio.NewWriterSize(dst, defaultWriteBufSize),
		onAck: onAck,
	}
}

// reset points a pooled forwarder at a new pair of streams, keeping its
// buffers.
func (f *forwarder) reset(dst io.Writer, src io.Reader, onAck func(pubLine) ackAction) {
	f.r.Reset(src)
	f.w.Reset(dst)
	f.onAck = onAck
}

// release drops the references to the streams so a pooled forwarder does
// not keep connections alive.
func (f *forwarder) release() {
	f.r.Reset(nil)
	f.w.Reset(nil)
	f.onAck = nil
}

// run forwards until src is exhausted or an error occurs. It returns nil
// when src ended (whatever it ended with, even a partial frame, has been
// forwarded and flushed), errCut after a cut, or the first read or write
// error.
//
// A malformed control line is forwarded as is and parsing carries on with
// the next line; the server will reject it. A line longer than the read
// buffer is forwarded unparsed up to and including its '\n'.
func (f *forwarder) run() error {
	for {
		// Flush before a read that might block waiting for the client.
		if !f.lineBuffered() {
			if err := f.w.Flush(); err != nil {
				return err
			}
		}
		line, err := f.r.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			if err := f.forwardLongLine(line); err != nil {
				return f.finish(err)
			}
			continue
		default:
			// EOF or read error: forward what there is of the last line.
			_, _ = f.w.Write(line)
			return f.finish(err)
		}

		p, ok := parseOp(line)
		if !ok {
			if _, err := f.w.Write(line); err != nil {
				return err
			}
			continue
		}

		action := ackForward
		if p.isAck() && f.onAck != nil {
			action = f.onAck(p)
		}
		payload := p.size + 2 // payload and its trailing CRLF

		if action == ackDrop {
			if err := f.discard(payload); err != nil {
				return f.finish(err)
			}
			continue
		}
		// Write the line before reading on: ReadSlice's result is only
		// valid until the next read.
		if _, err := f.w.Write(line); err != nil {
			return err
		}
		if err := f.copyN(payload); err != nil {
			return f.finish(err)
		}
		if action == ackForwardAndCut {
			if err := f.w.Flush(); err != nil {
				return err
			}
			return errCut
		}
	}
}

// finish flushes what has been written so far and turns io.EOF into nil.
func (f *forwarder) finish(err error) error {
	ferr := f.w.Flush()
	if errors.Is(err, io.EOF) {
		return ferr
	}
	return err
}

// lineBuffered reports whether a complete line is already in the read
// buffer, so that ReadSlice will not block.
func (f *forwarder) lineBuffered() bool {
	b, _ := f.r.Peek(f.r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// forwardLongLine writes a control line that does not fit in the read
// buffer: first the chunk already read, then the rest up to '\n'.
func (f *forwarder) forwardLongLine(chunk []byte) error {
	for {
		if _, err := f.w.Write(chunk); err != nil {
			return err
		}
		if !f.lineBuffered() {
			if err := f.w.Flush(); err != nil {
				return err
			}
		}
		var err error
		chunk, err = f.r.ReadSlice('\n')
		switch {
		case err == nil:
			_, err = f.w.Write(chunk)
			return err
		case errors.Is(err, bufio.ErrBufferFull):
		default:
			_, _ = f.w.Write(chunk)
			return err
		}
	}
}

// copyN forwards the next n bytes straight from the read buffer, without
// intermediate copies or allocations.
func (f *forwarder) copyN(n int) error { return f.pass(n, true) }

// discard skips the next n bytes.
func (f *forwarder) discard(n int) error { return f.pass(n, false) }

// pass consumes the next n bytes from the read buffer, writing them out
// when forward is set. It flushes before any read that might block, so
// what was forwarded is not held back while the client is quiet.
func (f *forwarder) pass(n int, forward bool) error {
	for n > 0 {
		if f.r.Buffered() == 0 {
			if err := f.w.Flush(); err != nil {
				return err
			}
			if _, err := f.r.Peek(1); err != nil {
				return err
			}
		}
		k := min(n, f.r.Buffered())
		if forward {
			b, _ := f.r.Peek(k)
			if _, err := f.w.Write(b); err != nil {
				return err
			}
		}
		_, _ = f.r.Discard(k)
		n -= k
	}
	return nil
}
