package connect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

func TestSplitUserInfo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, clean, user string }{
		{"nats://a:4222", "nats://a:4222", ""},
		{"nats://tok@a:4222, tok@b:4222", "nats://a:4222,nats://b:4222", "tok"},
		{"nats://u:p%40ss@a:4222,tls://b:4222", "nats://a:4222,tls://b:4222", "u:p%40ss"},
	} {
		clean, user, err := splitUserInfo(c.in)
		got := ""
		if user != nil {
			got = user.String()
		}
		if err != nil || clean != c.clean || got != c.user {
			t.Errorf("%q: %q %q %v", c.in, clean, got, err)
		}
	}
	_, _, err := splitUserInfo("nats://one@a:4222,nats://two@b:4222")
	if err == nil || strings.Contains(err.Error(), "one") || strings.Contains(err.Error(), "two") {
		t.Errorf("different credentials: %v", err)
	}
}

func TestRedactWithoutScheme(t *testing.T) {
	t.Parallel()
	if got := Redact("s3cret@host:4222, nats://u:p@ss@h:1"); got != "***@host:4222,nats://***@h:1" {
		t.Errorf("Redact = %q", got)
	}
}

// TestSecretsAndScrub lists the secrets of every input form and scrubs them.
func TestSecretsAndScrub(t *testing.T) {
	t.Parallel()
	ukp, _ := nkeys.CreateUser()
	seed, _ := ukp.Seed()
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"url": "nats://h:4222", "user": "u", "password": "ctx-pass-1", "token": "ctx-token-1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{
		Servers:  "nats://url-token-1@a:4222,nats://u:url%2Fpass@b:4222,bare-token-2@c:1,nats://x:yy:zz@bad:port",
		Password: "flag-pass-1", Token: "flag-token-1", NKey: string(seed), Context: file,
	}
	if err := o.ApplyContext(""); err != nil {
		t.Fatal(err)
	}
	secrets := o.Secrets()
	for _, want := range []string{"url-token-1", "url/pass", "url%2Fpass", "bare-token-2", "flag-pass-1", "flag-token-1", string(seed), "ctx-pass-1", "ctx-token-1", "yy:zz"} {
		if !strings.Contains(o.Scrub("<"+want+">"), "<***>") {
			t.Errorf("%q is not scrubbed (secrets %q)", want, secrets)
		}
	}
	if got := (Options{Password: "abc"}).Scrub("abc"); got != "abc" {
		t.Errorf("a 3-character secret mangles text: %q", got)
	}
	for in, want := range map[string]string{
		"ackprobe.x probe":               "ackprobe.x ***",
		"nats://u:probe@h, probes probe": "nats://u:***@h, probes ***",
		`{"password":"probe"}`:           `{"password":"***"}`,
		"probeprobe":                     "probeprobe",
	} {
		if got := (Options{Password: "probe"}).Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Options{Token: "-tok-"}).Scrub("a-tok-b"); got != "a***b" {
		t.Errorf("a secret that starts and ends with punctuation: %q", got)
	}
	if o2 := (Options{NKey: "/path/user.nk"}); len(o2.Secrets()) != 0 {
		t.Errorf("a seed file's path is not a secret: %q", o2.Secrets())
	}
}

// TestURLCredentialsAsOptions: credentials in the URL (scheme or not)
// authenticate, and win over a wrong --token, as nats.go would do with them
// in the URL; nats.go never holds them.
func TestURLCredentialsAsOptions(t *testing.T) {
	t.Parallel()
	o := natstest.Options(t)
	o.Authorization = "s3cr3t-t0ken"
	tok := natstest.RunServerWith(t, o)
	o = natstest.Options(t)
	o.Username, o.Password = "probe", "pa@ss"
	up := natstest.RunServerWith(t, o)
	hostport := func(u string) string { return strings.TrimPrefix(u, "nats://") }
	for _, c := range []Options{
		{Servers: "s3cr3t-t0ken@" + hostport(tok.ClientURL()), Token: "wrong"},
		{Servers: "nats://probe:pa%40ss@" + hostport(up.ClientURL()), User: "other", Password: "wrong"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.Timeout = 2 * time.Second
		conn, err := Connect(ctx, c)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", Redact(c.Servers), err)
			continue
		}
		for _, u := range []string{conn.NC.ConnectedUrl(), conn.ServerInfo().URL} {
			if strings.Contains(u, "@") {
				t.Errorf("URL %q holds credentials", u)
			}
		}
		conn.Close()
	}
}

// TestSeedInPlaceOfFile: Connect refuses a seed given as --nkey without
// repeating it, whoever calls it.
func TestSeedInPlaceOfFile(t *testing.T) {
	t.Parallel()
	ukp, _ := nkeys.CreateUser()
	seed, _ := ukp.Seed()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, Options{Servers: "nats://127.0.0.1:1", NKey: string(seed)})
	var fe *FileError
	if !errors.As(err, &fe) || strings.Contains(err.Error(), string(seed)) {
		t.Errorf("Connect: %v", err)
	}
}
