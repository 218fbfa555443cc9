package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/limits"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

// The secrets planted in every input form. Each is distinctive, so that
// any of them found in any output is a leak.
const (
	tokenSecret = "tok3n-9f2c7e1a5d"
	passSecret  = "passw0rd-4b8e6c2f"
)

// secretServers are servers that accept each kind of credentials with the
// planted secrets, one that refuses a permission to the password user, and
// the secrets of the generated keys.
type secretServers struct {
	token, user, nkey, creds, denied string
	seedFile, credsFile, credsText   string
	secrets                          []string
}

func startSecretServers(t *testing.T) *secretServers {
	t.Helper()
	ss := &secretServers{secrets: []string{tokenSecret, passSecret}}
	dir := t.TempDir()

	o := natstest.Options(t)
	o.Authorization = tokenSecret
	ss.token = natstest.RunServerWith(t, o).ClientURL()

	o = natstest.Options(t)
	o.Username, o.Password = "probe", passSecret
	ss.user = natstest.RunServerWith(t, o).ClientURL()

	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	o = natstest.Options(t)
	o.Nkeys = []*server.NkeyUser{{Nkey: upub}}
	ss.nkey = natstest.RunServerWith(t, o).ClientURL()
	ss.seedFile = writeFile(t, dir, "user.nk", string(useed))
	ss.secrets = append(ss.secrets, string(useed))

	creds, secrets := operatorServer(t)
	ss.creds = creds.url
	ss.credsFile = writeFile(t, dir, "user.creds", creds.text)
	ss.credsText = creds.text
	ss.secrets = append(ss.secrets, secrets...)

	ss.denied = natstest.RunServerConf(t, fmt.Sprintf(`
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  A: { jetstream: enabled, users: [{user: probe, password: %q, permissions: {publish: {deny: ["$JS.API.CONSUMER.CREATE.>"]}}}] }
}
`, passSecret)).ClientURL()
	return ss
}

type credsServer struct{ url, text string }

// operatorServer runs a server in operator mode and returns it with the
// text of a user's creds file, and the secrets in it: the seed, and the
// JWT's claims and signature.
func operatorServer(t *testing.T) (credsServer, []string) {
	t.Helper()
	s := natstest.RunOperatorServer(t, nil)
	parts := strings.Split(s.JWT, ".")
	return credsServer{url: s.ClientURL(), text: string(s.Creds)}, []string{s.Seed, parts[1], parts[2]}
}

// withUserinfo puts user information into a nats:// URL.
func withUserinfo(url, info string) string {
	return strings.Replace(url, "nats://", "nats://"+info+"@", 1)
}

// secretForm is one way of giving ackprobe credentials.
type secretForm struct {
	name string
	// at returns the arguments and environment that point these
	// credentials at url.
	at func(t *testing.T, url string) (args, env []string)
	// good accepts the credentials; wrong refuses them; denied accepts
	// them and refuses a permission (empty: none for this form).
	good, wrong, denied string
}

