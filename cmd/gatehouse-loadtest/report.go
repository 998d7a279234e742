package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
)

// latency holds percentiles in microseconds.
type latency struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func latencyOf(h *loadgen.Histogram) latency {
	return latency{P50: us(h.Quantile(0.5)), P90: us(h.Quantile(0.9)), P99: us(h.Quantile(0.99)), Max: us(h.Max()), Mean: us(h.Mean())}
}

type resultRow struct {
	Name            string  `json:"name"`
	Concurrency     int     `json:"concurrency"`
	Calls           uint64  `json:"calls"`
	Errors          uint64  `json:"errors"`
	FirstError      string  `json:"first_error,omitempty"`
	Seconds         float64 `json:"seconds"`
	CallsPerSec     float64 `json:"calls_per_s"`
	DecisionsPerSec float64 `json:"decisions_per_s"`
	Latency         latency `json:"latency"`
	CPUPerCallUS    float64 `json:"cpu_per_call_us,omitempty"`
	// Shed counts calls refused with RESOURCE_EXHAUSTED (the caller then
	// waited the RetryInfo delay); not in the latency figures.
	Shed uint64 `json:"shed,omitempty"`
}

func resultRowOf(r *loadgen.Result) resultRow {
	row := resultRow{Name: r.Name, Concurrency: r.Concurrency, Calls: r.Calls, Errors: r.Errors, Seconds: r.Elapsed.Seconds(),
		CallsPerSec: r.Throughput(), DecisionsPerSec: r.DecisionsPerSecond(), Latency: latencyOf(&r.Latency), CPUPerCallUS: us(r.CPUPerCall()),
		Shed: r.Shed}
	if r.FirstError != nil {
		row.FirstError = r.FirstError.Error()
	}
	return row
}

type comparisonRow struct {
	Concurrency     int       `json:"concurrency"`
	Baseline        resultRow `json:"baseline"`
	Subject         resultRow `json:"subject"`
	ThroughputRatio float64   `json:"throughput_ratio"`
	P50Ratio        float64   `json:"p50_ratio"`
	P90Ratio        float64   `json:"p90_ratio"`
	P99Ratio        float64   `json:"p99_ratio"`
	RoundRatios     []float64 `json:"round_throughput_ratios"`
	RoundP50Ratios  []float64 `json:"round_p50_ratios"`
	RoundP99Ratios  []float64 `json:"round_p99_ratios"`
	// CPURatio is the subject's CPU per call over the baseline's.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// Bare is the bare grpc-go health server measured in the same rounds;
	// the ratios are the subject's and the baseline's CPU per call and
	// throughput over the bare server's.
	Bare                   *resultRow `json:"bare,omitempty"`
	SubjectCPURatioBare    float64    `json:"subject_cpu_ratio_bare,omitempty"`
	BaselineCPURatioBare   float64    `json:"baseline_cpu_ratio_bare,omitempty"`
	SubjectThroughputBare  float64    `json:"subject_throughput_ratio_bare,omitempty"`
	BaselineThroughputBare float64    `json:"baseline_throughput_ratio_bare,omitempty"`
	// BareCheck is the bare server's undecided CheckFeature (the same
	// requests, a fixed answer) measured in the same rounds: what grpc-go
	// alone costs for them. Its CPU per call over the bare health check's
	// is the part of the subject's ratio that no server can avoid; the
	// subject's over it is what the daemon adds.
	BareCheck                *resultRow `json:"bare_check,omitempty"`
	BareCheckCPURatioBare    float64    `json:"bare_check_cpu_ratio_bare,omitempty"`
	SubjectCPURatioBareCheck float64    `json:"subject_cpu_ratio_bare_check,omitempty"`
}

