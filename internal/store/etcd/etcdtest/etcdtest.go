// Package etcdtest runs a real single-member etcd server inside a test
// process (go.etcd.io/etcd/server/v3/embed), listening on loopback ports
// the kernel picks, with its data in t.TempDir().
package etcdtest

import (
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// startTimeout bounds the wait for the member to elect itself leader.
const startTimeout = 30 * time.Second

// Server is a running embedded etcd member.
type Server struct {
	// Endpoints are the client URLs to dial (host:port).
	Endpoints []string
	// Etcd is the embedded server.
	Etcd *embed.Etcd
}

// Start starts a single-member etcd with etcd's default limits
// (--max-txn-ops 128, --max-request-bytes 1.5 MiB) and stops it when t
// ends. configure, when given, may change the configuration first.
func Start(t testing.TB, configure ...func(*embed.Config)) *Server {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "gatehouse-test"
	cfg.Dir = t.TempDir()
	cfg.LogLevel = "fatal" // Close logs its listeners' shutdown as errors
	cfg.Logger = "zap"
	loop := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loop}
	cfg.AdvertiseClientUrls = []url.URL{loop}
	cfg.ListenPeerUrls = []url.URL{loop}
	cfg.AdvertisePeerUrls = []url.URL{loop}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A single member needs no metrics endpoint and no peer traffic.
	cfg.ListenMetricsUrls = nil
	for _, c := range configure {
		c(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("etcd failed: %v", err)
	case <-time.After(startTimeout):
		e.Server.Stop()
		t.Fatalf("etcd did not become ready within %v", startTimeout)
	}
	s := &Server{Etcd: e}
	for _, l := range e.Clients {
		s.Endpoints = append(s.Endpoints, l.Addr().String())
	}
	return s
}

// WithClientTLS is a Start option: the member serves its clients over TLS
// only, with the certificate in certFile and keyFile, and requires a
// client certificate that chains to the CA in caFile.
func WithClientTLS(certFile, keyFile, caFile string) func(*embed.Config) {
	return func(cfg *embed.Config) {
		u := url.URL{Scheme: "https", Host: "127.0.0.1:0"}
		cfg.ListenClientUrls = []url.URL{u}
		cfg.AdvertiseClientUrls = []url.URL{u}
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, ClientCertAuth: true}
	}
}
