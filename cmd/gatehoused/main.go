// Command gatehoused is the Gatehouse policy-decision daemon: it opens the
// store, builds the decision snapshot, and serves the gRPC API with health
// and reflection until SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/buildinfo"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	var usage config.UsageError
	var musage migrateUsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, config.ErrVersion):
		fmt.Println("gatehoused version", buildinfo.Display())
		return
	case errors.As(err, &usage), errors.As(err, &musage):
		fmt.Fprintln(os.Stderr, "gatehoused:", err)
		stop()
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "gatehoused:", err)
	stop()
	os.Exit(1)
}

// run parses the configuration and serves until ctx ends or a server
// stops by itself.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	if isMigrate(args) {
		return runMigrate(ctx, args[1:], os.Stdout, os.LookupEnv)
	}
	cfg := config.Default()
	if _, err := cfg.Parse(args, os.Stdout, os.LookupEnv); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := NewMain(cfg, stderr)
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case <-m.Stopped():
	}
	return m.Close()
}

// Main is the daemon: Run binds its listeners, opens the store and starts
// serving; Close shuts everything down again, in the reverse order.
type Main struct {
	Config config.Config
	Log    *slog.Logger
	// Stderr receives the demo banner (the log goes to Log).
	Stderr io.Writer
	// OpenStore opens the store once the listeners are bound and every
	// other flag is checked (openConfigured: --store, the bbolt file in
	// --data-dir or the etcd cluster at --etcd-endpoints).
	// Main closes the store it opened.
	OpenStore func(config.Config, *slog.Logger) (store.Store, error)

	// Set by Run.
	Addr      string // the address the gRPC server listens on
	Store     store.Store
	Snapshots *replica.Replica
	Server    *server.Server

	closers []func() error
	stopped chan struct{} // closed when a server stops by itself
	stop    sync.Once
}

// NewMain returns a daemon with cfg, logging to stderr in cfg's format and
// level, on the store --store names.
func NewMain(cfg config.Config, stderr io.Writer) *Main {
	return &Main{Config: cfg, Log: newLogger(cfg, stderr), Stderr: stderr, OpenStore: openConfigured, stopped: make(chan struct{})}
}

// newLogger is the daemon's logger for --log-format and --log-level.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, _ := cfg.Level()
	hopts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, hopts))
	}
	return slog.New(slog.NewJSONHandler(w, hopts))
}

// Stopped is closed when a server stopped serving by itself (its error is
// Close's).
func (m *Main) Stopped() <-chan struct{} { return m.stopped }

// onClose adds fn to what Close runs; Close runs the last added first.
func (m *Main) onClose(fn func() error) { m.closers = append(m.closers, fn) }

// Close stops what Run started, the last started first, and returns the
// first error among them (a server that failed). It may be called after a
// failed Run.
func (m *Main) Close() error {
	var first error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// serve runs serveFn on its own goroutine. Close shuts the server down
// with shutdown (unless it already stopped) and returns serveFn's error
// (http.ErrServerClosed, an HTTP server's answer to its Shutdown, is
// none); a server that stops before Close closes Stopped. A further server
// of the daemon is m.listen in Run's listen step and one m.serve.
func (m *Main) serve(serveFn func() error, shutdown func()) {
	done := make(chan error, 1)
	go func() {
		err := serveFn()
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
		m.stop.Do(func() { close(m.stopped) })
	}()
	m.onClose(func() error {
		select {
		case err := <-done:
			return err
		default:
		}
		shutdown()
		return <-done
	})
}

// listen binds addr and closes the listener on Close.
func (m *Main) listen(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m.onClose(func() error { _ = lis.Close(); return nil })
	return lis, nil
}

// goUntilClose runs fn on its own goroutine with a context that Close
// cancels, and waits for fn to return.
func (m *Main) goUntilClose(fn func(ctx context.Context)) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	m.onClose(func() error {
		cancel()
		<-done
		return nil
	})
	return ctx
}