func comparisonOf(c *loadgen.Comparison) comparisonRow {
	row := comparisonRow{Concurrency: c.Concurrency, Baseline: resultRowOf(&c.Baseline), Subject: resultRowOf(&c.Subject),
		ThroughputRatio: c.ThroughputRatio(), P50Ratio: c.LatencyRatio(0.5), P90Ratio: c.LatencyRatio(0.9), P99Ratio: c.LatencyRatio(0.99),
		RoundRatios: c.RoundRatios, RoundP50Ratios: c.RoundP50Ratios, RoundP99Ratios: c.RoundP99Ratios}
	row.CPURatio = ratio(row.Subject.CPUPerCallUS, row.Baseline.CPUPerCallUS)
	if len(c.Extra) > 0 {
		b := resultRowOf(&c.Extra[0])
		row.Bare = &b
		row.SubjectCPURatioBare = ratio(row.Subject.CPUPerCallUS, b.CPUPerCallUS)
		row.BaselineCPURatioBare = ratio(row.Baseline.CPUPerCallUS, b.CPUPerCallUS)
		row.SubjectThroughputBare = ratio(row.Subject.CallsPerSec, b.CallsPerSec)
		row.BaselineThroughputBare = ratio(row.Baseline.CallsPerSec, b.CallsPerSec)
		if len(c.Extra) > 1 {
			bc := resultRowOf(&c.Extra[1])
			row.BareCheck = &bc
			row.BareCheckCPURatioBare = ratio(bc.CPUPerCallUS, b.CPUPerCallUS)
			row.SubjectCPURatioBareCheck = ratio(row.Subject.CPUPerCallUS, bc.CPUPerCallUS)
		}
	}
	return row
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

type writeRow struct {
	Name       string  `json:"name"`
	Account    string  `json:"account"`
	Allowlist  int     `json:"account_allowlist"`
	Reps       int     `json:"account_representatives"`
	N          uint64  `json:"n"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Latency    latency `json:"latency"`
}

func writeRowOf(r *loadgen.WriteResult, a loadgen.AccountSize) writeRow {
	row := writeRow{Name: r.Name, Account: r.Account, Allowlist: a.Allowlist, Reps: a.Representatives, N: r.Latency.Count(),
		Errors: r.Errors, Latency: latencyOf(&r.Latency)}
	if r.FirstError != nil {
		row.FirstError = r.FirstError.Error()
	}
	return row
}

type target struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Met   bool   `json:"met"`
}

type report struct {
	Addr           string          `json:"addr"`
	Store          loadgen.Config  `json:"store"`
	Counts         loadgen.Counts  `json:"counts"`
	StoreRevision  uint64          `json:"store_revision"`
	CPUs           int             `json:"cpus"`
	GoVersion      string          `json:"go_version"`
	StartupSeconds float64         `json:"startup_s,omitempty"`
	RSSAfterStart  int64           `json:"rss_after_start_bytes,omitempty"`
	HWMAfterStart  int64           `json:"hwm_after_start_bytes,omitempty"`
	RSSAfterLoad   int64           `json:"rss_after_load_bytes,omitempty"`
	HWMAfterLoad   int64           `json:"hwm_after_load_bytes,omitempty"`
	Mix            map[string]int  `json:"mix"`
	Sessions       int             `json:"mix_sessions"`
	MixAccounts    int             `json:"mix_accounts"`
	PhaseSeconds   float64         `json:"phase_s"`
	SessionsAt     time.Time       `json:"sessions_at"`
	BareAddr       string          `json:"bare_addr,omitempty"`
	Overload       *overloadReport `json:"overload,omitempty"`
	Hostile        *hostileReport  `json:"hostile,omitempty"`
	CPUSource      string          `json:"cpu_source,omitempty"`
	// ClientCPUs and DaemonCPUs are the CPUs the load tool and the
	// daemon may run on; SeparateCores whether they share none (the
	// overload and hostile modes judge the server only then).
	ClientCPUs    string          `json:"client_cpus,omitempty"`
	DaemonCPUs    string          `json:"daemon_cpus,omitempty"`
	SeparateCores bool            `json:"separate_cores"`
	Comparisons   []comparisonRow `json:"comparisons"`
	Batch         comparisonRow   `json:"batch"`
	Writes        []writeRow      `json:"writes,omitempty"`
	Targets       []target        `json:"targets"`
}

func (r *report) evaluate() {
	r.Targets = nil
	add := func(name, value string, met bool) { r.Targets = append(r.Targets, target{name, value, met}) }
	if i := slices.IndexFunc(r.Comparisons, func(c comparisonRow) bool { return c.Concurrency == 50 }); i >= 0 {
		c := r.Comparisons[i]
		add("CheckFeature throughput >= 70% of health at 50 callers", fmt.Sprintf("%.0f%%", 100*c.ThroughputRatio), c.ThroughputRatio >= 0.7)
	}
	for _, c := range r.Comparisons {
		add(fmt.Sprintf("p50 within 1.3x of health at %d callers", c.Concurrency), fmt.Sprintf("%.2fx", c.P50Ratio), c.P50Ratio <= 1.3)
		add(fmt.Sprintf("p99 within 1.3x of health at %d callers", c.Concurrency), fmt.Sprintf("%.2fx", c.P99Ratio), c.P99Ratio <= 1.3)
	}
	for _, c := range r.Comparisons {
		if (c.Concurrency == 16 || c.Concurrency == 50) && c.Bare != nil && r.CPUSource == "daemon" {
			add(fmt.Sprintf("CheckFeature CPU/call <= 1.2x bare health at %d callers", c.Concurrency),
				fmt.Sprintf("%.2fx (%.1f vs %.1f µs)%s", c.SubjectCPURatioBare, c.Subject.CPUPerCallUS, c.Bare.CPUPerCallUS, bareCheckNote(c)),
				c.SubjectCPURatioBare > 0 && c.SubjectCPURatioBare <= 1.2)
		}
	}
	for _, c := range append(slices.Clone(r.Comparisons), r.Batch) {
		for _, x := range []resultRow{c.Baseline, c.Subject} {
			if x.Shed > 0 {
				add(fmt.Sprintf("no %s call shed at %d callers", x.Name, x.Concurrency), fmt.Sprintf("%d of %d", x.Shed, x.Calls), false)
			}
		}
	}
	if r.Batch.Subject.Calls > 0 {
		add(fmt.Sprintf("batch decisions/s >= 5x single calls (%d callers)", r.Batch.Concurrency), fmt.Sprintf("%.1fx", r.Batch.ThroughputRatio), r.Batch.ThroughputRatio >= 5)
	}
	if r.Overload != nil {
		r.judgeOnSeparateCores("overload", add, r.Overload.evaluate)
	}
	if r.Hostile != nil {
		r.judgeOnSeparateCores("hostile", add, r.Hostile.evaluate)
	}
	if r.RSSAfterLoad > 0 {
		add("daemon RSS <= 1 GiB", fmt.Sprintf("%.0f MiB (peak %.0f MiB)", mib(r.RSSAfterLoad), mib(r.HWMAfterLoad)), max(r.RSSAfterLoad, r.HWMAfterLoad) <= 1<<30)
	}
}

// judgeOnSeparateCores adds the targets of a mode that loads the server
// beyond its CPU (overload, hostile) when the daemon and the load tool ran
// on separate cores. On shared cores the latency it would judge is mostly
// the load tool's own scheduling, so the mode instead misses a target
// that says how to measure it. In-process (no daemon pid) it is judged as
// it is.
func (r *report) judgeOnSeparateCores(mode string, add func(name, value string, met bool), evaluate func(add func(name, value string, met bool))) {
	if r.DaemonCPUs == "" || r.SeparateCores {
		evaluate(add)
		return
	}
	add(mode+": daemon and load tool on separate cores (make "+mode+" pins them with taskset)",
		fmt.Sprintf("daemon on CPUs %s, load tool on %s: not judged", r.DaemonCPUs, r.ClientCPUs), false)
}

// bareCheckNote says how much of a CheckFeature/bare ratio the bare
// server's own CheckFeature already costs.
func bareCheckNote(c comparisonRow) string {
	if c.BareCheck == nil {
		return ""
	}
	return fmt.Sprintf("; bare CheckFeature %.2fx bare health, CheckFeature %.2fx bare CheckFeature", c.BareCheckCPURatioBare, c.SubjectCPURatioBareCheck)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "Gatehouse load test: %s, store %s (seed %d, revision %d), %d CPUs, %s\n",
		r.Addr, r.Store.Name, r.Store.Seed, r.StoreRevision, r.CPUs, r.GoVersion)
	if r.StartupSeconds > 0 {
		fmt.Fprintf(w, "start-up: %.2fs from exec to SERVING\n", r.StartupSeconds)
	}
	if r.RSSAfterStart > 0 {
		fmt.Fprintf(w, "daemon memory: VmRSS %.0f MiB after start-up, %.0f MiB after the load (VmHWM %.0f MiB)\n",
			mib(r.RSSAfterStart), mib(r.RSSAfterLoad), mib(max(r.HWMAfterLoad, r.HWMAfterStart)))
	}
	kinds := make([]string, 0, len(r.Mix))
	total := 0
	for k, n := range r.Mix {
		kinds = append(kinds, k)
		total += n
	}
	slices.Sort(kinds)
	var mix []string
	for _, k := range kinds {
		mix = append(mix, fmt.Sprintf("%s %.1f%%", k, 100*float64(r.Mix[k])/float64(total)))
	}
	fmt.Fprintf(w, "CheckFeature mix: %s (%d prepared checks on %d sessions in %d accounts)\n", strings.Join(mix, ", "), total, r.Sessions, r.MixAccounts)
	fmt.Fprintf(w, "sessions started shortly before %s (every answer checked against the generator's expected decision)\n", r.SessionsAt.Format(time.RFC3339))
	if r.DaemonCPUs != "" {
		sep := "separate cores"
		if !r.SeparateCores {
			sep = "SHARED cores"
		}
		fmt.Fprintf(w, "cores: daemon on CPUs %s, load tool on CPUs %s (%s)\n", r.DaemonCPUs, r.ClientCPUs, sep)
	}
	fmt.Fprintf(w, "%d rounds of %.1fs phases per concurrency, phases rotating in order; ratios are within this run", len(r.Batch.RoundRatios), r.PhaseSeconds)
	if r.CPUSource != "" {
		fmt.Fprintf(w, "; cpu = %s CPU time per call (utime+stime from /proc; bare Health and bare CheckFeature: the bare server's)", r.CPUSource)
	}
	fmt.Fprintf(w, "\n\n%-8s %-20s %12s %9s %9s %9s %9s %9s %7s %7s\n", "callers", "rpc", "calls/s", "p50 µs", "p90 µs", "p99 µs", "max µs", "cpu µs", "errors", "shed")
	row := func(x resultRow, rate float64) {
		fmt.Fprintf(w, "%-8d %-20s %12.0f %9.1f %9.1f %9.1f %9.0f %9.1f %7d %7d\n", x.Concurrency, x.Name, rate,
			x.Latency.P50, x.Latency.P90, x.Latency.P99, x.Latency.Max, x.CPUPerCallUS, x.Errors, x.Shed)
	}
	list := func(xs []float64) string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = fmt.Sprintf("%.2f", x)
		}
		return strings.Join(out, " ")
	}
	ratios := func(c comparisonRow) {
		fmt.Fprintf(w, "%-8s %-20s %11.2fx %8.2fx %8.2fx %8.2fx %9s %8.2fx\n", "", "ratio", c.ThroughputRatio, c.P50Ratio, c.P90Ratio, c.P99Ratio, "", c.CPURatio)
		if c.Bare != nil {
			fmt.Fprintf(w, "%-8s %-20s %11.2fx %39s %8.2fx\n", "", "Health/bare", c.BaselineThroughputBare, "", c.BaselineCPURatioBare)
			fmt.Fprintf(w, "%-8s %-20s %11.2fx %39s %8.2fx\n", "", "CheckFeature/bare", c.SubjectThroughputBare, "", c.SubjectCPURatioBare)
		}
		if c.BareCheck != nil {
			fmt.Fprintf(w, "%-8s %-20s %12s %39s %8.2fx\n", "", "bare CF/bare Health", "", "", c.BareCheckCPURatioBare)
			fmt.Fprintf(w, "%-8s %-20s %12s %39s %8.2fx\n", "", "CheckFeature/bare CF", "", "", c.SubjectCPURatioBareCheck)
		}
		fmt.Fprintf(w, "%-8s %-20s   per round: throughput %s | p50 %s | p99 %s\n", "", "", list(c.RoundRatios), list(c.RoundP50Ratios), list(c.RoundP99Ratios))
	}
	for _, c := range r.Comparisons {
		if c.Bare != nil {
			row(*c.Bare, c.Bare.CallsPerSec)
		}
		if c.BareCheck != nil {
			row(*c.BareCheck, c.BareCheck.CallsPerSec)
		}
		row(c.Baseline, c.Baseline.CallsPerSec)
		row(c.Subject, c.Subject.CallsPerSec)
		ratios(c)
	}
	if r.Batch.Subject.Calls > 0 {
		fmt.Fprintf(w, "\n%-8s %-20s %12s\n", "callers", "rpc", "decisions/s")
		row(r.Batch.Baseline, r.Batch.Baseline.DecisionsPerSec)
		row(r.Batch.Subject, r.Batch.Subject.DecisionsPerSec)
		ratios(r.Batch)
	}
	if len(r.Writes) > 0 {
		fmt.Fprintf(w, "\nwrites (one caller, fsync on, each returns once the decision snapshot reflects it):\n")
		fmt.Fprintf(w, "%-24s %-10s %9s %6s %4s %9s %9s %9s\n", "rpc", "account", "allowlist", "reps", "n", "p50 ms", "p99 ms", "max ms")
		for _, x := range r.Writes {
			fmt.Fprintf(w, "%-24s %-10s %9d %6d %4d %9.2f %9.2f %9.2f", x.Name, x.Account, x.Allowlist, x.Reps, x.N,
				x.Latency.P50/1e3, x.Latency.P99/1e3, x.Latency.Max/1e3)
			if x.Errors > 0 {
				fmt.Fprintf(w, "  %d errors, first: %s", x.Errors, x.FirstError)
			}
			fmt.Fprintln(w)
		}
	}
	if r.Overload != nil {
		r.Overload.print(w)
	}
	if r.Hostile != nil {
		r.Hostile.print(w)
	}
	fmt.Fprintf(w, "\ntargets:\n")
	missed := 0
	for _, t := range r.Targets {
		mark := "MET   "
		if !t.Met {
			mark = "MISSED"
			missed++
		}
		fmt.Fprintf(w, "  %s %-58s %s\n", mark, t.Name, t.Value)
	}
	if missed == 0 {
		fmt.Fprintf(w, "\nPASS: all %d targets met\n", len(r.Targets))
	} else {
		fmt.Fprintf(w, "\nFAIL: %d of %d targets missed\n", missed, len(r.Targets))
	}
}

type reflectRow struct {
	Kind      string  `json:"kind"`
	Account   string  `json:"account"`
	Allowlist int     `json:"account_allowlist"`
	Privacy   int     `json:"account_privacy_rules"`
	Reps      int     `json:"account_representatives"`
	N         uint64  `json:"n"`
	Commit    latency `json:"commit"`
	Reflect   latency `json:"reflect"`
	Rebuilt   int     `json:"accounts_rebuilt_per_write"`
	Accounts  int     `json:"accounts"`
}

func reflectRowOf(r *loadgen.ReflectResult, a loadgen.AccountSize) reflectRow {
	return reflectRow{Kind: r.Kind, Account: r.Account, Allowlist: a.Allowlist, Privacy: a.PrivacyRules, Reps: a.Representatives,
		N: r.Reflect.Count(), Commit: latencyOf(&r.Commit), Reflect: latencyOf(&r.Reflect), Rebuilt: r.Rebuilt, Accounts: r.Accounts}
}

type reflectReport struct {
	OpenSeconds float64      `json:"open_s"`
	LoadSeconds float64      `json:"load_s"`
	HeapInuse   uint64       `json:"heap_inuse_bytes"`
	RSS         int64        `json:"rss_bytes"`
	Accounts    int          `json:"accounts"`
	Sessions    int          `json:"sessions"`
	Series      []reflectRow `json:"series"`
}

func (r *reflectReport) print(w io.Writer) {
	fmt.Fprintf(w, "in-process: store opened in %.2fs, snapshot of %d accounts and %d sessions built in %.2fs; heap in use %.0f MiB, RSS %.0f MiB\n",
		r.OpenSeconds, r.Accounts, r.Sessions, r.LoadSeconds, float64(r.HeapInuse)/(1<<20), mib(r.RSS))
	fmt.Fprintf(w, "snapshot reflect (store.Update return -> follower swapped in that revision):\n")
	fmt.Fprintf(w, "%-10s %-10s %9s %7s %6s %4s %11s %11s %11s %11s %9s\n", "write", "account", "allowlist", "privacy", "reps", "n",
		"commit p50", "reflect p50", "reflect p99", "reflect max", "rebuilt")
	for _, x := range r.Series {
		fmt.Fprintf(w, "%-10s %-10s %9d %7d %6d %4d %9.2fms %9.2fms %9.2fms %9.2fms %4d/%d\n", x.Kind, x.Account, x.Allowlist, x.Privacy, x.Reps, x.N,
			x.Commit.P50/1e3, x.Reflect.P50/1e3, x.Reflect.P99/1e3, x.Reflect.Max/1e3, x.Rebuilt, x.Accounts)
	}
	fmt.Fprintf(w, "\ntargets:\n")
	for _, x := range r.Series {
		mark := "MET   "
		if x.Reflect.P99 > 50e3 {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s reflect p99 <= 50 ms, %s write on %s: %.1f ms\n", mark, x.Kind, x.Account, x.Reflect.P99/1e3)
	}
	if len(r.Series) > 0 {
		x := r.Series[0]
		mark := "MET   "
		if x.Rebuilt != 1 {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "  %s a write to one account rebuilds one account (%s on %s): %d of %d\n", mark, x.Kind, x.Account, x.Rebuilt, x.Accounts)
	}
}

// progress shows a one-line status on a terminal, rewritten in place; on
// other outputs it prints a line at most every few seconds.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	width int
	last  time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		pad := max(0, p.width-len(line))
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.width = len(line)
		return
	}
	if time.Since(p.last) >= 3*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = time.Now()
	}
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// failedCalls returns an error naming every phase (reads, overload,
// writes) in which a call failed unexpectedly, with its first failure
// (request and error); a failed call fails the run whatever the targets.
func (r *report) failedCalls() error {
	var failed []string
	note := func(name string, conc int, errs uint64, first string) {
		if errs > 0 {
			failed = append(failed, fmt.Sprintf("%d %s calls failed (%d callers), first: %s", errs, name, conc, first))
		}
	}
	for _, cmp := range append(slices.Clone(r.Comparisons), r.Batch) {
		for _, x := range []resultRow{cmp.Baseline, cmp.Subject} {
			note(x.Name, x.Concurrency, x.Errors, x.FirstError)
		}
		if cmp.Bare != nil {
			note(cmp.Bare.Name, cmp.Bare.Concurrency, cmp.Bare.Errors, cmp.Bare.FirstError)
		}
		if cmp.BareCheck != nil {
			note(cmp.BareCheck.Name, cmp.BareCheck.Concurrency, cmp.BareCheck.Errors, cmp.BareCheck.FirstError)
		}
	}
	if r.Overload != nil {
		for _, x := range r.Overload.Rows {
			note("CheckFeature overload", x.Concurrency, x.Errors, x.FirstError)
			if x.Probe != nil {
				note("CheckFeature overload probe", x.Concurrency, x.Probe.Errors, x.Probe.FirstError)
			}
		}
	}
	if h := r.Hostile; h != nil {
		for _, x := range []resultRow{h.Alone, h.UnderAttack} {
			note("normal tenant CheckFeature ("+x.Name+")", x.Concurrency, x.Errors, x.FirstError)
		}
		for _, a := range h.Attacks {
			note("hostile "+a.Name, 0, a.Errors, a.FirstError)
		}
	}
	for _, x := range r.Writes {
		note(x.Name+" on "+x.Account, 1, uint64(x.Errors), x.FirstError)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "\n"))
	}
	return nil
}
