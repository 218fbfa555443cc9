package canary

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ackprobe/ackprobe/internal/probe"
)

// offline is a canary whose Dial always fails: its endpoints serve what
// the tests record by hand.
func offline(t *testing.T) *Canary {
	t.Helper()
	cfg := probe.DefaultConfig(modes...)
	cfg.Count = 10
	c, err := New(Config{Probe: cfg, Interval: time.Second,
		Dial: func(context.Context) (*Conn, error) { return nil, errors.New("offline") }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func get(t *testing.T, srv *httptest.Server, path, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	c := offline(t)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()

	if resp, _ := get(t, srv, PathHealth, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	if resp, body := get(t, srv, PathReady, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz before any round: %d %s", resp.StatusCode, body)
	}
	o := outcome(1, nil, &DialError{Err: errors.New("refused")})
	c.Metrics().Record(o)
	c.History().Add(o)
	if resp, _ := get(t, srv, PathReady, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz after a round that did not reach the server: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv, PathHealth, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz while the server is unreachable: %d (liveness must not depend on the cluster)", resp.StatusCode)
	}
	o = outcome(2, result(false, "n1"), nil)
	c.Metrics().Record(o)
	c.History().Add(o)
	if resp, _ := get(t, srv, PathReady, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after a round that reached the server: %d", resp.StatusCode)
	}

	resp, body := get(t, srv, PathStatus, "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/status: %v %s: %s", err, resp.Header.Get("Content-Type"), body)
	}
	if st.Status != StatusDegraded || len(st.Rounds) != 2 || !st.Ready || !st.Up || st.Canary.ID == "" {
		t.Errorf("/status: %+v", st)
	}

	// The Prometheus text format, parsed by the Prometheus library.
	resp, body = get(t, srv, PathMetrics, "")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics default content type %q", ct)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics text: %v", err)
	}
	for _, name := range []string{MetricAcks, MetricAckDuration, MetricStatus, MetricBuildInfo, "go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("/metrics text has no %s", name)
		}
	}
	if v := fams[MetricAcks].GetMetric()[0].GetCounter().GetValue(); v != 10 {
		t.Errorf("%s = %g", MetricAcks, v)
	}

	// OpenMetrics, when the scraper asks for it.
	resp, body = get(t, srv, PathMetrics, "application/openmetrics-text;version=1.0.0")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("/metrics OpenMetrics content type %q", ct)
	}
	if !strings.HasSuffix(body, "# EOF\n") || !strings.Contains(body, "# TYPE ackprobe_acks counter") {
		t.Errorf("/metrics OpenMetrics body:\n%.500s", body)
	}

	// Protobuf, as Prometheus asks for native histograms.
	resp, body = get(t, srv, PathMetrics, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("/metrics protobuf: content type %q", resp.Header.Get("Content-Type"))
	}
	dec := expfmt.NewDecoder(strings.NewReader(body), format)
	native := false
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if mf.GetName() == MetricRoundDuration {
			h := mf.GetMetric()[0].GetHistogram()
			native = h.Schema != nil && len(h.GetPositiveSpan()) > 0
		}
	}
	if !native {
		t.Errorf("%s: no native buckets in the protobuf exposition", MetricRoundDuration)
	}
}
