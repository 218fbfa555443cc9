package report

import (
	"fmt"
	"strings"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// faultsSection shows what fault injection did to each mode, and whether
// the expected story came out of the measurement: standard acks lost on the
// way turn into redeliveries; confirmed acks lost turn into retries and no
// redelivery.
func faultsSection(b *strings.Builder, res *probe.Result, p palette) {
	f := res.Faults
	what := []string{}
	if f.DropRate > 0 {
		what = append(what, fmt.Sprintf("dropping %.0f%% of ack frames", f.DropRate*100))
	}
	if f.CutAfter > 0 {
		what = append(what, fmt.Sprintf("cutting the connection after ack frame %d", f.CutAfter))
	}
	counts := fmt.Sprintf("%s ack frames, %s dropped", num(f.AckFrames), num(f.AcksDropped))
	if f.CutAfter > 0 {
		counts += fmt.Sprintf(", %s cut, %s lost in the cut, %s connections", num(f.Cuts), num(f.AcksCut), num(f.Connections))
	}
	fmt.Fprintf(b, "%s %s (proxy: %s)\n", p.title.Sprint("fault injection:"), strings.Join(what, " and "), counts)

	t, row := modeTable(res, p)
	ptr := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return num(*v)
	}
	row("ack frames sent", func(m probe.ModeResult) string { return ptr(m.AckFrames) })
	row("acks lost on the way", func(m probe.ModeResult) string { return ptr(m.AcksLost) })
	row("redeliveries by the server", func(m probe.ModeResult) string {
		s := num(m.Redelivered)
		if m.Redelivered > 0 && m.Mode == probe.Confirmed && m.RedeliveredAfterAck > 0 {
			return p.bad.Sprint(s)
		}
		return s
	})
	row("confirmed-ack timeouts", func(m probe.ModeResult) string { return confirmedOnly(m, m.Timeouts) })
	row("confirmed-ack retries", func(m probe.ModeResult) string { return confirmedOnly(m, m.Retries) })
	row("acked exactly once", func(m probe.ModeResult) string {
		s := fmt.Sprintf("%s of %s", num(m.AckedOnce), num(res.Count))
		if m.AckedOnce == res.Count {
			return p.good.Sprint(s)
		}
		return p.warn.Sprint(s)
	})
	b.WriteString(t.Render() + "\n")
	for _, m := range res.Modes {
		held, text := faultStory(m)
		mark := p.good.Sprint("✓")
		if !held {
			mark = p.warn.Sprint("?")
		}
		fmt.Fprintf(b, "%s %s\n", mark, text)
	}
	b.WriteString("\n")
}

func confirmedOnly(m probe.ModeResult, v int) string {
	if m.Mode != probe.Confirmed {
		return "-"
	}
	return num(v)
}

// faultStory says whether the mode behaved as the expected story says, in
// plain words, from the measured figures alone.
func faultStory(m probe.ModeResult) (held bool, text string) {
	lost := int64(0)
	if m.AcksLost != nil {
		lost = *m.AcksLost
	}
	switch {
	case lost == 0:
		return false, fmt.Sprintf("%s: no ack was lost on the way, so there is nothing to show", string(m.Mode))
	case m.Mode == probe.Standard && m.RedeliveredAfterAck > 0:
		return true, fmt.Sprintf("standard: %s ack(s) lost on the way; Ack() returned no error for any of them, and %s message(s) came back as redeliveries after the ack wait.",
			num(lost), num(m.RedeliveredAfterAck))
	case m.Mode == probe.Standard:
		return false, fmt.Sprintf("standard: %s ack(s) lost on the way, yet no redelivery was seen: not the expected story (were the lost frames acks of redeliveries only?)", num(lost))
	case m.RedeliveredAfterAck == 0 && m.Errors == 0 && m.Retries > 0:
		return true, fmt.Sprintf("confirmed: %s ack(s) lost on the way; each was noticed (%s timeouts) and sent again (%s retries), and no acked message was redelivered.",
			num(lost), num(m.Timeouts), num(m.Retries))
	case m.Errors > 0:
		return false, fmt.Sprintf("confirmed: %s ack(s) still failed after their retries: not the expected story", num(m.Errors))
	}
	return false, fmt.Sprintf("confirmed: %s ack(s) lost, %s retries, %s redelivered after an ack: not the expected story", num(lost), num(m.Retries), num(m.RedeliveredAfterAck))
}
