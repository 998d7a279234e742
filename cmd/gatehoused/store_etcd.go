package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

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
	opts, err := e.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.FreshnessInterval = freshnessInterval(cfg.MaxStaleness)
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
