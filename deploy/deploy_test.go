// Package deploy holds what an operator deploys next to a NATS cluster:
// Kubernetes manifests, the Helm chart, Prometheus rules and the Grafana
// dashboard. Its tests check them with the real tools (promtool, helm)
// and against the metrics the canary really exports.
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ackprobe/ackprobe/internal/canary"
	"github.com/ackprobe/ackprobe/internal/doc"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/tooltest"
)

const (
	rulesFile     = "prometheus/ackprobe-rules.yml"
	rulesTest     = "prometheus/ackprobe-rules.test.yml"
	dashboardFile = "grafana/ackprobe.json"
	chartDir      = "helm/ackprobe"
)

func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestPromtoolRules(t *testing.T) {
	t.Parallel()
	promtool := tooltest.Path(t, "promtool", "apt-get install -y prometheus")
	out := runTool(t, ".", promtool, "check", "rules", rulesFile)
	t.Log(strings.TrimSpace(out))
	out = runTool(t, "prometheus", promtool, "test", "rules", filepath.Base(rulesTest))
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %s", out)
	}
}

// exported returns every series name the canary exports (histograms with
// their _bucket, _sum and _count, and the native histogram's own name),
// read from its registry after a hand-built round.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := canary.NewMetrics(canary.BuildInfo{Version: "v"}, []probe.Mode{probe.Standard, probe.Confirmed}, time.Second)
	m.WatchStatus(canary.NewHistory(10, 3, time.Minute, canary.Info{}))
	m.Record(canary.Outcome{Started: time.Now(), Ended: time.Now(), Reached: true, Result: &probe.Result{
		Server: doc.ServerInfo{Name: "n1"}, Stream: "S", Consumer: "C",
		Findings: []probe.Finding{{Code: probe.CodeStaleRead, Severity: probe.SeverityInfo}}}})
	// A round of a per-node canary, led by n1.
	m.Leading("n1")
	m.AckDuration(probe.Confirmed, time.Millisecond)
	m.Leading("")
	m.Record(canary.Outcome{Started: time.Now(), Ended: time.Now(), Reached: true, Result: &probe.Result{
		Nodes: []probe.NodeResult{{Server: "n1", LedWholeRound: true}}}})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"up": true}
	for _, mf := range mfs {
		n := mf.GetName()
		names[n] = true
		if mf.GetType().String() == "HISTOGRAM" {
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		}
	}
	return names
}

// recorded returns the names the rules file records.
func recorded(t *testing.T) map[string]bool {
	t.Helper()
	var rf struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

var metricRE = regexp.MustCompile(`\b(ackprobe[_:][a-zA-Z0-9_:]*|up)\b`)

// checkNames fails for every ackprobe metric an expression names that
// the canary does not export and no rule records.
func checkNames(t *testing.T, where, expr string, known map[string]bool) int {
	t.Helper()
	n := 0
	for _, name := range metricRE.FindAllString(expr, -1) {
		n++
		if !known[name] {
			t.Errorf("%s queries %s, which the canary does not export: %s", where, name, expr)
		}
	}
	return n
}

func TestRulesQueryExportedMetrics(t *testing.T) {
	t.Parallel()
	known := exported(t)
	for k := range recorded(t) {
		known[k] = true
	}
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Record, Alert, Expr string
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			checkNames(t, "rule "+r.Record+r.Alert, r.Expr, known)
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	// The alerts: confirmed-ack p99, rounds failing, redeliveries
	// after confirmed acks, canary down.
	for _, want := range []string{"AckprobeConfirmedAckSlow", "AckprobeRoundsFailing", "AckprobeRedeliveredAfterConfirmedAck", "AckprobeCanaryDown", "AckprobeCanaryAbsent"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// TestDashboard parses the Grafana dashboard and checks the metric names it
// queries and the panels an operator expects.
func TestDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	}
	var dash struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int      `json:"id"`
			Type    string   `json:"type"`
			Title   string   `json:"title"`
			Targets []target `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion < 30 {
		t.Errorf("dashboard uid %q title %q schemaVersion %d", dash.UID, dash.Title, dash.SchemaVersion)
	}
	var vars []string
	for _, v := range dash.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, want := range []string{"datasource", "job", "instance"} {
		if !slices.Contains(vars, want) {
			t.Errorf("no dashboard variable %s", want)
		}
	}
	known := exported(t)
	for k := range recorded(t) {
		known[k] = true
	}
	ids := map[int]bool{}
	queried := map[string]bool{}
	heatmaps := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.RefID == "" || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			if checkNames(t, "panel "+p.Title, tg.Expr, known) == 0 {
				t.Errorf("panel %q queries no ackprobe metric: %s", p.Title, tg.Expr)
			}
			for _, name := range metricRE.FindAllString(tg.Expr, -1) {
				queried[name] = true
			}
			if p.Type == "heatmap" {
				for _, mode := range []string{"standard", "confirmed"} {
					if strings.Contains(tg.Expr, `mode="`+mode+`"`) && strings.Contains(tg.Expr, "ack_duration") {
						heatmaps[mode] = true
					}
				}
			}
		}
	}
	for _, mode := range []string{"standard", "confirmed"} {
		if !heatmaps[mode] {
			t.Errorf("no latency heatmap of %s acks", mode)
		}
	}
	for _, want := range []string{"ackprobe_ack_visibility_seconds_bucket", "ackprobe_findings_total", "ackprobe_rounds_total",
		"ackprobe_redeliveries_total", "ackprobe_server_ack_time_seconds_bucket", "ackprobe_status"} {
		if !queried[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
}

// TestChartCopies: the chart ships the rules and the dashboard as files
// (Helm reads nothing outside the chart); they must be the same.
func TestChartCopies(t *testing.T) {
	t.Parallel()
	for _, f := range []string{rulesFile, dashboardFile} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		copyPath := filepath.Join(chartDir, "files", filepath.Base(f))
		got, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: cp deploy/%s deploy/%s", copyPath, f, f, copyPath)
		}
	}
}

var (
	flagsOnce sync.Once
	flagSet   map[string]bool
	flagsErr  error
)

// canaryFlags returns the long flags `ackprobe canary --help` lists, from a
// binary built for the purpose (removed at once).
func canaryFlags(t *testing.T) map[string]bool {
	t.Helper()
	if testing.Short() {
		t.Skip("builds ackprobe")
	}
	flagsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ackprobe-deploy-")
		if err != nil {
			flagsErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "ackprobe")
		if out, err := exec.Command("go", "build", "-o", bin, "../cmd/ackprobe").CombinedOutput(); err != nil {
			flagsErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		out, err := exec.Command(bin, "canary", "--help").CombinedOutput()
		if err != nil {
			flagsErr = fmt.Errorf("canary --help: %v\n%s", err, out)
			return
		}
		flagSet = map[string]bool{}
		for _, m := range regexp.MustCompile(`--([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
			flagSet[m[1]] = true
		}
	})
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return flagSet
}

