package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// selfSigned is a certificate for 127.0.0.1, made here.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ackprobe test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSFirstDetected: a handshake-first TLS server sends nothing after
// the TCP connect, so nats.go times out reading its INFO; Connect finds
// that it answers a TLS handshake instead. A silent server that is not TLS
// is not mistaken for one.
func TestTLSFirstDetected(t *testing.T) {
	t.Parallel()
	o := natstest.Options(t)
	o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, MinVersion: tls.VersionTLS12}
	o.TLS, o.TLSHandshakeFirst, o.TLSTimeout = true, true, 2
	s := natstest.RunServerWith(t, o)

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	held := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held <- c // keep it open, say nothing
		}
	}()
	t.Cleanup(func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	})

	for _, c := range []struct {
		url      string
		tlsFirst bool
	}{{s.ClientURL(), true}, {"nats://" + silent.Addr().String(), false}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Connect(ctx, Options{Servers: c.url, Timeout: 300 * time.Millisecond})
		cancel()
		var de *DialError
		if !errors.As(err, &de) || de.TLSFirst != c.tlsFirst {
			t.Errorf("%s: %v (%+v), want TLSFirst %v", c.url, err, de, c.tlsFirst)
		}
	}
}