// Run starts the daemon and returns once it serves. On an error the caller
// calls Close to release what was started.
func (m *Main) Run(ctx context.Context) error {
	cfg, log := m.Config, m.Log
	log.Info("gatehoused starting", "version", buildinfo.Display())
	gogc := applyGCPercent(cfg.GCPercent)
	if cfg.Insecure && cfg.Auth == "none" {
		log.Warn("serving without authentication (--insecure)", "listen", cfg.Listen)
	}

	start := time.Now()
	// Listen first: a daemon that cannot bind its addresses (a port taken)
	// fails before it creates, opens or seeds a store.
	lis, err := m.listen(cfg.Listen)
	if err != nil {
		return err
	}
	var httpLis net.Listener
	if cfg.HTTPAddr != "" {
		if httpLis, err = m.listen(cfg.HTTPAddr); err != nil {
			return fmt.Errorf("http: %w", err)
		}
	}
	var metricsLis net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLis, err = m.listen(cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	// Everything else that can fail on a flag's value fails before the
	// store is touched too.
	backend, err := notifyBackend(cfg)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		if tlsCfg, err = tlsconfig.Server(tlsconfig.Files{Cert: cfg.TLSCert, Key: cfg.TLSKey, ClientCA: cfg.TLSClientCA}); err != nil {
			return err
		}
	}
	// The tracer provider is created before the server and shut down
	// after it stopped: every span has ended by then.
	var tp trace.TracerProvider
	if cfg.OTelEndpoint != "" {
		sdktp, err := startTracing(ctx, cfg, log)
		if err != nil {
			return err
		}
		m.onClose(func() error { stopTracing(sdktp, cfg.ShutdownTimeout, log); return nil })
		tp = sdktp
	}
	st, err := m.openStore()
	if err != nil {
		return err
	}
	if cfg.Demo {
		seeded, err := demo.Seed(ctx, st, time.Now())
		if err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
		log.Info("demo data", "seeded", seeded, "account", demo.AccountID)
	}
	// The notification sender runs under the leadership (below).
	sender := notify.NewSender(notify.Options{Store: st, Backend: backend, Logger: log.With("component", "notify")})
	if cfg.BootstrapTokenFile != "" {
		if err := bootstrapToken(ctx, st, cfg.BootstrapTokenFile, log); err != nil {
			return err
		}
	}
	snaps, err := replica.New(ctx, st, log)
	if err != nil {
		return fmt.Errorf("build snapshot: %w", err)
	}
	m.Snapshots = snaps
	followCtx := m.goUntilClose(snaps.Run)

	var metrics *server.Metrics
	if cfg.MetricsAddr != "" {
		metrics = server.NewMetrics()
	}
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log, CobrowseBaseDomain: cfg.CobrowseBaseDomain,
		Authenticate: cfg.Auth == "token", AuditRetention: cfg.AuditRetention, Metrics: metrics, TLS: tlsCfg, NotificationRetried: sender.Wake, TracerProvider: tp,
		Limits: server.Limits{MaxRecvMsgSize: cfg.MaxRecvMsgSize, MaxInflight: cfg.MaxInflight, MaxInflightPerCaller: perCallerStreams(cfg.MaxInflightPerCaller),
			DecisionTimeout: cfg.DecisionTimeout,
			QueueTarget:     queueTarget(cfg.ShedQueueTarget), QueueInterval: cfg.ShedQueueInterval,
			CallerCPUShare: callerCPUShare(cfg.CallerCPUShare)},
		Streams: server.StreamLimits{MaxStreams: cfg.MaxStreams, MaxStreamsPerCaller: perCallerStreams(cfg.MaxStreamsPerCaller),
			MaxMetaStreams: cfg.MaxMetaStreams, MaxConnStreams: cfg.MaxConnStreams},
		Reflection:   cfg.Reflection,
		MaxStaleness: cfg.MaxStaleness,
		SlowCall:     slowCall(cfg.LogSlowCall),
		CallLogRate:  callLogRate(cfg.CallLogRate)})
	m.Server, m.Addr = srv, lis.Addr().String()
	if metrics != nil {
		stopMetrics := serveMetrics(metricsLis, cfg.MetricsAddr, metrics, cfg.Pprof, srv.HealthHandler(), log)
		m.onClose(func() error { stopMetrics(); return nil })
	}
	// The HTTP server stops accepting while the gRPC server ends its
	// streams (HTTP streams among them) and lets in-flight calls finish:
	// the closer added after the gRPC server's starts the HTTP shutdown,
	// this one, run after the gRPC server's, waits for it.
	httpDone := make(chan struct{})
	if httpLis != nil {
		m.onClose(func() error { <-httpDone; return nil })
	}
	// The work that must happen once, the session sweeper, the
	// notification sender and audit retention, runs on the replica that
	// leads, its writes fenced by the leadership's term; it stops after
	// the gRPC server and before the replica and the store.
	m.goUntilClose(func(ctx context.Context) {
		runLeading(ctx, elector(st, cfg, lis.Addr().String(), log), leaderGauge(metrics), log, sender.Run, func(ctx context.Context) {
			srv.RunSessionSweeper(ctx, server.SessionLifecycle{MaxAge: cfg.SessionMaxAge, Retention: cfg.SessionRetention})
		}, srv.RunAuditRetention)
	})
	m.serve(func() error { return srv.Serve(lis) }, func() {
		log.Info("shutting down; letting in-flight calls finish", "timeout", cfg.ShutdownTimeout.String())
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		srv.Shutdown(sctx)
	})
	if httpLis != nil {
		stopHTTP, err := startHTTP(httpLis, srv, tlsCfg, cfg, metrics, log)
		if err != nil {
			close(httpDone)
			return err
		}
		m.onClose(func() error {
			go func() {
				defer close(httpDone)
				sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
				defer cancel()
				stopHTTP(sctx)
			}()
			return nil
		})
	}
	log.Info("serving", "listen", lis.Addr().String(), "data_dir", cfg.DataDir,
		"revision", snaps.Current().Revision(), "accounts", snaps.Current().NumAccounts(),
		"startup", time.Since(start).String(), "gogc", gogc)
	if cfg.Demo {
		printDemoHelp(m.Stderr, demoBanner(cfg, lis.Addr().String(), findTools(".")))
		if httpLis != nil {
			printDemoHelp(m.Stderr, httpBanner(cfg, httpLis.Addr().String()))
		}
	}
	if cfg.StatsInterval > 0 {
		go logStats(followCtx, cfg.StatsInterval, snaps, log)
	}
	return nil
}