// objects splits multi-document YAML into objects by kind.
func objects(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("YAML: %v", err)
		}
		if o == nil {
			continue
		}
		kind, _ := o["kind"].(string)
		if _, dup := out[kind]; dup {
			t.Fatalf("two objects of kind %s", kind)
		}
		out[kind] = o
	}
	return out
}

// get walks a decoded YAML object along a path of keys and list indexes.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels any) bool {
	s, _ := sel.(map[string]any)
	l, _ := labels.(map[string]any)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

// checkObjects checks what the canary's deployment needs, in the plain
// manifests and in the chart's output alike.
func checkObjects(t *testing.T, where string, objs map[string]map[string]any, flags map[string]bool) {
	t.Helper()
	dep := objs["Deployment"]
	if dep == nil {
		t.Fatalf("%s: no Deployment", where)
	}
	pod := get(dep, "spec", "template")
	podLabels := get(pod, "metadata", "labels")
	if !subset(get(dep, "spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("%s: the Deployment's selector does not select its pods", where)
	}
	c := get(pod, "spec", "containers", 0)
	args, _ := get(c, "args").([]any)
	if len(args) == 0 || args[0] != "canary" {
		t.Errorf("%s: args %v do not run the canary", where, args)
	}
	var timeout time.Duration = 5 * time.Second
	for _, a := range args[1:] {
		s := fmt.Sprint(a)
		name, value, _ := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if !strings.HasPrefix(s, "--") || !flags[name] {
			t.Errorf("%s: argument %q is not a flag of ackprobe canary", where, s)
		}
		if name == "timeout" {
			if d, err := time.ParseDuration(value); err == nil {
				timeout = d
			}
		}
		if name == "listen" && value != ":9464" {
			t.Errorf("%s: --listen %s, want :9464 (every interface of the pod)", where, value)
		}
	}
	if get(c, "ports", 0, "name") != "metrics" || get(c, "ports", 0, "containerPort") != 9464 {
		t.Errorf("%s: container ports %v", where, get(c, "ports"))
	}
	if get(c, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("%s: liveness probe %v, want /healthz only", where, get(c, "livenessProbe"))
	}
	if get(c, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Errorf("%s: readiness probe %v, want /readyz", where, get(c, "readinessProbe"))
	}
	if get(pod, "spec", "securityContext", "runAsNonRoot") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false ||
		get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("%s: not locked down: pod %v, container %v", where, get(pod, "spec", "securityContext"), get(c, "securityContext"))
	}
	if grace, _ := get(pod, "spec", "terminationGracePeriodSeconds").(int); time.Duration(grace)*time.Second < 3*timeout {
		t.Errorf("%s: terminationGracePeriodSeconds %d is shorter than three --timeout (%s)", where, grace, 3*timeout)
	}
	svc := objs["Service"]
	if svc == nil || !subset(get(svc, "spec", "selector"), podLabels) || get(svc, "spec", "ports", 0, "targetPort") != "metrics" {
		t.Errorf("%s: the Service does not reach the canary's metrics port: %v", where, get(svc, "spec"))
	}
	if sm := objs["ServiceMonitor"]; sm != nil {
		if !subset(get(sm, "spec", "selector", "matchLabels"), get(svc, "metadata", "labels")) ||
			get(sm, "spec", "endpoints", 0, "port") != "metrics" || get(sm, "spec", "endpoints", 0, "path") != "/metrics" {
			t.Errorf("%s: the ServiceMonitor does not select the Service's metrics port: %v", where, get(sm, "spec"))
		}
	}
	if pm := objs["PodMonitor"]; pm != nil {
		if !subset(get(pm, "spec", "selector", "matchLabels"), podLabels) || get(pm, "spec", "podMetricsEndpoints", 0, "port") != "metrics" {
			t.Errorf("%s: the PodMonitor does not select the canary's metrics port: %v", where, get(pm, "spec"))
		}
	}
}

