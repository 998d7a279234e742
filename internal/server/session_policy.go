package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/protobuf/proto"
)

const reasonActorNotInSession = "ACTOR_NOT_IN_SESSION"

// validatePolicyRequest checks the fields GetSessionPolicy and
// WatchSessionPolicy share.
func validatePolicyRequest(sessionID string, actor *gatehousev1.Actor, lang string) error {
	var v violations
	v.checkID("session_id", sessionID, false)
	validateActor(&v, "", actor)
	if len(lang) > 256 {
		v.add("language", "must be at most 256 bytes")
	}
	return v.err()
}

// sessionPolicy builds the wire policy from one snapshot. An actor who is
// not a participant gets PERMISSION_DENIED: the policy is for the people in
// the session.
func sessionPolicy(ctx context.Context, snap *policy.Snapshot, sessionID string, actor *gatehousev1.Actor, lang string) (*gatehousev1.SessionPolicy, error) {
	if err := snapshotSessionAccess(ctx, snap, sessionID); err != nil {
		return nil, err
	}
	return buildSessionPolicy(snap, sessionID, actor.GetRole(), actor.GetId(), lang)
}

// buildSessionPolicy is sessionPolicy without the caller's access check:
// its result depends on the snapshot's session record and account state
// alone (and its revision), so that watchers can share it.
func buildSessionPolicy(snap *policy.Snapshot, sessionID string, role gatehousev1.Role, actorID, lang string) (*gatehousev1.SessionPolicy, error) {
	return buildSessionPolicyWith(snap, sessionID, role, actorID, lang, nil)
}

// accountLists are an account state's allowlist and privacy rules on the
// wire, the same for every session of the account.
type accountLists struct {
	acct      *policy.AccountState
	allowlist []*gatehousev1.AllowlistEntry
	privacy   []*gatehousev1.PrivacyRule
}

func newAccountLists(as *policy.AccountState) *accountLists {
	l := &accountLists{acct: as}
	al, pr := as.Allowlist(), as.PrivacyRules()
	for i := range al {
		l.allowlist = append(l.allowlist, allowlistEntries.toProto(&al[i]))
	}
	for i := range pr {
		l.privacy = append(l.privacy, privacyRules.toProto(&pr[i]))
	}
	return l
}

// buildSessionPolicyWith builds the policy taking the account's lists from
// lists (converted once per account state and shared by the messages of
// its sessions, which are only read) when it is set.
func buildSessionPolicyWith(snap *policy.Snapshot, sessionID string, role gatehousev1.Role, actorID, lang string, lists func(*policy.AccountState) *accountLists) (*gatehousev1.SessionPolicy, error) {
	p, ok, err := snap.SessionPolicy(sessionID, policy.Role(role), actorID, lang)
	if err != nil {
		return nil, service.SessionErr(err, sessionID)
	}
	if !ok {
		return nil, errs.Refuse(errs.PermissionDenied, reasonActorNotInSession, nil,
			"%s %q is not a participant of session %q", role, actorID, sessionID)
	}
	out := &gatehousev1.SessionPolicy{
		Session:          sessionToProto(p.Session),
		Settings:         settingsToProto(&p.Settings),
		Language:         p.Language,
		Customization:    customizationToProto(&p.Customization),
		AgentDisplayName: p.AgentDisplayName,
		SessionStartUrl:  p.Settings.SessionStartURL,
		CobrowseUrl:      p.CobrowseURL,
		Functions:        functionsToProto(p.Functions),
		Revision:         p.Revision,
	}
	if p.Session.Kind == policy.SessionKindSupport {
		as := snap.Account(p.Session.AccountID)
		out.PortalChain = portalChainToProto(as, p.Session.PortalID)
		if rep := as.Representative(p.Session.RepresentativeID); rep != nil {
			out.Representative = representativeToProto(rep)
		}
	}
	if lists != nil {
		l := lists(snap.Account(p.Session.AccountID))
		out.Allowlist, out.PrivacyRules = l.allowlist, l.privacy
		return out, nil
	}
	for i := range p.Allowlist {
		out.Allowlist = append(out.Allowlist, allowlistEntries.toProto(&p.Allowlist[i]))
	}
	for i := range p.PrivacyRules {
		out.PrivacyRules = append(out.PrivacyRules, privacyRules.toProto(&p.PrivacyRules[i]))
	}
	return out, nil
}