func secretForms(ss *secretServers) []secretForm {
	args := func(a ...string) []string { return a }
	context := func(t *testing.T, body string) string {
		return writeFile(t, t.TempDir(), "ctx.json", body)
	}
	selected := func(t *testing.T, body string) []string {
		cfg := t.TempDir()
		writeFile(t, cfg, "nats/context/sel.json", body)
		writeFile(t, cfg, "nats/context.txt", "sel")
		return []string{"XDG_CONFIG_HOME=" + cfg}
	}
	return []secretForm{
		{"URL token", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", withUserinfo(u, tokenSecret)), nil
		}, ss.token, ss.user, ""},
		{"URL token without a scheme", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", strings.TrimPrefix(withUserinfo(u, tokenSecret), "nats://")), nil
		}, ss.token, ss.user, ""},
		{"URL user and password", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", withUserinfo(u, "probe:"+passSecret)), nil
		}, ss.user, ss.token, ss.denied},
		{"NATS_URL with a token", func(_ *testing.T, u string) ([]string, []string) {
			return nil, []string{"NATS_URL=" + withUserinfo(u, tokenSecret)}
		}, ss.token, ss.user, ""},
		{"--token", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", u, "--token", tokenSecret), nil
		}, ss.token, ss.user, ""},
		{"NATS_TOKEN", func(_ *testing.T, u string) ([]string, []string) {
			return nil, []string{"NATS_URL=" + u, "NATS_TOKEN=" + tokenSecret}
		}, ss.token, ss.user, ""},
		{"--password", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", u, "--user", "probe", "--password", passSecret), nil
		}, ss.user, ss.token, ss.denied},
		{"NATS_PASSWORD", func(_ *testing.T, u string) ([]string, []string) {
			return nil, []string{"NATS_URL=" + u, "NATS_USER=probe", "NATS_PASSWORD=" + passSecret}
		}, ss.user, ss.token, ss.denied},
		{"--nkey seed file", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", u, "--nkey", ss.seedFile), nil
		}, ss.nkey, ss.token, ""},
		{"NATS_NKEY", func(_ *testing.T, u string) ([]string, []string) {
			return nil, []string{"NATS_URL=" + u, "NATS_NKEY=" + ss.seedFile}
		}, ss.nkey, ss.token, ""},
		{"--creds file", func(_ *testing.T, u string) ([]string, []string) {
			return args("-s", u, "--creds", ss.credsFile), nil
		}, ss.creds, ss.token, ""},
		{"context file with a token", func(t *testing.T, u string) ([]string, []string) {
			return args("--context", context(t, fmt.Sprintf(`{"url": %q, "token": %q}`, u, tokenSecret))), nil
		}, ss.token, ss.user, ""},
		{"selected context with a password", func(t *testing.T, u string) ([]string, []string) {
			return nil, selected(t, fmt.Sprintf(`{"url": %q, "user": "probe", "password": %q}`, u, passSecret))
		}, ss.user, ss.token, ss.denied},
		{"NATS_CONTEXT with a token URL", func(t *testing.T, u string) ([]string, []string) {
			return nil, append(selected(t, fmt.Sprintf(`{"url": %q}`, withUserinfo(u, tokenSecret))), "NATS_CONTEXT=sel")
		}, ss.token, ss.user, ""},
	}
}

// leaks returns the secrets found in out.
func leaks(out string, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		if strings.Contains(out, s) {
			found = append(found, s)
		}
	}
	return found
}

