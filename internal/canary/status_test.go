package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/probe"
)

func jetstreamNotFound() error {
	return fmt.Errorf("read consumer %q state: %w", "C", jetstream.ErrConsumerNotFound)
}

// warned is a finished round with a warn finding and no fail finding.
func warned() *probe.Result { return result(false, "") }

// clean is a finished round with only info findings.
func clean() *probe.Result {
	res := result(false, "")
	res.Findings = res.Findings[:1]
	return res
}

func TestVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		o               Outcome
		verdict, result string
	}{
		{"clean", outcome(1, clean(), nil), VerdictOK, ResultOK},
		{"warn", outcome(1, warned(), nil), VerdictWarn, ResultOK},
		{"fail finding", outcome(1, result(true, ""), nil), VerdictFailed, ResultFailed},
		{"error with a partial result", outcome(1, result(true, ""), &probe.ConnectionLostError{Err: errors.New("x")}), VerdictError, ResultError},
		{"no result", outcome(1, nil, &DialError{Err: nats.ErrNoServers}), VerdictError, ResultError},
	} {
		if got := tc.o.Verdict(); got != tc.verdict {
			t.Errorf("%s: verdict %s, want %s", tc.name, got, tc.verdict)
		}
		if got := tc.o.ResultLabel(); got != tc.result {
			t.Errorf("%s: result %s, want %s", tc.name, got, tc.result)
		}
	}
}

func TestErrorKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err      error
		kind     string
		answered bool
	}{
		{&DialError{Err: nats.ErrNoServers}, ErrorConnect, false},
		{&probe.ConnectionLostError{Err: nats.ErrConnectionReconnecting}, ErrorConnectionLost, false},
		{jetstreamNotFound(), ErrorNotFound, true},
		{fmt.Errorf("x: %w", jetstream.ErrStreamNotFound), ErrorNotFound, true},
		{&probe.RefusedError{Msg: "no"}, ErrorRefused, true},
		{&probe.NotOwnedError{Stream: "S", Consumer: "C"}, ErrorRefused, true},
		{&probe.PermissionError{Err: nats.ErrPermissionViolation}, ErrorPermission, true},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), ErrorTimeout, false},
		{errors.New("something"), ErrorOther, false},
	} {
		if got := ErrorKind(tc.err); got != tc.kind {
			t.Errorf("%v: kind %s, want %s", tc.err, got, tc.kind)
		}
		if got := answered(tc.err); got != tc.answered {
			t.Errorf("%v: answered %v, want %v", tc.err, got, tc.answered)
		}
	}
}

// TestWindowRules walks the overall status through the documented rules.
func TestWindowRules(t *testing.T) {
	t.Parallel()
	lost := &probe.ConnectionLostError{Err: errors.New("not connected for 2s")}
	type step struct {
		res  *probe.Result
		err  error
		want string
	}
	// A window of 6 rounds; 3 in a row that fail or error make it failing.
	steps := []step{
		{clean(), nil, StatusOK},               // 1
		{clean(), nil, StatusOK},               // 2
		{warned(), nil, StatusDegraded},        // 3: a warning in the window
		{nil, lost, StatusDegraded},            // 4: one error
		{nil, lost, StatusDegraded},            // 5: two errors in a row (round 3 only warned)
		{result(true, ""), nil, StatusFailing}, // 6: rounds 4, 5 and 6 all failed or errored
		{clean(), nil, StatusDegraded},         // 7: the window (2-7) still holds them
		{clean(), nil, StatusDegraded},         // 8: 3-8
		{clean(), nil, StatusDegraded},         // 9: 4-9
		{clean(), nil, StatusDegraded},         // 10: 5-10
		{clean(), nil, StatusDegraded},         // 11: 6-11 holds round 6's failure
		{clean(), nil, StatusOK},               // 12: 7-12 are all ok
	}
	h := NewHistory(6, 3, time.Hour, Info{ID: "T"})
	if st, _ := h.Overall(time.Now()); st != StatusUnknown {
		t.Fatalf("before any round: %s, want unknown", st)
	}
	for i, s := range steps {
		n := i + 1
		o := outcome(n, s.res, s.err)
		h.Add(o)
		st, reason := h.Overall(o.Ended)
		if st != s.want {
			t.Errorf("after round %d: %s (%s), want %s", n, st, reason, s.want)
		}
	}
	doc := h.Status(time.Now().Add(time.Second))
	if len(doc.Rounds) != 6 || doc.Rounds[0].Round != 12 || doc.Rounds[5].Round != 7 {
		t.Errorf("status rounds: %d, newest %d, oldest %d; want 6 rounds, 12 down to 7", len(doc.Rounds), doc.Rounds[0].Round, doc.Rounds[5].Round)
	}
	if doc.Totals != (Totals{Rounds: 12, OK: 8, Warn: 1, Failed: 1, Error: 2}) {
		t.Errorf("totals %+v", doc.Totals)
	}
}

