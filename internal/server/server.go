// Package server is Gatehouse's gRPC edge: wiring, the interceptor chain
// (authentication, the access table, load limits), handlers that validate
// a request, convert it between the wire types and internal/policy and call
// one function of internal/service inside their write (or decide from the
// call's policy.Snapshot), and the mapping of errors to statuses, in one
// file (status.go). See docs/architecture.md.
package server

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"
)

// Options configure a Server.
type Options struct {
	// Store persists everything; required.
	Store store.Store
	// Snapshots follows Store and answers decisions; required.
	Snapshots *replica.Replica
	// Logger receives call logs and internal errors; required.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxRevisionWait bounds how long a write waits for decisions to see
	// it (default 5s). A decision's wait for its min_revision is bounded by
	// the call's deadline, or Limits.DecisionTimeout without one.
	MaxRevisionWait time.Duration
	// CobrowseBaseDomain is the domain co-browse URLs are generated under
	// (default "support.me": https://<name>.support.me).
	CobrowseBaseDomain string
	// Authenticate requires a registered credential on every call but
	// health and reflection: a bearer token, or a client certificate (with
	// TLS requiring them) registered by certificate identity. Without it
	// every caller is an operator for all accounts.
	Authenticate bool
	// Limits bound message size, concurrent calls, the default decision
	// deadline and keepalive; see overload.go.
	Limits Limits
	// Streams bound the streams open at once, in all and per caller; see
	// streamlimit.go.
	Streams StreamLimits
	// Reflection is ReflectionAuthenticated (the default when empty),
	// ReflectionPublic or ReflectionOff.
	Reflection string
	// AuditRetention is how long audit events are kept (0: forever).
	AuditRetention time.Duration
	// NotificationRetried, when set, is called after RetryNotification made
	// a message due, so that the sender looks at once (notify.Sender.Wake).
	NotificationRetried func()
	// AuditScanLimit bounds the audit events one ListAuditEvents call
	// examines (default 10 000), so that a narrow filter over a long log
	// costs a bounded amount per call; the caller pages on.
	AuditScanLimit int
	// Metrics, when set, receives the gRPC and decision metrics.
	Metrics *Metrics
	// TLS, when set, serves TLS (and mutual TLS when it requires client
	// certificates) instead of plaintext.
	TLS *tls.Config
	// TracerProvider, when set, traces every call but health checks and
	// continues the callers' W3C trace context; see tracingOption. Without
	// it nothing is instrumented.
	TracerProvider trace.TracerProvider
	// MaxStaleness bounds the age of the snapshot decisions are answered
	// from, on a store whose replica can fall behind (etcd): past it,
	// decisions are refused with UNAVAILABLE and the health service
	// reports NOT_SERVING until the replica catches up (see staleness.go).
	// 0: no bound.
	MaxStaleness time.Duration
	// SlowCall is how long a successful call may take before its log line
	// is written at INFO rather than DEBUG (default DefaultSlowCall;
	// negative: never). Failed calls are logged at the level of their
	// code; see callLevel.
	SlowCall time.Duration
	// CallLogRate bounds the "finished call" lines of failed calls a
	// second, per gRPC code, for the codes a caller can cause (see
	// callLogBudget; default DefaultCallLogRate; negative: no bound).
	CallLogRate int
}

// tlsOption returns the transport credentials of cfg (none when nil).
func tlsOption(cfg *tls.Config) []grpc.ServerOption {
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	return []grpc.ServerOption{grpc.Creds(serverCreds{creds})}
}

