package observe

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the daemon's Prometheus metrics of what it decides and
// holds: decisions by feature and reason, refusals at fixed limits, and
// the state of the snapshot and the store. The gRPC edge registers the
// metrics of calls (grpc_server_*) and of load shedding in the same
// Registry. Every method may be called on a nil *Metrics.
type Metrics struct {
	// Registry holds every metric; serve it with promhttp.
	Registry *prometheus.Registry
	// decisions[featureSlot][reason] are resolved once, so that counting a
	// decision on the hot path is one atomic add.
	decisions [numFeatureSlots][]prometheus.Counter
	// chainTooDeep counts calls refused because a portal or team chain
	// would be, or is, deeper than policy.MaxChainDepth.
	chainTooDeep prometheus.Counter
	// collectionFull counts creates refused because the account already
	// holds the most resources of that kind it may (errs.ReasonLimit).
	collectionFull prometheus.Counter
	// applyTooLarge counts ApplyAccount calls refused because the document
	// needs more writes than one transaction may hold (errs.ReasonApplyTooLarge).
	applyTooLarge prometheus.Counter
	// requestSize counts requests refused for their encoded size before
	// they were decoded.
	requestSize prometheus.Counter
	// stale counts calls refused because the snapshot was older than
	// the staleness bound (errs.ReasonSnapshotStale).
	stale prometheus.Counter
	// workLimit counts decisions denied because the element was too costly
	// to evaluate against the account's privacy rules.
	workLimit prometheus.Counter
	// batchWorkLimit counts the checks of CheckFeatures batches denied
	// because the batch's shared privacy work ran low.
	batchWorkLimit prometheus.Counter
}

// Feature slots: co-browse features 1..12, support functions after them.
const numFeatureSlots = int(policy.FeatureChat) + 1 + int(policy.NumFunctions)

func featureSlot(f policy.Feature) int {
	if fn, ok := f.Function(); ok {
		return int(policy.FeatureChat) + 1 + int(fn)
	}
	if f.IsCobrowse() {
		return int(f)
	}
	return 0
}

