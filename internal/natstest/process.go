package natstest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Main runs a package's tests and then removes the nats-server binary that
// ServerBinary built, so that no test run leaves it in the temp directory.
// Use it from TestMain: os.Exit(natstest.Main(m)). Extra cleanups run first.
func Main(m *testing.M, cleanups ...func()) int {
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	RemoveServerBinary()
	return code
}

// RemoveServerBinary removes the binary ServerBinary built, if any.
func RemoveServerBinary() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

// ServerBinary builds nats-server from the module version pinned in go.mod
// (once per test binary) and returns its path. Packages that call it remove
// it after their tests with Main.
func ServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ackprobe-nats-server-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "nats-server")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/nats-io/nats-server/v2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("natstest: %v", buildErr)
	}
	return binPath
}

// Process is a nats-server running as a separate process.
type Process struct {
	URL  string
	Port int
	cmd  *exec.Cmd
	args []string
	bin  string
	t    testing.TB
}

// RunServerProcess starts the built nats-server with JetStream on a free
// loopback port, with any extra command-line arguments, and stops it when
// the test ends.
func RunServerProcess(t testing.TB, extra ...string) *Process {
	t.Helper()
	p := &Process{bin: ServerBinary(t), t: t}
	p.Port = freePort(t)
	p.args = append([]string{"-a", "127.0.0.1", "-p", fmt.Sprint(p.Port), "-js", "-sd", t.TempDir()}, extra...)
	p.URL = fmt.Sprintf("nats://127.0.0.1:%d", p.Port)
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Start (re)starts the process with the same arguments and waits until it
// accepts connections.
func (p *Process) Start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, p.args...)
	dieWithParent(p.cmd)
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("natstest: start nats-server: %v", err)
	}
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	p.t.Fatalf("natstest: nats-server did not listen on %d in time:\n%s", p.Port, log.String())
}

// Stop ends the process at once (SIGKILL, as a crash would) and waits
// for it.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_, _ = p.cmd.Process.Wait()
	p.cmd = nil
}

// Term asks the process to shut down (SIGTERM, as a rolling restart does:
// the server hands its leaderships over first) and waits up to limit
// before killing it.
func (p *Process) Term(limit time.Duration) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = p.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// Running reports whether the process has been started and not stopped.
func (p *Process) Running() bool { return p.cmd != nil }

// Pid is the process id, for tests that signal it.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// freePort returns a loopback port nothing listens on, for a server that
// must know its port before it starts (cluster routes, restarts on the same
// port). It is picked below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port the kernel handed out and took
// back (127.0.0.1:0) is soon handed to some outgoing connection of another
// test, and the server that was to listen there cannot. Each port is given
// out once per test binary.
func freePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 1000 && low > minPort+1000; try++ {
		port := minPort + rand.IntN(low-minPort)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// minPort is the lowest port freePort picks: above the well-known and most
// registered services' ports.
const minPort = 20000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low <= 0 {
		return 32768
	}
	return low
}
