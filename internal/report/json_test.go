package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestFailureDocument: a failure over a partial result says "ok": false
// and the error first, keeps the result's members in their order, and
// leaves subjects readable.
func TestFailureDocument(t *testing.T) {
	res := &probe.Result{OK: true, Stream: "ACKPROBE_X", Subject: "ackprobe.>", Consumer: "ACKPROBE_X", Count: 2, Modes: []probe.ModeResult{}}
	var b bytes.Buffer
	if err := Failure(&b, res, 2, "lost the connection"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc["ok"] != false || doc["error"].(map[string]any)["exit_code"] != float64(2) || doc["stream"] != "ACKPROBE_X" {
		t.Errorf("document %s", out)
	}
	order := []string{`"ok"`, `"error"`, `"server"`, `"stream"`, `"subject"`, `"consumer"`, `"count"`}
	last := -1
	for _, k := range order {
		i := strings.Index(out, k)
		if i < last {
			t.Errorf("%s out of order in %s", k, out)
		}
		last = i
	}
	if strings.Count(out, `"ok"`) != 1 || !strings.Contains(out, `"ackprobe.>"`) {
		t.Errorf("document %s", out)
	}
	// A run that ended before its consumer existed has no AckWait.
	for _, k := range []string{"ack_wait", "ack_timeout", "max_ack_pending"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s in a result without a consumer: %s", k, out)
		}
	}
	// Without a partial result: the failure alone.
	b.Reset()
	if err := Failure(&b, nil, 2, "bad flag"); err != nil {
		t.Fatal(err)
	}
	var alone map[string]any
	if err := json.Unmarshal(b.Bytes(), &alone); err != nil || len(alone) != 2 || alone["ok"] != false {
		t.Errorf("%v: %s", err, b.String())
	}
}
