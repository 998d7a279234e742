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
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/buildinfo"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/notify"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/snapshot"
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
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.Is(err, config.ErrVersion):
		fmt.Println("gatehoused version", buildinfo.Display())
		return
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "gatehoused:", err)
		stop()
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "gatehoused:", err)
	stop()
	os.Exit(1)
}

// run parses the configuration and serves until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := config.Default()
	if _, err := cfg.Parse(args, os.Stdout, os.LookupEnv); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	level, _ := cfg.Level()
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewJSONHandler(stderr, hopts)
	if cfg.LogFormat == "text" {
		handler = slog.NewTextHandler(stderr, hopts)
	}
	log := slog.New(handler)
	log.Info("gatehoused starting", "version", buildinfo.Display())
	gogc := applyGCPercent(cfg.GCPercent)
	if cfg.Insecure && cfg.Auth == "none" {
		log.Warn("serving without authentication (--insecure)", "listen", cfg.Listen)
	}

	start := time.Now()
	// Listen first: a daemon that cannot bind its addresses (a port taken)
	// fails before it creates, opens or seeds a store.
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	defer func() { _ = lis.Close() }()
	var metricsLis net.Listener
	if cfg.MetricsAddr != "" {
		if metricsLis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer func() { _ = metricsLis.Close() }()
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
	// The tracer provider is created before the server and, deferred, shut
	// down after it stopped: every span has ended by then.
	var tp trace.TracerProvider
	if cfg.OTelEndpoint != "" {
		sdktp, err := startTracing(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer stopTracing(sdktp, cfg.ShutdownTimeout, log)
		tp = sdktp
	}
	st, err := openConfigured(cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		} else {
			log.Info("store closed", "revision", st.Revision())
		}
	}()
	if cfg.Demo {
		seeded, err := demo.Seed(ctx, st, time.Now())
		if err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
		log.Info("demo data", "seeded", seeded, "account", demo.AccountID)
	}
	// The notification sender stops (deferred) before the store closes.
	wakeSender, stopSender := startSender(backend, st, log)
	defer stopSender()
	if cfg.BootstrapTokenFile != "" {
		if err := bootstrapToken(ctx, st, cfg.BootstrapTokenFile, log); err != nil {
			return err
		}
	}
	snaps, err := snapshot.New(ctx, st, log)
	if err != nil {
		return fmt.Errorf("build snapshot: %w", err)
	}
	followCtx, stopFollow := context.WithCancel(context.Background())
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		snaps.Run(followCtx)
	}()
	defer func() {
		stopFollow()
		<-followDone
	}()

	var metrics *server.Metrics
	if cfg.MetricsAddr != "" {
		metrics = server.NewMetrics()
	}
	srv := server.New(server.Options{Store: st, Snapshots: snaps, Logger: log, CobrowseBaseDomain: cfg.CobrowseBaseDomain,
		Authenticate: cfg.Auth == "token", AuditRetention: cfg.AuditRetention, Metrics: metrics, TLS: tlsCfg, NotificationRetried: wakeSender, TracerProvider: tp,
		Limits: server.Limits{MaxRecvMsgSize: cfg.MaxRecvMsgSize, MaxInflight: cfg.MaxInflight, MaxInflightPerCaller: perCallerStreams(cfg.MaxInflightPerCaller),
			DecisionTimeout: cfg.DecisionTimeout,
			QueueTarget:     queueTarget(cfg.ShedQueueTarget), QueueInterval: cfg.ShedQueueInterval},
		Streams: server.StreamLimits{MaxStreams: cfg.MaxStreams, MaxStreamsPerCaller: perCallerStreams(cfg.MaxStreamsPerCaller),
			MaxMetaStreams: cfg.MaxMetaStreams, MaxConnStreams: cfg.MaxConnStreams},
		Reflection: cfg.Reflection,
		SlowCall:   slowCall(cfg.LogSlowCall)})
	if metrics != nil {
		defer serveMetrics(metricsLis, cfg.MetricsAddr, metrics, cfg.Pprof, srv.HealthHandler(), log)()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lis) }()
	log.Info("serving", "listen", lis.Addr().String(), "data_dir", cfg.DataDir,
		"revision", snaps.Current().Revision(), "accounts", snaps.Current().NumAccounts(),
		"startup", time.Since(start).String(), "gogc", gogc)
	if cfg.Demo {
		printDemoHelp(stderr, demoBanner(cfg, lis.Addr().String(), findTools(".")))
	}
	if cfg.StatsInterval > 0 {
		go logStats(followCtx, cfg.StatsInterval, snaps, log)
	}
	// The session sweeper stops (deferred) before the snapshot follower
	// and the store.
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		srv.RunSessionSweeper(sweepCtx, server.SessionLifecycle{MaxAge: cfg.SessionMaxAge, Retention: cfg.SessionRetention})
	}()
	defer func() {
		stopSweep()
		<-sweepDone
	}()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; letting in-flight calls finish", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	srv.Shutdown(sctx)
	return <-serveErr
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

// startSender runs the completed-session notification sender until stop is
// called; stop returns once the sender has made its last store write. wake
// makes the sender look at the whole outbox at once (RetryNotification).
func startSender(backend notify.Backend, st store.Store, log *slog.Logger) (wake, stop func()) {
	sender := notify.NewSender(notify.Options{Store: st, Backend: backend, Logger: log.With("component", "notify")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sender.Run(ctx)
	}()
	return sender.Wake, func() {
		cancel()
		<-done
	}
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