// TestNoSecretPrinted plants secrets in every input form and runs the
// built binary through every output path reachable with them: compare,
// ack, inspect and cleanup, tables and --json, success, refused credentials, a
// refused permission, an unreachable server, an API error, bad input and
// --help; cleanup; inspect --watch; and the canary with its /status and
// /metrics. No secret may appear on stdout or stderr, or in what the
// canary serves.
func TestNoSecretPrinted(t *testing.T) {
	t.Parallel()
	binary(t)
	ss := startSecretServers(t)
	dead := natstest.RefusedURL(t)
	paths := []struct {
		name   string
		args   []string
		server func(f secretForm) string
		code   int
	}{
		{"compare --json", []string{"compare", "--json"}, func(f secretForm) string { return f.good }, 0},
		{"compare table", []string{"compare", "--no-color"}, func(f secretForm) string { return f.good }, 0},
		{"ack table", []string{"ack", "--mode", "standard", "--no-color"}, func(f secretForm) string { return f.good }, 0},
		{"through the fault proxy", []string{"ack", "--json", "--drop-acks", "0.001"}, func(f secretForm) string { return f.good }, 0},
		{"inspect --json", []string{"inspect", "--json"}, func(f secretForm) string { return f.good }, 0},
		{"inspect table", []string{"inspect", "--no-color"}, func(f secretForm) string { return f.good }, 0},
		{"inspect unknown stream", []string{"inspect", "NOSUCH"}, func(f secretForm) string { return f.good }, 2},
		{"API error", []string{"compare", "--json", "--replicas", "3"}, func(f secretForm) string { return f.good }, 2},
		{"bad flag value", []string{"compare", "--count", "0"}, func(f secretForm) string { return f.good }, 2},
		{"help", []string{"compare", "--help"}, func(f secretForm) string { return f.good }, 0},
		{"refused credentials", []string{"compare", "--json"}, func(f secretForm) string { return f.wrong }, 2},
		{"unreachable", []string{"inspect", "--json"}, func(secretForm) string { return dead }, 2},
		{"refused permission", []string{"compare", "--json"}, func(f secretForm) string { return f.denied }, 2},
		{"cleanup table", []string{"cleanup", "--no-color", "--older-than", "0s"}, func(f secretForm) string { return f.good }, 0},
		{"cleanup --json", []string{"cleanup", "--json"}, func(f secretForm) string { return f.good }, 0},
		{"cleanup unreachable", []string{"cleanup", "--json"}, func(secretForm) string { return dead }, 2},
	}
	for _, form := range secretForms(ss) {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range paths {
				url := p.server(form)
				if url == "" {
					continue
				}
				args, env := form.at(t, url)
				proc := start(t, env, append(p.args, args...)...)
				code := proc.wait(t, time.Minute)
				stdout, stderr := proc.stdout.String(), proc.stderr.String()
				if found := leaks(stdout+stderr, ss.secrets); len(found) > 0 {
					t.Errorf("%s: printed %q\nstdout: %s\nstderr: %s", p.name, found, stdout, stderr)
				}
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				if code != p.code || (code == 0 && stdout == "") || (code != 0 && !strings.HasPrefix(lines[len(lines)-1], "ackprobe: ")) {
					t.Errorf("%s: exit %d, want %d (the path was not taken)\nstdout: %s\nstderr: %s", p.name, code, p.code, stdout, stderr)
				}
			}
			// inspect --watch, in-process: refreshes until interrupted,
			// and keeps going when the server goes away.
			args, env := form.at(t, form.good)
			out, code := watchOnce(t, env, append([]string{"inspect", "--watch", "20ms"}, args...)...)
			if found := leaks(out, ss.secrets); len(found) > 0 {
				t.Errorf("inspect --watch: printed %q\n%s", found, out)
			}
			if code != 0 || !strings.Contains(out, "refresh 2") {
				t.Errorf("inspect --watch: exit %d\n%s", code, out)
			}
			// The canary: its JSON lines and stderr, /status and
			// /metrics after a round, and its exit on SIGTERM.
			cp := startBinaryEnv(t, env, append([]string{"canary", "--json", "-n", "2", "--interval", "100ms", "--listen", "127.0.0.1:0"}, args...)...)
			addr := servingAddr(t, cp.stderr.String)
			waitUntil(t, 30*time.Second, "a canary round", func() bool { code, _ := httpGet("http://" + addr + "/readyz"); return code == http.StatusOK })
			_, status := httpGet("http://" + addr + "/status")
			_, metrics := httpGet("http://" + addr + "/metrics")
			code, _ = cp.stop(t, syscall.SIGTERM, 30*time.Second)
			all := cp.stdout.String() + cp.stderr.String() + status + metrics
			if found := leaks(all, ss.secrets); len(found) > 0 {
				t.Errorf("canary: printed %q\n%s", found, all)
			}
			if code != 0 || !strings.Contains(status, `"ready": true`) || !strings.Contains(metrics, "ackprobe_rounds_total") {
				t.Errorf("canary: exit %d (the path was not taken)\nstatus: %s\nstderr: %s", code, status, cp.stderr.String())
			}
		})
	}
}

