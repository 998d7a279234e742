package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse-dev/gatehouse/internal/service"
)

// retentionMetrics are the audit retention job's metrics.
type retentionMetrics struct {
	pruned  prometheus.Counter
	runs    *prometheus.CounterVec
	lastRun prometheus.Gauge
}

func newRetentionMetrics(reg *prometheus.Registry) *retentionMetrics {
	m := &retentionMetrics{
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_events_pruned_total",
			Help: "Audit events the audit retention job deleted because they were older than --audit-retention (on the replica that leads).",
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_retention_runs_total",
			Help: "Runs of the audit retention job on this replica, by result (ok, error); it runs on the leader only.",
		}, []string{"result"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_audit_retention_last_run_timestamp_seconds",
			Help: "When the audit retention job last finished a run without error on this replica (Unix seconds; 0: never).",
		}),
	}
	m.runs.WithLabelValues("ok")
	m.runs.WithLabelValues("error")
	reg.MustRegister(m.pruned, m.runs, m.lastRun)
	return m
}

// ran records the outcome of one run; m may be nil.
func (m *retentionMetrics) ran(pruned int, at time.Time, err error) {
	if m == nil {
		return
	}
	m.pruned.Add(float64(pruned))
	if err != nil {
		m.runs.WithLabelValues("error").Inc()
		return
	}
	m.runs.WithLabelValues("ok").Inc()
	m.lastRun.Set(float64(at.UnixNano()) / 1e9)
}

// auditPruner is the audit retention job over s's store.
func (s *Server) auditPruner() *service.AuditPruner {
	p := &service.AuditPruner{Store: s.store, Retention: s.auditRetention, Now: s.now, Log: s.log.With("component", "audit-retention")}
	if s.metrics != nil {
		p.Ran = s.metrics.retention.ran
	}
	return p
}

// PruneAuditEvents deletes the audit events older than
// Options.AuditRetention once (service.AuditPruner.Prune) and returns how
// many it deleted.
func (s *Server) PruneAuditEvents(ctx context.Context) (int, error) {
	return s.auditPruner().Prune(ctx)
}

// RunAuditRetention deletes the audit events older than
// Options.AuditRetention at once and then periodically
// (service.AuditRetentionInterval), until ctx ends. The daemon runs it on
// the replica that leads, with the leadership's fence on ctx.
func (s *Server) RunAuditRetention(ctx context.Context) {
	s.auditPruner().Run(ctx)
}
