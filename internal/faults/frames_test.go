package faults

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseOp(t *testing.T) {
	tests := []struct {
		line    string
		ok      bool
		op      opcode
		subject string
		reply   string
		hdr     int
		size    int
		ack     bool
	}{
		{line: "PUB foo 5\r\n", ok: true, op: opPub, subject: "foo", size: 5},
		{line: "PUB foo _INBOX.x 11\r\n", ok: true, op: opPub, subject: "foo", reply: "_INBOX.x", size: 11},
		{line: "PUB $JS.ACK.S.C.1.2.3.4.5 0\r\n", ok: true, op: opPub, subject: "$JS.ACK.S.C.1.2.3.4.5", size: 0, ack: true},
		{line: "PUB $JS.ACK.S.C.1.2.3.4.5 _INBOX.r.1 4", ok: true, op: opPub, subject: "$JS.ACK.S.C.1.2.3.4.5", reply: "_INBOX.r.1", size: 4, ack: true},
		{line: "pub foo 3\n", ok: true, op: opPub, subject: "foo", size: 3},
		{line: "Pub\tfoo\t \t3  \r\n", ok: true, op: opPub, subject: "foo", size: 3},
		{line: "HPUB foo 12 14\r\n", ok: true, op: opHpub, subject: "foo", hdr: 12, size: 14},
		{line: "hpub $JS.ACK.a.b bar 22 30\r\n", ok: true, op: opHpub, subject: "$JS.ACK.a.b", reply: "bar", hdr: 22, size: 30, ack: true},
		{line: "PUB foo 999999999\r\n", ok: true, op: opPub, subject: "foo", size: 999999999},

		// Not frames with a payload.
		{line: "PING\r\n"},
		{line: "pong\r\n"},
		{line: "SUB $JS.ACK.> 1\r\n"},
		{line: "UNSUB 1\r\n"},
		{line: `CONNECT {"verbose":false}` + "\r\n"},
		{line: "MSG $JS.ACK.a 1 3\r\n"},
		{line: "\r\n"},
		{line: ""},

		// Malformed PUBs: forwarded as lines.
		{line: "PUB\r\n"},
		{line: "PUB foo\r\n"},
		{line: "PUB foo -1\r\n"},
		{line: "PUB foo 1x\r\n"},
		{line: "PUB foo 1000000000\r\n"}, // ten digits, as nats-server
		{line: "PUB a b c 1\r\n"},
		{line: "PUBX foo 1\r\n"},
		{line: " PUB foo 1\r\n"},
		{line: "HPUB foo 1\r\n"},
		{line: "HPUB foo 5 4\r\n"}, // headers larger than total
		{line: "HPUB foo x 4\r\n"},
		{line: "HPUB a b c d e f 1 2\r\n"},
	}
	for _, tt := range tests {
		p, ok := parseOp([]byte(tt.line))
		if ok != tt.ok {
			t.Errorf("parseOp(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if p.op != tt.op || string(p.subject) != tt.subject || string(p.reply) != tt.reply ||
			p.hdrSize != tt.hdr || p.size != tt.size || p.isAck() != tt.ack {
			t.Errorf("parseOp(%q) = {%v %q %q hdr=%d size=%d ack=%v}, want {%v %q %q hdr=%d size=%d ack=%v}",
				tt.line, p.op, p.subject, p.reply, p.hdrSize, p.size, p.isAck(),
				tt.op, tt.subject, tt.reply, tt.hdr, tt.size, tt.ack)
		}
	}
}

func TestParseOpDoesNotAllocate(t *testing.T) {
	line := []byte("HPUB $JS.ACK.S.C.1.2.3.4.5 _INBOX.abc 22 30\r\n")
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parseOp(line); !ok {
			t.Fatal("not parsed")
		}
	})
	if allocs != 0 {
		t.Fatalf("parseOp allocates %v times per call", allocs)
	}
}

