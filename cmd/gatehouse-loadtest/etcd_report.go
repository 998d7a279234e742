package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
)

// Targets of the etcd mode.
const (
	// etcdCPUTarget bounds CheckFeature's CPU per call on an etcd
	// replica over the bbolt daemon's: decisions never touch the store.
	etcdCPUTarget = 1.1
	// visibilityTarget bounds the p99 time from a write on one replica
	// to a check deciding by it on another.
	visibilityTarget = 100 * time.Millisecond
)

type etcdReport struct {
	Store      loadgen.Config `json:"store"`
	Counts     loadgen.Counts `json:"counts"`
	SessionsAt time.Time      `json:"sessions_at"`
	CPUs       int            `json:"cpus"`
	GoVersion  string         `json:"go_version"`
	Members    int            `json:"etcd_members"`
	// LoadAverage is /proc/loadavg at each stage of the run.
	LoadAverage []loadRow `json:"load_average"`
	// LoadSeconds is how long writing the data set into etcd took.
	LoadSeconds     float64 `json:"etcd_load_s"`
	LoadRecords     int     `json:"etcd_load_records"`
	EtcdRevision    uint64  `json:"etcd_revision"`
	EtcdDBSize      int64   `json:"etcd_db_size_bytes"`
	EtcdDBSizeInUse int64   `json:"etcd_db_size_in_use_bytes"`
	// After the run's writes (EtcdWrites of them, through the daemons).
	EtcdDBSizeAfter      int64  `json:"etcd_db_size_after_bytes"`
	EtcdDBSizeInUseAfter int64  `json:"etcd_db_size_in_use_after_bytes"`
	EtcdRevisionAfter    uint64 `json:"etcd_revision_after"`
	EtcdWrites           int    `json:"etcd_writes"`

	Startup        []startupRow     `json:"startup"`
	StartupSummary []startupSummary `json:"startup_summary"`

	PhaseSeconds float64         `json:"phase_s"`
	Mix          map[string]int  `json:"mix"`
	Decisions    []decisionRow   `json:"decisions"`
	Writes       []etcdWriteRow  `json:"writes"`
	Visibility   []visibilityRow `json:"visibility"`
	MemoryAfter  []memoryRow     `json:"memory_after"`
	// IdleCPU is each process's CPU while nobody calls.
	IdleCPU []idleRow `json:"idle_cpu"`
	Targets []target  `json:"targets"`
}

type loadRow struct {
	Stage string     `json:"stage"`
	Load  [3]float64 `json:"load"`
}

func (r *etcdReport) loadAvg(stage string) {
	r.LoadAverage = append(r.LoadAverage, loadRow{Stage: stage, Load: loadAverage()})
}

type startupRow struct {
	Store   string  `json:"store"`
	Round   int     `json:"round"`
	Note    string  `json:"note,omitempty"`
	Seconds float64 `json:"seconds"`
	RSS     int64   `json:"rss_bytes"`
	HWM     int64   `json:"hwm_bytes"`
}

type startupSummary struct {
	Store string `json:"store"`
	// Medians over the start-ups of that store.
	Seconds float64 `json:"seconds"`
	RSS     int64   `json:"rss_bytes"`
	HWM     int64   `json:"hwm_bytes"`
	N       int     `json:"n"`
}

func (r *etcdReport) summarizeStartup() {
	r.StartupSummary = nil
	for _, store := range []string{"bbolt", "etcd"} {
		var secs, rss, hwm []float64
		for _, s := range r.Startup {
			if s.Store == store {
				secs, rss, hwm = append(secs, s.Seconds), append(rss, float64(s.RSS)), append(hwm, float64(s.HWM))
			}
		}
		r.StartupSummary = append(r.StartupSummary, startupSummary{Store: store, Seconds: loadgen.Median(secs),
			RSS: int64(loadgen.Median(rss)), HWM: int64(loadgen.Median(hwm)), N: len(secs)})
	}
}

// decisionRow compares CheckFeature on the bbolt daemon and an etcd
// replica at one concurrency, each with its own health check.
type decisionRow struct {
	Concurrency int       `json:"concurrency"`
	Bolt        resultRow `json:"bbolt"`
	Etcd        resultRow `json:"etcd"`
	BoltHealth  resultRow `json:"bbolt_health"`
	EtcdHealth  resultRow `json:"etcd_health"`
	// CPURatio is etcd's CPU per CheckFeature over bbolt's, over all
	// rounds; RoundCPURatios per round.
	CPURatio       float64   `json:"cpu_ratio"`
	RoundCPURatios []float64 `json:"round_cpu_ratios"`
	// HealthCPURatio is the same for the health check: what the two
	// daemons differ by for any call.
	HealthCPURatio  float64 `json:"health_cpu_ratio"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	P50Ratio        float64 `json:"p50_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
}

