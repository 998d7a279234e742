package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Defaults of StreamLimits.
const (
	DefaultMaxStreams          = 4096
	DefaultMaxStreamsPerCaller = 256
	DefaultMaxMetaStreams      = 64
	DefaultMaxConnStreams      = 1024
)

// reasonStreamLimit is the ErrorInfo reason of a stream refused because a
// stream limit is reached; its metadata names the limit ("scope": server,
// caller or meta) and its value.
const reasonStreamLimit = "STREAM_LIMIT"

// StreamLimits bound the long-lived streams one server holds open. A zero
// field takes its default.
//
// Streams come in two classes. API streams (WatchSessionPolicy,
// BackupStore) need a credential; they share MaxStreams, and one caller —
// an account for callers scoped to one, else the credential — holds at
// most MaxStreamsPerCaller of them, so that one tenant cannot lock the
// others out. Meta streams (health Watch, server reflection) have a small
// pool of their own, MaxMetaStreams, so that streams anyone can open never
// take an API stream's slot. Unary calls are bounded by Limits.MaxInflight.
type StreamLimits struct {
	// MaxStreams is how many API streams may be open at once (default
	// 4096).
	MaxStreams int
	// MaxStreamsPerCaller is how many of them one account (or one
	// credential scoped to all accounts) may hold (default 256); negative
	// means no per-caller limit. Without authentication there is one
	// caller and only MaxStreams applies.
	MaxStreamsPerCaller int
	// MaxMetaStreams is how many health Watch and reflection streams may be
	// open at once (default 64).
	MaxMetaStreams int
	// MaxConnStreams is HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: how many
	// calls and streams one connection may have open at once (default
	// 1024). Clients queue beyond it.
	MaxConnStreams int
}

func (l StreamLimits) withDefaults() StreamLimits {
	if l.MaxStreams <= 0 {
		l.MaxStreams = DefaultMaxStreams
	}
	if l.MaxStreamsPerCaller == 0 {
		l.MaxStreamsPerCaller = DefaultMaxStreamsPerCaller
	}
	if l.MaxMetaStreams <= 0 {
		l.MaxMetaStreams = DefaultMaxMetaStreams
	}
	if l.MaxConnStreams <= 0 {
		l.MaxConnStreams = DefaultMaxConnStreams
	}
	return l
}

// Stream classes, the label of the stream metrics.
const (
	classAPI  = "api"
	classMeta = "meta"
)

func streamClass(method string) string {
	if isHealth(method) || isReflection(method) {
		return classMeta
	}
	return classAPI
}

// streamLimiter admits streams into their class's pool, and ends the open
// streams of a caller whose credential is revoked or whose account is
// deleted, on the first snapshot that shows it.
type streamLimiter struct {
	limits  StreamLimits
	snaps   *replica.Replica
	metrics *streamMetrics // nil without metrics

	mu        sync.Mutex
	api, meta int
	perCaller map[string]int
	// open holds the streams of authenticated callers, for revocation.
	open map[*openStream]struct{}
}

// openStream is a stream whose caller's credential is checked on every
// snapshot swap.
type openStream struct {
	caller auth.Caller
	end    context.CancelCauseFunc
}

// streamEnded is the cause a stream's context is cancelled with when its
// caller may no longer hold it; the stream ends with err.
type streamEnded struct{ err error }

func (e *streamEnded) Error() string { return e.err.Error() }

func newStreamLimiter(l StreamLimits, m *Metrics, snaps *replica.Replica, done <-chan struct{}) *streamLimiter {
	sl := &streamLimiter{limits: l.withDefaults(), snaps: snaps, perCaller: map[string]int{}, open: map[*openStream]struct{}{}}
	if m != nil {
		sl.metrics = newStreamMetrics(m.Registry)
	}
	go sl.follow(done)
	return sl
}

// serverOptions returns the stream interceptor and the per-connection
// stream bound. The interceptor runs after authentication, so that it
// knows the caller.
func (sl *streamLimiter) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(uint32(sl.limits.MaxConnStreams)),
		grpc.ChainStreamInterceptor(sl.intercept),
	}
}

