//go:build unix

package main

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestE2E_TLS: with --tls-cert/--tls-key the daemon speaks TLS only; with
// --tls-client-ca it also requires a client certificate from that CA.
func TestE2E_TLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := tlstest.WriteSelfSigned(t, dir, "gatehouse-test")
	pool := tlstest.Pool(t, certFile)
	clientCert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	check := func(addr string, creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = healthpb.NewHealthClient(conn).Check(testContext(t), &healthpb.HealthCheckRequest{})
		return err
	}
	serverOnly := credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	mutual := credentials.NewTLS(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12})

	d := start(t, nil, loopbackArgs(filepath.Join(dir, "a"), "--tls-cert", certFile, "--tls-key", keyFile)...)
	if err := check(d.addr, serverOnly); err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if err := check(d.addr, insecure.NewCredentials()); err == nil {
		t.Fatal("a plaintext client was served by a TLS daemon")
	}

	m := start(t, nil, loopbackArgs(filepath.Join(dir, "b"), "--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", certFile)...)
	if err := check(m.addr, serverOnly); err == nil {
		t.Fatal("mutual TLS daemon served a client without a certificate")
	}
	if err := check(m.addr, mutual); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
}
