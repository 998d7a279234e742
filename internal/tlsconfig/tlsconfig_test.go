package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
)

func TestServer_ReloadsRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	c, k := tlstest.WriteSelfSigned(t, dir, "first")
	cfg, err := Server(Files{Cert: c, Key: k})
	if err != nil {
		t.Fatal(err)
	}
	cn := func() string {
		t.Helper()
		cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("cn = %q", got)
	}
	time.Sleep(1100 * time.Millisecond) // reloads are checked at most once a second
	tlstest.WriteSelfSigned(t, dir, "second")
	later := time.Now().Add(2 * time.Second)
	for _, f := range []string{c, k} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if got := cn(); got != "second" {
		t.Fatalf("after renewal cn = %q, want second", got)
	}
	// A broken file keeps the last good certificate.
	time.Sleep(1100 * time.Millisecond)
	if err := os.WriteFile(c, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	evenLater := later.Add(time.Second)
	_ = os.Chtimes(c, evenLater, evenLater)
	if got := cn(); got != "second" {
		t.Fatalf("after a broken renewal cn = %q, want the previous certificate", got)
	}
}

func TestServer_Errors(t *testing.T) {
	dir := t.TempDir()
	c, k := tlstest.WriteSelfSigned(t, dir, "x")
	for name, f := range map[string]Files{
		"no key":        {Cert: c},
		"missing files": {Cert: filepath.Join(dir, "nope"), Key: k},
		"bad client CA": {Cert: c, Key: k, ClientCA: k},
	} {
		if _, err := Server(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	cfg, err := Server(Files{Cert: c, Key: k, ClientCA: c})
	if err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatalf("mTLS config = %v, %v", cfg, err)
	}
}