func TestPlainManifests(t *testing.T) {
	t.Parallel()
	flags := canaryFlags(t)
	var all []byte
	for _, f := range []string{"deployment.yaml", "service.yaml", "servicemonitor.yaml", "podmonitor.yaml"} {
		b, err := os.ReadFile(filepath.Join("kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, b...), "\n---\n"...)
	}
	checkObjects(t, "deploy/kubernetes", objects(t, all), flags)
	var k struct {
		Resources []string `yaml:"resources"`
	}
	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization: %v", err)
		}
	}
}

func TestHelmChart(t *testing.T) {
	t.Parallel()
	helm := tooltest.Path(t, "helm", "go install helm.sh/helm/v3/cmd/helm@v3.22.0")
	flags := canaryFlags(t)
	runTool(t, ".", helm, "lint", "--strict", chartDir)

	// The defaults: a Deployment and a Service.
	objs := objects(t, []byte(runTool(t, ".", helm, "template", "canary", chartDir)))
	checkObjects(t, "helm template (defaults)", objs, flags)
	if len(objs) != 2 {
		t.Errorf("defaults render %d kinds, want Deployment and Service", len(objs))
	}

	// Everything on: credentials, context, TLS, monitors, rules, dashboard.
	out := runTool(t, ".", helm, "template", "canary", chartDir,
		"--set", "nats.url=nats://nats.nats.svc:4222",
		"--set", "nats.credentialsSecret.name=nats-creds",
		"--set", "nats.context.secretName=nats-context",
		"--set", "nats.tls.secretName=nats-tls,nats.tls.cert=tls.crt,nats.tls.key=tls.key",
		"--set", "serviceMonitor.enabled=true,podMonitor.enabled=true,prometheusRule.enabled=true,grafanaDashboard.enabled=true",
		"--set", "canary.interval=30s,canary.timeout=3s,canary.replicas=3,canary.storage=file",
		"--set", "canary.extraArgs={--max-ack-latency=50ms}")
	objs = objects(t, []byte(out))
	checkObjects(t, "helm template (everything)", objs, flags)
	args := fmt.Sprint(get(objs["Deployment"], "spec", "template", "spec", "containers", 0, "args"))
	for _, want := range []string{"--server=nats://nats.nats.svc:4222", "--creds=/etc/ackprobe/creds/nats.creds",
		"--context=/etc/ackprobe/context/context.json", "--tlsca=/etc/ackprobe/tls/ca.crt", "--tlscert=/etc/ackprobe/tls/tls.crt",
		"--interval=30s", "--replicas=3", "--storage=file", "--max-ack-latency=50ms"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %s lack %s", args, want)
		}
	}
	// The PrometheusRule holds exactly the rules file.
	var want map[string]any
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got := objs["PrometheusRule"]["spec"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the PrometheusRule's spec differs from %s", rulesFile)
	}
	dash, _ := get(objs["ConfigMap"], "data", "ackprobe.json").(string)
	if !json.Valid([]byte(dash)) || !strings.Contains(dash, "ackprobe-canary") {
		t.Errorf("the dashboard ConfigMap does not hold the dashboard")
	}

	// Without a URL or a context the canary would probe an embedded server
	// of its own: the chart refuses.
	cmd := exec.Command(helm, "template", "canary", chartDir, "--set", "nats.url=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set nats.url") {
		t.Errorf("helm template without a URL: %v\n%s", err, out)
	}
}
