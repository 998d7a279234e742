package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
)

// overloadRow is CheckFeature at one number of callers in overload mode:
// calls answered, calls shed (RESOURCE_EXHAUSTED; the caller waited the
// RetryInfo delay before its next call) and the latency of each, measured
// per call from send to receive.
type overloadRow struct {
	Concurrency  int     `json:"concurrency"`
	Calls        uint64  `json:"calls"`
	Answered     uint64  `json:"answered"`
	Shed         uint64  `json:"shed"`
	Errors       uint64  `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	ShedShare    float64 `json:"shed_share"`
	AnsweredPerS float64 `json:"answered_per_s"`
	Latency      latency `json:"latency"`
	ShedLatency  latency `json:"shed_latency"`
	CPUPerCallUS float64 `json:"cpu_per_answered_call_us,omitempty"`
	// DaemonCPUShare is the daemon's CPU time over the phases' wall time
	// (1.0: one core busy all the time): below the cores it may use, the
	// daemon was not the bottleneck.
	DaemonCPUShare float64 `json:"daemon_cpu_share,omitempty"`
	// QueueDelayP99US and QueueOver5ms are the daemon's own measure of
	// the wait the shedder judges (arrival on the connection to the
	// handler's start; from its gatehouse_queue_delay_seconds histogram,
	// -metrics-addr): the bucket bound of its p99 (-1: above the largest)
	// and the share of calls that waited longer than 5ms.
	QueueDelayP99US float64 `json:"queue_delay_p99_us,omitempty"`
	QueueOver5ms    float64 `json:"queue_delay_over_5ms,omitempty"`
	// P99Ratio is the answered calls' p99 over that of the fewest callers:
	// the probe callers' when there are probes (the judged figure), else
	// the load callers'.
	P99Ratio float64 `json:"p99_ratio_to_fewest"`
	// LoadP99Ratio is the load callers' own answered p99 over theirs at
	// the fewest callers, which includes the load tool's own scheduling.
	LoadP99Ratio float64 `json:"load_p99_ratio_to_fewest"`
	// Probe is what the probe callers (a process of their own, a few
	// callers at a steady pace) measured during this number of callers.
	Probe *probeRow `json:"probe,omitempty"`
}

// probeRow is the probe callers' outcome at one number of load callers.
type probeRow struct {
	Answered    uint64  `json:"answered"`
	Shed        uint64  `json:"shed"`
	Errors      uint64  `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Latency     latency `json:"latency"`
	ShedLatency latency `json:"shed_latency"`
}

type overloadReport struct {
	Rounds       int           `json:"rounds"`
	PhaseSeconds float64       `json:"phase_s"`
	Probes       int           `json:"probes"`
	Rows         []overloadRow `json:"rows"`
	MetricsError string        `json:"metrics_error,omitempty"`
}