func TestFailingNeedsRoundsInARow(t *testing.T) {
	t.Parallel()
	lost := &probe.ConnectionLostError{Err: errors.New("down")}
	h := NewHistory(10, 3, time.Hour, Info{})
	// Flapping: every other round errors: degraded, never failing.
	for n := 1; n <= 10; n++ {
		var o Outcome
		if n%2 == 0 {
			o = outcome(n, nil, lost)
		} else {
			o = outcome(n, clean(), nil)
		}
		h.Add(o)
		if st, reason := h.Overall(o.Ended); st != StatusDegraded && n > 1 {
			t.Errorf("round %d: %s (%s), want degraded", n, st, reason)
		}
	}
	// The first round alone, failed: failing (all of a window that holds
	// fewer than FailingAfter rounds).
	h = NewHistory(10, 3, time.Hour, Info{})
	h.Add(outcome(1, nil, lost))
	if st, _ := h.Overall(time.Now()); st != StatusFailing {
		t.Errorf("a first round that errored: %s, want failing", st)
	}
}

func TestStalled(t *testing.T) {
	t.Parallel()
	h := NewHistory(10, 3, 30*time.Second, Info{})
	o := outcome(1, clean(), nil)
	h.Add(o)
	if st, _ := h.Overall(o.Ended.Add(29 * time.Second)); st != StatusOK {
		t.Errorf("29s after the last round: %s, want ok", st)
	}
	st, reason := h.Overall(o.Ended.Add(31 * time.Second))
	if st != StatusFailing || !strings.Contains(reason, "stuck") {
		t.Errorf("31s after the last round: %s (%s), want failing, stuck", st, reason)
	}
}

func TestStatusDocument(t *testing.T) {
	t.Parallel()
	h := NewHistory(3, 3, time.Minute, Info{ID: "CANARY_T", Modes: modes, Count: 10})
	if h.Ready() {
		t.Fatal("ready before any round")
	}
	h.Add(outcome(1, nil, &DialError{Err: nats.ErrNoServers}))
	if h.Ready() {
		t.Fatal("ready after a round that did not reach the server")
	}
	o := outcome(2, result(true, "n2"), nil)
	o.ErrMessage = "unused"
	h.Add(o)
	if !h.Ready() {
		t.Fatal("not ready after a round that reached the server")
	}
	h.Add(outcome(3, nil, &probe.ConnectionLostError{Err: errors.New("down")}))
	if !h.Ready() {
		t.Fatal("readiness must stay once reached")
	}
	b, err := json.Marshal(h.Status(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"status", "reason", "ready", "up", "window", "canary", "totals", "last_round_ended", "rounds"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("/status has no %q: %s", key, b)
		}
	}
	if doc["status"] != StatusFailing || doc["up"] != false || doc["ready"] != true {
		t.Errorf("status %v up %v ready %v", doc["status"], doc["up"], doc["ready"])
	}
	rounds := doc["rounds"].([]any)
	newest := rounds[0].(map[string]any)
	if newest["verdict"] != VerdictError || newest["error"].(map[string]any)["kind"] != ErrorConnectionLost {
		t.Errorf("newest round: %v", newest)
	}
	failed := rounds[1].(map[string]any)
	if failed["consumer_leader"] != "n2" || len(failed["findings"].([]any)) != 3 || len(failed["modes"].([]any)) != 2 {
		t.Errorf("failed round: %v", failed)
	}
	canary := doc["canary"].(map[string]any)
	if canary["stream"] != "ACKPROBE_CANARY_T" || canary["server"].(map[string]any)["name"] != "n1" {
		t.Errorf("canary: %v", canary)
	}
}
