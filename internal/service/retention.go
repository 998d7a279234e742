package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Audit retention: the job that deletes audit events older than the
// retention. It runs on the leader only (with the session sweeper and the
// notification sender), in transactions within the store's limits.
const (
	// MaxAuditRetentionInterval is the longest time between two runs.
	MaxAuditRetentionInterval = time.Hour
	// MinAuditRetentionInterval is the shortest.
	MinAuditRetentionInterval = time.Second
	// maxPruneBatch bounds the events one transaction deletes on a store
	// without an operations limit.
	maxPruneBatch = 1000
)

// AuditRetentionInterval is the time between two runs of the job for a
// retention: a tenth of it, within [MinAuditRetentionInterval,
// MaxAuditRetentionInterval] (an hour for any retention of ten hours or
// more).
func AuditRetentionInterval(retention time.Duration) time.Duration {
	return min(MaxAuditRetentionInterval, max(MinAuditRetentionInterval, retention/10))
}

// AuditPruneBatch is how many events one transaction of the job deletes
// on a store with limits l: every operation the store allows one
// transaction (etcd: 127), at most 1000.
func AuditPruneBatch(l store.Limits) int {
	if l.MaxOps > 0 {
		return min(maxPruneBatch, l.MaxOps)
	}
	return maxPruneBatch
}

// AuditPruner deletes audit events older than Retention; see Prune.
type AuditPruner struct {
	Store store.Store
	// Retention is how long events are kept; 0 keeps them forever.
	Retention time.Duration
	Now       func() time.Time
	Log       *slog.Logger
	// Batch bounds the events one transaction deletes (AuditPruneBatch
	// of the store's limits when zero).
	Batch int
	// Interval is the time between runs (AuditRetentionInterval of the
	// retention when zero).
	Interval time.Duration
	// Ran, when set, is told the outcome of every run of Run: how many
	// events it deleted, when it finished, and its error.
	Ran func(pruned int, at time.Time, err error)
}

// Prune deletes the events recorded more than Retention before now, in
// transactions of at most Batch events, until none is left or ctx ends,
// and returns how many it deleted. Each transaction finds its events in a
// read and deletes them by key, so it conflicts with no other write. With
// ctx carrying the leader's fence (store.WithFence), a deposed leader's
// deletions fail with store.ErrFenced and commit nothing.
func (p *AuditPruner) Prune(ctx context.Context) (int, error) {
	if p.Retention <= 0 {
		return 0, nil
	}
	return p.pruneBefore(ctx, p.Now().Add(-p.Retention))
}

// pruneBefore deletes the events recorded before before.
func (p *AuditPruner) pruneBefore(ctx context.Context, before time.Time) (int, error) {
	batch := p.Batch
	if batch <= 0 {
		batch = AuditPruneBatch(p.Store.Limits())
	}
	pruned := 0
	for {
		var ids []string
		err := p.Store.View(ctx, func(tx store.ReadTx) (err error) {
			ids, err = store.ExpiredAuditEvents(tx, before, batch)
			return err
		})
		if err != nil || len(ids) == 0 {
			return pruned, err
		}
		n := 0
		_, err = p.Store.Update(ctx, func(tx store.Tx) (err error) {
			n, err = store.DeleteAuditEvents(tx, ids)
			return err
		})
		if err != nil {
			return pruned, err
		}
		pruned += n
		if len(ids) < batch {
			return pruned, nil
		}
	}
}

// Run prunes at once and then every Interval until ctx ends, logging one
// line per run.
func (p *AuditPruner) Run(ctx context.Context) {
	if p.Retention <= 0 {
		p.Log.InfoContext(ctx, "audit retention off: audit events are kept forever")
		return
	}
	interval := p.Interval
	if interval <= 0 {
		interval = AuditRetentionInterval(p.Retention)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		before := p.Now().Add(-p.Retention)
		pruned, err := p.pruneBefore(ctx, before)
		if ctx.Err() != nil && err != nil {
			return // stopped (shutdown or leadership lost) mid-run
		}
		if p.Ran != nil {
			p.Ran(pruned, p.Now(), err)
		}
		cutoff := before.UTC().Format(time.RFC3339)
		switch {
		case errors.Is(err, store.ErrFenced):
			p.Log.WarnContext(ctx, "audit retention stopped: the leadership is lost", "pruned", pruned, "older_than", cutoff, "err", err)
		case err != nil:
			p.Log.ErrorContext(ctx, "audit retention failed; it runs again later", "pruned", pruned, "older_than", cutoff, "took", time.Since(start).String(), "err", err)
		default:
			p.Log.InfoContext(ctx, "audit retention", "pruned", pruned, "older_than", cutoff, "took", time.Since(start).String(), "next_in", interval.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
