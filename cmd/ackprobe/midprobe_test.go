package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// waitForProbe returns once the probe has created its stream and consumer
// on the server at url.
func waitForProbe(t *testing.T, url string) {
	t.Helper()
	whenAcking(t, url, 0)
}

// TestServerStopsMidProbe kills the server while the probe runs: ackprobe
// must end on its own, with the reason and what it could not clean up.
func TestServerStopsMidProbe(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	p := start(t, nil, "compare", "-s", srv.URL, "-n", "100000", "--timeout", "500ms", "--no-color")
	waitForProbe(t, srv.URL)
	srv.Stop()
	code := p.wait(t, 60*time.Second)
	stderr := p.stderr.String()
	if code != exitCannotRun {
		t.Errorf("exit %d, want %d\n%s", code, exitCannotRun, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "ackprobe: ") {
			t.Errorf("stderr line without the prefix: %q", l)
		}
	}
	if !strings.Contains(stderr, "lost the connection") {
		t.Errorf("the reason is not given: %s", stderr)
	}
	if !strings.Contains(stderr, "could not clean up stream") {
		t.Errorf("the stream left behind is not named: %s", stderr)
	}
}

// TestSlowServer freezes the server (SIGSTOP) while the probe runs: every
// request times out, and so does a PING; ackprobe names a server that does
// not answer as a lost connection within a few timeouts, instead of
// retrying as it would through a leader election, and names what it left.
func TestSlowServer(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	p := start(t, nil, "compare", "-s", srv.URL, "-n", "100000", "--timeout", "300ms", "--no-color")
	waitForProbe(t, srv.URL)
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(srv.Pid(), syscall.SIGCONT) })
	start := time.Now()
	code := p.wait(t, 60*time.Second)
	if code != exitCannotRun {
		t.Errorf("exit %d, want %d\n%s", code, exitCannotRun, p.stderr.String())
	}
	first := strings.SplitN(p.stderr.String(), "\n", 2)[0]
	if !strings.HasPrefix(first, "ackprobe: ") || !strings.Contains(first, "not even a PING") {
		t.Errorf("first stderr line %q", first)
	}
	if !strings.Contains(p.stderr.String(), "ackprobe: could not clean up stream") {
		t.Errorf("the stream left behind is not named:\n%s", p.stderr.String())
	}
	// A request and a PING timing out, two timeouts of silence, then a
	// cleanup that gives up at once on a silent server: far from a hang.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s after the server froze", d)
	}
	t.Logf("ended %s after the server froze:\n%s", time.Since(start).Round(time.Millisecond), p.stderr.String())
}

// TestInterrupt sends SIGINT and SIGTERM to the binary during a probe: it
// cleans up, leaves nothing behind and exits 130.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			p := start(t, nil, "compare", "-s", s.ClientURL(), "-n", "200000", "--no-color")
			waitForProbe(t, s.ClientURL())
			p.signal(t, sig)
			if code := p.wait(t, 30*time.Second); code != exitInterrupted {
				t.Errorf("exit %d, want %d: %s", code, exitInterrupted, p.stderr.String())
			}
			oneErrorLine(t, p.stderr.String(), "interrupted")
			_, js := natstest.Connect(t, s.ClientURL())
			ctx, cancel := ctxTimeout(5 * time.Second)
			defer cancel()
			for name := range js.StreamNames(ctx).Name() {
				t.Errorf("stream %q left behind", name)
			}
		})
	}
}

// TestInterruptNamesLeftovers freezes the server, then interrupts the
// probe: the cleanup cannot reach the server, and Ctrl-C still names what
// was left with the command that removes it, after "interrupted".
func TestInterruptNamesLeftovers(t *testing.T) {
	t.Parallel()
	srv := natstest.RunServerProcess(t)
	p := start(t, nil, "compare", "-s", srv.URL, "-n", "200000", "--timeout", "500ms", "--no-color")
	waitForProbe(t, srv.URL)
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(srv.Pid(), syscall.SIGCONT) })
	p.signal(t, syscall.SIGINT)
	if code := p.wait(t, 30*time.Second); code != exitInterrupted {
		t.Errorf("exit %d, want %d: %s", code, exitInterrupted, p.stderr.String())
	}
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "ackprobe: interrupted" ||
		!strings.HasPrefix(lines[1], "ackprobe: could not clean up stream") || !strings.Contains(lines[1], "nats stream rm ACKPROBE_") {
		t.Errorf("stderr:\n%s", p.stderr.String())
	}
}
