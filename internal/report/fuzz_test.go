package report

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// FuzzRender feeds arbitrary names, texts and figures to the JSON and table
// renderers: the JSON must decode back to the same values, and neither may
// panic.
func FuzzRender(f *testing.F) {
	f.Add("ACKPROBE_X", "ackprobe.x", "2.15.2", "a problem", int64(3), 12.5, uint64(2), 1)
	f.Add("", "", "", "\x1b[31mred\n\"quoted\"", int64(-1), math.Inf(1), uint64(math.MaxUint64), 1000)
	f.Add("ü\u2028", "\xff\xfe", "v", "", int64(0), math.NaN(), uint64(0), 0)
	f.Fuzz(func(t *testing.T, stream, subject, version, problem string, n int64, us float64, pending uint64, count int) {
		r := classic()
		r.Stream, r.Subject, r.Server.Version = stream, subject, version
		r.Count = count
		r.Problems = append(r.Problems, problem)
		r.Notes = append(r.Notes, problem)
		r.OK = problem == ""
		m := &r.Modes[1]
		m.Acks, m.Errors, m.Redelivered = int(n), int(n), int(n)
		m.Steps[0].NumPending = pending
		if !math.IsNaN(us) && !math.IsInf(us, 0) {
			m.AckLatencyUS = probe.Latency{Count: n, P50: us, P90: us, P99: us, Max: us, Buckets: []probe.Bucket{{UpToUS: us, Count: n}}}
			m.AcksPerSec = us
		}
		var b bytes.Buffer
		if err := JSON(&b, r); err != nil {
			t.Fatalf("JSON: %v", err)
		}
		var back probe.Result
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatalf("the JSON does not decode: %v\n%s", err, b.String())
		}
		if back.Modes[1].Steps[0].NumPending != pending || back.Modes[1].Acks != int(n) || len(back.Problems) != len(r.Problems) {
			t.Errorf("round trip changed figures")
		}
		if utf8.ValidString(stream) && back.Stream != stream {
			t.Errorf("stream %q came back as %q", stream, back.Stream)
		}
		for _, color := range []bool{false, true} {
			if err := Probe(io.Discard, r, Options{Color: color}); err != nil {
				t.Fatalf("Probe: %v", err)
			}
		}
	})
}
