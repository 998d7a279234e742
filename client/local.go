package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Defaults of Client.Session.
const (
	// DefaultStaleness is how long a local policy is trusted after the
	// last message (policy or heartbeat) from the server; past it, Check
	// asks the server instead.
	DefaultStaleness = 3 * time.Second
	// DefaultReconnectMin and DefaultReconnectMax bound the backoff
	// between attempts to reopen a broken policy watch (doubling, with up
	// to a fifth more as jitter).
	DefaultReconnectMin = 50 * time.Millisecond
	DefaultReconnectMax = 2 * time.Second
)

// Heartbeat bounds the server accepts (WatchSessionPolicyRequest
// heartbeat_interval_ms).
const (
	minHeartbeat = 500 * time.Millisecond
	maxHeartbeat = time.Hour
)

// Rules of the denials a LocalSession makes without any policy to decide
// with; their Reason is REASON_UNSPECIFIED, which the server never returns.
const (
	// RulePolicyUnavailable: the local policy was stale and the server
	// could not be asked either.
	RulePolicyUnavailable = "policy_unavailable"
	// RulePolicyRevoked: the server ended the policy watch for good (the
	// credential was revoked, the session or its account deleted, the
	// actor removed); nothing is answered for the session any more.
	RulePolicyRevoked = "policy_revoked"
)

// ErrPolicyUnavailable marks the error returned with a denial made
// without a policy: RulePolicyUnavailable or RulePolicyRevoked. It wraps
// the cause (e.g. ErrUnauthenticated, ErrSessionNotFound, ErrUnavailable).
var ErrPolicyUnavailable = errors.New("gatehouse: session policy unavailable")

// ErrOtherSession is returned by LocalSession.Check for a request naming
// another session.
var ErrOtherSession = errors.New("gatehouse: request names another session")

// SessionOption configures Client.Session.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	lang           string
	staleness      time.Duration
	reconnectMin   time.Duration
	reconnectMax   time.Duration
	heartbeatEvery time.Duration
}

// WithStaleness sets how long the local policy is trusted after the last
// message from the server (default DefaultStaleness). The server is asked
// for a heartbeat every third of it (at least 0.5 s), so a healthy watch
// never goes stale.
func WithStaleness(d time.Duration) SessionOption {
	return func(o *sessionOptions) { o.staleness = d }
}

// WithLanguage sets the language the policy is negotiated for.
func WithLanguage(tag string) SessionOption { return func(o *sessionOptions) { o.lang = tag } }

// WithReconnect sets the backoff between attempts to reopen a broken
// watch (defaults DefaultReconnectMin, DefaultReconnectMax).
func WithReconnect(minDelay, maxDelay time.Duration) SessionOption {
	return func(o *sessionOptions) { o.reconnectMin, o.reconnectMax = minDelay, maxDelay }
}

// LocalSession decides the checks of one session in-process, with the
// server's own decision engine, from the session's policy kept current by
// WatchSessionPolicy. Make one with Client.Session; it is safe for
// concurrent use. Close it when the session is over.
type LocalSession struct {
	c     *Client
	id    string
	actor Actor
	o     sessionOptions

	state atomic.Pointer[localState]
	base  time.Time
	heard atomic.Int64 // time since base of the last message, in ns

	mu      sync.Mutex
	updated chan struct{} // closed and replaced when state changes

	local, remote, failed atomic.Uint64

	cancel context.CancelFunc
	done   chan struct{}
}

// localState is one policy, compiled. It is never changed once stored.
type localState struct {
	snap   *policy.Snapshot // nil before the first policy and after a terminal error
	sess   *policy.Session
	policy *SessionPolicy
	// rev is the newest revision the policy is known to hold at: its own,
	// or a later heartbeat's.
	rev   uint64
	ended bool
	// err is set once the watch ended for good: every answer is a
	// RulePolicyRevoked denial with it.
	err error
}

