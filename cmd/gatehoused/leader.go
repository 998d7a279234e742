package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/leader"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// electorStore is a store shared by replicas (etcd): it elects the one
// that runs the work that must happen once.
type electorStore interface {
	Elector(ttl time.Duration, name string, log *slog.Logger) leader.Elector
}

// elector returns the store's elector, or leader.Always for a store that
// one process owns (bbolt). name identifies this replica: its host and
// gRPC address.
func elector(st store.Store, cfg config.Config, addr string, log *slog.Logger) leader.Elector {
	es, ok := st.(electorStore)
	if !ok {
		return leader.Always{}
	}
	host, _ := os.Hostname()
	return es.Elector(cfg.Etcd.LeaderTTL, host+" "+addr, log.With("component", "leader"))
}

// leaderGauge registers gatehouse_leader with m's registry (nil without
// metrics).
func leaderGauge(m *server.Metrics) prometheus.Gauge {
	if m == nil {
		return nil
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_leader",
		Help: "1 while this replica leads: it runs the session sweeper, the notification sender and audit retention; 0 otherwise.",
	})
	m.Registry.MustRegister(g)
	return g
}

// leaderWork names, in the leadership's log lines, the work that runs on
// the leader only.
const leaderWork = "session sweeper, notification sender, audit retention"

// runLeading runs every fn, concurrently, each time el makes this replica
// the leader, until ctx ends; a lost leadership cancels them and waits
// for them to return. gauge (when not nil) is 1 while they run. On etcd
// their context carries the term's store.Fence: a write they make after
// the term ended, unnoticed (a pause past the lease), commits nothing.
func runLeading(ctx context.Context, el leader.Elector, gauge prometheus.Gauge, log *slog.Logger, fns ...func(context.Context)) {
	el.Run(ctx, func(lctx context.Context) {
		log.Info("leadership gained: running the session sweeper and the notification sender", "work", leaderWork)
		if gauge != nil {
			gauge.Set(1)
		}
		var wg sync.WaitGroup
		for _, fn := range fns {
			wg.Go(func() { fn(lctx) })
		}
		wg.Wait()
		if gauge != nil {
			gauge.Set(0)
		}
		if ctx.Err() == nil {
			log.Warn("leadership lost: the session sweeper and the notification sender stopped here", "work", leaderWork)
		} else {
			log.Info("leadership given up at shutdown")
		}
	})
}
