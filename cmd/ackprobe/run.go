package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ackprobe/ackprobe/internal/probe"
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
	code, line := exitCode(ctx, err, s.stderr)
	var ce *cleanupError
	if code > exitCheckFailed && line != "" && wantsJSON(root, args) && !(errors.As(err, &ce) && ce.reported) {
		var partial any
		var re *runError
		if errors.As(err, &re) {
			partial = re.partial
		}
		if partial == nil && ce != nil && len(ce.leftovers) > 0 {
			// The canary's cleanup at exit: what it left, as every
			// command's document names it.
			partial = struct {
				Leftovers []probe.Leftover `json:"leftovers"`
			}{ce.leftovers}
		}
		if c, _, err := root.Find(args); err == nil && c.Name() == "canary" {
			// The canary prints JSON lines, one document per round:
			// its last is one line too.
			_ = report.FailureLine(s.stdout, partial, code, line)
		} else {
			_ = report.Failure(s.stdout, partial, code, line)
		}
	}
	return code
}

// wantsJSON reports whether the command line asked for JSON output, also
// when it could not be parsed to the end.
// A --format other than json (inspect's nagios or prometheus) wins: that
// command answers in its own format.
func wantsJSON(root *cobra.Command, args []string) bool {
	asked := false
	if v, err := root.PersistentFlags().GetBool("json"); err == nil && v {
		asked = true
	}
	for i, a := range args {
		switch {
		case a == "--":
			return asked
		case a == "--json" || a == "--json=true" || a == "--json=1":
			asked = true
		case a == "--format" && i+1 < len(args) && args[i+1] != "json",
			strings.HasPrefix(a, "--format=") && a != "--format=json":
			return false
		}
	}
	return asked
}

// exitCode maps an error to the contract's exit codes and prints it as one
// line starting with "ackprobe: ", followed by a line for each thing the
// run could not clean up (also after Ctrl-C). It returns the code and the
// error's line without the prefix; an error that carries its own exit code
// was reported by its command already, in its own format, and has none.
func exitCode(ctx context.Context, err error, stderr io.Writer) (int, string) {
	var coded interface{ ExitCode() int }
	switch {
	case err == nil:
		return exitOK, ""
	case errors.As(err, &coded):
		return coded.ExitCode(), ""
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
