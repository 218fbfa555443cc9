package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// probeOK runs compare --json with env and args and asserts it ran and every
// check held; it returns the decoded server section's URL.
func probeOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := ackprobe(t, env, append([]string{"compare", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
	}
	res := decode(t, r.stdout)
	assertClassic(t, res)
	if res.Server.Embedded {
		t.Fatalf("%v: probed an embedded server", args)
	}
	return res.Server.URL
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContexts(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	other := natstest.RunServer(t)
	cfg := t.TempDir()
	writeFile(t, cfg, "nats/context/probe.json", fmt.Sprintf(`{"description": "test", "url": %q}`, s.ClientURL()))
	writeFile(t, cfg, "nats/context/other.json", fmt.Sprintf(`{"url": %q}`, other.ClientURL()))
	file := writeFile(t, t.TempDir(), "elsewhere.json", fmt.Sprintf(`{"url": %q}`, other.ClientURL()))
	env := map[string]string{"XDG_CONFIG_HOME": cfg}

	if got := probeOK(t, env, "--context", "probe"); got != s.ClientURL() {
		t.Errorf("--context probe went to %s", got)
	}
	if got := probeOK(t, map[string]string{"XDG_CONFIG_HOME": cfg, "NATS_CONTEXT": "other"}); got != other.ClientURL() {
		t.Errorf("NATS_CONTEXT=other went to %s", got)
	}
	if got := probeOK(t, env, "--context", file); got != other.ClientURL() {
		t.Errorf("--context %s went to %s", file, got)
	}
	// An explicit server wins over the context's.
	if got := probeOK(t, env, "--context", "other", "-s", s.ClientURL()); got != s.ClientURL() {
		t.Errorf("-s did not override the context: %s", got)
	}
	// The selected context is used when no server is given, found through
	// $HOME as the nats CLI finds it.
	home := t.TempDir()
	writeFile(t, home, ".config/nats/context/sel.json", fmt.Sprintf(`{"url": %q}`, other.ClientURL()))
	writeFile(t, home, ".config/nats/context.txt", "sel")
	if got := probeOK(t, map[string]string{"HOME": home}); got != other.ClientURL() {
		t.Errorf("the selected context was not used: %s", got)
	}
	r := ackprobe(t, map[string]string{"HOME": home}, "compare", "--json", "--embedded")
	if r.code != 0 || !decode(t, r.stdout).Server.Embedded {
		t.Errorf("--embedded did not force the embedded server: %d %s", r.code, r.stderr)
	}

	r = ackprobe(t, env, "compare", "--context", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, `nats context "nope" does not exist`) {
		t.Errorf("unknown context: exit %d %q", r.code, r.stderr)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	// user and password, and token
	o := natstest.Options(t)
	o.Username, o.Password = "probe", "s3cret"
	userSrv := natstest.RunServerWith(t, o)
	o = natstest.Options(t)
	o.Authorization = "t0ken"
	tokenSrv := natstest.RunServerWith(t, o)

	// nkey
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	o = natstest.Options(t)
	o.Nkeys = []*server.NkeyUser{{Nkey: upub}}
	nkeySrv := natstest.RunServerWith(t, o)
	seedFile := writeFile(t, dir, "user.nk", string(useed))

	// creds: an operator, an account with JetStream, a user
	credsSrv := natstest.RunOperatorServer(t, nil)
	credsFile := writeFile(t, dir, "user.creds", string(credsSrv.Creds))

	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"user and password flags", nil, []string{"-s", userSrv.ClientURL(), "--user", "probe", "--password", "s3cret"}},
		{"user and password env", map[string]string{"NATS_URL": userSrv.ClientURL(), "NATS_USER": "probe", "NATS_PASSWORD": "s3cret"}, nil},
		{"token", nil, []string{"-s", tokenSrv.ClientURL(), "--token", "t0ken"}},
		{"nkey", nil, []string{"-s", nkeySrv.ClientURL(), "--nkey", seedFile}},
		{"creds", nil, []string{"-s", credsSrv.ClientURL(), "--creds", credsFile}},
		{"creds env", map[string]string{"NATS_URL": credsSrv.ClientURL(), "NATS_CREDS": credsFile}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			probeOK(t, c.env, c.args...)
		})
	}
	// A context carrying the credentials works too.
	cfg := t.TempDir()
	writeFile(t, cfg, "nats/context/auth.json", fmt.Sprintf(`{"url": %q, "user": "probe", "password": "s3cret"}`, userSrv.ClientURL()))
	probeOK(t, map[string]string{"XDG_CONFIG_HOME": cfg}, "--context", "auth")

	for _, bad := range [][]string{
		{"-s", userSrv.ClientURL(), "--user", "probe", "--password", "wrong"},
		{"-s", tokenSrv.ClientURL(), "--token", "wrong"},
		{"-s", credsSrv.ClientURL()},
	} {
		r := ackprobe(t, nil, append([]string{"compare"}, bad...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "authorization failed") {
			t.Errorf("%v: exit %d %q", bad, r.code, r.stderr)
		}
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all made here.
func tlsFiles(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ackprobe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	writePEM := func(name, typ string, der []byte) {
		writeFile(t, dir, name, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})))
	}
	writePEM("ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		writePEM(name+".pem", "CERTIFICATE", der)
		writePEM(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	issue("server", 2, x509.ExtKeyUsageServerAuth)
	issue("client", 3, x509.ExtKeyUsageClientAuth)
	return dir
}

func TestTLS(t *testing.T) {
	t.Parallel()
	dir := tlsFiles(t)
	f := func(n string) string { return filepath.Join(dir, n) }
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: f("server.pem"), KeyFile: f("server-key.pem"), CaFile: f("ca.pem"), Verify: true, Timeout: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := natstest.Options(t)
	o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, true, 2
	s := natstest.RunServerWith(t, o)
	url := strings.Replace(s.ClientURL(), "nats://", "tls://", 1)

	probeOK(t, nil, "-s", url, "--tlsca", f("ca.pem"), "--tlscert", f("client.pem"), "--tlskey", f("client-key.pem"))
	probeOK(t, map[string]string{"NATS_URL": url, "NATS_CA": f("ca.pem"), "NATS_CERT": f("client.pem"), "NATS_KEY": f("client-key.pem")})

	// Without a client certificate the server refuses the connection.
	r := ackprobe(t, nil, "compare", "-s", url, "--tlsca", f("ca.pem"), "--timeout", "2s")
	if r.code != 2 || !strings.HasPrefix(r.stderr, "ackprobe: cannot connect") {
		t.Errorf("no client certificate: exit %d %q", r.code, r.stderr)
	}
	// Fault injection cannot see through TLS.
	r = ackprobe(t, nil, "compare", "-s", url, "--tlsca", f("ca.pem"), "--drop-acks", "0.1")
	if r.code != 2 || !strings.Contains(r.stderr, "plain (non-TLS)") {
		t.Errorf("--drop-acks with TLS: exit %d %q", r.code, r.stderr)
	}
	// Nor through TLS that nats.go starts by itself because the server
	// requires it, with a nats:// URL and no TLS flag (the CA trusted
	// through the system roots here).
	tc, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f("server.pem"), KeyFile: f("server-key.pem"), Timeout: 2})
	if err != nil {
		t.Fatal(err)
	}
	o = natstest.Options(t)
	o.TLSConfig, o.TLS, o.TLSTimeout = tc, true, 2
	required := natstest.RunServerWith(t, o)
	r = ackprobe(t, map[string]string{"SSL_CERT_FILE": f("ca.pem")}, "compare", "-s", required.ClientURL(), "--drop-acks", "0.1")
	if r.code != 2 || !strings.Contains(r.stderr, "plain (non-TLS)") {
		t.Errorf("--drop-acks to a server that requires TLS: exit %d %q", r.code, r.stderr)
	}
	// The embedded server takes no TLS settings from the environment.
	r = ackprobe(t, map[string]string{"NATS_CA": f("ca.pem"), "NATS_CERT": f("client.pem"), "NATS_KEY": f("client-key.pem")}, "compare", "--json", "--embedded")
	if r.code != 0 || !decode(t, r.stdout).Server.Embedded {
		t.Errorf("--embedded with NATS_CA set: exit %d %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "--embedded: started an embedded nats-server") {
		t.Errorf("--embedded notice: %q", r.stderr)
	}
}