// portalChainToProto returns the portal id and its ancestors, nearest
// first, as far as they are found: up to a missing parent, before a portal
// already listed, and at most policy.MaxChainDepth+1 of them, so that a
// client compiling them walks the chain to the same end as the server
// (a broken or too deep chain disables every function there too).
func portalChainToProto(as *policy.AccountState, id string) []*gatehousev1.Portal {
	var out []*gatehousev1.Portal
	seen := map[string]bool{}
	for id != "" && !seen[id] && len(out) <= policy.MaxChainDepth {
		p := as.Portal(id)
		if p == nil {
			break
		}
		seen[id] = true
		out = append(out, portalToProto(p))
		id = p.ParentID
	}
	return out
}

// Bounds of WatchSessionPolicyRequest.heartbeat_interval_ms.
const (
	minHeartbeatInterval = 500 * time.Millisecond
	maxHeartbeatInterval = time.Hour
)

func (d *decisionService) GetSessionPolicy(ctx context.Context, req *gatehousev1.GetSessionPolicyRequest) (*gatehousev1.GetSessionPolicyResponse, error) {
	if err := validatePolicyRequest(req.GetSessionId(), req.GetActor(), req.GetLanguage()); err != nil {
		return nil, err
	}
	snap, err := d.s.snapshotAt(ctx, req.GetMinRevision())
	if err != nil {
		return nil, err
	}
	p, err := sessionPolicy(ctx, snap, req.GetSessionId(), req.GetActor(), req.GetLanguage())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetSessionPolicyResponse{Policy: p}, nil
}

// WatchSessionPolicy sends the current policy, then a new one after every
// snapshot whose policy for this session differs in anything but the
// revision. The stream ends (OK) after the message that shows the session
// ended, and with UNAVAILABLE when the server shuts down.
//
// With heartbeat_interval_ms set, a stream that has sent nothing for that
// long sends a heartbeat: no policy, the current snapshot's revision. It
// is built from the snapshot alone (no policy is built or compared) after
// the same credential and access checks as a policy message, so a
// heartbeat also says that the caller may still watch.
//
// A snapshot swap wakes a watcher only when its session's record or its
// account's compiled state changed (the snapshot keeps both by pointer
// while they do not; see watchPolicies.follow), and a changed policy is
// built once for all the watchers of the same session, actor and
// language.
func (d *decisionService) WatchSessionPolicy(req *gatehousev1.WatchSessionPolicyRequest, stream gatehousev1.DecisionService_WatchSessionPolicyServer) error {
	ctx := stream.Context()
	if err := validatePolicyRequest(req.GetSessionId(), req.GetActor(), req.GetLanguage()); err != nil {
		return err
	}
	var beat time.Duration
	if ms := req.GetHeartbeatIntervalMs(); ms != 0 {
		beat = time.Duration(ms) * time.Millisecond
		if beat < minHeartbeatInterval || beat > maxHeartbeatInterval {
			var v violations
			v.add("heartbeat_interval_ms", "must be 0 (no heartbeats) or between %d and %d", minHeartbeatInterval.Milliseconds(), maxHeartbeatInterval.Milliseconds())
			return v.err()
		}
	}
	var ticker *time.Ticker
	var tick <-chan time.Time
	if beat > 0 {
		ticker = time.NewTicker(beat)
		defer ticker.Stop()
		tick = ticker.C
	}
	key := watchKey{session: req.GetSessionId(), role: req.GetActor().GetRole(), actor: req.GetActor().GetId(), lang: req.GetLanguage()}
	shared := d.s.watches.acquire(key, d.s.snaps, d.s.done)
	defer d.s.watches.release(key, shared)
	caller, _ := auth.FromContext(ctx)
	var (
		last     *gatehousev1.SessionPolicy
		lastSess *policy.Session
		lastAcct *policy.AccountState
	)
	beating := false // woken by the heartbeat ticker
	for {
		changed := d.s.watches.changed(shared)
		staled := d.s.staleWake()
		// No policy, nor heartbeat, from a snapshot older than the
		// staleness bound: the stream ends, and the client falls back.
		if err := d.s.staleErr(); err != nil {
			return err
		}
		snap := d.s.snaps.Current()
		// No policy of a snapshot in which the caller's credential is
		// revoked (the stream limiter ends the stream as well).
		if err := credentialErr(snap, caller); err != nil {
			return err
		}
		sess := snap.Session(key.session)
		var acct *policy.AccountState
		if sess != nil {
			acct = snap.Account(sess.AccountID)
		}
		if last == nil || sess != lastSess || acct != lastAcct {
			if err := snapshotSessionAccess(ctx, snap, key.session); err != nil {
				return err
			}
			p, err := shared.get(snap, sess, acct)
			if err != nil {
				return err
			}
			if p != last {
				rev := p.GetRevision()
				if last == nil && rev < snap.Revision() {
					// A policy shared since an earlier revision: the first
					// message says the current one.
					rev = snap.Revision()
				}
				msg, err := shared.encoded(p, rev)
				if err != nil {
					return err
				}
				if err := d.s.policyBytes.wait(ctx, inflightKeyOf(ctx, req, d.s.sessionAccount), len(msg.b)); err != nil {
					if ctx.Err() == nil {
						err = context.DeadlineExceeded // the wait would pass the stream's deadline
					}
					return err
				}
				if err := stream.SendMsg(msg); err != nil {
					return err
				}
				last = p
				beating = false
				if ticker != nil {
					ticker.Reset(beat)
				}
			}
			lastSess, lastAcct = sess, acct
			if p.GetSession().GetState() == gatehousev1.SessionState_SESSION_STATE_ENDED {
				return nil
			}
		}
		if beating {
			// The policy last sent is still the one of snap.
			if err := snapshotSessionAccess(ctx, snap, key.session); err != nil {
				return err
			}
			if err := stream.Send(&gatehousev1.WatchSessionPolicyResponse{HeartbeatRevision: snap.Revision()}); err != nil {
				return err
			}
			beating = false
		}
		select {
		case <-changed:
		case <-staled:
		case <-tick:
			beating = true
		case <-ctx.Done():
			return ctx.Err()
		case <-d.s.done:
			return errs.New(errs.Unavailable, "server is shutting down; watch again")
		}
	}
}