// TestNoSecretInBadInput: secrets given the wrong way, or next to bad
// input, are never repeated in the error line.
func TestNoSecretInBadInput(t *testing.T) {
	t.Parallel()
	binary(t)
	ss := startSecretServers(t)
	seed, _ := os.ReadFile(ss.seedFile)
	ctxDir := t.TempDir()
	badPrefix := writeFile(t, ctxDir, "bad.json", fmt.Sprintf(`{"url": "nats://probe:%s@127.0.0.1:4222", "inbox_prefix": "a.>"}`, passSecret))
	cases := []struct {
		name string
		env  []string
		args []string
	}{
		{"unparsable URL", nil, []string{"-s", "nats://" + tokenSecret + "@127.0.0.1:4222:x"}},
		{"unknown scheme", nil, []string{"-s", "https://probe:" + passSecret + "@example.com"}},
		{"port out of range", nil, []string{"-s", "nats://" + tokenSecret + "@127.0.0.1:99999"}},
		{"different credentials per URL", nil, []string{"-s", withUserinfo(ss.token, tokenSecret) + "," + withUserinfo(ss.user, "probe:"+passSecret)}},
		{"no such host", nil, []string{"-s", tokenSecret + "@nosuchhost.invalid:4222"}},
		{"seed given as --nkey", nil, []string{"-s", ss.nkey, "--nkey", string(seed)}},
		{"seed given as NATS_NKEY", []string{"NATS_NKEY=" + string(seed)}, []string{"-s", ss.nkey}},
		{"creds contents given as --creds", nil, []string{"-s", ss.creds, "--creds", ss.credsText}},
		{"missing context file", []string{"NATS_TOKEN=" + tokenSecret}, []string{"--context", filepath.Join(ctxDir, "missing.json")}},
		{"context with a bad inbox prefix", nil, []string{"--context", badPrefix}},
		{"bad --inbox-prefix", []string{"NATS_URL=" + withUserinfo(ss.user, "probe:"+passSecret)}, []string{"--inbox-prefix", "a.*"}},
		{"--context with --no-context", []string{"NATS_PASSWORD=" + passSecret}, []string{"--context", "x", "--no-context"}},
		{"--tlscert without --tlskey", []string{"NATS_TOKEN=" + tokenSecret}, []string{"-s", ss.token, "--tlscert", ss.seedFile}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, cmd := range [][]string{{"compare", "--json"}, {"inspect"}} {
				p := start(t, c.env, append(cmd, c.args...)...)
				code := p.wait(t, 30*time.Second)
				out := p.stdout.String() + p.stderr.String()
				if found := leaks(out, ss.secrets); len(found) > 0 {
					t.Errorf("%v: printed %q: %s", cmd, found, out)
				}
				if code != exitCannotRun {
					t.Errorf("%v: exit %d: %s", cmd, code, out)
				}
				oneErrorLine(t, p.stderr.String(), "")
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watchOnce runs a command in-process until its output shows a second
// refresh, then interrupts it as Ctrl-C would, and returns everything it
// printed with its exit code.
func watchOnce(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, streams{stdout: &out, stderr: &out, getenv: func(k string) string { return vars[k] }})
	}()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), "refresh 2") {
		select {
		case code := <-done:
			return out.String(), code
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no second refresh: %s", out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	return out.String(), <-done
}

// TestExplainScrubs: an error text from a library that quotes what it was
// given (url.Error quotes the URL) loses the secrets of the connection
// flags in the line printed.
func TestExplainScrubs(t *testing.T) {
	t.Parallel()
	o := connect.Options{Servers: withUserinfo("nats://h:4222", tokenSecret), Password: passSecret}
	err := &secretsError{
		err:   fmt.Errorf("dial: %w", &url.Error{Op: "parse", URL: o.Servers + "?p=" + passSecret, Err: errors.New("bad")}),
		scrub: o.Scrub,
	}
	line := explain(err)
	if found := leaks(line+err.Error(), []string{tokenSecret, passSecret}); len(found) > 0 || !strings.Contains(line, "nats://***@h:4222") {
		t.Errorf("explain = %q (leaks %q)", line, found)
	}
}

// TestConnectionFlags parses --inbox-prefix, --js-api-prefix and
// --no-context, and refuses bad values before dialing.
func TestConnectionFlags(t *testing.T) {
	t.Parallel()
	r, code, stderr := parse("compare", "-s", "nats://a:4222", "--inbox-prefix", "_PROBE_INBOX", "--js-api-prefix", "JS.HUB.API", "--no-context")
	if code != 0 || r.g.conn.InboxPrefix != "_PROBE_INBOX" || r.g.conn.APIPrefix != "JS.HUB.API" || !r.g.conn.NoContext {
		t.Errorf("exit %d %s %+v", code, stderr, r)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--inbox-prefix", "_X.>"}, "--inbox-prefix"},
		{[]string{"--inbox-prefix", "_X."}, "must not end with a dot"},
		{[]string{"--inbox-prefix", "a..b"}, "--inbox-prefix"},
		{[]string{"--js-api-prefix", "JS.*.API"}, "--js-api-prefix"},
		{[]string{"--context", "prod", "--no-context"}, "contradict"},
	} {
		_, code, stderr := parse(append([]string{"compare", "-s", "nats://a:4222"}, c.args...)...)
		if code != exitCannotRun || !strings.Contains(stderr, c.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d %q", c.args, code, stderr)
		}
	}
	// NATS_CONTEXT with --no-context is not a contradiction: the flag
	// wins over the environment.
	var got *probeRun
	code = runWith(context.Background(), []string{"compare", "--no-context"}, streams{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{},
		getenv: func(k string) string { return map[string]string{"NATS_CONTEXT": "prod"}[k] }}, func(r *probeRun) error { got = r; return nil })
	if code != 0 || got == nil || got.g.conn.ContextName != "" || !got.g.conn.UsesEmbedded() {
		t.Errorf("NATS_CONTEXT with --no-context: exit %d %+v", code, got)
	}
}

// TestHintsSayWhatIsTheMatter runs the cases whose explanation used to
// point elsewhere against real servers.
func TestHintsSayWhatIsTheMatter(t *testing.T) {
	t.Parallel()
	binary(t)

	t.Run("server max_mem on a single server", func(t *testing.T) {
		t.Parallel()
		s := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_mem: 1MB, max_file: 1MB }
`)
		for _, storage := range []string{"memory", "file"} {
			p := start(t, nil, "compare", "-s", s.ClientURL(), "-n", "100000", "--storage", storage)
			if code := p.wait(t, time.Minute); code != exitCannotRun {
				t.Errorf("%s: exit %d %s", storage, code, p.stderr.String())
			}
			line := p.stderr.String()
			oneErrorLine(t, line, "max_")
			if strings.Contains(line, "fewer JetStream servers") || strings.Contains(line, "replicas") {
				t.Errorf("%s: %q blames replicas on a single server", storage, line)
			}
		}
	})

	t.Run("TLS first", func(t *testing.T) {
		t.Parallel()
		dir := tlsFiles(t)
		f := func(n string) string { return filepath.Join(dir, n) }
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), Timeout: 2})
		if err != nil {
			t.Fatal(err)
		}
		o := natstest.Options(t)
		o.TLSConfig, o.TLS, o.TLSTimeout, o.TLSHandshakeFirst = tc, true, 2, true
		first := natstest.RunServerWith(t, o)
		plain := natstest.RunServer(t)
		for _, c := range []struct {
			args []string
			msg  string
		}{
			{[]string{"-s", first.ClientURL(), "--tlsca", f("ca.pem"), "--timeout", "1s"}, "it expects TLS first, try --tlsfirst"},
			{[]string{"-s", plain.ClientURL(), "--tlsfirst", "--tlsca", f("ca.pem")}, "drop --tlsfirst"},
		} {
			p := start(t, nil, append([]string{"inspect"}, c.args...)...)
			if code := p.wait(t, time.Minute); code != exitCannotRun {
				t.Errorf("exit %d", code)
			}
			oneErrorLine(t, p.stderr.String(), c.msg)
		}
		probeOK(t, nil, "-s", first.ClientURL(), "--tlsfirst", "--tlsca", f("ca.pem"))
	})

	t.Run("server gone during inspect --watch", func(t *testing.T) {
		t.Parallel()
		s := natstest.RunServer(t)
		var out syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"inspect", "-s", s.ClientURL(), "--watch", "20ms", "--timeout", "200ms"},
				streams{stdout: &out, stderr: &out, getenv: func(string) string { return "" }})
		}()
		waitFor(t, &out, "refresh 1")
		s.Shutdown()
		waitFor(t, &out, "failed: lost the connection to "+s.ClientURL())
		cancel()
		<-done
		if strings.Contains(out.String(), "did not answer in time") {
			t.Errorf("a dead server explained as a slow one:\n%s", out.String())
		}
	})
}

// waitFor waits until out shows want.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestExplainByTopology: the limit hints distinguish a single server from
// a cluster, and a plan that does not fit the account is its own line.
func TestExplainByTopology(t *testing.T) {
	t.Parallel()
	insufficient := &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}
	for _, c := range []struct {
		cluster, want, not string
	}{
		{"", "max_mem or max_file, shared by every account", "replicas"},
		{"c1", "fewer JetStream servers than --replicas", "shared by every account"},
	} {
		line := explain(&connect.StateError{Err: fmt.Errorf("publish: %w", insufficient), Status: nats.CONNECTED, Cluster: c.cluster})
		if !strings.Contains(line, c.want) || strings.Contains(line, c.not) {
			t.Errorf("cluster %q: %q", c.cluster, line)
		}
	}
	_, err := limits.Decide(&jetstream.AccountInfo{Tier: jetstream.Tier{Limits: jetstream.AccountLimits{MaxAckPending: 10, MaxMemory: -1, MaxStore: -1}}},
		limits.Plan{MaxAckPending: 100})
	if line := explain(fmt.Errorf("setup: %w", err)); line != err.Error() || !strings.Contains(line, "max_ack_pending of 10") {
		t.Errorf("limits: %q", line)
	}
}
