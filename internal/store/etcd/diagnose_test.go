package etcd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
)

// TestOpen_SaysWhyTLSFails: an Open that times out against an etcd that
// requires TLS and client certificates says why, from its own probe of
// the endpoint: a server certificate from another CA, no client
// certificate, no TLS at all. With the right ones it opens.
func TestOpen_SaysWhyTLSFails(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "etcd-ca")
	cert, key := ca.WriteServer(t, dir, "server")
	srv := etcdtest.Start(t, etcdtest.WithClientTLS(cert, key, ca.CertFile))
	pool := func(c *tlstest.CA) *x509.CertPool {
		pem, err := os.ReadFile(c.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(pem)
		return p
	}
	client := ca.IssueClient(t, "gatehoused")
	other := tlstest.NewCA(t, t.TempDir(), "other-ca")
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		want string
	}{
		{"other CA", &tls.Config{RootCAs: pool(other), Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12}, "certificate signed by unknown authority"},
		{"no client certificate", &tls.Config{RootCAs: pool(ca), MinVersion: tls.VersionTLS12}, "certificate required"},
		{"no TLS", nil, "does it require TLS"},
		{"right", &tls.Config{RootCAs: pool(ca), Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS12}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, TLS: tc.tls, DialTimeout: time.Second})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open with the right certificates: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.Endpoints[0]) {
				t.Errorf("Open: %v; want it to name %s and say %q", err, srv.Endpoints[0], tc.want)
			}
		})
	}
}