func decisionRowOf(c *loadgen.Comparison) decisionRow {
	row := decisionRow{Concurrency: c.Concurrency, Bolt: resultRowOf(&c.Baseline), Etcd: resultRowOf(&c.Subject),
		BoltHealth: resultRowOf(&c.Extra[0]), EtcdHealth: resultRowOf(&c.Extra[1]), RoundCPURatios: c.RoundCPURatios,
		ThroughputRatio: c.ThroughputRatio(), P50Ratio: c.LatencyRatio(0.5), P99Ratio: c.LatencyRatio(0.99)}
	row.CPURatio = ratio(row.Etcd.CPUPerCallUS, row.Bolt.CPUPerCallUS)
	row.HealthCPURatio = ratio(row.EtcdHealth.CPUPerCallUS, row.BoltHealth.CPUPerCallUS)
	return row
}

// writeSide is one store's figures of a write series.
type writeSide struct {
	N          int     `json:"n"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Latency    latency `json:"latency"`
	PerSecond  float64 `json:"writes_per_s"`
	// CPUPerWriteUS is the daemon's CPU per write; EtcdCPUPerWriteUS the
	// etcd members' together.
	CPUPerWriteUS     float64 `json:"cpu_per_write_us"`
	EtcdCPUPerWriteUS float64 `json:"etcd_cpu_per_write_us,omitempty"`
}

func writeSideOf(r *loadgen.WriteResult, cpu, etcdCPU, took time.Duration, n int) writeSide {
	s := writeSide{N: n, Errors: r.Errors, Latency: latencyOf(&r.Latency)}
	if r.FirstError != nil {
		s.FirstError = r.FirstError.Error()
	}
	if n > 0 {
		s.CPUPerWriteUS = us(cpu) / float64(n)
		s.EtcdCPUPerWriteUS = us(etcdCPU) / float64(n)
		if took > 0 {
			s.PerSecond = float64(n) / took.Seconds()
		}
	}
	return s
}

type etcdWriteRow struct {
	Series    string    `json:"series"`
	Name      string    `json:"name"`
	Account   string    `json:"account"`
	Allowlist int       `json:"account_allowlist"`
	Writers   int       `json:"writers,omitempty"`
	Bolt      writeSide `json:"bbolt"`
	Etcd      writeSide `json:"etcd"`
	P50Ratio  float64   `json:"p50_ratio"`
	P99Ratio  float64   `json:"p99_ratio"`
}

type visibilityRow struct {
	Account string `json:"account"`
	// Replicas is how many etcd replicas followed the store (A, B and
	// idle followers).
	Replicas        int     `json:"replicas"`
	Allowlist       int     `json:"account_allowlist"`
	PrivacyRules    int     `json:"account_privacy_rules"`
	Representatives int     `json:"account_representatives"`
	N               uint64  `json:"n"`
	Write           latency `json:"write"`
	FromAck         latency `json:"from_ack"`
	FromSend        latency `json:"from_send"`
	// FromCommit is from the moment a watch of etcd delivered the
	// commit: the figure the target judges.
	FromCommit latency `json:"from_commit"`
	RoundTrip  latency `json:"round_trip"`
	// CPU per write of replica A (the write), replica B (following the
	// watch and rebuilding the account; also its two checks) and the etcd
	// members together.
	CPUPerWriteA    float64 `json:"cpu_per_write_a_us"`
	CPUPerWriteB    float64 `json:"cpu_per_write_b_us"`
	CPUPerWriteEtcd float64 `json:"cpu_per_write_etcd_us"`
	// CPUPerWriteFollower is an idle follower's CPU per write: following
	// the watch and rebuilding the account, nothing else.
	CPUPerWriteFollower float64 `json:"cpu_per_write_follower_us,omitempty"`
}

type idleRow struct {
	Process     string  `json:"process"`
	MSPerSecond float64 `json:"cpu_ms_per_s"`
}

type memoryRow struct {
	Process string `json:"process"`
	RSS     int64  `json:"rss_bytes"`
	HWM     int64  `json:"hwm_bytes"`
}

func (r *etcdReport) evaluate() {
	r.Targets = nil
	add := func(name, value string, met bool) {
		r.Targets = append(r.Targets, target{Name: name, Value: value, Met: met})
	}
	for _, d := range r.Decisions {
		add(fmt.Sprintf("CheckFeature CPU per call, etcd replica / bbolt daemon <= %.1fx, %d callers", etcdCPUTarget, d.Concurrency),
			fmt.Sprintf("%.2fx (rounds %s)", d.CPURatio, ratios(d.RoundCPURatios)), d.CPURatio > 0 && d.CPURatio <= etcdCPUTarget)
	}
	for _, v := range r.Visibility {
		p99 := time.Duration(v.FromCommit.P99 * 1e3)
		add(fmt.Sprintf("write on replica A decides on replica B, p99 <= %v from the commit (%s, %d replicas, %d writes)", visibilityTarget, v.Account, v.Replicas, v.N),
			fmt.Sprintf("p99 %.1f ms from the commit (%.1f ms from A's acknowledgement, %.1f ms from the write's send)", v.FromCommit.P99/1e3, v.FromAck.P99/1e3, v.FromSend.P99/1e3),
			v.N >= 200 && v.FromCommit.P99 > 0 && p99 <= visibilityTarget)
	}
}

func ratios(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, " ")
}

// failedCalls returns an error naming every write series with a failed
// call (decisions and visibility end the run at their first).
func (r *etcdReport) failedCalls() error {
	var failed []string
	for _, w := range r.Writes {
		for _, s := range []struct {
			store string
			side  writeSide
		}{{"bbolt", w.Bolt}, {"etcd", w.Etcd}} {
			if s.side.Errors > 0 {
				failed = append(failed, fmt.Sprintf("%d %s calls on %s failed (%s), first: %s", s.side.Errors, w.Name, w.Account, s.store, s.side.FirstError))
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "\n"))
	}
	return nil
}

func ms(usec float64) float64 { return usec / 1e3 }

func (r *etcdReport) print(w io.Writer) {
	fmt.Fprintf(w, "Gatehouse on etcd against bbolt: store %s (seed %d), %d etcd members on loopback, %d CPUs, %s\n",
		r.Store.Name, r.Store.Seed, r.Members, r.CPUs, r.GoVersion)
	var loads []string
	for _, l := range r.LoadAverage {
		loads = append(loads, fmt.Sprintf("%s %.1f", l.Stage, l.Load[0]))
	}
	fmt.Fprintf(w, "load average (1 min) at each stage: %s\n", strings.Join(loads, ", "))
	fmt.Fprintf(w, "data set into etcd: %d records in %.1fs (%.0f records/s, chunks within etcd's transaction limits), revision %d, database %.0f MiB (%.0f MiB in use)\n",
		r.LoadRecords, r.LoadSeconds, float64(r.LoadRecords)/max(r.LoadSeconds, 1e-9), r.EtcdRevision, mib(r.EtcdDBSize), mib(r.EtcdDBSizeInUse))

	if r.EtcdWrites > 0 {
		fmt.Fprintf(w, "after %d admin writes through the replicas (revision %d): database %.0f MiB (%.0f MiB in use), %.1f KiB more per write (no compaction ran)\n",
			r.EtcdWrites, r.EtcdRevisionAfter, mib(r.EtcdDBSizeAfter), mib(r.EtcdDBSizeInUseAfter),
			float64(r.EtcdDBSizeInUseAfter-r.EtcdDBSizeInUse)/1024/float64(r.EtcdWrites))
	}

	fmt.Fprintln(w, "\nstart-up (exec to SERVING) and memory right after; medians:")
	fmt.Fprintln(w, "  store  start-ups  seconds  VmRSS MiB  VmHWM MiB")
	for _, s := range r.StartupSummary {
		fmt.Fprintf(w, "  %-6s %9d  %7.2f  %9.0f  %9.0f\n", s.Store, s.N, s.Seconds, mib(s.RSS), mib(s.HWM))
	}
	if len(r.StartupSummary) == 2 {
		b, e := r.StartupSummary[0], r.StartupSummary[1]
		fmt.Fprintf(w, "  etcd / bbolt: start-up %.2fx, VmRSS %.2fx\n", ratio(e.Seconds, b.Seconds), ratio(float64(e.RSS), float64(b.RSS)))
	}

	fmt.Fprintf(w, "\nCheckFeature, the same verified workload on each daemon (%d rounds of %.1fs phases, rotating):\n", len(firstRounds(r.Decisions)), r.PhaseSeconds)
	fmt.Fprintln(w, "  callers  CPU us/call bbolt / etcd  ratio (median of rounds; rounds)   health us/call bbolt / etcd  ratio  calls/s bbolt / etcd")
	for _, d := range r.Decisions {
		fmt.Fprintf(w, "  %7d  %12.1f / %-10.1f %5.2f (%.2f; %s)  %13.1f / %-8.1f %5.2f  %7.0f / %.0f\n", d.Concurrency, d.Bolt.CPUPerCallUS, d.Etcd.CPUPerCallUS,
			d.CPURatio, loadgen.Median(d.RoundCPURatios), ratios(d.RoundCPURatios), d.BoltHealth.CPUPerCallUS, d.EtcdHealth.CPUPerCallUS, d.HealthCPURatio, d.Bolt.CallsPerSec, d.Etcd.CallsPerSec)
	}

	fmt.Fprintln(w, "\nadmin writes (ms; CPU per write in us: the daemon's, and etcd's members together):")
	fmt.Fprintln(w, "  series                     bbolt p50 / p99   etcd p50 / p99   ratio p50 / p99  writes/s bbolt / etcd  CPU bbolt / etcd daemon + etcd")
	for _, x := range r.Writes {
		fmt.Fprintf(w, "  %-26s %6.1f / %-7.1f %6.1f / %-7.1f %5.2f / %-5.2f    %6.0f / %-6.0f    %6.0f / %.0f + %.0f\n", x.Series,
			ms(x.Bolt.Latency.P50), ms(x.Bolt.Latency.P99), ms(x.Etcd.Latency.P50), ms(x.Etcd.Latency.P99), x.P50Ratio, x.P99Ratio,
			x.Bolt.PerSecond, x.Etcd.PerSecond, x.Bolt.CPUPerWriteUS, x.Etcd.CPUPerWriteUS, x.Etcd.EtcdCPUPerWriteUS)
	}

	fmt.Fprintln(w, "\nwrite on replica A, then CheckFeature on replica B with its revision as min_revision (ms):")
	fmt.Fprintln(w, "  account    allowlist  replicas  writes  write p50/p99   from commit p50/p99/max  from ack p50/p99/max    from send p50/p99/max   B round trip p50  CPU us/write A / B / etcd / follower")
	for _, v := range r.Visibility {
		fmt.Fprintf(w, "  %-10s %9d  %8d  %6d  %5.1f / %-6.1f  %5.1f / %5.1f / %-6.1f   %5.1f / %5.1f / %-6.1f  %5.1f / %5.1f / %-6.1f  %6.2f            %.0f / %.0f / %.0f / %.0f\n",
			v.Account, v.Allowlist, v.Replicas, v.N, ms(v.Write.P50), ms(v.Write.P99), ms(v.FromCommit.P50), ms(v.FromCommit.P99), ms(v.FromCommit.Max),
			ms(v.FromAck.P50), ms(v.FromAck.P99), ms(v.FromAck.Max),
			ms(v.FromSend.P50), ms(v.FromSend.P99), ms(v.FromSend.Max), ms(v.RoundTrip.P50), v.CPUPerWriteA, v.CPUPerWriteB, v.CPUPerWriteEtcd, v.CPUPerWriteFollower)
	}

	var idle []string
	for _, x := range r.IdleCPU {
		idle = append(idle, fmt.Sprintf("%s %.0f", x.Process, x.MSPerSecond))
	}
	fmt.Fprintf(w, "\nidle CPU (ms per second, nobody calling; included in the per-write CPU above): %s\n", strings.Join(idle, ", "))

	fmt.Fprintln(w, "\nmemory at the end (MiB):")
	for _, x := range r.MemoryAfter {
		fmt.Fprintf(w, "  %-10s VmRSS %6.0f  VmHWM %6.0f\n", x.Process, mib(x.RSS), mib(x.HWM))
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, t := range r.Targets {
		status := "met"
		if !t.Met {
			status = "MISSED"
		}
		fmt.Fprintf(w, "  %-6s %s: %s\n", status, t.Name, t.Value)
	}
	missed := slices.ContainsFunc(r.Targets, func(t target) bool { return !t.Met })
	if missed {
		fmt.Fprintln(w, "FAIL")
	} else {
		fmt.Fprintln(w, "PASS")
	}
}

func firstRounds(d []decisionRow) []float64 {
	if len(d) == 0 {
		return nil
	}
	return d[0].RoundCPURatios
}
