package main

import (
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress returns a progress callback drawing a bar on stderr, and a
// function that removes the bar; both do nothing unless stderr is a
// terminal and there is more than a handful of messages.
func progress(s streams, total int) (func(done, total int), func()) {
	if !s.stderrTTY || total < 1000 {
		return nil, func() {}
	}
	bar := progressbar.NewOptions(total,
		progressbar.OptionSetWriter(s.stderr),
		progressbar.OptionSetDescription("acking"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("acks"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	update := func(done, _ int) { _ = bar.Set(done) }
	return update, func() { _ = bar.Finish() }
}