// openStore opens the store with OpenStore, or takes Store when it is
// set, and closes it on Close.
func (m *Main) openStore() (store.Store, error) {
	st := m.Store
	if st == nil {
		var err error
		if st, err = m.OpenStore(m.Config, m.Log); err != nil {
			return nil, err
		}
		m.Store = st
	}
	m.onClose(func() error {
		if err := st.Close(); err != nil {
			m.Log.Error("close store", "err", err)
		} else {
			m.Log.Info("store closed", "revision", st.Revision())
		}
		return nil
	})
	return st, nil
}

// notifyBackend returns where completed-session notifications go: SMTP
// with --smtp-addr (reading --smtp-password-file), else the outbox
// directory.
func notifyBackend(cfg config.Config) (notify.Backend, error) {
	if cfg.SMTPAddr == "" {
		return &notify.Dir{Path: cfg.NotificationDir()}, nil
	}
	b := &notify.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, ImplicitTLS: cfg.SMTPImplicitTLS, Username: cfg.SMTPUsername}
	if cfg.SMTPPasswordFile != "" {
		pw, err := os.ReadFile(cfg.SMTPPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("smtp-password-file: %w", err)
		}
		b.Password = strings.TrimRight(string(pw), "\r\n")
	}
	return b, nil
}

// bootstrapToken writes a new operator token to path when the store has no
// operator token, so that a daemon with --auth token can be administered
// from its first start. The file is created with mode 0600 and never
// overwritten.
func bootstrapToken(ctx context.Context, st store.Store, path string, log *slog.Logger) error {
	// The file is claimed first, so a token is never created whose secret
	// could not be written down.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		log.Info("bootstrap token file exists; not overwritten", "file", path)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootstrap token file: %w", err)
	}
	bearer, created, err := server.BootstrapOperatorToken(ctx, st, "bootstrap operator", time.Now())
	if err == nil && created {
		_, err = fmt.Fprintln(f, bearer)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !created {
		_ = os.Remove(path)
	}
	switch {
	case err != nil:
		return fmt.Errorf("bootstrap token: %w", err)
	case !created:
		log.Info("an operator token exists; no bootstrap token written", "file", path)
	default:
		log.Warn("wrote a new operator token; keep it secret", "file", path)
	}
	return nil
}

