// Command gatehouse-loadtest generates large Gatehouse stores and measures
// a running daemon against them.
//
//	gatehouse-loadtest gendata -data-dir DIR [-scale large|small|tiny] [-seed N] [-force]
//	gatehouse-loadtest run     [-addr 127.0.0.1:8470] -manifest DIR [-duration 60s] ...
//	gatehouse-loadtest reflect -data-dir DIR [-writes 20]
//	gatehouse-loadtest etcd    -data-dir DIR [-gatehoused bin/gatehoused] ...
//
// gendata fills an empty bbolt store with a deterministic tenant population
// (internal/loadgen) and writes loadgen-manifest.json next to it.
//
// run measures, against one daemon in one run, the standard gRPC health
// Check as a baseline and CheckFeature with a realistic mix, alternating
// the two in rounds at each concurrency, then CheckFeatures in batches of
// 100 against single calls, then sequential writes; it prints throughput,
// latency percentiles and the ratios to the baseline, and checks them
// against the targets. It only talks to loopback addresses.
//
// reflect opens the store itself (the daemon must be stopped) and measures
// how long the decision snapshot takes to reflect a write to one account,
// and that only that account is rebuilt.
//
// etcd starts a cluster of real etcd processes on loopback, copies the
// generated data set into it, starts gatehoused replicas on it and one on
// the bbolt store, and measures them against each other in one run:
// CheckFeature CPU per call, admin write latency, how soon a write on one
// replica decides checks on another, start-up time and memory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gatehouse-loadtest:", err)
		}
		os.Exit(1)
	}
}

