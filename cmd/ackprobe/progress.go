package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// progress returns a progress callback that draws, on stderr, a bar per
// phase of the probe (publish, then ack, for each mode, a line while a
// mode settles, and one while it collects the messages of acks the server
// never applied), each with its own rate from its own start; and a function
// that removes the last bar. Both do nothing unless stderr is a terminal
// and there are at least 1,000 messages per mode.
func progress(s streams, cfg probe.Config) (func(probe.Progress), func()) {
	if !s.stderrTTY || cfg.Count < 1000 {
		return nil, func() {}
	}
	var (
		bar     *progressbar.ProgressBar
		current probe.Progress
	)
	finish := func() {
		if bar != nil {
			_ = bar.Finish()
			bar = nil
		}
	}
	update := func(p probe.Progress) {
		if p.Phase == "done" {
			finish()
			return
		}
		if bar == nil || p.Phase != current.Phase || p.Mode != current.Mode {
			finish()
			current = p
			unit, what := "acks", fmt.Sprintf("%-9s %-7s", p.Mode, p.Phase)
			switch p.Phase {
			case "publish":
				unit = "msgs"
			case "settle":
				// The server is applying the last acks, or lost ones
				// are being collected (an indeterminate bar would need
				// progressbar's spinner goroutine, which races).
				what = fmt.Sprintf("%-9s settle: waiting for the server to show every ack", p.Mode)
			case "collect":
				// Acks the server never applied: their messages come
				// back after AckWait and are acked again.
				unit, what = "msgs", fmt.Sprintf("%-9s collect: messages of unapplied acks coming back", p.Mode)
			}
			bar = progressbar.NewOptions(p.Total,
				progressbar.OptionSetWriter(s.stderr),
				progressbar.OptionSetDescription(what),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString(unit),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = bar.Set(p.Done)
	}
	return update, finish
}
