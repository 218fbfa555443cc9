package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binaries the tests built once they are done.
func TestMain(m *testing.M) {
	os.Exit(natstest.Main(m, func() {
		if binPath != "" {
			_ = os.RemoveAll(filepath.Dir(binPath))
		}
	}))
}

// binary builds ackprobe once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the ackprobe binary")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ackprobe-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ackprobe")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build ackprobe: %v", binErr)
	}
	return binPath
}

// proc is a started ackprobe process.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// start runs the built binary with a clean environment plus env.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary(t), args...)}
	home := t.TempDir()
	p.cmd.Env = append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// wait waits for the process, killing it after limit, and returns its exit
// code.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("ackprobe did not finish within %s\nstdout: %s\nstderr: %s", limit, p.stdout.String(), p.stderr.String())
		return -1
	}
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// oneErrorLine asserts that stderr is exactly one line starting with
// "ackprobe: " and containing want.
func oneErrorLine(t *testing.T, stderr, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "ackprobe: ") || !strings.Contains(lines[0], want) {
		t.Errorf("stderr = %q, want one line 'ackprobe: …%s…'", stderr, want)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stack trace on stderr: %s", stderr)
	}
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// failureDoc is the JSON document of a command that failed: ok false, the
// error with its exit code, and what it knew (the stream, the leftovers).
type failureDoc struct {
	OK        bool                `json:"ok"`
	Error     report.FailureError `json:"error"`
	Stream    string              `json:"stream"`
	Leftovers []probe.Leftover    `json:"leftovers"`
}