// sample is a client stream mixing every kind of frame, including payloads
// that look like ack frames and zero-length payloads.
const sample = "CONNECT {\"verbose\":false,\"headers\":true}\r\n" +
	"PING\r\n" +
	"SUB _INBOX.x.* 1\r\n" +
	"PUB orders 5\r\nhello\r\n" +
	"PUB $JS.ACK.S.C.1.1.1.1.0 0\r\n\r\n" +
	"pub $JS.ACK.S.C.1.2.2.1.0 4\r\n+ACK\r\n" +
	"PUB fake _INBOX.x.1 28\r\n\r\nPUB $JS.ACK.a.b 3\r\n+AC\r\n\r\n" +
	"PUB empty 0\r\n\r\n" +
	"HPUB $JS.ACK.S.C.1.3.3.1.0 _INBOX.x.2 12 16\r\nNATS/1.0\r\n\r\n+ACK\r\n" +
	"HPUB withhdr 12 12\r\nNATS/1.0\r\n\r\n\r\n" +
	"hpub $JS.ACK.S.C.1.4.4.1.0 12 12\r\nNATS/1.0\r\n\r\n\r\n" +
	"UNSUB 1\r\n" +
	"PUB $JS.ACK.S.C.1.5.5.1.0 4\r\n-NAK\r\n" +
	"PONG\r\n"

// sampleWithoutAcks is sample with every ack frame removed.
const sampleWithoutAcks = "CONNECT {\"verbose\":false,\"headers\":true}\r\n" +
	"PING\r\n" +
	"SUB _INBOX.x.* 1\r\n" +
	"PUB orders 5\r\nhello\r\n" +
	"PUB fake _INBOX.x.1 28\r\n\r\nPUB $JS.ACK.a.b 3\r\n+AC\r\n\r\n" +
	"PUB empty 0\r\n\r\n" +
	"HPUB withhdr 12 12\r\nNATS/1.0\r\n\r\n\r\n" +
	"UNSUB 1\r\n" +
	"PONG\r\n"

var sampleAckSubjects = []string{
	"$JS.ACK.S.C.1.1.1.1.0",
	"$JS.ACK.S.C.1.2.2.1.0",
	"$JS.ACK.S.C.1.3.3.1.0",
	"$JS.ACK.S.C.1.4.4.1.0",
	"$JS.ACK.S.C.1.5.5.1.0",
}

// forwardAll runs a forwarder over src and returns what it wrote, the ack
// subjects it saw, and run's error.
func forwardAll(t testing.TB, src io.Reader, bufSize int, decide func(i int) ackAction) (string, []string, error) {
	t.Helper()
	var out bytes.Buffer
	var acks []string
	fw := newForwarder(&out, src, bufSize, func(p pubLine) ackAction {
		acks = append(acks, string(p.subject))
		return decide(len(acks))
	})
	err := fw.run()
	return out.String(), acks, err
}

func always(a ackAction) func(int) ackAction { return func(int) ackAction { return a } }

// splitReader returns its data in two reads, split at off.
type splitReader struct {
	data []byte
	off  int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if r.off > 0 {
		n = min(n, r.off)
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	r.off -= n
	return n, nil
}

func TestForwardAndDrop(t *testing.T) {
	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return strings.NewReader(sample) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(sample)) },
		"halfway": func() io.Reader { return iotest.HalfReader(strings.NewReader(sample)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			out, acks, err := forwardAll(t, r(), defaultReadBufSize, always(ackForward))
			if err != nil || out != sample {
				t.Fatalf("forward: err %v, output differs:\n got %q\nwant %q", err, out, sample)
			}
			if strings.Join(acks, ",") != strings.Join(sampleAckSubjects, ",") {
				t.Fatalf("acks seen %q, want %q", acks, sampleAckSubjects)
			}
			out, _, err = forwardAll(t, r(), defaultReadBufSize, always(ackDrop))
			if err != nil || out != sampleWithoutAcks {
				t.Fatalf("drop: err %v, output differs:\n got %q\nwant %q", err, out, sampleWithoutAcks)
			}
		})
	}
}