// measureOverload runs CheckFeature at each number of callers of
// c.overload, rotating their order every round, with callers that honour
// RetryInfo when shed.
func measureOverload(ctx context.Context, conns loadgen.Conns, w *loadgen.Workload, abort context.CancelCauseFunc, c runConfig,
	cpu func() time.Duration, prog *progress) (*overloadReport, error) {
	check := loadgen.FailFast(abort, loadgen.CheckOp(conns, w))
	results := make([]loadgen.Result, len(c.overload))
	probes := make([]probeResult, len(c.overload))
	delays := make([]delayBuckets, len(c.overload))
	var pr *prober
	if c.probes > 0 {
		var err error
		if pr, err = startProber(c.addr, c.manifest, c.probes); err != nil {
			return nil, fmt.Errorf("overload probes: %w", err)
		}
		defer pr.close()
	}
	var scrapeErr error
	for r := range c.olRounds {
		for k := range c.overload {
			i := (k + r) % len(c.overload)
			n := c.overload[i]
			var before delayBuckets
			if c.metricsAddr != "" && scrapeErr == nil {
				before, scrapeErr = scrapeQueueDelay(ctx, c.metricsAddr)
			}
			// The probes measure from a tenth into the phase, once the
			// load callers have started, to its last twentieth.
			window := make(chan *probeResult, 1)
			var probeErr error
			onStart := func() {}
			if pr != nil {
				onStart = func() {
					go func() {
						time.Sleep(c.olPhase / 10)
						if probeErr = pr.start(); probeErr != nil {
							window <- nil
							return
						}
						time.Sleep(c.olPhase * 85 / 100)
						var res *probeResult
						res, probeErr = pr.stop()
						window <- res
					}()
				}
			}
			res := loadgen.RunPhase(ctx, loadgen.Phase{Name: "CheckFeature overload", Concurrency: n, Duration: c.olPhase, Op: check,
				HonorShed: true, CPUClock: cpu, OnStart: onStart, Progress: func(p loadgen.Progress) {
					prog.show(fmt.Sprintf("overload round %d/%d: %d callers %5.1fs/%.1fs %8.0f calls/s errors %d", r+1, c.olRounds, n,
						p.Elapsed.Seconds(), p.Duration.Seconds(), float64(p.Calls)/max(p.Elapsed.Seconds(), 1e-9), p.Errors))
				}})
			results[i].Merge(&res)
			if pr != nil {
				got := <-window
				if probeErr != nil {
					return nil, fmt.Errorf("overload probes: %w", probeErr)
				}
				probes[i].merge(got)
			}
			if c.metricsAddr != "" && scrapeErr == nil {
				var after delayBuckets
				if after, scrapeErr = scrapeQueueDelay(ctx, c.metricsAddr); scrapeErr == nil {
					delays[i] = delays[i].add(after.since(before))
				}
			}
		}
	}
	prog.done()
	rep := &overloadReport{Rounds: c.olRounds, PhaseSeconds: c.olPhase.Seconds(), Probes: c.probes}
	if scrapeErr != nil {
		rep.MetricsError = scrapeErr.Error()
	}
	for i := range results {
		x := &results[i]
		row := overloadRow{Concurrency: c.overload[i], Calls: x.Calls, Shed: x.Shed, Errors: x.Errors, Answered: x.Calls - x.Shed - x.Errors,
			AnsweredPerS: x.Throughput(), Latency: latencyOf(&x.Latency), ShedLatency: latencyOf(&x.ShedLatency)}
		if x.Calls > 0 {
			row.ShedShare = float64(x.Shed) / float64(x.Calls)
		}
		if row.Answered > 0 && x.CPU > 0 {
			row.CPUPerCallUS = us(x.CPU) / float64(row.Answered)
		}
		if x.FirstError != nil {
			row.FirstError = x.FirstError.Error()
		}
		if x.Elapsed > 0 {
			row.DaemonCPUShare = x.CPU.Seconds() / x.Elapsed.Seconds()
		}
		if c.metricsAddr != "" && scrapeErr == nil {
			row.QueueDelayP99US, row.QueueOver5ms = delays[i].quantile(0.99), delays[i].shareOver(5*time.Millisecond)
		}
		if pr != nil {
			p := &probes[i]
			row.Probe = &probeRow{Answered: p.Answered, Shed: p.Shed, Errors: p.Errors, FirstError: p.FirstError,
				Latency: latencyOf(&p.Latency), ShedLatency: latencyOf(&p.ShedLatency)}
		}
		rep.Rows = append(rep.Rows, row)
	}
	if len(rep.Rows) > 0 {
		first := rep.Rows[0]
		for i := range rep.Rows {
			x := &rep.Rows[i]
			x.LoadP99Ratio = ratio(x.Latency.P99, first.Latency.P99)
			x.P99Ratio = x.LoadP99Ratio
			if x.Probe != nil && first.Probe != nil {
				x.P99Ratio = ratio(x.Probe.Latency.P99, first.Probe.Latency.P99)
			}
		}
	}
	return rep, nil
}