// Server serves the Gatehouse API, health and reflection.
type Server struct {
	store  store.Store
	snaps  *replica.Replica
	log    *slog.Logger
	now    func() time.Time
	maxRev time.Duration
	// cobrowseBase is the domain of generated co-browse URLs.
	cobrowseBase string
	authOn       bool
	// reflection is Options.Reflection.
	reflection string
	// auditRetention is how long audit events are kept (0: forever).
	auditRetention time.Duration
	// auditScan bounds the events one ListAuditEvents call examines.
	auditScan int
	// notificationRetried is Options.NotificationRetried (never nil).
	notificationRetried func()
	metrics             *Metrics
	// obs is metrics' part of internal/observe (nil without metrics).
	obs       *observe.Metrics
	decisions *observe.DecisionLog
	// watches shares watched session policies among their watchers.
	watches watchPolicies
	// policyBytes paces each caller's policy streams (streambytes.go).
	policyBytes *streamBytes
	// tracing is set when calls are traced; decisions annotate their
	// spans only then.
	tracing bool
	// tracer starts spans inside calls (store commit, snapshot wait); nil
	// without tracing.
	tracer trace.Tracer
	// rules is the permission table (accessRules).
	rules map[string]access
	// slowCall is Options.SlowCall with its default applied.
	slowCall time.Duration
	// callLog bounds the call log lines of failed calls, causeLog the
	// lines of their causes (nil: no bound).
	callLog, causeLog *callLogBudget
	// dryRunLog bounds CheckHypothetical's lines (nil: no bound).
	dryRunLog *codeLogBudget
	// decisionTimeout bounds a decision's wait for a revision when the
	// call has no deadline (Limits.DecisionTimeout); see snapshotAt.
	decisionTimeout time.Duration
	// stale bounds the age of the snapshot (Options.MaxStaleness).
	stale staleness

	grpc   *grpc.Server
	health *health.Server
	// done is closed by Shutdown so that long-lived streams end and
	// graceful stop does not wait for them.
	done     chan struct{}
	shutdown sync.Once
	// inProcess is the listener of DialInProcess, served from its first
	// call on.
	inProcess     inProcessListener
	inProcessOnce sync.Once
}

// New builds a server with its interceptors, outermost first (after the
// tracing stats handler when Options.TracerProvider is set): metrics (when
// configured), then one interceptor (unaryChain, streamChain) for the
// request id, the call log line, panic recovery (a panic becomes INTERNAL
// and is logged, the process keeps serving), authentication and the
// permission table; then the load limits of Options.Limits.
func New(o Options) *Server {
	s := &Server{store: o.Store, snaps: o.Snapshots, log: o.Logger, now: o.Now, maxRev: o.MaxRevisionWait, cobrowseBase: o.CobrowseBaseDomain, authOn: o.Authenticate, rules: accessRules, auditRetention: o.AuditRetention, metrics: o.Metrics,
		tracing: o.TracerProvider != nil}
	if o.TracerProvider != nil {
		s.tracer = o.TracerProvider.Tracer(observe.TracerName)
	}
	s.notificationRetried = o.NotificationRetried
	if s.notificationRetried == nil {
		s.notificationRetried = func() {}
	}
	s.auditScan = o.AuditScanLimit
	if s.auditScan <= 0 {
		s.auditScan = 10000
	}
	s.decisionTimeout = o.Limits.withDefaults().DecisionTimeout
	s.slowCall = o.SlowCall
	if s.slowCall == 0 {
		s.slowCall = DefaultSlowCall
	}
	s.callLog = newCallLogBudget(o.CallLogRate, o.Metrics)
	s.causeLog = newCallLogBudget(o.CallLogRate, o.Metrics)
	s.dryRunLog = newDryRunLogBudget(o.CallLogRate, o.Metrics)
	s.done = make(chan struct{})
	s.inProcess = inProcessListener{bufconn.Listen(inProcessBuffer)}
	s.warnPublicSuffixEntries()
	s.obs = o.Metrics.observed()
	var reg *prometheus.Registry
	if s.obs != nil {
		reg = s.obs.Registry
	}
	s.decisions = observe.NewDecisionLog(s.log, reg)
	s.policyBytes = newStreamBytes(o.Metrics)
	s.reflection = o.Reflection
	if s.reflection == "" {
		s.reflection = ReflectionAuthenticated
	}
	streams := newStreamLimiter(o.Streams, o.Metrics, s.snaps, s.done)
	if s.cobrowseBase == "" {
		s.cobrowseBase = "support.me"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxRev <= 0 {
		s.maxRev = 5 * time.Second
	}
	limitOpts, gate := o.Limits.serverOptions(o.Metrics, s.sessionAccount)
	if gate != nil {
		s.policyBytes.contended = gate.contended
	}
	unary := []grpc.UnaryServerInterceptor{s.unaryChain}
	stream := []grpc.StreamServerInterceptor{s.streamChain}
	if s.metrics != nil {
		unary = append([]grpc.UnaryServerInterceptor{s.metrics.grpc.UnaryServerInterceptor()}, unary...)
		stream = append([]grpc.StreamServerInterceptor{s.metrics.grpc.StreamServerInterceptor()}, stream...)
	}
	s.grpc = grpc.NewServer(append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, slices.Concat(limitOpts, streams.serverOptions(), tlsOption(o.TLS), tracingOption(o.TracerProvider))...)...)
	gatehousev1.RegisterAdminServiceServer(s.grpc, &adminService{s: s})
	gatehousev1.RegisterSessionServiceServer(s.grpc, &sessionService{s: s})
	gatehousev1.RegisterDecisionServiceServer(s.grpc, &decisionService{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if s.reflection != ReflectionOff {
		reflection.Register(s.grpc)
	}
	if s.metrics != nil {
		s.metrics.grpc.InitializeMetrics(s.grpc)
		s.obs.Watch(s.snaps, s.store, s.now)
	}
	if o.MaxStaleness > 0 && s.snaps.TracksStaleness() {
		s.stale.max = o.MaxStaleness
		s.stale.wake = make(chan struct{})
		go s.watchStaleness()
	}
	return s
}

// Serve accepts connections on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown reports NOT_SERVING, lets in-flight calls finish until ctx ends,
// then closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) {
	s.shutdown.Do(func() { close(s.done) })
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
	}
}

