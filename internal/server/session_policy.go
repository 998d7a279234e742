package server

import (
	"context"
	"sync"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const reasonActorNotInSession = "ACTOR_NOT_IN_SESSION"

// validatePolicyRequest checks the fields GetSessionPolicy and
// WatchSessionPolicy share.
func validatePolicyRequest(sessionID string, actor *gatehousev1.Actor, lang string) error {
	var v violations
	v.checkID("session_id", sessionID, false)
	switch {
	case actor == nil:
		v.add("actor", "is required")
	case actor.GetRole() < gatehousev1.Role_ROLE_AGENT || actor.GetRole() > gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST:
		v.add("actor.role", "must be ROLE_AGENT, ROLE_CUSTOMER or ROLE_EXTERNAL_SPECIALIST")
	}
	if actor != nil {
		v.checkID("actor.id", actor.GetId(), false)
	}
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
	p, ok, err := snap.SessionPolicy(sessionID, policy.Role(role), actorID, lang)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, newError(codes.PermissionDenied, reasonActorNotInSession, nil,
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
	for i := range p.Allowlist {
		out.Allowlist = append(out.Allowlist, allowlistEntries.toProto(&p.Allowlist[i]))
	}
	for i := range p.PrivacyRules {
		out.PrivacyRules = append(out.PrivacyRules, privacyRules.toProto(&p.PrivacyRules[i]))
	}
	return out, nil
}

func (d *decisionService) GetSessionPolicy(ctx context.Context, req *gatehousev1.GetSessionPolicyRequest) (*gatehousev1.GetSessionPolicyResponse, error) {
	if err := validatePolicyRequest(req.GetSessionId(), req.GetActor(), req.GetLanguage()); err != nil {
		return nil, d.s.status(ctx, err)
	}
	snap, err := d.s.snapshotAt(ctx, req.GetMinRevision())
	if err != nil {
		return nil, d.s.status(ctx, err)
	}
	p, err := sessionPolicy(ctx, snap, req.GetSessionId(), req.GetActor(), req.GetLanguage())
	if err != nil {
		return nil, d.s.status(ctx, err)
	}
	return &gatehousev1.GetSessionPolicyResponse{Policy: p}, nil
}

// WatchSessionPolicy sends the current policy, then a new one after every
// snapshot whose policy for this session differs in anything but the
// revision. The stream ends (OK) after the message that shows the session
// ended, and with UNAVAILABLE when the server shuts down.
//
// A snapshot swap costs a watcher two map lookups unless its session's
// record or its account's compiled state changed (the snapshot keeps both
// by pointer while they do not), and a changed policy is built once for
// all the watchers of the same session, actor and language.
func (d *decisionService) WatchSessionPolicy(req *gatehousev1.WatchSessionPolicyRequest, stream gatehousev1.DecisionService_WatchSessionPolicyServer) error {
	ctx := stream.Context()
	if err := validatePolicyRequest(req.GetSessionId(), req.GetActor(), req.GetLanguage()); err != nil {
		return d.s.status(ctx, err)
	}
	key := watchKey{session: req.GetSessionId(), role: req.GetActor().GetRole(), actor: req.GetActor().GetId(), lang: req.GetLanguage()}
	shared := d.s.watches.acquire(key)
	defer d.s.watches.release(key, shared)
	caller, _ := auth.FromContext(ctx)
	var (
		last     *gatehousev1.SessionPolicy
		lastSess *policy.Session
		lastAcct *policy.AccountState
	)
	for {
		changed := d.s.snaps.Changed()
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
				return d.s.status(ctx, err)
			}
			p, err := shared.get(snap, sess, acct)
			if err != nil {
				return d.s.status(ctx, err)
			}
			if p != last {
				out := p
				if last == nil && p.GetRevision() != snap.Revision() {
					// A policy shared since an earlier revision: the first
					// message says the current one.
					out = proto.CloneOf(p)
					out.Revision = snap.Revision()
				}
				if err := stream.Send(&gatehousev1.WatchSessionPolicyResponse{Policy: out}); err != nil {
					return err
				}
				last = p
			}
			lastSess, lastAcct = sess, acct
			if p.GetSession().GetState() == gatehousev1.SessionState_SESSION_STATE_ENDED {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return d.s.status(ctx, ctx.Err())
		case <-d.s.done:
			return d.s.status(ctx, newError(codes.Unavailable, "", nil, "server is shutting down; watch again"))
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

// watchPolicies shares the policies being watched among their watchers.
type watchPolicies struct {
	mu sync.Mutex
	m  map[watchKey]*sharedPolicy
}

// sharedPolicy is the policy of one watchKey and the inputs it was built
// from. Messages built from it are only read, never changed.
type sharedPolicy struct {
	key  watchKey
	refs int // guarded by watchPolicies.mu

	mu   sync.Mutex
	sess *policy.Session
	acct *policy.AccountState
	p    *gatehousev1.SessionPolicy // nil until built
	rev  uint64                     // revision of the snapshot p was last checked against
}

func (w *watchPolicies) acquire(k watchKey) *sharedPolicy {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[watchKey]*sharedPolicy{}
	}
	sp := w.m[k]
	if sp == nil {
		sp = &sharedPolicy{key: k}
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
func (sp *sharedPolicy) get(snap *policy.Snapshot, sess *policy.Session, acct *policy.AccountState) (*gatehousev1.SessionPolicy, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.p != nil && ((sp.sess == sess && sp.acct == acct) || snap.Revision() < sp.rev) {
		return sp.p, nil
	}
	p, err := buildSessionPolicy(snap, sp.key.session, sp.key.role, sp.key.actor, sp.key.lang)
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
