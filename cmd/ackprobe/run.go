package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ackprobe/ackprobe/internal/report"
	"github.com/spf13/cobra"
)

// streams is where a command reads its environment and writes its output;
// tests pass buffers.
type streams struct {
	stdin                io.Reader
	stdinTTY             bool
	stdout, stderr       io.Writer
	stdoutTTY, stderrTTY bool
	// width is the terminal's width in columns when stdout is one; 0
	// otherwise (tables are drawn in full).
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
	code, line := exitCode(ctx, err, s.stderr)
	if code > exitCheckFailed && wantsJSON(root, args) {
		var partial any
		var re *runError
		if errors.As(err, &re) {
			partial = re.partial
		}
		_ = report.Failure(s.stdout, partial, code, line)
	}
	return code
}

// wantsJSON reports whether the command line asked for JSON output, also
// when it could not be parsed to the end.
func wantsJSON(root *cobra.Command, args []string) bool {
	if v, err := root.PersistentFlags().GetBool("json"); err == nil && v {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "--json=true" || a == "--json=1" {
			return true
		}
	}
	return false
}

// exitCode maps an error to the contract's exit codes and prints it as one
// line starting with "ackprobe: ", followed by a line for each thing the
// run could not clean up (also after Ctrl-C). It returns the code and the
// error's line without the prefix.
func exitCode(ctx context.Context, err error, stderr io.Writer) (int, string) {
	switch {
	case err == nil:
		return exitOK, ""
	case errors.Is(err, errCheckFailed):
		return exitCheckFailed, ""
	}
	code, line := exitCannotRun, oneLine(explain(err))
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		code, line = exitInterrupted, "interrupted"
	}
	fmt.Fprintln(stderr, "ackprobe: "+line)
	var ce *cleanupError
	if errors.As(err, &ce) {
		for _, l := range ce.leftovers {
			fmt.Fprintln(stderr, "ackprobe: could not clean up "+oneLine(l.String()))
		}
	}
	return code, line
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
