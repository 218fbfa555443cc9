package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/ackprobe/ackprobe/internal/canary"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

// parseCanary parses a canary command line with the run replaced, under a
// root that has the global flags.
func parseCanary(t *testing.T, args ...string) (*canaryRun, error) {
	t.Helper()
	s := streams{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	g := &globalOptions{getenv: s.getenv}
	root := &cobra.Command{Use: "ackprobe", SilenceUsage: true, SilenceErrors: true}
	addConnFlags(root.PersistentFlags(), g, s.getenv)
	root.PersistentFlags().BoolVar(&g.json, "json", false, "")
	root.PersistentFlags().BoolVar(&g.noColor, "no-color", false, "")
	var got *canaryRun
	root.AddCommand(newCanaryCmd(g, s, func(r *canaryRun) error { got = r; return nil }))
	root.SetArgs(append([]string{"canary"}, args...))
	err := root.Execute()
	return got, err
}

func TestCanaryFlags(t *testing.T) {
	t.Parallel()
	r, err := parseCanary(t)
	if err != nil {
		t.Fatal(err)
	}
	c := r.cfg
	if c.Probe.Count != canaryCount || c.Probe.AckWait != canaryAckWait || c.Interval != 10*time.Second ||
		r.listen != "localhost:9464" || c.Window != 10 || len(c.Probe.Modes) != 2 || r.faults != nil {
		t.Errorf("defaults: %+v listen %s", c, r.listen)
	}
	if c.Build.NatsGo == "" || c.Build.NatsServer == "" || c.Build.Version == "" {
		t.Errorf("build info: %+v", c.Build)
	}
	r, err = parseCanary(t, "--interval", "250ms", "--listen", ":0", "--window", "30", "-n", "3", "--ack-wait", "1s",
		"--replicas", "3", "--storage", "file", "--timeout", "2s", "-s", "nats://a:4222", "--drop-acks", "0.1")
	if err != nil {
		t.Fatal(err)
	}
	c = r.cfg
	if c.Interval != 250*time.Millisecond || r.listen != ":0" || c.Window != 30 || c.Probe.Count != 3 ||
		c.Probe.AckWait != time.Second || c.Probe.Replicas != 3 || c.Probe.Storage != "file" || c.Probe.Timeout != 2*time.Second ||
		r.g.conn.Servers != "nats://a:4222" || r.faults == nil || r.faults.DropRate != 0.1 {
		t.Errorf("flags: %+v listen %s", c, r.listen)
	}
}

func TestCanaryBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "0s"}, "--interval must be positive"},
		{[]string{"--interval", "-1s"}, "--interval must be positive"},
		{[]string{"--interval", "soon"}, "is not a duration"},
		{[]string{"--window", "0"}, "--window must be between 1 and 1000"},
		{[]string{"--listen", "9464"}, "--listen \"9464\""},
		{[]string{"--listen", "256.1.1.1:9464"}, "--listen 256.1.1.1:9464"},
		{[]string{"-n", "0"}, "--count must be at least 1"},
		{[]string{"--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"extra"}, "unknown command"},
	} {
		args := append([]string{"canary", "--embedded"}, tc.args...)
		r := ackprobe(t, nil, args...)
		if r.code != exitCannotRun {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", tc.args, r.code, r.stderr)
			continue
		}
		oneErrorLine(t, r.stderr, tc.want)
		if r.stdout != "" {
			t.Errorf("%v: stdout %q", tc.args, r.stdout)
		}
		// Under --json: one document saying why.
		r = ackprobe(t, nil, append(args, "--json")...)
		var doc failureDoc
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.OK || doc.Error.ExitCode != 2 || !strings.Contains(doc.Error.Message, tc.want) {
			t.Errorf("%v --json: %v %q", tc.args, err, r.stdout)
		}
	}
}

