package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
	"github.com/ackprobe/ackprobe/internal/tooltest"
)

// promServer is a real Prometheus server run by a test: its own config and
// data directory, loopback only, stopped and removed when the test ends.
type promServer struct {
	url string
	cmd *exec.Cmd
}

// startPrometheus runs Debian's prometheus scraping target (host:port)
// every 200ms, with the canary's alerting rules loaded; extra flags are
// passed on (feature flags).
func startPrometheus(t *testing.T, bin, target string, extra ...string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs("../../deploy/prometheus/ackprobe-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
  evaluation_interval: 200ms
rule_files:
  - %q
scrape_configs:
  - job_name: ackprobe
    static_configs:
      - targets: [%q]
`, rules, target)
	confPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// A free port can be taken between the probe and prometheus' listen:
	// try again on another.
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		args := append([]string{"--config.file=" + confPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--log.level=warn"}, extra...)
		cmd := exec.Command(bin, args...)
		var logs canaryBuffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		p := &promServer{url: "http://" + addr, cmd: cmd}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			if code, _ := httpGet(p.url + "/-/ready"); code == http.StatusOK {
				t.Cleanup(stop)
				return p
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		t.Logf("prometheus on %s did not become ready:\n%s", addr, logs.String())
	}
	t.Fatal("prometheus did not start")
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sample is one series of an instant query's result: its value, or the
// count of a native histogram.
type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant PromQL query through Prometheus's HTTP API.
func (p *promServer) query(t *testing.T, q string) []sample {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
				// Histogram is a native histogram sample: [time, {count,
				// sum, buckets}].
				Histogram [2]any `json:"histogram"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if doc.Status != "success" {
		t.Fatalf("query %s: %s", q, doc.Error)
	}
	var out []sample
	for _, r := range doc.Data.Result {
		s, _ := r.Value[1].(string)
		if h, ok := r.Histogram[1].(map[string]any); ok {
			s, _ = h["count"].(string) // a native histogram: its count
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v", q, r.Value)
		}
		out = append(out, sample{labels: r.Metric, value: v})
	}
	return out
}

// scalar is the value of a query that returns one series; ok is false when
// it returns none.
func (p *promServer) scalar(t *testing.T, q string) (float64, bool) {
	t.Helper()
	res := p.query(t, q)
	if len(res) == 0 {
		return 0, false
	}
	if len(res) > 1 {
		t.Fatalf("query %s: %d series", q, len(res))
	}
	return res[0].value, true
}

// waitQuery waits until q returns one series whose value passes cond, and
// returns the value.
func (p *promServer) waitQuery(t *testing.T, limit time.Duration, q string, cond func(float64) bool) float64 {
	t.Helper()
	var v float64
	var ok bool
	deadline := time.Now().Add(limit)
	for {
		v, ok = p.scalar(t, q)
		if ok && cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting on %s (last: %v, %v)", limit, q, v, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCanaryPrometheus is the canary's end-to-end test: the built binary
// against a separate nats-server process, scraped by two real Prometheus
// servers (one ingesting classic buckets, one native histograms), queried
// through Prometheus's HTTP API while the nats-server is stopped and
// started again, then stopped with SIGTERM.
func TestCanaryPrometheus(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs nats-server, the canary and two Prometheus servers")
	}
	promBin := tooltest.Path(t, "prometheus", "apt-get install -y prometheus")
	srv := natstest.RunServerProcess(t)
	const timeout = time.Second
	c := startBinary(t, "canary", "-s", srv.URL, "--interval", "200ms", "--listen", "127.0.0.1:0", "-n", "5",
		"--timeout", timeout.String(), "--json")
	target := servingAddr(t, c.stderr.String)
	classic := startPrometheus(t, promBin, target)
	native := startPrometheus(t, promBin, target, "--enable-feature=native-histograms")

	// Acks counted per mode.
	for _, mode := range []string{"standard", "confirmed"} {
		classic.waitQuery(t, 30*time.Second, fmt.Sprintf(`sum(ackprobe_acks_total{mode=%q})`, mode), func(v float64) bool { return v >= 50 })
	}
	classic.waitQuery(t, 10*time.Second, `ackprobe_up`, func(v float64) bool { return v == 1 })

	// The p99 of confirmed acks, from classic buckets and from native
	// histograms: a confirmed ack to a local server takes tens of
	// microseconds to milliseconds, never more than the request timeout.
	plausible := func(v float64) bool { return v > 0 && v < timeout.Seconds() }
	p99 := classic.waitQuery(t, 30*time.Second,
		`histogram_quantile(0.99, sum by (le) (rate(ackprobe_ack_duration_seconds_bucket{mode="confirmed"}[5s])))`, plausible)
	p99n := native.waitQuery(t, 30*time.Second,
		`histogram_quantile(0.99, sum(rate(ackprobe_ack_duration_seconds{mode="confirmed"}[5s])))`, plausible)
	rec := classic.waitQuery(t, 30*time.Second, `ackprobe:ack_duration_seconds:p99_5m{mode="confirmed"}`, plausible)
	t.Logf("confirmed ack p99: %.6fs (classic buckets), %.6fs (native histogram), %.6fs (recording rule)", p99, p99n, rec)
	if _, ok := native.scalar(t, `sum(ackprobe_ack_duration_seconds_count{mode="confirmed"})`); ok {
		t.Log("the native Prometheus also kept classic series")
	}

	// Stop the server: rounds error, ackprobe_up drops; start it again:
	// ok rounds resume, in the same canary process.
	okBefore, _ := classic.scalar(t, `ackprobe_rounds_total{result="ok"}`)
	errBefore, _ := classic.scalar(t, `ackprobe_rounds_total{result="error"}`)
	srv.Stop()
	stopped := time.Now()
	classic.waitQuery(t, 30*time.Second, `ackprobe_rounds_total{result="error"}`, func(v float64) bool { return v >= errBefore+2 })
	classic.waitQuery(t, 10*time.Second, `ackprobe_up`, func(v float64) bool { return v == 0 })
	classic.waitQuery(t, 10*time.Second, `ackprobe_status{status="failing"}`, func(v float64) bool { return v == 1 })
	if code, _ := httpGet("http://" + target + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while the server is down: %d", code)
	}
	if code, _ := httpGet("http://" + target + "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz while the server is down: %d (readiness stays once reached)", code)
	}
	srv.Start()
	t.Logf("nats-server was down for %s", time.Since(stopped).Round(time.Millisecond))
	okAtRestart, _ := classic.scalar(t, `ackprobe_rounds_total{result="ok"}`)
	classic.waitQuery(t, 60*time.Second, `ackprobe_rounds_total{result="ok"}`, func(v float64) bool { return v >= okAtRestart+3 })
	classic.waitQuery(t, 10*time.Second, `ackprobe_up`, func(v float64) bool { return v == 1 })
	okAfter, _ := classic.scalar(t, `ackprobe_rounds_total{result="ok"}`)
	errAfter, _ := classic.scalar(t, `ackprobe_rounds_total{result="error"}`)
	t.Logf("rounds ok %g → %g, error %g → %g", okBefore, okAfter, errBefore, errAfter)
	if v, _ := classic.scalar(t, `sum(resets(ackprobe_rounds_total[1m])) + sum(changes(process_start_time_seconds[1m]))`); v != 0 {
		t.Errorf("the canary restarted: counter resets and start time changes = %g", v)
	}
	if v, ok := classic.scalar(t, `ackprobe_rounds_total{result="failed"}`); !ok || v != 0 {
		t.Errorf("failed rounds (a check failed, not an outage): %g", v)
	}

	// The rules evaluate without error on both kinds of ingestion.
	for _, p := range []*promServer{classic, native} {
		var doc struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name      string `json:"name"`
						Health    string `json:"health"`
						LastError string `json:"lastError"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		_, body := httpGet(p.url + "/api/v1/rules")
		if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Data.Groups) != 1 {
			t.Fatalf("rules: %v %s", err, body)
		}
		for _, r := range doc.Data.Groups[0].Rules {
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}

	// Every query of the Grafana dashboard runs on real data, on both kinds
	// of ingestion; the latency and ack panels show something (but the
	// --per-node panel, which this canary on one server does not feed).
	for _, q := range dashboardQueries(t) {
		for _, p := range []*promServer{classic, native} {
			res := p.query(t, q)
			if len(res) == 0 && (strings.Contains(q, "ack_duration") || strings.Contains(q, "acks_total")) && !strings.Contains(q, "ackprobe_node_") {
				t.Errorf("dashboard query returned nothing on %s: %s", p.url, q)
			}
		}
	}

	// SIGTERM: exit 0 within three --timeout, nothing of the canary's left.
	code, took := c.stop(t, syscall.SIGTERM, 3*timeout+2*time.Second)
	if code != exitOK || took > 3*timeout {
		t.Errorf("exit %d after %s, want 0 within %s: %s", code, took, 3*timeout, c.stderr.String())
	}
	_, js := natstest.Connect(t, srv.URL)
	if left := streamNames(t, js); len(left) > 0 {
		t.Errorf("left on the server: %v", left)
	}
	lines := strings.Split(strings.TrimSpace(c.stdout.String()), "\n")
	for i, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("stdout line %d is not one JSON document: %s", i+1, l)
		}
	}
	t.Logf("%d rounds, one JSON document each", len(lines))
}

// dashboardQueries returns the PromQL of every panel of the Grafana
// dashboard, with its variables replaced as Grafana would: all jobs and
// canaries, and a rate interval fit for 200ms scrapes.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/ackprobe.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("$job", ".*", "$instance", ".*", "$__rate_interval", "5s")
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, r.Replace(tg.Expr))
		}
	}
	if len(out) < 10 {
		t.Fatalf("the dashboard has %d queries", len(out))
	}
	return out
}