// write commits fn together with the audit events of what it changed, then
// waits until the decision snapshot reflects the
// commit, so that the next decision sees the write (read-your-writes).
func (s *Server) write(ctx context.Context, fn func(store.Tx) error) (uint64, error) {
	cctx, commit := s.innerSpan(ctx, "store.commit")
	// The caller's CPU share (callerCPU) is not charged for the wait for
	// the store's writer, until the transaction first runs; the
	// transaction, its commit and the snapshot's rebuild are the write's.
	start := time.Now()
	var began time.Time
	rev, err := s.store.Update(cctx, func(tx store.Tx) error {
		if began.IsZero() {
			began = time.Now()
		}
		at := observe.NewAuditTx(tx)
		if err := fn(at); err != nil {
			return err
		}
		return at.Flush(auditCaller(ctx), auditOperation(ctx), s.now().UTC())
	})
	if !began.IsZero() {
		addIdleWait(ctx, began.Sub(start))
	}
	if err == nil {
		commit.SetAttributes(observe.AttrRevision.Int64(int64(rev)))
	}
	observe.EndInner(commit, err)
	if err != nil {
		return 0, err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.maxRev)
	defer cancel()
	wctx, wait := s.innerSpan(wctx, "snapshot.wait")
	_, err = s.snaps.WaitFor(wctx, rev)
	observe.EndInner(wait, err)
	if err != nil {
		// The write is committed and durable; only its visibility to
		// decisions is late. Report success, and say so in the log.
		s.log.WarnContext(ctx, "snapshot did not catch up with a committed write", "revision", rev, "err", err)
	}
	return rev, nil
}

// Page size bounds of every List RPC.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// pageTokenPrefix versions the opaque page token.
const pageTokenPrefix = "v1:"

// pageParams validates page_size and page_token. The token holds the last
// id returned, so a listing continues after it however the collection
// changed in between: it never repeats or skips an entry that existed
// throughout.
func pageParams(size int32, token string) (limit int, after string, err error) {
	var v violations
	switch {
	case size < 0:
		v.add("page_size", "must not be negative")
	case size == 0:
		limit = defaultPageSize
	default:
		limit = min(int(size), maxPageSize)
	}
	if token != "" {
		raw, derr := base64.RawURLEncoding.DecodeString(token)
		id, ok := strings.CutPrefix(string(raw), pageTokenPrefix)
		if derr != nil || !ok || !service.IsSlug(id) {
			v.add("page_token", "is not a token returned by this RPC")
		}
		after = id
	}
	return limit, after, v.err()
}

// nextPageToken returns the token continuing after lastID, or "" when no
// more results follow.
func nextPageToken(more bool, lastID string) string {
	if !more {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + lastID))
}

// sessionAccount returns the account of a session in the call's snapshot
// (callSnapshot), or "" when it holds none (an unreadable session: the
// account its record's key names).
func (s *Server) sessionAccount(ctx context.Context, id string) string {
	snap := s.callSnapshot(ctx)
	if sess := snap.Session(id); sess != nil {
		return sess.AccountID
	}
	if u, ok := snap.UnreadableSession(id); ok {
		return u.AccountID
	}
	return ""
}

// auditCaller is the caller the audit log names for a write of ctx.
func auditCaller(ctx context.Context) string {
	if c, ok := auth.FromContext(ctx); ok {
		return c.Name
	}
	return auth.Local.Name
}

// auditOperation is the operation the audit log names for a write of ctx:
// the RPC, or the background job (observe.WithOperation).
func auditOperation(ctx context.Context) string {
	if rpc, ok := grpc.Method(ctx); ok {
		return rpc
	}
	return observe.Operation(ctx)
}
