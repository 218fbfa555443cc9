package probe_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
)

// TestShortAckWait runs the reproductions: an AckWait of a few
// milliseconds is a legitimate experiment. Redeliveries it causes are late
// acks or redeliveries before the ack, never a broken confirmed ack, and
// the run passes (no fail finding). Every redelivered message is classed,
// and whatever reached the AckWait is said (late_ack, ack_wait_too_short).
func TestShortAckWait(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		modes   []probe.Mode
		count   int
		ackWait time.Duration
	}{
		{"confirmed 1ms", []probe.Mode{probe.Confirmed}, 3000, time.Millisecond},
		{"confirmed 3ms", []probe.Mode{probe.Confirmed}, 3000, 3 * time.Millisecond},
		{"compare 2ms", []probe.Mode{probe.Standard, probe.Confirmed}, 300, 2 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			nc, js := natstest.Connect(t, s.ClientURL())
			cfg := probe.DefaultConfig(c.modes...)
			cfg.Count, cfg.AckWait = c.count, c.ackWait
			res, err := probe.Run(context.Background(), nc, js, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkShortAckWait(t, res)
		})
	}
}

// TestHeldPastAckWait makes the late acks certain: the probe is held up
// for three AckWaits while it holds a prefetched batch, so those messages
// are acked late and may come back first. The run warns and passes.
func TestHeldPastAckWait(t *testing.T) {
	t.Parallel()
	for _, mode := range []probe.Mode{probe.Standard, probe.Confirmed} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			nc, js := natstest.Connect(t, s.ClientURL())
			cfg := probe.DefaultConfig(mode)
			cfg.Count, cfg.AckWait = 200, 5*time.Millisecond
			var once sync.Once
			cfg.Progress = func(p probe.Progress) {
				if p.Phase == "ack" && p.Done > 0 {
					once.Do(func() { time.Sleep(3 * cfg.AckWait) })
				}
			}
			res, err := probe.Run(context.Background(), nc, js, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkShortAckWait(t, res)
			m := res.Modes[0]
			if m.Classes.LateAck == 0 || !hasFinding(res, probe.CodeLateAck, probe.SeverityWarn) || !hasFinding(res, probe.CodeAckWaitTooShort, probe.SeverityWarn) {
				t.Errorf("held past the AckWait: classes %+v, findings %+v", m.Classes, res.Findings)
			}
		})
	}
}

func checkShortAckWait(t *testing.T, res *probe.Result) {
	t.Helper()
	b, _ := json.Marshal(res.Findings)
	t.Logf("findings %s", b)
	if !res.OK || len(res.Problems) != 0 {
		t.Errorf("a short AckWait failed the run: %v", res.Problems)
	}
	for _, m := range res.Modes {
		c := m.Classes
		if m.Acks != res.Count || m.Errors != 0 || c.RedeliveredAfterConfirmedAck != 0 {
			t.Errorf("%s: acks %d errors %d classes %+v", m.Mode, m.Acks, m.Errors, c)
		}
		// Every message that came back is classed once.
		classed := c.RedeliveredAfterConfirmedAck + c.LostStandardAck + c.LateAckRedelivered + c.RedeliveredBeforeAck + c.LostDelivery
		if classed < m.RedeliveredMessages {
			t.Errorf("%s: %d messages redelivered, %d classed: %+v", m.Mode, m.RedeliveredMessages, classed, c)
		}
		if last := m.Steps[len(m.Steps)-1]; last.NumAckPending != 0 {
			t.Errorf("%s: ended with ack pending %+v", m.Mode, last)
		}
		if c.LateAck > 0 && !hasFinding(res, probe.CodeLateAck, probe.SeverityWarn) {
			t.Errorf("%s: late acks without a finding", m.Mode)
		}
		if reached := max(m.ReachedAckWait, serverReached(m)); reached > 0 && !hasFinding(res, probe.CodeAckWaitTooShort, probe.SeverityWarn) {
			t.Errorf("%s: %d acks reached the AckWait without a finding", m.Mode, reached)
		}
	}
}

func serverReached(m probe.ModeResult) int64 {
	if m.Server == nil {
		return 0
	}
	return m.Server.ReachedAckWait
}

func hasFinding(res *probe.Result, code string, sev probe.Severity) bool {
	return slices.ContainsFunc(res.Findings, func(f probe.Finding) bool { return f.Code == code && f.Severity == sev })
}