// maxTraceFlush bounds how long the spans still queued at shutdown may take
// to reach the collector, after the last call ended.
const maxTraceFlush = 5 * time.Second

// startTracing creates the tracer provider exporting to cfg.OTelEndpoint
// and routes the OpenTelemetry SDK's errors (an unreachable collector,
// dropped spans) into the log.
func startTracing(ctx context.Context, cfg config.Config, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	tp, err := tracing.NewProvider(ctx, tracing.Settings{Endpoint: cfg.OTelEndpoint, Plaintext: cfg.OTelPlaintext(),
		SampleRatio: cfg.OTelSampleRatio, ServiceVersion: buildinfo.Version()})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing error", "err", err) }))
	log.Info("tracing on", "otel_endpoint", cfg.OTelEndpoint, "plaintext", cfg.OTelPlaintext(), "sample_ratio", cfg.OTelSampleRatio)
	return tp, nil
}

// stopTracing flushes the queued spans and stops the exporter, for at most
// maxTraceFlush or the shutdown timeout, whichever is shorter.
func stopTracing(tp *sdktrace.TracerProvider, shutdownTimeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), min(maxTraceFlush, shutdownTimeout))
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("traces not flushed", "err", err)
		return
	}
	log.Info("traces flushed")
}

// applyGCPercent sets the collector's GOGC to percent unless the GOGC
// environment variable is set, and returns the GOGC in effect.
func applyGCPercent(percent int) int {
	if _, set := os.LookupEnv("GOGC"); set {
		cur := debug.SetGCPercent(100)
		debug.SetGCPercent(cur)
		return cur
	}
	debug.SetGCPercent(percent)
	return percent
}

// slowCall is server.Options.SlowCall for --log-slow-call (0: never).
func slowCall(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// callLogRate is server.Options.CallLogRate for --call-log-rate (0: no
// bound).
func callLogRate(perSecond int) int {
	if perSecond == 0 {
		return -1
	}
	return perSecond
}

// serveMetrics serves Prometheus metrics on lis (bound to addr) at /metrics, health at
// /healthz, and with withPprof Go's profiles at /debug/pprof/, until the
// returned function is called.
func serveMetrics(lis net.Listener, addr string, m *server.Metrics, withPprof bool, health http.Handler, log *slog.Logger) func() {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", health)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("serving metrics", "metrics_addr", lis.Addr().String(), "pprof", withPprof)
	if withPprof && !config.LoopbackAddr(addr) {
		log.Warn("serving pprof on a non-loopback address (--insecure)", "metrics_addr", lis.Addr().String())
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}
}

// perCallerStreams maps --max-streams-per-caller and
// --max-inflight-per-caller (0: off) to StreamLimits and Limits, where 0
// takes the default and a negative value means no per-caller limit.
func perCallerStreams(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// queueTarget maps --shed-queue-target to server.Limits, where 0 means the
// default and a negative value off.
func queueTarget(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// callerCPUShare maps --caller-cpu-share (0: off) to
// server.Limits.CallerCPUShare (negative: off).
func callerCPUShare(share float64) float64 {
	if share == 0 {
		return -1
	}
	return share
}