// TestCanaryListenInUse: an address that is taken is bad input, said before
// anything is dialled.
func TestCanaryListenInUse(t *testing.T) {
	t.Parallel()
	ln, err := canary.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := ackprobe(t, nil, "canary", "-s", natstest.RefusedURL(t), "--listen", ln.Addr().String())
	if r.code != exitCannotRun {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	oneErrorLine(t, r.stderr, "address already in use")
}

// canaryBuffer is a bytes.Buffer that a running canary writes to while the
// test reads it.
type canaryBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *canaryBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *canaryBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var servingRE = regexp.MustCompile(`serving http://([0-9.:]+)/metrics`)

// servingAddr waits for the canary's first line on stderr and returns the
// address it serves on.
func servingAddr(t *testing.T, stderr func() string) string {
	t.Helper()
	var addr string
	waitUntil(t, 20*time.Second, "the canary to serve", func() bool {
		if m := servingRE.FindStringSubmatch(stderr()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpGet returns the status code and body of a GET, or 0 when the server
// cannot be reached.
func httpGet(url string) (int, string) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	l := js.StreamNames(ctx)
	var out []string
	for n := range l.Name() {
		out = append(out, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCanaryJSON runs the canary command in-process with --json: one round
// document per line on stdout, the endpoints served, and nothing left on
// the server once its context ends; the exit code is 0.
func TestCanaryJSON(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	var out, errb canaryBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"canary", "--json", "-s", s.ClientURL(), "--interval", "50ms", "--listen", "127.0.0.1:0", "-n", "3", "--timeout", "2s"},
			streams{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	addr := servingAddr(t, errb.String)
	waitUntil(t, 30*time.Second, "three rounds", func() bool { return strings.Count(out.String(), "\n") >= 3 })
	if code, body := httpGet("http://" + addr + "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := httpGet("http://" + addr + "/metrics"); code != http.StatusOK || !strings.Contains(body, `ackprobe_acks_total{mode="confirmed"}`) {
		t.Errorf("/metrics: %d %.300s", code, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d after the context ended, want 0: %s", code, errb.String())
		}
	case <-time.After(6 * time.Second):
		t.Fatal("the canary did not stop within 3 × --timeout")
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		var doc struct {
			Round   int    `json:"round"`
			OK      bool   `json:"ok"`
			Verdict string `json:"verdict"`
			Status  string `json:"status"`
			Stream  string `json:"stream"`
			Modes   []struct {
				Mode string `json:"mode"`
				Acks int    `json:"acks"`
			} `json:"modes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("line %d is not a JSON document: %v: %s", n+1, err, sc.Text())
		}
		n++
		if doc.Round != n || !doc.OK || doc.Status == "" || !strings.HasPrefix(doc.Stream, "ACKPROBE_CANARY_") || len(doc.Modes) != 2 || doc.Modes[1].Acks != 3 {
			t.Errorf("line %d: %s", n, sc.Text())
		}
	}
	if left := streamNames(t, js); len(left) > 0 {
		t.Errorf("left on the server: %v", left)
	}
	// Not a terminal and --json: stderr holds the serving line and changes
	// of the status only.
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(line, "ackprobe canary") {
			t.Errorf("stderr line %q", line)
		}
	}
}

// TestCanaryTerminal: on a terminal, one compact line per round on stderr.
func TestCanaryTerminal(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	var out, errb canaryBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"canary", "-s", s.ClientURL(), "--interval", "50ms", "--listen", "127.0.0.1:0", "-n", "2"},
			streams{stdout: &out, stderr: &errb, stderrTTY: true, getenv: func(string) string { return "" }})
	}()
	waitUntil(t, 30*time.Second, "two round lines", func() bool { return strings.Count(errb.String(), "\nround ") >= 2 })
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d", code)
	}
	line := regexp.MustCompile(`(?m)^round 1 +\S*ok\S* +confirmed p50 \S+ p99 \S+ +visibility lag (-|p99 \S+) +in \S+`)
	if !line.MatchString(errb.String()) {
		t.Errorf("no compact round line on stderr:\n%s", errb.String())
	}
	if out.String() != "" {
		t.Errorf("stdout: %q", out.String())
	}
}

// binaryProc is the built binary running, with output the test reads
// while it runs.
type binaryProc struct {
	cmd            *exec.Cmd
	stdout, stderr canaryBuffer
	done           chan int
}

// startBinary runs the built ackprobe with a clean environment; it is
// killed when the test ends, if it still runs.
func startBinary(t *testing.T, args ...string) *binaryProc {
	t.Helper()
	return startBinaryEnv(t, nil, args...)
}

// startBinaryEnv is startBinary with env added to the clean environment.
func startBinaryEnv(t *testing.T, env []string, args ...string) *binaryProc {
	t.Helper()
	p := &binaryProc{cmd: exec.Command(binary(t), args...), done: make(chan int, 1)}
	home := t.TempDir()
	p.cmd.Env = append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		p.done <- code
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
	return p
}

// stop sends sig and waits up to limit for the exit; it returns the exit
// code and how long the process took.
func (p *binaryProc) stop(t *testing.T, sig syscall.Signal, limit time.Duration) (int, time.Duration) {
	t.Helper()
	begin := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-p.done:
		p.done <- code
		return code, time.Since(begin)
	case <-time.After(limit):
		t.Fatalf("ackprobe did not exit within %s of %s\nstderr: %s", limit, sig, p.stderr.String())
		return -1, 0
	}
}

// TestCanarySIGTERM runs the built binary: SIGTERM makes it remove what it
// created and exit 0 within three --timeout.
func TestCanarySIGTERM(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s.ClientURL())
	const timeout = time.Second
	p := startBinary(t, "canary", "-s", s.ClientURL(), "--interval", "100ms", "--listen", "127.0.0.1:0", "--timeout", timeout.String())
	addr := servingAddr(t, p.stderr.String)
	waitUntil(t, 30*time.Second, "readiness", func() bool { code, _ := httpGet("http://" + addr + "/readyz"); return code == http.StatusOK })
	if names := streamNames(t, js); len(names) != 1 {
		t.Fatalf("streams: %v", names)
	}
	code, took := p.stop(t, syscall.SIGTERM, 3*timeout+2*time.Second)
	if code != exitOK || took > 3*timeout {
		t.Errorf("exit %d after %s, want 0 within %s: %s", code, took, 3*timeout, p.stderr.String())
	}
	if left := streamNames(t, js); len(left) > 0 {
		t.Errorf("left on the server: %v", left)
	}
}

// TestCanaryLeftoversJSON freezes the server (SIGSTOP) under a running
// canary and stops the canary: its cleanup cannot reach the server, so it
// exits 2, and under --json its last document is the failure, naming the
// stream it left and the command that removes it.
func TestCanaryLeftoversJSON(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerProcess(t)
	const timeout = time.Second
	p := startBinary(t, "canary", "-s", s.URL, "--json", "--interval", "100ms", "--listen", "127.0.0.1:0", "--timeout", timeout.String())
	addr := servingAddr(t, p.stderr.String)
	waitUntil(t, 30*time.Second, "readiness", func() bool { code, _ := httpGet("http://" + addr + "/readyz"); return code == http.StatusOK })
	if err := syscall.Kill(s.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(s.Pid(), syscall.SIGCONT) }()
	code, _ := p.stop(t, syscall.SIGTERM, 3*timeout+10*time.Second)
	if code != exitCannotRun {
		t.Errorf("exit %d, want 2 (left something behind): %s", code, p.stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	var doc failureDoc
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &doc); err != nil {
		t.Fatalf("last line is not a JSON document: %v\n%s", err, lines[len(lines)-1])
	}
	if doc.OK || doc.Error.ExitCode != 2 || len(doc.Leftovers) == 0 {
		t.Fatalf("failure document %+v", doc)
	}
	for _, l := range doc.Leftovers {
		if !strings.HasPrefix(l.Stream, "ACKPROBE_CANARY_") || !strings.HasPrefix(l.Command, "nats ") {
			t.Errorf("leftover %+v: not the canary's, or no command", l)
		}
	}
}
