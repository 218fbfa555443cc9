package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Endpoints the canary serves.
const (
	PathMetrics = "/metrics"
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathStatus  = "/status"
)

// Handler serves the canary's endpoints:
//   - /metrics: the registry, in the Prometheus text format, OpenMetrics or
//     protobuf (with native histograms) as the scraper asks (promhttp);
//   - /healthz: 200 while the process lives, whatever the cluster does
//     (liveness: a cluster problem must never restart the canary);
//   - /readyz: 200 once a round reached the server, 503 before (it stays
//     200 after, so an outage never takes the canary out of its Service);
//   - /status: the History's JSON document.
func (c *Canary) Handler() http.Handler {
	reg := c.metrics.Registry()
	mux := http.NewServeMux()
	mux.Handle("GET "+PathMetrics, promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		Registry:            reg,
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
	})))
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+PathReady, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !c.history.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: no round has reached the server yet")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(c.history.Status(time.Now()))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "ackprobe canary %s\n\n%s  Prometheus metrics\n%s  JSON: recent rounds and the overall status\n%s  liveness: 200 while the process lives\n%s   readiness: 200 once a round reached the server\n",
			c.cfg.Probe.ID, PathMetrics, PathStatus, PathHealth, PathReady)
	})
	return mux
}

// Server serves a Handler on a listener, with time limits on every
// connection.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen opens addr (host:port; port 0 picks a free one) for the canary's
// endpoints. Errors: the address is malformed or cannot be listened on.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w (use host:port, or :port for every interface)", addr, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve serves h on ln until Shutdown.
func Serve(ln net.Listener, h http.Handler) *Server {
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s
}

// Addr is the address served, with the port picked when it was 0.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops serving, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
