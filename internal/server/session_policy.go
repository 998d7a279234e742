package server

import (
	"context"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
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
	case actor.GetRole() == gatehousev1.Role_ROLE_UNSPECIFIED:
		v.add("actor.role", "is required (ROLE_AGENT, ROLE_CUSTOMER or ROLE_EXTERNAL_SPECIALIST)")
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
	p, ok, err := snap.SessionPolicy(sessionID, policy.Role(actor.GetRole()), actor.GetId(), lang)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, newError(codes.PermissionDenied, reasonActorNotInSession, nil,
			"%s %q is not a participant of session %q", actor.GetRole(), actor.GetId(), sessionID)
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
func (d *decisionService) WatchSessionPolicy(req *gatehousev1.WatchSessionPolicyRequest, stream gatehousev1.DecisionService_WatchSessionPolicyServer) error {
	ctx := stream.Context()
	if err := validatePolicyRequest(req.GetSessionId(), req.GetActor(), req.GetLanguage()); err != nil {
		return d.s.status(ctx, err)
	}
	var last *gatehousev1.SessionPolicy
	for {
		changed := d.s.snaps.Changed()
		p, err := sessionPolicy(ctx, d.s.snaps.Current(), req.GetSessionId(), req.GetActor(), req.GetLanguage())
		if err != nil {
			return d.s.status(ctx, err)
		}
		if last == nil || !samePolicy(last, p) {
			if err := stream.Send(&gatehousev1.WatchSessionPolicyResponse{Policy: p}); err != nil {
				return err
			}
			last = p
		}
		if p.GetSession().GetState() == gatehousev1.SessionState_SESSION_STATE_ENDED {
			return nil
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