// Session opens the policy watch of a session as actor sees it and waits,
// within ctx, for the first policy. Errors are those of WatchSessionPolicy
// (ErrSessionNotFound, ErrActorNotInSession, ErrUnauthenticated, ...).
func (c *Client) Session(ctx context.Context, sessionID string, actor Actor, opts ...SessionOption) (*LocalSession, error) {
	o := sessionOptions{staleness: DefaultStaleness, reconnectMin: DefaultReconnectMin, reconnectMax: DefaultReconnectMax}
	for _, f := range opts {
		f(&o)
	}
	if o.staleness <= 0 {
		o.staleness = DefaultStaleness
	}
	o.heartbeatEvery = min(max(o.staleness/3, minHeartbeat), maxHeartbeat)
	if o.reconnectMin <= 0 {
		o.reconnectMin = DefaultReconnectMin
	}
	o.reconnectMax = max(o.reconnectMax, o.reconnectMin)
	wctx, cancel := context.WithCancel(context.Background())
	s := &LocalSession{c: c, id: sessionID, actor: actor, o: o, base: time.Now(), updated: make(chan struct{}),
		cancel: cancel, done: make(chan struct{})}
	s.state.Store(&localState{})
	s.heard.Store(-int64(o.staleness) - 1) // stale until the first message
	first := make(chan error, 1)
	go s.run(wctx, first)
	select {
	case err := <-first:
		if err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
}

// Close stops the watch. Later checks go to the server at once (the
// policy is no longer confirmed), except that an ended session still
// answers SESSION_ENDED.
func (s *LocalSession) Close() {
	s.cancel()
	<-s.done
	s.heard.Store(-int64(s.o.staleness) - 1)
}

// ID returns the session's id.
func (s *LocalSession) ID() string { return s.id }

// Policy returns the policy decided with, and nil after the watch ended
// for good.
func (s *LocalSession) Policy() *SessionPolicy { return s.state.Load().policy }

// Revision returns the store revision the local policy is known to hold
// at.
func (s *LocalSession) Revision() uint64 { return s.state.Load().rev }

// Ended reports whether the local policy shows the session ended.
func (s *LocalSession) Ended() bool { return s.state.Load().ended }

// Fresh reports whether the local policy is within the staleness bound,
// i.e. whether Check answers locally.
func (s *LocalSession) Fresh() bool {
	return time.Since(s.base)-time.Duration(s.heard.Load()) <= s.o.staleness
}

// WaitRevision waits until the local policy holds at rev or later (e.g.
// the revision of an admin write), the watch ended for good, or ctx is
// done.
func (s *LocalSession) WaitRevision(ctx context.Context, rev uint64) error {
	return s.wait(ctx, func(st *localState) bool { return st.rev >= rev || st.err != nil })
}

// WaitClosed waits until local answers have stopped: the session ended or
// the watch ended for good.
func (s *LocalSession) WaitClosed(ctx context.Context) error {
	return s.wait(ctx, func(st *localState) bool { return st.ended || st.err != nil })
}

func (s *LocalSession) wait(ctx context.Context, ok func(*localState) bool) error {
	for {
		s.mu.Lock()
		ch := s.updated
		s.mu.Unlock()
		if ok(s.state.Load()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SessionStats counts how a LocalSession's checks were answered.
type SessionStats struct {
	// Local checks were decided in-process.
	Local uint64
	// Remote checks were sent to the server (stale policy, a request
	// outside what is decided locally, or a MinRevision not reached).
	Remote uint64
	// Failed checks were denied without a policy (ErrPolicyUnavailable).
	Failed uint64
}

// Stats returns the counts so far.
func (s *LocalSession) Stats() SessionStats {
	return SessionStats{Local: s.local.Load(), Remote: s.remote.Load(), Failed: s.failed.Load()}
}

// Check decides r. r.SessionID may be empty (this session); another
// session is refused with ErrOtherSession. An empty Actor is the one the
// session was opened for; any participant may be asked about.
//
// While the policy is fresh (see WithStaleness) a valid request is decided
// locally, with the server's engine, and tagged with Revision(). A stale
// policy, a MinRevision the policy has not reached, or a request the
// server would refuse as invalid or answer for a non-participant goes to
// the server (Client.Check). When that fails too, the answer is a denial
// with RulePolicyUnavailable and an error wrapping ErrPolicyUnavailable.
// Once the session ended every answer is SESSION_ENDED, decided locally;
// once the server ended the watch for good (credential revoked, session or
// account deleted) every answer is a RulePolicyRevoked denial — never a
// stale allow.
func (s *LocalSession) Check(ctx context.Context, r CheckRequest) (Decision, error) {
	if r.SessionID == "" {
		r.SessionID = s.id
	} else if r.SessionID != s.id {
		return Decision{Reason: gatehousev1.Reason_REASON_UNSPECIFIED}, fmt.Errorf("%w: %q, not %q", ErrOtherSession, r.SessionID, s.id)
	}
	if r.Actor == (Actor{}) {
		r.Actor = s.actor
	}
	st := s.state.Load()
	if st.err != nil {
		s.failed.Add(1)
		return unavailable(RulePolicyRevoked), st.err
	}
	// An ended session never becomes active again: its answer needs no
	// fresh policy and no later revision.
	if st.snap != nil && (st.ended || r.MinRevision <= st.rev && s.Fresh()) {
		var sc *scratch
		if r.Element != nil {
			// The engine keeps the element past the call's frame as far as
			// escape analysis can tell: reuse pooled storage for it.
			sc = scratchPool.Get().(*scratch)
		}
		var q policy.Query
		if localQuery(st.sess, &r, &q, sc) {
			d, err := st.snap.CheckContext(ctx, &q)
			sc.put()
			if err != nil {
				return Decision{}, err
			}
			s.local.Add(1)
			return Decision{Allowed: d.Allowed, Reason: Reason(d.Reason), Message: d.Reason.Message(), Rule: d.Rule, Revision: st.rev}, nil
		}
		sc.put()
		if st.ended {
			// Whatever is asked, an ended session allows nothing.
			s.local.Add(1)
			return Decision{Reason: gatehousev1.Reason_REASON_SESSION_ENDED, Message: policy.ReasonSessionEnded.Message(), Revision: st.rev}, nil
		}
	}
	s.remote.Add(1)
	d, err := s.c.Check(ctx, r)
	if err == nil || errors.Is(err, ErrInvalidArgument) {
		return d, err
	}
	s.failed.Add(1)
	return unavailable(RulePolicyUnavailable), fmt.Errorf("%w: %w", ErrPolicyUnavailable, err)
}

// CheckMany decides rs as one batch, like Client.CheckMany: against one
// policy revision, decisions[i] answering rs[i], and with the privacy work
// budget the server gives one batch (so even the protective denials of a
// too costly batch are the server's). Every SessionID must be empty or
// this session's (ErrOtherSession otherwise), as in Check.
//
// A batch is decided locally when Check would decide each of its requests
// locally; otherwise the whole batch goes to the server (Client.CheckMany),
// which also refuses an empty or too large batch, or one with an invalid
// request, with the field violations. When that fails too every decision
// is a RulePolicyUnavailable denial and the error wraps
// ErrPolicyUnavailable. An ended session answers SESSION_ENDED for every
// request, and a watch ended for good RulePolicyRevoked, as in Check.
func (s *LocalSession) CheckMany(ctx context.Context, rs []CheckRequest) ([]Decision, error) {
	rs = slices.Clone(rs)
	var minRev uint64
	for i := range rs {
		r := &rs[i]
		if r.SessionID == "" {
			r.SessionID = s.id
		} else if r.SessionID != s.id {
			return nil, fmt.Errorf("%w: checks[%d] names %q, not %q", ErrOtherSession, i, r.SessionID, s.id)
		}
		if r.Actor == (Actor{}) {
			r.Actor = s.actor
		}
		minRev = max(minRev, r.MinRevision)
	}
	n := uint64(len(rs))
	out := make([]Decision, len(rs))
	st := s.state.Load()
	if st.err != nil {
		s.failed.Add(n)
		fill(out, unavailable(RulePolicyRevoked))
		return out, st.err
	}
	if st.snap != nil && (st.ended || len(rs) > 0 && len(rs) <= localMaxBatch && minRev <= st.rev && s.Fresh()) {
		work := policy.NewBatchWork()
		sc := scratchPool.Get().(*scratch)
		all := true
		for i := range rs {
			var q policy.Query
			if !localQuery(st.sess, &rs[i], &q, sc) {
				all = false
				break
			}
			d, err := st.snap.CheckBatched(ctx, &q, work)
			if err != nil {
				sc.put()
				return nil, err
			}
			out[i] = Decision{Allowed: d.Allowed, Reason: Reason(d.Reason), Message: d.Reason.Message(), Rule: d.Rule, Revision: st.rev}
		}
		sc.put()
		if all {
			s.local.Add(n)
			return out, nil
		}
		if st.ended {
			s.local.Add(n)
			fill(out, Decision{Reason: gatehousev1.Reason_REASON_SESSION_ENDED, Message: policy.ReasonSessionEnded.Message(), Revision: st.rev})
			return out, nil
		}
	}
	s.remote.Add(n)
	ds, err := s.c.CheckMany(ctx, rs)
	if err == nil || errors.Is(err, ErrInvalidArgument) {
		return ds, err
	}
	s.failed.Add(n)
	fill(out, unavailable(RulePolicyUnavailable))
	return out, fmt.Errorf("%w: %w", ErrPolicyUnavailable, err)
}

// localMaxBatch is the server's bound on one CheckFeatures call; a larger
// batch goes to the server, which refuses it.
const localMaxBatch = 1000

func fill(ds []Decision, d Decision) {
	for i := range ds {
		ds[i] = d
	}
}

// scratch holds the element of a local query and its ancestors; the
// ancestors' storage grows to the longest chain seen (at most
// localMaxAncestors) and is kept with the scratch in the pool.
type scratch struct {
	el  selector.Element
	anc []selector.Element
}

var scratchPool = sync.Pool{New: func() any { return &scratch{anc: make([]selector.Element, 0, 16)} }}

// put returns sc, emptied, to the pool; a nil sc is ignored.
func (sc *scratch) put() {
	if sc == nil {
		return
	}
	sc.el = selector.Element{}
	clear(sc.anc)
	sc.anc = sc.anc[:0]
	scratchPool.Put(sc)
}

func unavailable(rule string) Decision {
	return Decision{Reason: gatehousev1.Reason_REASON_UNSPECIFIED, Rule: rule, Message: "no current session policy to decide with"}
}

// Bounds of a request decided locally; a request past one goes to the
// server, which refuses it with the right field violations. They equal
// the server's own bounds (internal/server validate.go, decisions.go).
const (
	localMaxURL        = 8192
	localMaxAncestors  = 256
	localMaxClasses    = 64
	localMaxAttributes = 64
	localMaxName       = 256
	localMaxValue      = 4096
	// localMaxElementBytes is the server's bound on one element's encoded
	// size, ancestors included (internal/server request_size.go).
	localMaxElementBytes = 64 << 10
)

// localQuery fills q from r when the server would accept r and the actor
// is a participant of sess (the policy's session ids are valid, so an
// actor that matches one is too); false sends r to the server. sc is
// storage for the element and its ancestors, so that an element costs no
// allocation; it may be nil when r has no element.
func localQuery(sess *policy.Session, r *CheckRequest, q *policy.Query, sc *scratch) bool {
	f := policy.Feature(r.Feature)
	if !f.Valid() || r.Frame < gatehousev1.Frame_FRAME_UNSPECIFIED || r.Frame > gatehousev1.Frame_FRAME_IFRAME ||
		len(r.URL) > localMaxURL || (r.URL == "" && f.NeedsURL()) {
		return false
	}
	role := policy.Role(r.Actor.Role)
	switch {
	case role == policy.RoleAgent && r.Actor.ID == sess.RepresentativeID:
	case role == policy.RoleCustomer && r.Actor.ID == sess.CustomerID:
	case role == policy.RoleExternalSpecialist && sess.HasSpecialist(r.Actor.ID):
	default:
		return false
	}
	*q = policy.Query{SessionID: r.SessionID, Role: role, ActorID: r.Actor.ID, Feature: f, URL: r.URL, Frame: policy.Frame(r.Frame)}
	e := r.Element
	if e == nil {
		return true
	}
	anc := e.GetAncestors()
	size := 0
	if len(anc) > localMaxAncestors || !nodeOK(e.GetTag(), e.GetId(), e.GetClasses(), e.GetAttributes(), &size) {
		return false
	}
	sc.el = selector.Element{Tag: e.GetTag(), ID: e.GetId(), Classes: e.GetClasses(), Attributes: e.GetAttributes()}
	q.Element = &sc.el
	if len(anc) > 0 {
		// One pass validates and converts the ancestors.
		sc.anc = sc.anc[:0]
		for _, a := range anc {
			n := selector.Element{Tag: a.GetTag(), ID: a.GetId(), Classes: a.GetClasses(), Attributes: a.GetAttributes()}
			if !nodeOK(n.Tag, n.ID, n.Classes, n.Attributes, &size) {
				return false
			}
			sc.anc = append(sc.anc, n)
		}
		q.Ancestors = sc.anc
	}
	// The bound is above the encoded size, which is computed only past it:
	// an element the server refuses for its size goes to the server.
	return size <= localMaxElementBytes || proto.Size(e) <= localMaxElementBytes
}

// nodeOK reports whether one node of an element is within the server's
// bounds, and adds to *size an upper bound of its encoded size (each
// string its length and 4 bytes of tag and length, each attribute 8 more,
// as the server counts).
func nodeOK(tag, id string, classes []string, attrs map[string]string, size *int) bool {
	if len(tag) > localMaxName || len(id) > localMaxValue || len(classes) > localMaxClasses || len(attrs) > localMaxAttributes {
		return false
	}
	n := len(tag) + len(id) + 16
	for _, c := range classes {
		if len(c) > localMaxName {
			return false
		}
		n += len(c) + 4
	}
	if len(attrs) != 0 { // ranging over an empty map still costs an iterator
		for k, v := range attrs {
			if len(k) > localMaxName || len(v) > localMaxValue {
				return false
			}
			n += len(k) + len(v) + 16
		}
	}
	*size += n
	return true
}

// run keeps the watch open until ctx ends or the server ends it for good,
// reporting the outcome of the first attempt to first.
func (s *LocalSession) run(ctx context.Context, first chan<- error) {
	defer close(s.done)
	delay := s.o.reconnectMin
	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			first <- err
		}
	}
	for {
		got, err := s.watch(ctx, func() { report(nil) })
		if ctx.Err() != nil {
			report(ctx.Err())
			return
		}
		if s.state.Load().ended {
			report(nil)
			return
		}
		if errors.Is(fromStatus(err, true), ErrSnapshotStale) {
			// The server's data is older than its staleness bound, and the
			// local policy is that data: it is no fresher. Stop answering
			// locally at once rather than when the last heartbeat ages
			// past the local bound.
			s.heard.Store(-int64(s.o.staleness) - 1)
		}
		if final(err) {
			ce := fromStatus(err, true)
			if !reported {
				report(ce)
				return
			}
			s.store(&localState{err: fmt.Errorf("%w: %w", ErrPolicyUnavailable, ce)})
			return
		}
		if got {
			delay = s.o.reconnectMin
		}
		t := time.NewTimer(delay + rand.N(delay/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			report(ctx.Err())
			return
		case <-t.C:
		}
		delay = min(2*delay, s.o.reconnectMax)
	}
}

// final reports whether a watch error ends local answers for good: the
// credential is no longer accepted, the session or its account is gone, or
// the actor is no longer a participant.
func final(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.NotFound, codes.PermissionDenied, codes.InvalidArgument:
		return true
	}
	return false
}

// watch runs one WatchSessionPolicy stream until it breaks; got says
// whether any message arrived.
func (s *LocalSession) watch(ctx context.Context, firstPolicy func()) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.c.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: s.id, Actor: s.actor.proto(),
		Language: s.o.lang, HeartbeatIntervalMs: uint32(s.o.heartbeatEvery.Milliseconds())})
	if err != nil {
		return false, err
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return got, status.Error(codes.Unavailable, "policy watch ended")
		}
		if err != nil {
			return got, err
		}
		got = true
		received := int64(time.Since(s.base))
		if p := m.GetPolicy(); p != nil {
			// The message counts as heard (as of its arrival) once the new
			// policy is stored: while it compiles, it confirms nothing
			// about the old one.
			st, err := compilePolicy(p)
			if err != nil {
				return got, status.Error(codes.Internal, err.Error())
			}
			s.store(st)
			s.heard.Store(received)
			firstPolicy()
			continue
		}
		s.heard.Store(received)
		if rev := m.GetHeartbeatRevision(); rev > 0 {
			if old := s.state.Load(); old.snap != nil && rev > old.rev {
				next := *old
				next.rev = rev
				s.store(&next)
			}
		}
	}
}