// usage lists the subcommands.
const usage = `gatehouse-loadtest generates large Gatehouse stores and measures a daemon against them.

Usage:
  gatehouse-loadtest gendata -data-dir DIR [-scale large|small|tiny] [-seed N] [-force]
      fill DIR with a generated tenant population and its manifest
  gatehouse-loadtest run [-addr 127.0.0.1:8470] -manifest DIR [-duration 60s] [-overload 20,200,2000] [-hostile] ...
      measure a running daemon on the store gendata generated (the default command)
  gatehouse-loadtest reflect -data-dir DIR [-writes 20]
      measure how fast the decision snapshot reflects writes (daemon stopped)
  gatehouse-loadtest etcd -data-dir DIR [-gatehoused bin/gatehoused] [-members 3] ...
      start a cluster of etcd processes and gatehoused replicas on it, and
      measure them against a gatehoused on the bbolt store in DIR
  gatehouse-loadtest bare-server
      a bare grpc-go health server (started by run as a baseline)
  gatehouse-loadtest probe -addr ADDR -manifest DIR [-callers 4]
      probe callers in a process of their own (started by run -overload)

Start with gendata, then run against a daemon serving that directory
(make loadtest does both). "gatehouse-loadtest COMMAND -h" lists a
command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	err := dispatch(ctx, cmd, args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		// A command's -h printed its flags: asking for help is not a
		// failure.
		return nil
	}
	return err
}

// missingData explains how to make the data a command needs when path
// does not exist.
func missingData(err error, flagName, path string) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w\nno generated load-test data at %s: generate it first with\n  gatehouse-loadtest gendata -data-dir %s -scale large\n(or make gendata), serve it with gatehoused --data-dir %s, and pass %s %s (make loadtest does all of this)",
			err, path, path, path, flagName, path)
	}
	return err
}

func dispatch(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	switch cmd {
	case "gendata":
		return gendata(ctx, args, stdout, stderr)
	case "run":
		return loadtest(ctx, args, stdout, stderr)
	case "reflect":
		return reflect(ctx, args, stdout, stderr)
	case "bare-server":
		return bareServer(ctx, args, os.Stdin, stdout, stderr)
	case "probe":
		return probeCommand(ctx, args, os.Stdin, stdout, stderr)
	case "etcd":
		return etcdMode(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q (want gendata, run, reflect, etcd, bare-server or probe; see gatehouse-loadtest --help)", cmd)
}

// ---- gendata ----

func gendata(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gendata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "directory of the store to fill (required)")
	scale := fs.String("scale", "large", "population preset: large, small or tiny")
	seed := fs.Uint64("seed", 1, "random seed")
	force := fs.Bool("force", false, "replace an existing store in data-dir")
	probes := fs.Int("probes", 400, "sessions described in the manifest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("gendata: -data-dir is required")
	}
	cfg, err := loadgen.Preset(*scale)
	if err != nil {
		return err
	}
	cfg.Seed = *seed
	dbPath := filepath.Join(*dir, bolt.FileName)
	t0 := time.Now()
	d, err := loadgen.Generate(cfg)
	if err != nil {
		return err
	}
	// Sessions start shortly before now: a daemon ends sessions older
	// than its --session-max-age when it starts.
	d.StampSessions(time.Now())
	genTime := time.Since(t0)
	if _, err := os.Stat(dbPath); err == nil {
		m, merr := loadgen.ReadManifest(*dir)
		reuse := merr == nil && m.Matches(cfg) && !*force
		switch {
		case errors.Is(merr, loadgen.ErrManifestVersion):
			// Generated by another version of the generator: its
			// sessions and expected answers may differ.
			fmt.Fprintf(stdout, "gendata: %s was generated by another version (%v); generating it again\n", dbPath, merr)
		case !reuse && !*force:
			return fmt.Errorf("gendata: %s exists and was not generated with scale %s seed %d; use -force to replace it", dbPath, cfg.Name, cfg.Seed)
		}
		if reuse {
			rev, err := restamp(ctx, *dir, d)
			switch {
			case err == nil:
				m.Revision, m.SessionsAt = rev, d.SessionsStampedAt()
				if err := loadgen.WriteManifest(*dir, m); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "gendata: reusing %s (%s, seed %d, revision %d); sessions re-stamped to start before %s\n",
					dbPath, cfg.Name, cfg.Seed, rev, m.SessionsAt.Format(time.RFC3339))
				return nil
			case errors.Is(err, loadgen.ErrStale):
				fmt.Fprintf(stdout, "gendata: %s cannot be reused (%v); generating it again\n", dbPath, err)
			default:
				return err
			}
		}
		for _, p := range []string{dbPath, filepath.Join(*dir, loadgen.ManifestName)} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	st, err := bolt.Open(*dir)
	if err != nil {
		return err
	}
	t1 := time.Now()
	prog := newProgress(stderr)
	rev, err := loadgen.WriteStore(ctx, st, d, loadgen.WriteOptions{Progress: func(done, total int) {
		prog.show(fmt.Sprintf("gendata: %d/%d records (%.0f%%) %s", done, total, 100*float64(done)/float64(total), time.Since(t1).Round(time.Millisecond)))
	}})
	prog.done()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	writeTime := time.Since(t1)
	m := loadgen.NewManifest(d, rev, *probes)
	m.Generated = time.Now().UTC().Truncate(time.Second)
	m.WriteSeconds = writeTime.Seconds()
	if err := loadgen.WriteManifest(*dir, m); err != nil {
		return err
	}
	fi, _ := os.Stat(dbPath)
	c := m.Counts
	fmt.Fprintf(stdout, "gendata: %s scale, seed %d: generated in %s, written in %s (revision %d, %.1f MiB)\n",
		cfg.Name, cfg.Seed, genTime.Round(time.Millisecond), writeTime.Round(time.Millisecond), rev, float64(fi.Size())/(1<<20))
	fmt.Fprintf(stdout, "  %d accounts; %d allowlist entries (largest %d, %d accounts without); %d privacy rules (largest %d)\n",
		c.Accounts, c.AllowlistEntries, c.MaxAllowlist, c.EmptyAllowlists, c.PrivacyRules, c.MaxPrivacyRules)
	fmt.Fprintf(stdout, "  %d top portals (%d portal records with subportals); %d teams; %d representatives (largest %d)\n",
		c.TopPortals, c.PortalRecords, c.Teams, c.Representatives, c.MaxReps)
	fmt.Fprintf(stdout, "  %d active sessions (%d support); manifest %s\n", c.Sessions, c.SupportSessions, filepath.Join(*dir, loadgen.ManifestName))
	return nil
}

// restamp moves the start times of the generated sessions in the store in
// dir to d's stamp.
func restamp(ctx context.Context, dir string, d *loadgen.Dataset) (uint64, error) {
	st, err := bolt.Open(dir)
	if err != nil {
		return 0, err
	}
	rev, err := loadgen.RestampSessions(ctx, st, d)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return rev, err
}

// ---- run ----

type runConfig struct {
	addr        string
	manifest    string
	duration    time.Duration
	conc        []int
	rounds      int
	conns       int
	batch       int
	batchConc   int
	writes      int
	pid         int
	startedAt   int64
	wait        time.Duration
	jsonOut     string
	checkTarget bool
	inprocess   string
	logLevel    string
	cpuProfile  string
	memProfile  string
	bare        bool
	baseline    bool
	overload    []int
	olRounds    int
	olPhase     time.Duration
	metricsAddr string
	probes      int
	hostile     bool
	hoRounds    int
	hoPhase     time.Duration
	hoCallers   int
	hoAttacks   string
}

func loadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c runConfig
	var conc string
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8470", "daemon address (loopback only)")
	fs.StringVar(&c.manifest, "manifest", "./data", "manifest file, or the data directory holding it")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "total time budget of the measurement")
	fs.StringVar(&conc, "concurrency", "1,16,50", "comma-separated numbers of concurrent callers")
	fs.IntVar(&c.rounds, "rounds", 4, "alternating baseline/subject rounds per concurrency")
	fs.IntVar(&c.conns, "conns", 4, "client connections shared by the callers")
	fs.IntVar(&c.batch, "batch", 100, "checks per CheckFeatures call")
	fs.IntVar(&c.batchConc, "batch-concurrency", 16, "callers in the batch comparison")
	fs.IntVar(&c.writes, "writes", 50, "writes per series in the write measurements (0: skip)")
	fs.IntVar(&c.pid, "pid", 0, "daemon process id, to read its RSS from /proc (0: skip)")
	fs.Int64Var(&c.startedAt, "started-at", 0, "when the daemon was started (Unix ns), to report its start-up time")
	fs.DurationVar(&c.wait, "wait", 5*time.Minute, "how long to wait for the daemon to report SERVING")
	fs.StringVar(&c.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&c.checkTarget, "fail-on-miss", true, "exit non-zero when a target is missed (-fail-on-miss=false to explore)")
	var overload string
	fs.BoolVar(&c.baseline, "baseline", true, "measure health, CheckFeature and CheckFeatures against the baselines (false: only -overload)")
	fs.StringVar(&overload, "overload", "", "overload mode: comma-separated numbers of callers (e.g. 20,200,2000) that call CheckFeature, honouring RetryInfo when shed; empty: skip")
	fs.IntVar(&c.olRounds, "overload-rounds", 2, "rounds of the overload phases (each round runs every concurrency once)")
	fs.DurationVar(&c.olPhase, "overload-phase", 5*time.Second, "length of one overload phase")
	fs.BoolVar(&c.hostile, "hostile", false, "hostile mode: the normal tenant's CheckFeature load alone and alongside hostile callers (held meta and watch streams, expensive clicks, a decision-log flood, writes), alternating")
	fs.IntVar(&c.hoRounds, "hostile-rounds", 3, "rounds of the hostile mode (each runs the normal tenant alone and under hostile load once)")
	fs.DurationVar(&c.hoPhase, "hostile-phase", 5*time.Second, "length of one hostile-mode phase")
	fs.IntVar(&c.hoCallers, "hostile-callers", 20, "callers of the normal tenant in hostile mode")
	fs.StringVar(&c.hoAttacks, "hostile-attacks", "", "only these hostile callers, comma-separated: meta, watch, clicks, log, writes (empty: all)")
	fs.IntVar(&c.probes, "overload-probes", 4, "probe callers, in a process of their own, whose latency is the overload mode's judged figure (0: judge the load callers' own)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "the daemon's --metrics-addr (host:port), to report its own queue delay in overload mode")
	fs.BoolVar(&c.bare, "bare", true, "also measure a bare grpc-go health server in a child process as a second baseline")
	fs.StringVar(&c.inprocess, "inprocess", "", "serve this data directory from inside the tool (for profiling) instead of calling -addr")
	fs.StringVar(&c.logLevel, "inprocess-log-level", "warn", "log level of the -inprocess server")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (with -inprocess: client and server) to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write an allocation profile of this process to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.inprocess != "" {
		addr, stop, err := serveInProcess(ctx, c.inprocess, c.logLevel, stderr)
		if err != nil {
			return err
		}
		defer stop()
		c.addr = addr
		if !flagSet(fs, "manifest") {
			c.manifest = c.inprocess
		}
	}
	if c.cpuProfile != "" {
		stop, err := startCPUProfile(c.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if c.memProfile != "" {
		runtime.MemProfileRate = 64 << 10
		defer writeMemProfile(c.memProfile, stderr)
	}
	var err error
	if c.conc, err = parseInts(conc); err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if overload != "" {
		if c.overload, err = parseInts(overload); err != nil {
			return fmt.Errorf("-overload: %w", err)
		}
	}
	if !c.baseline && len(c.overload) == 0 && !c.hostile {
		return errors.New("-baseline=false needs -overload or -hostile")
	}
	for _, k := range strings.Split(c.hoAttacks, ",") {
		if c.hoAttacks != "" && !slices.Contains([]string{"meta", "watch", "clicks", "log", "writes"}, k) {
			return fmt.Errorf("-hostile-attacks: unknown %q (want meta, watch, clicks, log or writes)", k)
		}
	}
	if c.hostile && (c.hoRounds < 1 || c.hoPhase <= 0 || c.hoCallers < 1) {
		return errors.New("-hostile-rounds, -hostile-phase and -hostile-callers must be positive")
	}
	c.bare = c.bare && c.baseline
	if err := checkLoopback(c.addr); err != nil {
		return err
	}
	if c.rounds < 1 || c.conns < 1 || c.batch < 1 || c.batch > 1000 || c.duration <= 0 {
		return errors.New("-rounds, -conns and -duration must be positive and -batch within 1..1000")
	}
	m, err := loadgen.ReadManifest(c.manifest)
	if err != nil {
		return missingData(err, "-manifest", strings.TrimSuffix(c.manifest, "/"+loadgen.ManifestName))
	}
	// The first wrong answer or unexpected error ends the run
	// (loadgen.FailFast).
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	conns, err := dial(c.addr, c.conns)
	defer func() { conns.Close() }()
	if err != nil {
		return err
	}
	rep := &report{Addr: c.addr, Store: m.Config, Counts: m.Counts, StoreRevision: m.Revision,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), SessionsAt: m.SessionsAt}
	// CPU time per call: the daemon's (from /proc) when its pid is known,
	// this process's (client and server) in-process.
	var cpuClock func() time.Duration
	switch {
	case c.pid > 0:
		cpuClock = func() time.Duration { return procCPU(c.pid) }
		rep.CPUSource = "daemon"
		self, daemon := cpusOf(0), cpusOf(c.pid)
		rep.ClientCPUs, rep.DaemonCPUs, rep.SeparateCores = cpuList(self), cpuList(daemon), disjoint(self, daemon)
	case c.inprocess != "":
		cpuClock = selfCPU
		rep.CPUSource = "process (client and server)"
	}
	prog := newProgress(stderr)

	// Start-up: wait until the daemon answers SERVING.
	ready, err := waitServing(ctx, conns[0], c.wait)
	if err != nil {
		return err
	}
	if c.startedAt > 0 {
		rep.StartupSeconds = ready.Sub(time.Unix(0, c.startedAt)).Seconds()
	}
	if c.pid > 0 {
		rep.RSSAfterStart, rep.HWMAfterStart = procMemory(c.pid)
	}

	w, err := loadgen.BuildWorkload(m, 20_000, loadgen.DefaultMix, m.Config.Seed)
	if err != nil {
		return err
	}
	rep.Mix = w.Kinds
	rep.Sessions, rep.MixAccounts = workloadSpread(w, m)

	// Budget: 4 % warm-up, up to 15 % writes, the rest split evenly over
	// the measured phases.
	perRound := 2
	if c.bare {
		perRound = 4 // and bare Health, bare CheckFeature
	}
	phases := len(c.conc)*perRound*c.rounds + 2*c.rounds
	warm := c.duration * 4 / 100 / 2
	writeBudget := time.Duration(0)
	if c.writes > 0 {
		writeBudget = c.duration * 15 / 100
	}
	perPhase := (c.duration - 2*warm - writeBudget) / time.Duration(phases)
	rep.PhaseSeconds = perPhase.Seconds()
	if !c.baseline {
		phases, perPhase, writeBudget = 0, 0, 0
		c.writes = 0
	}
	maxConc := slices.Max(append([]int{c.batchConc}, c.conc...))
	health := loadgen.FailFast(abort, loadgen.HealthOp(conns))
	check := loadgen.FailFast(abort, loadgen.CheckOp(conns, w))
	batch := loadgen.FailFast(abort, loadgen.BatchOp(conns, w, c.batch))
	// The second baseline: a bare grpc-go health server in a process of
	// its own, whose CPU time is read like the daemon's.
	var bareHealth, bareCheck loadgen.Op
	var bareCPU func() time.Duration
	if c.bare {
		bp, err := startBare(c.duration + 10*time.Minute)
		if err != nil {
			return err
		}
		defer bp.Stop()
		bconns, err := dial(bp.Addr, c.conns)
		defer func() { bconns.Close() }()
		if err != nil {
			return err
		}
		if _, err := waitServing(ctx, bconns[0], 30*time.Second); err != nil {
			return fmt.Errorf("bare server: %w", err)
		}
		bareHealth = loadgen.HealthOp(bconns)
		bareCheck = loadgen.UndecidedCheckOp(bconns, w)
		bareCPU = func() time.Duration { return procCPU(bp.Pid) }
		rep.BareAddr = bp.Addr
	}
	var step atomic.Int32
	total := phases
	next := func() { step.Add(1) }
	progress := func(p loadgen.Progress) {
		prog.show(fmt.Sprintf("[%2d/%d] %-22s callers %-3d %5.1fs/%.1fs %8.0f calls/s errors %d",
			step.Load(), total, p.Phase, p.Concurrency, p.Elapsed.Seconds(), p.Duration.Seconds(),
			float64(p.Calls)/max(p.Elapsed.Seconds(), 1e-9), p.Errors))
	}
	// Warm-up (not recorded): connections, server goroutines, caches.
	for _, op := range []struct {
		name string
		op   loadgen.Op
	}{{"warm-up Health", health}, {"warm-up CheckFeature", check}, {"warm-up bare Health", bareHealth}, {"warm-up bare CheckFeature", bareCheck}} {
		if op.op == nil {
			continue
		}
		r := loadgen.RunPhase(ctx, loadgen.Phase{Name: op.name, Concurrency: maxConc, Duration: max(warm, time.Second), Op: op.op, Progress: progress,
			HonorShed: true})
		if err := loadgen.RunError(ctx); err != nil {
			prog.done()
			return err
		}
		if r.Errors > 0 {
			prog.done()
			return fmt.Errorf("%s: %d of %d calls failed, first: %v", op.name, r.Errors, r.Calls, r.FirstError)
		}
	}
	for _, n := range c.conc {
		if !c.baseline {
			break
		}
		base := loadgen.Phase{Name: "Health", Concurrency: n, Op: health, Progress: progress, OnStart: next, CPUClock: cpuClock}
		subj := loadgen.Phase{Name: "CheckFeature", Concurrency: n, Op: check, Progress: progress, OnStart: next, CPUClock: cpuClock, HonorShed: true}
		var extra []loadgen.Phase
		if bareHealth != nil {
			extra = append(extra, loadgen.Phase{Name: "bare Health", Concurrency: n, Op: bareHealth, Progress: progress, OnStart: next, CPUClock: bareCPU},
				loadgen.Phase{Name: "bare CheckFeature", Concurrency: n, Op: bareCheck, Progress: progress, OnStart: next, CPUClock: bareCPU})
		}
		cmp := loadgen.Compare(ctx, c.rounds, perPhase, base, subj, extra...)
		rep.Comparisons = append(rep.Comparisons, comparisonOf(&cmp))
	}
	single := loadgen.Phase{Name: "CheckFeature x1", Concurrency: c.batchConc, Op: check, Progress: progress, OnStart: next, CPUClock: cpuClock,
		HonorShed: true}
	batched := loadgen.Phase{Name: fmt.Sprintf("CheckFeatures x%d", c.batch), Concurrency: c.batchConc, Op: batch, PerCall: c.batch,
		Progress: progress, OnStart: next, CPUClock: cpuClock, HonorShed: true}
	if c.baseline {
		bc := loadgen.Compare(ctx, c.rounds, perPhase, single, batched)
		rep.Batch = comparisonOf(&bc)
	}
	prog.done()
	if err := loadgen.RunError(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(c.overload) > 0 {
		rep.Overload, err = measureOverload(ctx, conns, w, abort, c, cpuClock, prog)
		if err != nil {
			return err
		}
		if err := loadgen.RunError(ctx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if c.hostile {
		h, err := measureHostile(ctx, c.addr, m, abort, c, cpuClock, prog)
		if err != nil {
			return err
		}
		rep.Hostile = h
		if err := loadgen.RunError(ctx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if c.writes > 0 {
		rep.Writes = measureWrites(ctx, conns[0], m, c.writes, writeBudget, prog)
	}
	if c.pid > 0 {
		rep.RSSAfterLoad, rep.HWMAfterLoad = procMemory(c.pid)
	}
	if err := loadgen.RunError(ctx); err != nil {
		return err
	}
	rep.evaluate()
	rep.print(stdout)
	if c.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(c.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if err := rep.failedCalls(); err != nil {
		return err
	}
	if c.checkTarget {
		return missedTargets(rep)
	}
	return nil
}

// missedTargets returns an error naming the targets r missed.
func missedTargets(r *report) error {
	var missed []string
	for _, t := range r.Targets {
		if !t.Met {
			missed = append(missed, t.Name+" ("+t.Value+")")
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("%d targets missed (-fail-on-miss=false to explore): %s", len(missed), strings.Join(missed, "; "))
	}
	return nil
}

// dial opens n client connections to addr.
func dial(addr string, n int) (loadgen.Conns, error) {
	conns := make(loadgen.Conns, 0, n)
	for range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return conns, err
		}
		conns = append(conns, cc)
	}
	return conns, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkLoopback refuses any target that is not a loopback address: the
// tool generates heavy load and writes, and is meant for a local daemon.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if host == "localhost" {
		addrs, err := net.LookupIP(host)
		if err != nil {
			return fmt.Errorf("-addr %q: %w", addr, err)
		}
		ips = addrs
	}
	if len(ips) == 0 {
		return fmt.Errorf("-addr %q: refusing a target that is not a loopback address", addr)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-addr %q: refusing a target that is not a loopback address", addr)
		}
	}
	return nil
}

// waitServing polls the health service until it reports SERVING and
// returns when it first did.
func waitServing(ctx context.Context, cc *grpc.ClientConn, wait time.Duration) (time.Time, error) {
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
		ccancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return time.Now(), nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("daemon not serving after %s: %v", wait, last)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// procCPU returns the CPU time (user and system) a process has used, from
// /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procMemory returns VmRSS and VmHWM of a process in bytes.
func procMemory(pid int) (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// workloadSpread counts the sessions and accounts a workload asks about.
func workloadSpread(w *loadgen.Workload, m *loadgen.Manifest) (sessions, accounts int) {
	account := map[string]string{}
	for _, p := range m.Probes {
		account[p.SessionID] = p.AccountID
	}
	s, a := map[string]bool{}, map[string]bool{}
	for _, c := range w.Checks {
		s[c.GetSessionId()] = true
		a[account[c.GetSessionId()]] = true
	}
	return len(s), len(a)
}

// measureWrites runs the write series on the largest account and on a
// typical (median-sized) one, splitting the budget evenly.
func measureWrites(ctx context.Context, cc *grpc.ClientConn, m *loadgen.Manifest, n int, budget time.Duration, prog *progress) []writeRow {
	accounts := []loadgen.AccountSize{m.Accounts[0]}
	if len(m.Accounts) > 1 {
		accounts = append(accounts, m.Accounts[len(m.Accounts)/2])
	}
	per := budget / time.Duration(2*len(accounts))
	run := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	var rows []writeRow
	for _, a := range accounts {
		prog.show(fmt.Sprintf("writes: UpdateLiveGuideSettings on %s", a.ID))
		s := loadgen.MeasureSettingsUpdates(ctx, cc, a.ID, n, per)
		rows = append(rows, writeRowOf(&s, a))
		prog.show(fmt.Sprintf("writes: CreateAllowlistEntry on %s", a.ID))
		cr, del := loadgen.MeasureAllowlistCreates(ctx, cc, a.ID, run, a.Allowlist, server.MaxAllowlistEntries, n, per/2)
		rows = append(rows, writeRowOf(&cr, a), writeRowOf(&del, a))
	}
	prog.done()
	return rows
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// serveInProcess serves the store in dir on a loopback port from this
// process, wired like the daemon's defaults (no authentication, the
// session sweeper with the default --session-max-age), and returns its
// address and a function that stops it.
func serveInProcess(ctx context.Context, dir, level string, stderr io.Writer) (string, func(), error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return "", nil, fmt.Errorf("-inprocess-log-level: %w", err)
	}
	st, err := bolt.Open(dir)
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		st.Close()
		return "", nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); snaps.Run(fctx) }()
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log})
	def := config.Default()
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		srv.RunSessionSweeper(fctx, server.SessionLifecycle{MaxAge: def.SessionMaxAge, Retention: def.SessionRetention})
	}()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		<-swept
		<-followed
		st.Close()
		return "", nil, err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	return lis.Addr().String(), func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		if err := <-served; err != nil {
			log.Error("in-process server", "err", err)
		}
		cancel()
		<-swept
		<-followed
		st.Close()
	}, nil
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeMemProfile(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(stderr, "memprofile:", err)
	}
}

// ---- reflect ----

func reflect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reflect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "directory of the store (the daemon must not be running)")
	writes := fs.Int("writes", 20, "writes per series")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the write series to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("reflect: -data-dir is required")
	}
	m, err := loadgen.ReadManifest(*dir)
	if err != nil {
		return missingData(err, "-data-dir", *dir)
	}
	t0 := time.Now()
	st, err := bolt.Open(*dir)
	if err != nil {
		return err
	}
	defer st.Close()
	t1 := time.Now()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := replica.New(ctx, st, log)
	if err != nil {
		return err
	}
	t2 := time.Now()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, _ := procMemory(os.Getpid())
	rr := reflectReport{OpenSeconds: t1.Sub(t0).Seconds(), LoadSeconds: t2.Sub(t1).Seconds(), HeapInuse: ms.HeapInuse, RSS: rss,
		Accounts: f.Current().NumAccounts(), Sessions: f.Current().NumSessions()}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(fctx) }()
	defer func() { cancel(); <-done }()

	accounts := []loadgen.AccountSize{m.Accounts[0]}
	if len(m.Accounts) > 1 {
		accounts = append(accounts, m.Accounts[len(m.Accounts)/2])
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	for _, a := range accounts {
		for _, kind := range []string{"settings", "allowlist"} {
			r, err := loadgen.MeasureReflect(ctx, st, f, a.ID, kind, *writes)
			if err != nil {
				return fmt.Errorf("reflect %s on %s: %w", kind, a.ID, err)
			}
			rr.Series = append(rr.Series, reflectRowOf(&r, a))
		}
	}
	rr.print(stdout)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(rr, "", "  ")
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}