func (o *overloadReport) print(w io.Writer) {
	fmt.Fprintf(w, "\noverload: CheckFeature, %d rounds of %.1fs phases, callers honour RetryInfo when shed; latency per call from send to receive\n",
		o.Rounds, o.PhaseSeconds)
	fmt.Fprintf(w, "%-8s %10s %10s %7s %12s %9s %9s %9s %10s %10s %9s %7s\n", "callers", "answered", "shed", "shed %", "answered/s",
		"p50 µs", "p99 µs", "p99 x", "shed p50", "shed p99", "cpu µs", "errors")
	for _, r := range o.Rows {
		fmt.Fprintf(w, "%-8d %10d %10d %6.1f%% %12.0f %9.0f %9.0f %8.2fx %10.0f %10.0f %9.1f %7d\n", r.Concurrency, r.Answered, r.Shed,
			100*r.ShedShare, r.AnsweredPerS, r.Latency.P50, r.Latency.P99, r.P99Ratio, r.ShedLatency.P50, r.ShedLatency.P99, r.CPUPerCallUS, r.Errors)
	}
	fmt.Fprintf(w, "where the time goes: daemon CPU (its CPU time over wall time; 1.00 = one core busy) and the daemon's own queue delay (arrival on the connection to the handler, what the shedder judges)\n")
	fmt.Fprintf(w, "%-8s %10s %16s %16s\n", "callers", "daemon cpu", "queue delay p99", "waited > 5ms")
	for _, r := range o.Rows {
		p99 := "n/a"
		over := "n/a"
		switch {
		case r.QueueDelayP99US < 0:
			p99, over = "> 1s", fmt.Sprintf("%.1f%%", 100*r.QueueOver5ms)
		case r.QueueDelayP99US > 0:
			p99, over = fmt.Sprintf("<= %.0f µs", r.QueueDelayP99US), fmt.Sprintf("%.1f%%", 100*r.QueueOver5ms)
		}
		fmt.Fprintf(w, "%-8d %10.2f %16s %16s\n", r.Concurrency, r.DaemonCPUShare, p99, over)
	}
	if o.MetricsError != "" {
		fmt.Fprintf(w, "(queue delay not read: %s)\n", o.MetricsError)
	}
	if o.Probes > 0 {
		fmt.Fprintf(w, "probe callers: %d in a process of their own, one call every 2ms each, honouring RetryInfo; their answered p99 is the judged latency (the load callers' own includes the load tool's scheduling of its callers)\n", o.Probes)
		fmt.Fprintf(w, "%-8s %10s %8s %9s %9s %9s %8s %12s %7s\n", "callers", "answered", "shed", "p50 µs", "p99 µs", "p99 x", "load x", "shed p99 µs", "errors")
		for _, r := range o.Rows {
			if p := r.Probe; p != nil {
				fmt.Fprintf(w, "%-8d %10d %8d %9.0f %9.0f %8.2fx %7.2fx %12.0f %7d\n", r.Concurrency, p.Answered, p.Shed, p.Latency.P50, p.Latency.P99,
					r.P99Ratio, r.LoadP99Ratio, p.ShedLatency.P99, p.Errors)
			}
		}
	}
}

// evaluate adds the overload targets: the answered calls at the most
// callers keep a p99 within 3x that at the fewest, and shed calls are
// answered within the same bound, both as the probe callers measured them
// when there are probes; and no call failed.
func (o *overloadReport) evaluate(add func(name, value string, met bool)) {
	if len(o.Rows) < 2 {
		return
	}
	first, last := o.Rows[0], o.Rows[len(o.Rows)-1]
	who, fl, ll := "load callers", first.Latency, last.Latency
	lastShed, shedP99 := last.Shed, last.ShedLatency.P99
	if first.Probe != nil && last.Probe != nil {
		who, fl, ll = "probe callers", first.Probe.Latency, last.Probe.Latency
		lastShed, shedP99 = last.Probe.Shed, last.Probe.ShedLatency.P99
	}
	add(fmt.Sprintf("overload: answered p99 at %d callers <= 3x p99 at %d (%s)", last.Concurrency, first.Concurrency, who),
		fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", last.P99Ratio, ll.P99, fl.P99), last.P99Ratio > 0 && last.P99Ratio <= 3)
	if lastShed > 0 {
		r := ratio(shedP99, fl.P99)
		add(fmt.Sprintf("overload: shed answers' p99 at %d callers <= 3x answered p99 at %d (%s)", last.Concurrency, first.Concurrency, who),
			fmt.Sprintf("%.2fx (%.0f µs)", r, shedP99), r <= 3)
	}
	for _, r := range o.Rows {
		if r.Errors > 0 {
			add(fmt.Sprintf("overload: no failed calls at %d callers", r.Concurrency), fmt.Sprintf("%d, first: %s", r.Errors, r.FirstError), false)
		}
		if p := r.Probe; p != nil && p.Errors > 0 {
			add(fmt.Sprintf("overload: no failed probe calls at %d callers", r.Concurrency), fmt.Sprintf("%d, first: %s", p.Errors, p.FirstError), false)
		}
	}
}