// callerKey is the per-caller pool of an authenticated caller: its account
// when it is scoped to one, else its credential. Callers without a
// credential (no authentication configured) share the global pool only.
func callerKey(c auth.Caller) string {
	switch {
	case c.AccountID != "":
		return "account " + c.AccountID
	case c.TokenID != "":
		return "credential " + c.TokenID
	}
	return ""
}

// metaShare is how many meta streams (reflection) one authenticated caller
// may hold: a quarter of the pool, so that no tenant can fill it.
func metaShare(pool int) int { return max(1, pool/4) }

func (sl *streamLimiter) acquire(class, key string) (scope string, err error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if class == classMeta {
		if sl.meta >= sl.limits.MaxMetaStreams {
			return "meta", streamRefused("meta", sl.limits.MaxMetaStreams,
				"server is at its limit of %d concurrent health-watch and reflection streams; retry with backoff", sl.limits.MaxMetaStreams)
		}
		if share := metaShare(sl.limits.MaxMetaStreams); key != "" && sl.perCaller[key] >= share {
			return "caller", streamRefused("caller", share,
				"%s has %d health-watch and reflection streams open, its limit; close one before opening another", strings.TrimPrefix(key, "meta "), share)
		}
		sl.meta++
		if key != "" {
			sl.perCaller[key]++
		}
		return "", nil
	}
	if sl.api >= sl.limits.MaxStreams {
		return "server", streamRefused("server", sl.limits.MaxStreams,
			"server is at its limit of %d concurrent streams; retry with backoff", sl.limits.MaxStreams)
	}
	if key != "" && sl.limits.MaxStreamsPerCaller > 0 && sl.perCaller[key] >= sl.limits.MaxStreamsPerCaller {
		return "caller", streamRefused("caller", sl.limits.MaxStreamsPerCaller,
			"%s has %d streams open, its limit; close one before opening another", key, sl.limits.MaxStreamsPerCaller)
	}
	sl.api++
	if key != "" {
		sl.perCaller[key]++
	}
	return "", nil
}

func (sl *streamLimiter) release(class, key string) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if class == classMeta {
		sl.meta--
	} else {
		sl.api--
	}
	if key != "" {
		if sl.perCaller[key]--; sl.perCaller[key] <= 0 {
			delete(sl.perCaller, key)
		}
	}
}

// streamRefused is the RESOURCE_EXHAUSTED status of a stream over a limit.
func streamRefused(scope string, limit int, format string, args ...any) error {
	e := errs.Refuse(errs.ResourceExhausted, reasonStreamLimit, map[string]string{"scope": scope, "limit": strconv.Itoa(limit)}, format, args...)
	e.RetryAfter = overloadRetryDelay
	return e
}

func (sl *streamLimiter) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	class := streamClass(info.FullMethod)
	caller, authed := auth.FromContext(ss.Context())
	key := ""
	if authed {
		key = callerKey(caller)
		if class == classMeta && key != "" {
			key = "meta " + key
		}
	}
	if scope, err := sl.acquire(class, key); err != nil {
		sl.metrics.refused(class, scope)
		return err
	}
	sl.metrics.opened(class, 1)
	defer func() {
		sl.release(class, key)
		sl.metrics.opened(class, -1)
	}()
	if !authed || caller.TokenID == "" {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancelCause(ss.Context())
	defer cancel(nil)
	o := &openStream{caller: caller, end: cancel}
	sl.mu.Lock()
	sl.open[o] = struct{}{}
	sl.mu.Unlock()
	defer func() {
		sl.mu.Lock()
		delete(sl.open, o)
		sl.mu.Unlock()
	}()
	// The credential was checked against an earlier snapshot; one swapped
	// in since is seen here or by follow, which now knows the stream.
	if err := credentialErr(sl.snaps.Current(), caller); err != nil {
		return err
	}
	var wrapped grpc.ServerStream = &callerStream{ServerStream: ss, ctx: ctx}
	if info.IsClientStream {
		wrapped = &endableStream{callerStream: callerStream{ServerStream: ss, ctx: ctx}}
	}
	err := handler(srv, wrapped)
	var ended *streamEnded
	if cause := context.Cause(ctx); errors.As(cause, &ended) {
		return ended.err
	}
	return err
}