// samePolicy reports whether two policies differ only in their revision.
func samePolicy(a, b *gatehousev1.SessionPolicy) bool {
	a, b = proto.CloneOf(a), proto.CloneOf(b)
	a.Revision, b.Revision = 0, 0
	return proto.Equal(a, b)
}

// watchKey names the policy one watcher follows.
type watchKey struct {
	session string
	role    gatehousev1.Role
	actor   string
	lang    string
}

// watchPolicies shares the policies being watched among their watchers,
// and wakes the watchers of a policy only when its inputs change.
type watchPolicies struct {
	start sync.Once
	mu    sync.Mutex
	m     map[watchKey]*sharedPolicy
	// builds counts the policies built for watchers, encodes the
	// responses encoded for them.
	builds, encodes atomic.Int64

	listsMu sync.Mutex
	// lists holds, per watched account, the wire lists of its current
	// state; follow drops an entry once its state is replaced.
	lists map[string]*accountLists
}

// accountLists returns the wire lists of as, converting them once per
// account state.
func (w *watchPolicies) accountLists(as *policy.AccountState) *accountLists {
	w.listsMu.Lock()
	defer w.listsMu.Unlock()
	id := as.Account.ID
	if l := w.lists[id]; l != nil && l.acct == as {
		return l
	}
	if w.lists == nil {
		w.lists = map[string]*accountLists{}
	}
	l := newAccountLists(as)
	w.lists[id] = l
	return l
}

// sharedPolicy is the policy of one watchKey and the inputs it was built
// from. Messages built from it are only read, never changed.
type sharedPolicy struct {
	key watchKey
	w   *watchPolicies

	// Guarded by watchPolicies.mu: the watchers, the session record and
	// account state follow last saw, and the channel it closes (and
	// replaces) when they change.
	refs     int
	seenSess *policy.Session
	seenAcct *policy.AccountState
	wake     chan struct{}

	mu   sync.Mutex
	sess *policy.Session
	acct *policy.AccountState
	p    *gatehousev1.SessionPolicy // nil until built
	rev  uint64                     // revision of the snapshot p was last checked against

	// The last response sent, encoded: the policy encP stamped with
	// revision encRev.
	enc    *encodedMessage
	encP   *gatehousev1.SessionPolicy
	encRev uint64
}

