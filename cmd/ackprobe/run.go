package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// streams is where a command reads its environment and writes its output;
// tests pass buffers.
type streams struct {
	stdout, stderr       io.Writer
	stdoutTTY, stderrTTY bool
	// width is the terminal's width in columns when stdout is a terminal,
	// 0 otherwise (tables then take the width they need).
	width  int
	getenv func(string) string
}

// Exit codes, as the contract defines them.
const (
	exitOK          = 0
	exitCheckFailed = 1
	exitCannotRun   = 2
	exitInterrupted = 130
)

// errCheckFailed means the probe ran and a check did not hold; the report
// already says which.
var errCheckFailed = errors.New("a check failed")

// run executes one ackprobe command line and returns its exit code.
func run(ctx context.Context, args []string, s streams) int {
	return runWith(ctx, args, s, nil)
}

// runWith is run with the probe replaced by runF when it is not nil.
func runWith(ctx context.Context, args []string, s streams, runF func(*probeRun) error) int {
	if s.getenv == nil {
		s.getenv = func(string) string { return "" }
	}
	root := newRootCmd(s, runF)
	root.SetArgs(args)
	root.SetOut(s.stdout)
	root.SetErr(s.stderr)
	err := root.ExecuteContext(ctx)
	return exitCode(ctx, err, s.stderr)
}

// exitCode maps an error to the contract's exit codes and prints it as one
// line starting with "ackprobe: ".
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	var coded interface{ ExitCode() int }
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &coded):
		// The command already reported it, in its own format.
		return coded.ExitCode()
	case errors.Is(err, errCheckFailed):
		return exitCheckFailed
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "ackprobe: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(stderr, "ackprobe: "+oneLine(explain(err)))
	var ce *cleanupError
	if errors.As(err, &ce) {
		for _, f := range ce.failures {
			fmt.Fprintln(stderr, "ackprobe: could not clean up "+oneLine(f))
		}
	}
	return exitCannotRun
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
