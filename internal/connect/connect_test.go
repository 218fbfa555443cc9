package connect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/embedded"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

func TestRedact(t *testing.T) {
	got := Redact("nats://u:p@a:4222, tls://tok@b:4222,c:4222")
	if got != "nats://***@a:4222,tls://***@b:4222,c:4222" {
		t.Errorf("Redact = %q", got)
	}
}

func TestConfigDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if got := ConfigDir(env(map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"})); got != "/x" {
		t.Errorf("XDG_CONFIG_HOME: %q", got)
	}
	if got := ConfigDir(env(map[string]string{"HOME": "/h"})); got != filepath.Join("/h", ".config") {
		t.Errorf("HOME: %q", got)
	}
	if got := ConfigDir(env(nil)); got != "" {
		t.Errorf("nothing: %q", got)
	}
}

func TestUsesTLS(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want bool
	}{
		{Options{Servers: "nats://a:4222"}, false},
		{Options{Servers: "nats://a:4222,tls://b:4222"}, true},
		{Options{Servers: "a:4222", TLSCA: "ca.pem"}, true},
		{Options{Servers: "a:4222", TLSFirst: true}, true},
	} {
		if got := c.o.UsesTLS(); got != c.want {
			t.Errorf("%+v: UsesTLS = %v", c.o, got)
		}
	}
}

// TestEmbedded starts the embedded server through Connect, says so once,
// and removes its store on Close.
func TestEmbedded(t *testing.T) {
	var notice strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Connect(ctx, Options{Notice: &notice, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.Embedded == nil || !strings.HasPrefix(c.URL, "nats://127.0.0.1:") {
		t.Fatalf("not embedded: %+v", c)
	}
	if strings.Count(notice.String(), "\n") != 1 || !strings.Contains(notice.String(), embedded.Version()) {
		t.Errorf("notice %q", notice.String())
	}
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		t.Errorf("JetStream: %v", err)
	}
	dir := c.Embedded.StoreDir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store %s left behind: %v", dir, err)
	}
}

func TestUnknownContext(t *testing.T) {
	o := Options{Context: "missing"}
	err := o.ApplyContext(t.TempDir())
	var ce *ContextError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `"missing" does not exist`) {
		t.Errorf("ApplyContext: %v", err)
	}
}

// TestServerInfoRedactsToken connects with a token in the URL: nats.go's
// own ConnectedUrlRedacted hides only passwords, so the token must never
// reach nats.go's URL at all.
func TestServerInfoRedactsToken(t *testing.T) {
	const token = "s3cr3t-t0ken"
	opts := natstest.Options(t)
	opts.Authorization = token
	s := natstest.RunServerWith(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := strings.Replace(s.ClientURL(), "nats://", "nats://"+token+"@", 1)
	c, err := Connect(ctx, Options{Servers: url, Timeout: 2 * time.Second, JSDomain: "", ContextName: "ctx1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	si := c.ServerInfo()
	if si.URL != s.ClientURL() {
		t.Errorf("URL %q, want %q", si.URL, s.ClientURL())
	}
	for _, u := range []string{c.NC.ConnectedUrl(), c.NC.ConnectedUrlRedacted(), c.URL} {
		if strings.Contains(u, token) || strings.Contains(u, "@") {
			t.Errorf("nats.go holds the credentials in its URL: %q", u)
		}
	}
	if si.Embedded || si.Version == "" || si.Context != "ctx1" {
		t.Errorf("server info %+v", si)
	}
}