// acquire returns the shared policy of k for a new watcher; the first
// call starts following snaps until done is closed.
func (w *watchPolicies) acquire(k watchKey, snaps *replica.Replica, done <-chan struct{}) *sharedPolicy {
	w.start.Do(func() { go w.follow(snaps, done) })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[watchKey]*sharedPolicy{}
	}
	sp := w.m[k]
	if sp == nil {
		// What follow compares the next swap with starts as the
		// current snapshot's: left empty, a swap that removes the
		// session (and its account) would look like no change, and the
		// watch would miss it. A swap follow has taken but not yet
		// compared wakes the watchers at worst once too often.
		snap := snaps.Current()
		sp = &sharedPolicy{key: k, w: w, wake: make(chan struct{})}
		if sp.seenSess = snap.Session(k.session); sp.seenSess != nil {
			sp.seenAcct = snap.Account(sp.seenSess.AccountID)
		}
		w.m[k] = sp
	}
	sp.refs++
	return sp
}

func (w *watchPolicies) release(k watchKey, sp *sharedPolicy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sp.refs--; sp.refs == 0 {
		delete(w.m, k)
	}
}

// changed returns a channel closed when the inputs of sp change after
// the snapshot current now. Take it before reading the snapshot.
func (w *watchPolicies) changed(sp *sharedPolicy) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sp.wake
}

// follow wakes, after every snapshot swap, the watchers of the policies
// whose session record or account state the swap replaced: one lookup of
// each per distinct policy, instead of every watcher waking to look.
func (w *watchPolicies) follow(snaps *replica.Replica, done <-chan struct{}) {
	for {
		swapped := snaps.Changed()
		snap := snaps.Current()
		w.mu.Lock()
		for _, sp := range w.m {
			sess := snap.Session(sp.key.session)
			var acct *policy.AccountState
			if sess != nil {
				acct = snap.Account(sess.AccountID)
			}
			if sess != sp.seenSess || acct != sp.seenAcct {
				sp.seenSess, sp.seenAcct = sess, acct
				close(sp.wake)
				sp.wake = make(chan struct{})
			}
		}
		w.mu.Unlock()
		w.listsMu.Lock()
		for id, l := range w.lists {
			if snap.Account(id) != l.acct {
				delete(w.lists, id)
			}
		}
		w.listsMu.Unlock()
		select {
		case <-swapped:
		case <-done:
			return
		}
	}
}

// len returns the number of distinct policies watched.
func (w *watchPolicies) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// get returns the policy of snap, whose session record is sess and whose
// session's account state is acct: the one built before when those are
// unchanged, else a new one — or the previous message again when the new
// one differs from it in nothing but the revision, so that watchers can
// tell a change by the pointer. A watcher still at an older snapshot than
// the policy's gets the newer policy rather than turning it back. Errors
// are not kept.
// encoded returns the WatchSessionPolicyResponse carrying p stamped with
// revision rev, marshaled once for all the watchers that send it.
func (sp *sharedPolicy) encoded(p *gatehousev1.SessionPolicy, rev uint64) (*encodedMessage, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.enc != nil && sp.encP == p && sp.encRev == rev {
		return sp.enc, nil
	}
	out := p
	if p.GetRevision() != rev {
		out = proto.CloneOf(p)
		out.Revision = rev
	}
	b, err := proto.Marshal(&gatehousev1.WatchSessionPolicyResponse{Policy: out})
	if err != nil {
		return nil, err
	}
	sp.w.encodes.Add(1)
	sp.enc, sp.encP, sp.encRev = &encodedMessage{b: b}, p, rev
	return sp.enc, nil
}

func (sp *sharedPolicy) get(snap *policy.Snapshot, sess *policy.Session, acct *policy.AccountState) (*gatehousev1.SessionPolicy, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.p != nil && ((sp.sess == sess && sp.acct == acct) || snap.Revision() < sp.rev) {
		return sp.p, nil
	}
	sp.w.builds.Add(1)
	p, err := buildSessionPolicyWith(snap, sp.key.session, sp.key.role, sp.key.actor, sp.key.lang, sp.w.accountLists)
	if err != nil {
		sp.p = nil
		return nil, err
	}
	if sp.p == nil || !samePolicy(sp.p, p) {
		sp.p = p
	}
	sp.sess, sp.acct, sp.rev = sess, acct, snap.Revision()
	return sp.p, nil
}