// NewMetrics creates the metrics, including Go runtime and process
// collectors.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_decisions_total",
		Help: "Decisions answered, by feature and reason.",
	}, []string{"feature", "reason"})
	for slot := range m.decisions {
		m.decisions[slot] = make([]prometheus.Counter, policy.NumReasons)
	}
	for f := policy.Feature(0); f <= policy.FeatureFunctionBase+policy.Feature(policy.NumFunctions); f++ {
		if !f.Valid() {
			continue
		}
		for r := policy.ReasonAllowed; r < policy.NumReasons; r++ {
			m.decisions[featureSlot(f)][r] = decisions.WithLabelValues(f.String(), r.String())
		}
	}
	limits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_limit_refusals_total",
		Help: "Calls refused because they reached a fixed limit, by limit.",
	}, []string{"limit"})
	m.chainTooDeep = limits.WithLabelValues("chain_depth")
	m.collectionFull = limits.WithLabelValues("collection_size")
	m.applyTooLarge = limits.WithLabelValues("apply_writes")
	m.requestSize = limits.WithLabelValues("request_size")
	m.stale = limits.WithLabelValues("max_staleness")
	m.workLimit = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_privacy_work_limit_total",
		Help: "Decisions denied because evaluating the element against the account's privacy rules would exceed the per-decision work limit.",
	})
	m.batchWorkLimit = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_privacy_batch_work_limit_total",
		Help: "Checks of CheckFeatures batches denied because the privacy work the batch's checks share ran out (also counted in gatehouse_privacy_work_limit_total).",
	})
	m.Registry.MustRegister(decisions, limits, m.workLimit, m.batchWorkLimit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CountRefusal counts a call refused at a fixed limit; m may be nil.
func (m *Metrics) CountRefusal(err error) {
	if m == nil {
		return
	}
	var cd *policy.ChainTooDeepError
	switch {
	case errors.As(err, &cd):
		m.chainTooDeep.Inc()
	case errs.ReasonOf(err) == errs.ReasonLimit:
		m.collectionFull.Inc()
	case errs.ReasonOf(err) == errs.ReasonApplyTooLarge:
		m.applyTooLarge.Inc()
	case errs.ReasonOf(err) == errs.ReasonSnapshotStale:
		m.stale.Inc()
	}
}

// CountRequestSize counts a request refused for its encoded size; m may
// be nil.
func (m *Metrics) CountRequestSize() {
	if m != nil {
		m.requestSize.Inc()
	}
}

// CountDecision counts one decision; m may be nil.
func (m *Metrics) CountDecision(f policy.Feature, d policy.Decision) {
	if m == nil || d.Reason <= 0 || d.Reason >= policy.NumReasons {
		return
	}
	if c := m.decisions[featureSlot(f)][d.Reason]; c != nil {
		c.Inc()
	}
	if d.Rule == policy.RulePrivacyWorkLimit {
		m.workLimit.Inc()
	}
}

// CountBatchWorkLimit counts n checks of a batch denied because the
// batch's privacy work ran low; m may be nil.
func (m *Metrics) CountBatchWorkLimit(n int) {
	if m != nil && n > 0 {
		m.batchWorkLimit.Add(float64(n))
	}
}

// Watch registers gauges that read the snapshot and the store at scrape
// time.
func (m *Metrics) Watch(snaps *replica.Replica, st store.Store, now func() time.Time) {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		gauge("gatehouse_snapshot_revision", "Store revision of the snapshot decisions are answered from.",
			func() float64 { return float64(snaps.Current().Revision()) }),
		gauge("gatehouse_store_revision", "Revision of the last commit to the store.",
			func() float64 { return float64(st.Revision()) }),
		gauge("gatehouse_snapshot_rebuild_seconds", "Duration of the last snapshot rebuild.",
			func() float64 { return snaps.LastBuild().Seconds() }),
		gauge("gatehouse_snapshot_staleness_seconds", "How long ago the store last confirmed that the snapshot held every commit (always 0 on bbolt); past --max-staleness decisions are refused and health reports NOT_SERVING.",
			func() float64 { return snaps.Staleness(time.Now()).Seconds() }),
		gauge("gatehouse_snapshot_accounts", "Accounts in the snapshot.",
			func() float64 { return float64(snaps.Current().NumAccounts()) }),
		gauge("gatehouse_snapshot_sessions", "Sessions in the snapshot.",
			func() float64 { return float64(snaps.Current().NumSessions()) }),
		gauge("gatehouse_allowlist_public_suffix_entries", "Allowlist entries that cover hosts under a public suffix without allow_public_suffix_subdomains (stored before such patterns were refused); they keep working.",
			func() float64 { _, n := snaps.Current().PublicSuffixEntries(0); return float64(n) }),
		gauge("gatehouse_snapshot_unreadable_accounts", "Accounts left out of the snapshot because a stored record of theirs cannot be decoded; their decisions answer DATA_LOSS.",
			func() float64 { return float64(snaps.Current().NumUnreadable()) }),
		gauge("gatehouse_snapshot_unreadable_sessions", "Sessions left out of the snapshot because their own stored record cannot be read; their decisions answer DATA_LOSS.",
			func() float64 { return float64(snaps.Current().NumUnreadableSessions()) }),
	}
	cs = append(cs, &outboxCollector{st: st, now: now})
	if sz, ok := st.(interface{ Size() (int64, error) }); ok {
		cs = append(cs, gauge("gatehouse_store_size_bytes", "Size of the store file.", func() float64 {
			n, err := sz.Size()
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	if sr, ok := st.(interface {
		StartupDamage() (metaFallback bool, damagedRecords int)
	}); ok {
		fallback, damaged := sr.StartupDamage()
		fb := 0.0
		if fallback {
			fb = 1
		}
		cs = append(cs,
			gauge("gatehouse_store_meta_fallback", "1 when the store was opened from its older meta page (--accept-meta-rollback): the last commit before the start may be lost.",
				func() float64 { return fb }),
			gauge("gatehouse_store_damaged_records_at_start", "Stored records whose checksum failed when the store was opened.",
				func() float64 { return float64(damaged) }))
	}
	m.Registry.MustRegister(cs...)
}

// outboxCollector reports the notification outbox from one scan per
// scrape: how many messages wait and the age of the oldest, by the
// server's clock (-1 for both when the outbox cannot be read).
type outboxCollector struct {
	st  store.Store
	now func() time.Time
}

var (
	outboxQueuedDesc = prometheus.NewDesc("gatehouse_notifications_queued",
		"Completed-session notifications waiting for delivery (-1: the outbox cannot be read).", nil, nil)
	outboxAgeDesc = prometheus.NewDesc("gatehouse_notifications_oldest_age_seconds",
		"Age of the oldest notification waiting for delivery; 0 when none waits. Alert when it grows: deliveries are failing.", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxQueuedDesc
	ch <- outboxAgeDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	var n int
	var oldest time.Time
	err := c.st.View(context.Background(), func(tx store.ReadTx) (err error) {
		n, oldest, err = store.OutboxStats(tx)
		return err
	})
	queued, age := float64(n), 0.0
	switch {
	case err != nil:
		queued, age = -1, -1
	case n > 0:
		age = c.now().Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(outboxQueuedDesc, prometheus.GaugeValue, queued)
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
}