func TestForwardSplitAtEveryByte(t *testing.T) {
	for off := 1; off < len(sample); off++ {
		out, acks, err := forwardAll(t, &splitReader{data: []byte(sample), off: off}, defaultReadBufSize, always(ackDrop))
		if err != nil || out != sampleWithoutAcks || len(acks) != len(sampleAckSubjects) {
			t.Fatalf("split at %d: err %v, %d acks, output %q", off, err, len(acks), out)
		}
		out, _, err = forwardAll(t, &splitReader{data: []byte(sample), off: off}, 16, always(ackForward))
		if err != nil || out != sample {
			t.Fatalf("split at %d, 16-byte buffer: err %v, output %q", off, err, out)
		}
	}
}

func TestForwardCut(t *testing.T) {
	for n := 1; n <= len(sampleAckSubjects); n++ {
		decide := func(i int) ackAction {
			if i == n {
				return ackForwardAndCut
			}
			return ackForward
		}
		out, acks, err := forwardAll(t, iotest.OneByteReader(strings.NewReader(sample)), defaultReadBufSize, decide)
		if !errors.Is(err, errCut) {
			t.Fatalf("cut after %d: err %v, want errCut", n, err)
		}
		if len(acks) != n {
			t.Fatalf("cut after %d: saw %d acks", n, len(acks))
		}
		// The output is the input up to and including the n-th ack frame.
		subj := sampleAckSubjects[n-1]
		i := strings.Index(sample, subj)
		start := strings.LastIndex(sample[:i], "\n") + 1
		end := i + strings.Index(sample[i:], "\n") + 1
		p, ok := parseOp([]byte(sample[start:end]))
		if !ok {
			t.Fatalf("sample line %q does not parse", sample[start:end])
		}
		if want := sample[:end+p.size+2]; out != want {
			t.Fatalf("cut after %d: output\n %q\nwant %q", n, out, want)
		}
	}
}

func TestForwardTruncatedInput(t *testing.T) {
	// A stream that ends inside an ack frame: what there is of a forwarded
	// frame goes through, a dropped one vanishes whole.
	in := "PING\r\nPUB $JS.ACK.a.b 10\r\n+AC"
	if out, _, err := forwardAll(t, strings.NewReader(in), defaultReadBufSize, always(ackForward)); err != nil || out != in {
		t.Fatalf("forward truncated: %v %q", err, out)
	}
	if out, _, err := forwardAll(t, strings.NewReader(in), defaultReadBufSize, always(ackDrop)); err != nil || out != "PING\r\n" {
		t.Fatalf("drop truncated: %v %q", err, out)
	}
	// A line without its end is forwarded as is.
	in = "PING\r\nPUB $JS.ACK.a"
	if out, acks, err := forwardAll(t, strings.NewReader(in), defaultReadBufSize, always(ackDrop)); err != nil || out != in || len(acks) != 0 {
		t.Fatalf("partial line: %v %q %q", err, out, acks)
	}
}

func TestForwardLongLine(t *testing.T) {
	// A control line longer than the read buffer is forwarded unparsed.
	long := "SUB " + strings.Repeat("x", 100) + " 1\r\n"
	in := long + "PUB $JS.ACK.a 1\r\nx\r\n" + long
	out, acks, err := forwardAll(t, iotest.OneByteReader(strings.NewReader(in)), 32, always(ackDrop))
	if err != nil || out != long+long || len(acks) != 1 {
		t.Fatalf("long lines: err %v, acks %q, output %q", err, acks, out)
	}
}

func TestForwardMalformedKeepsGoing(t *testing.T) {
	in := "PUB foo bar baz 3\r\nPUB foo x\r\nGARBAGE\r\nPUB $JS.ACK.a 1\r\nx\r\nPING\r\n"
	out, acks, err := forwardAll(t, strings.NewReader(in), defaultReadBufSize, always(ackDrop))
	want := "PUB foo bar baz 3\r\nPUB foo x\r\nGARBAGE\r\nPING\r\n"
	if err != nil || out != want || len(acks) != 1 {
		t.Fatalf("err %v, acks %q, output %q, want %q", err, acks, out, want)
	}
}

// writeErrWriter fails every write.
type writeErrWriter struct{}

