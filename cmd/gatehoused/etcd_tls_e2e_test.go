package main

import (
	"path/filepath"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
)

// TestE2E_EtcdTLS: an etcd that serves clients over TLS only and requires
// client certificates. gatehoused with --etcd-ca, --etcd-cert and
// --etcd-key connects (the endpoint as host:port or https://) and serves;
// a wrong CA, a missing client certificate and no TLS at all each stop
// the start with an error that names the endpoint and says why.
func TestE2E_EtcdTLS(t *testing.T) {
	t.Parallel()
	pki := t.TempDir()
	ca := tlstest.NewCA(t, pki, "etcd-ca")
	serverCert, serverKey := ca.WriteServer(t, pki, "etcd-server")
	clientCert, clientKey := ca.WriteClient(t, pki, "gatehoused", "gatehoused")
	other := tlstest.NewCA(t, t.TempDir(), "another-ca")
	srv := etcdtest.Start(t, etcdtest.WithClientTLS(serverCert, serverKey, ca.CertFile))
	ep := srv.Endpoints[0]
	ctx := testContext(t)

	args := func(endpoint string, extra ...string) []string {
		return loopbackArgs(t.TempDir(), append([]string{"--store", "etcd", "--etcd-endpoints", endpoint, "--etcd-prefix", "/tls/"}, extra...)...)
	}
	d := start(t, nil, args(ep, "--etcd-ca", ca.CertFile, "--etcd-cert", clientCert, "--etcd-key", clientKey)...)
	if _, err := dial(t, d.addr).admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}); err != nil {
		t.Fatalf("CreateAccount over TLS to etcd: %v", err)
	}
	d.stop()
	d = start(t, nil, args("https://"+ep, "--etcd-ca", ca.CertFile, "--etcd-cert", clientCert, "--etcd-key", clientKey)...)
	if got, err := dial(t, d.addr).admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"}); err != nil || got.GetAccount().GetDisplayName() != "Acme" {
		t.Fatalf("GetAccount through https://%s: %v, %v", ep, got, err)
	}
	d.stop()

	for _, tc := range []struct {
		name  string
		extra []string
		want  []string
	}{
		{"wrong CA", []string{"--etcd-ca", other.CertFile, "--etcd-cert", clientCert, "--etcd-key", clientKey},
			[]string{ep, "TLS handshake", "certificate signed by unknown authority"}},
		{"no client certificate", []string{"--etcd-ca", ca.CertFile}, []string{ep, "certificate required"}},
		{"no TLS", nil, []string{ep, "require TLS"}},
		{"CA file missing", []string{"--etcd-ca", filepath.Join(pki, "nope.pem"), "--etcd-cert", clientCert, "--etcd-key", clientKey}, []string{"etcd TLS", "nope.pem"}},
		// etcd's client would speak plaintext to an http:// endpoint
		// whatever the TLS flags say: refused before anything connects.
		{"http:// endpoint with TLS flags", []string{"--etcd-ca", ca.CertFile, "--etcd-cert", clientCert, "--etcd-key", clientKey},
			[]string{"http://" + ep, "TLS is on", "https://" + ep}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := ep
			if strings.HasPrefix(tc.name, "http://") {
				endpoint = "http://" + ep
			}
			d := launch(t, nil, args(endpoint, append(tc.extra, "--etcd-dial-timeout", "3s")...)...)
			if code := d.awaitExit(exitTimeout); code == 0 {
				t.Fatal("gatehoused started")
			}
			out := d.stderr()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestE2E_EtcdRefusesRemotePlaintext: a non-loopback etcd endpoint without
// TLS is refused before anything connects (exit 1, the endpoint named, the
// way out said), from a flag or from GATEHOUSE_ETCD_ENDPOINTS, by the
// daemon and by gatehoused migrate alike; --insecure lets it through (and
// the start then fails only because nothing answers there).
func TestE2E_EtcdRefusesRemotePlaintext(t *testing.T) {
	t.Parallel()
	const remote = "192.0.2.1:2379" // TEST-NET-1: never answers
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"daemon flag", nil, loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", remote, "--etcd-dial-timeout", "60s")},
		{"daemon env", []string{"GATEHOUSE_STORE=etcd", "GATEHOUSE_ETCD_ENDPOINTS=" + remote}, loopbackArgs(t.TempDir(), "--etcd-dial-timeout", "60s")},
		{"daemon among loopback", nil, loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", "127.0.0.1:2379,http://"+remote, "--etcd-dial-timeout", "60s")},
		{"migrate to etcd", nil, []string{"migrate", "--to", "etcd", "--data-dir", t.TempDir(), "--etcd-endpoints", remote, "--etcd-dial-timeout", "60s"}},
		{"migrate to bolt", nil, []string{"migrate", "--to", "bolt", "--data-dir", t.TempDir(), "--etcd-endpoints", "https://127.0.0.1:2379,http://" + remote}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := launch(t, tc.env, tc.args...)
			if code := d.awaitExit(exitTimeout); code != 1 {
				t.Fatalf("exit %d, want 1 (refused configuration)", code)
			}
			out := d.stderr()
			if !strings.Contains(out, remote) || !(strings.Contains(out, "not a loopback address and the connection is not secured") || strings.Contains(out, "TLS is on")) {
				t.Errorf("stderr does not refuse the plaintext endpoint %s:\n%s", remote, out)
			}
			if strings.Contains(out, "did not answer") {
				t.Errorf("it tried to connect first:\n%s", out)
			}
		})
	}
	d := launch(t, nil, loopbackArgs(t.TempDir(), "--store", "etcd", "--etcd-endpoints", remote, "--insecure", "--etcd-dial-timeout", "300ms")...)
	if code := d.awaitExit(exitTimeout); code != 1 || !strings.Contains(d.stderr(), "did not answer") {
		t.Errorf("--insecure: exit %d, want 1 after trying %s:\n%s", code, remote, d.stderr())
	}
}
