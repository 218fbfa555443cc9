// Command ackprobe shows, measures and proves how NATS JetStream
// acknowledgements behave: standard acks against confirmed (double) acks.
package main

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/term"
)

func main() {
	// A reader that goes away (ackprobe compare | head) makes writes fail
	// with EPIPE instead of killing the process, so that what the run
	// created (its stream, an embedded server's store) is still removed.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default so a second one
		// ends the process at once, even during cleanup.
		<-ctx.Done()
		stop()
	}()
	s := streams{
		stdin:     os.Stdin,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		width:     terminalWidth(os.Stdout),
		getenv:    os.Getenv,
	}
	code := run(ctx, os.Args[1:], s)
	stop()
	os.Exit(code)
}

// terminalWidth is f's width in columns when it is a terminal, else 0.
// A terminal that reports no size (a pty nobody sized, as `script` makes)
// falls back to $COLUMNS, as shells and less do.
func terminalWidth(f *os.File) int {
	if !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	if w, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && w > 0 {
		return w
	}
	return 0
}