func (writeErrWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestForwardWriteError(t *testing.T) {
	fw := newForwarder(writeErrWriter{}, strings.NewReader(sample), defaultReadBufSize, nil)
	if err := fw.run(); err == nil {
		t.Fatal("run returned nil after write errors")
	}
}

func TestForwardAllocations(t *testing.T) {
	in := []byte(strings.Repeat(sample, 200))
	var src bytes.Reader
	fw := newForwarder(io.Discard, &src, defaultReadBufSize, nil)
	onAck := func(pubLine) ackAction { return ackDrop }
	allocs := testing.AllocsPerRun(20, func() {
		src.Reset(in)
		fw.reset(io.Discard, &src, onAck)
		if err := fw.run(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("forwarding %d bytes allocates %v times", len(in), allocs)
	}
}

func BenchmarkForward(b *testing.B) {
	in := []byte(strings.Repeat(sample, 1000))
	var src bytes.Reader
	fw := newForwarder(io.Discard, &src, defaultReadBufSize, nil)
	onAck := func(pubLine) ackAction { return ackForward }
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(in)
		fw.reset(io.Discard, &src, onAck)
		if err := fw.run(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzFrames(f *testing.F) {
	for _, s := range []string{
		sample,
		sampleWithoutAcks,
		"PUB $JS.ACK.a 3\r\nabc\r\n",
		"HPUB $JS.ACK.a r 12 14\r\nNATS/1.0\r\n\r\nab\r\n",
		"PUB $JS.ACK.a 5\r\n\r\nPUB\r\n",
		"PUB $JS.ACK.a 999999999\r\n",
		"pub $JS.ACK.a 0\n\r\n",
		"PUB $JS.ACK.a 0\r\nxx",
		"",
		"\n\n\r\r",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cutAt uint8) {
		fwd := func(r io.Reader, bufSize int, decide func(int) ackAction) (string, int, error) {
			out, acks, err := forwardAll(t, r, bufSize, decide)
			return out, len(acks), err
		}

		// With nothing dropped the output is the input, exactly, however it
		// is read and whatever the buffer size.
		out, acks, err := fwd(bytes.NewReader(in), defaultReadBufSize, always(ackForward))
		if err != nil || out != string(in) {
			t.Fatalf("forward: err %v, output %q differs from input", err, out)
		}
		out, _, err = fwd(iotest.OneByteReader(bytes.NewReader(in)), 16, always(ackForward))
		if err != nil || out != string(in) {
			t.Fatalf("forward, one byte at a time, 16-byte buffer: err %v, output %q differs from input", err, out)
		}

		// Dropping depends on the bytes, not on how they arrive.
		dropped, dacks, err := fwd(bytes.NewReader(in), defaultReadBufSize, always(ackDrop))
		if err != nil || dacks != acks || len(dropped) > len(in) {
			t.Fatalf("drop: err %v, %d acks (forwarding saw %d), %d bytes out of %d", err, dacks, acks, len(dropped), len(in))
		}
		if acks == 0 && dropped != string(in) {
			t.Fatalf("drop without acks changed the stream: %q", dropped)
		}
		dropped1, _, err := fwd(iotest.OneByteReader(bytes.NewReader(in)), defaultReadBufSize, always(ackDrop))
		if err != nil || dropped1 != dropped {
			t.Fatalf("drop, one byte at a time: err %v, output %q, want %q", err, dropped1, dropped)
		}

		// A cut forwards a prefix of the input and stops.
		n := int(cutAt)%(acks+1) + 1
		decide := func(i int) ackAction {
			if i == n {
				return ackForwardAndCut
			}
			return ackForward
		}
		cut, cacks, err := fwd(bytes.NewReader(in), defaultReadBufSize, decide)
		switch {
		case !strings.HasPrefix(string(in), cut):
			t.Fatalf("cut output %q is not a prefix of the input", cut)
		case n <= acks && cacks != n:
			t.Fatalf("cut after %d of %d acks: saw %d", n, acks, cacks)
		case n <= acks && !errors.Is(err, errCut) && !(err == nil && cut == string(in) && n == acks):
			// Only a last ack frame cut short by the end of input ends
			// without errCut.
			t.Fatalf("cut after %d of %d acks: err %v", n, acks, err)
		case n > acks && (err != nil || cut != string(in)):
			t.Fatalf("no cut expected: err %v, output %q", err, cut)
		}
	})
}
