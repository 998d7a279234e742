package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
)

// openConfigured opens the store --store names: the bbolt file in
// --data-dir, or the etcd cluster at --etcd-endpoints.
func openConfigured(cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Store == config.StoreEtcd {
		return openEtcd(cfg, log)
	}
	return openBolt(cfg, log)
}

// openEtcd connects to etcd with the --etcd-* flags. It waits at most
// --etcd-dial-timeout for the cluster to answer.
func openEtcd(cfg config.Config, log *slog.Logger) (store.Store, error) {
	e := cfg.Etcd
	opts := etcd.Options{Endpoints: e.EndpointList(), Prefix: e.Prefix, DialTimeout: e.DialTimeout, Username: e.Username,
		FreshnessInterval: freshnessInterval(cfg.MaxStaleness)}
	if e.TLS() {
		var tc *tls.Config
		var err error
		if e.CA != "" || e.Cert != "" {
			tc, err = transport.TLSInfo{TrustedCAFile: e.CA, CertFile: e.Cert, KeyFile: e.Key}.ClientConfig()
		} else {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
		opts.TLS = tc
	}
	if e.PasswordFile != "" {
		pw, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd-password-file: %w", err)
		}
		opts.Password = strings.TrimRight(string(pw), "\r\n")
	}
	st, err := etcd.Open(context.Background(), opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	log.Info("store opened", "driver", "etcd", "endpoints", e.Endpoints, "prefix", e.Prefix, "revision", st.Revision())
	return st, nil
}

// freshnessInterval is how often a quiet replica confirms with etcd that
// its data is current: a tenth of --max-staleness, between 50 ms and the
// driver's default of 1 s, so that a replica in touch with etcd stays
// well within the bound.
func freshnessInterval(maxStaleness time.Duration) time.Duration {
	if maxStaleness <= 0 {
		return etcd.DefaultFreshnessInterval
	}
	return min(max(maxStaleness/10, 50*time.Millisecond), etcd.DefaultFreshnessInterval)
}
