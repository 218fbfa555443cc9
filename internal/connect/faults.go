package connect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ackprobe/ackprobe/internal/faults"
)

// ErrFaultsNeedPlain refuses fault injection through TLS, where the proxy
// cannot see the protocol's frames.
var ErrFaultsNeedPlain = errors.New("--drop-acks and --cut-after need a plain (non-TLS) connection: the fault proxy cannot see ack frames inside TLS")

// throughProxy starts the fault proxy in front of the first server of urls
// and returns the URL to dial instead, with options that keep the client on
// the proxy when it reconnects.
func throughProxy(c *Conn, o Options, urls string) (string, []nats.Option, error) {
	if o.UsesTLS() {
		return "", nil, ErrFaultsNeedPlain
	}
	first := strings.TrimSpace(strings.Split(urls, ",")[0])
	if !strings.Contains(first, "://") {
		first = "nats://" + first
	}
	u, err := url.Parse(first)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("fault proxy: cannot read server URL %q", Redact(first))
	}
	if u.Scheme != "nats" {
		return "", nil, fmt.Errorf("fault proxy: only nats:// servers can be proxied, not %s://", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":4222"
	}
	cfg := *o.Faults
	cfg.Upstream = host
	p, err := faults.Start(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("fault proxy: %w", err)
	}
	c.Proxy = p
	target := p.URL()
	if u.User != nil {
		// Keep credentials given in the URL.
		pu, _ := url.Parse(target)
		pu.User = u.User
		target = pu.String()
	}
	// The server advertises its cluster's other URLs; following them would
	// bypass the proxy.
	return target, []nats.Option{nats.IgnoreDiscoveredServers()}, nil
}