func (s *LocalSession) store(st *localState) {
	s.state.Store(st)
	s.mu.Lock()
	close(s.updated)
	s.updated = make(chan struct{})
	s.mu.Unlock()
}

// compilePolicy turns a policy message into a one-session snapshot that
// the engine decides from exactly as the server's snapshot.
func compilePolicy(p *SessionPolicy) (*localState, error) {
	ps := p.GetSession()
	if ps == nil || ps.GetId() == "" || ps.GetAccountId() == "" {
		return nil, errors.New("policy without a session")
	}
	sess := &policy.Session{ID: ps.GetId(), AccountID: ps.GetAccountId(), Kind: policy.SessionKind(ps.GetKind()),
		State: policy.SessionState(ps.GetState()), RepresentativeID: ps.GetRepresentativeId(), CustomerID: ps.GetCustomerId(),
		PortalID: ps.GetPortalId(), Revision: ps.GetRevision()}
	for _, sp := range ps.GetSpecialists() {
		sess.Specialists = append(sess.Specialists, policy.Specialist{ID: sp.GetId(), DisplayName: sp.GetDisplayName()})
	}
	if len(ps.GetSpecialists()) == 0 {
		for _, id := range ps.GetSpecialistIds() {
			sess.Specialists = append(sess.Specialists, policy.Specialist{ID: id})
		}
	}
	st := p.GetSettings()
	d := policy.AccountData{
		Account: policy.Account{ID: sess.AccountID, CobrowseURL: p.GetCobrowseUrl()},
		Settings: policy.LiveGuideSettings{AccountID: sess.AccountID,
			AgentClickRestricted: st.GetAgentClickRestricted(), AgentInputRestricted: st.GetAgentInputRestricted(),
			ClipboardAgent: st.GetClipboardAgent(), ClipboardCustomer: st.GetClipboardCustomer(),
			VideoAgent: st.GetVideoAgent(), VideoCustomer: st.GetVideoCustomer(), VoiceChat: st.GetVoiceChat(),
			SessionRecording: st.GetSessionRecording(), DocumentShareAgent: st.GetDocumentShareAgent(),
			DocumentShareCustomer: st.GetDocumentShareCustomer(), DocumentDownload: st.GetDocumentDownload(), Chat: st.GetChat(),
			DisplayAgentName: st.GetDisplayAgentName(), ShowDisclaimer: st.GetShowDisclaimer(), LanguageSelector: st.GetLanguageSelector(),
			SessionStartURL: st.GetSessionStartUrl()},
	}
	for _, e := range p.GetAllowlist() {
		d.Allowlist = append(d.Allowlist, policy.AllowlistEntry{ID: e.GetId(), Pattern: e.GetPattern()})
	}
	slices.SortFunc(d.Allowlist, func(a, b policy.AllowlistEntry) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range p.GetPrivacyRules() {
		d.PrivacyRules = append(d.PrivacyRules, policy.PrivacyRule{ID: r.GetId(), Kind: policy.PrivacyRuleKind(r.GetKind()),
			Selector: r.GetSelector(), URLPattern: r.GetUrlPattern()})
	}
	slices.SortFunc(d.PrivacyRules, func(a, b policy.PrivacyRule) int { return strings.Compare(a.ID, b.ID) })
	for _, pt := range p.GetPortalChain() {
		d.Portals = append(d.Portals, policy.Portal{ID: pt.GetId(), ParentID: pt.GetParentId(), Functions: functionsOf(pt.GetFunctions())})
	}
	if r := p.GetRepresentative(); r != nil {
		d.Representatives = []policy.Representative{{ID: r.GetId(), TeamID: r.GetTeamId(), Functions: functionsOf(r.GetFunctions()),
			LiveGuideEnabled: r.GetLiveGuideEnabled()}}
	}
	as := policy.Compile(d)
	snap := policy.NewSnapshot(p.GetRevision(), map[string]*policy.AccountState{sess.AccountID: as}, map[string]*policy.Session{sess.ID: sess})
	return &localState{snap: snap, sess: sess, policy: p, rev: p.GetRevision(), ended: sess.State == policy.SessionStateEnded}, nil
}

var functionsDesc = (&gatehousev1.SupportFunctions{}).ProtoReflect().Descriptor().Fields()

// functionsOf converts the wire functions: field number fn+1 is function
// fn.
func functionsOf(p *gatehousev1.SupportFunctions) policy.Functions {
	var fs policy.Functions
	if p == nil {
		return fs
	}
	m := p.ProtoReflect()
	for fn := range policy.NumFunctions {
		fs = fs.With(fn, m.Get(functionsDesc.ByNumber(protoreflect.FieldNumber(fn+1))).Bool())
	}
	return fs
}
