package main

import (
	"context"
	"fmt"
	"log/slog"

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
	st, err := etcd.Open(context.Background(), opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	log.Info("store opened", "driver", "etcd", "endpoints", e.Endpoints, "prefix", e.Prefix, "revision", st.Revision())
	return st, nil
}