// follow re-checks the credential of every open stream on every snapshot
// swap until done is closed.
func (sl *streamLimiter) follow(done <-chan struct{}) {
	for {
		changed := sl.snaps.Changed()
		snap := sl.snaps.Current()
		sl.mu.Lock()
		for o := range sl.open {
			if err := credentialErr(snap, o.caller); err != nil {
				o.end(&streamEnded{err: err})
				delete(sl.open, o)
			}
		}
		sl.mu.Unlock()
		select {
		case <-changed:
		case <-done:
			return
		}
	}
}

// credentialErr says why caller may no longer hold a stream in snap: its
// account was deleted (NOT_FOUND), or its credential was revoked or
// replaced (UNAUTHENTICATED); nil while it may.
func credentialErr(snap *policy.Snapshot, c auth.Caller) error {
	if c.TokenID == "" {
		return nil
	}
	if c.AccountID != "" && snap.Account(c.AccountID) == nil {
		if _, unreadable := snap.Unreadable(c.AccountID); !unreadable {
			return errs.New(errs.NotFound, "account %q of caller %q was deleted; its streams are ended", c.AccountID, c.Name)
		}
	}
	tok := snap.Token(c.TokenID)
	if tok == nil || tok.Revoked || tok.Role != c.Role || tok.AccountID != c.AccountID {
		return errs.New(errs.Unauthenticated, "credential of caller %q was revoked; its streams are ended", c.Name)
	}
	return nil
}

// streamMetrics count open streams by class and refusals by class and the
// limit that refused them.
type streamMetrics struct {
	open    *prometheus.GaugeVec
	refusal *prometheus.CounterVec
}

func newStreamMetrics(reg *prometheus.Registry) *streamMetrics {
	m := &streamMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_streams_open",
			Help: "Streams open, by class: api (WatchSessionPolicy, BackupStore) or meta (health Watch, reflection).",
		}, []string{"class"}),
		refusal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_streams_refused_total",
			Help: "Streams refused with RESOURCE_EXHAUSTED, by class and the limit reached (scope server: --max-streams, caller: --max-streams-per-caller, meta: --max-meta-streams).",
		}, []string{"class", "scope"}),
	}
	m.open.WithLabelValues(classAPI)
	m.open.WithLabelValues(classMeta)
	m.refusal.WithLabelValues(classAPI, "server")
	m.refusal.WithLabelValues(classAPI, "caller")
	m.refusal.WithLabelValues(classMeta, "meta")
	reg.MustRegister(m.open, m.refusal)
	return m
}

func (m *streamMetrics) opened(class string, delta float64) {
	if m != nil {
		m.open.WithLabelValues(class).Add(delta)
	}
}

func (m *streamMetrics) refused(class, scope string) {
	if m != nil {
		m.refusal.WithLabelValues(class, scope).Inc()
	}
}

// endableStream is the stream of a handler that waits for its caller's
// messages (reflection): a wait ends, with the cause, when the stream's
// context ends, so that revoking the caller ends the handler too.
type endableStream struct {
	callerStream
}

func (s *endableStream) RecvMsg(m any) error {
	got := make(chan error, 1)
	// The receive goes on until the message arrives or the handler
	// returns, which tears the stream down.
	go func() { got <- s.ServerStream.RecvMsg(m) }()
	select {
	case err := <-got:
		return err
	case <-s.ctx.Done():
		var ended *streamEnded
		if cause := context.Cause(s.ctx); errors.As(cause, &ended) {
			return ended.err
		}
		return s.ctx.Err()
	}
}
