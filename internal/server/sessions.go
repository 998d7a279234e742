package server

import (
	"context"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// sessionService implements gatehousev1.SessionServiceServer.
type sessionService struct {
	gatehousev1.UnimplementedSessionServiceServer
	s *Server
}

func (ss *sessionService) StartSession(ctx context.Context, req *gatehousev1.StartSessionRequest) (*gatehousev1.StartSessionResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	v.checkID("representative_id", req.GetRepresentativeId(), false)
	v.checkID("customer_id", req.GetCustomerId(), false)
	switch req.GetKind() {
	case gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE:
		if req.GetPortalId() != "" {
			v.add("portal_id", "must be empty for a Live Guide session")
		}
	case gatehousev1.SessionKind_SESSION_KIND_SUPPORT:
		v.checkID("portal_id", req.GetPortalId(), false)
	case gatehousev1.SessionKind_SESSION_KIND_UNSPECIFIED:
		v.add("kind", "is required (SESSION_KIND_LIVE_GUIDE or SESSION_KIND_SUPPORT)")
	default:
		v.add("kind", "must be SESSION_KIND_LIVE_GUIDE or SESSION_KIND_SUPPORT")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	acct := req.GetAccountId()
	now := ss.s.now()
	sess := policy.Session{
		AccountID:        acct,
		Kind:             policy.SessionKind(req.GetKind()),
		State:            policy.SessionStateActive,
		RepresentativeID: req.GetRepresentativeId(),
		CustomerID:       req.GetCustomerId(),
		PortalID:         req.GetPortalId(),
		StartTime:        now.UTC(),
	}
	rev, err := ss.s.write(ctx, func(tx store.Tx) error {
		return service.StartSession(tx, &sess, now)
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.StartSessionResponse{Session: sessionToProto(&sess)}, nil
}

func (ss *sessionService) GetSession(ctx context.Context, req *gatehousev1.GetSessionRequest) (*gatehousev1.GetSessionResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var sess policy.Session
	err := ss.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		sess, err = service.GetSession(ctx, tx, req.GetSessionId())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetSessionResponse{Session: sessionToProto(&sess)}, nil
}

func (ss *sessionService) EndSession(ctx context.Context, req *gatehousev1.EndSessionRequest) (*gatehousev1.EndSessionResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	if r := req.GetCustomerRating(); r < 0 || r > 5 {
		v.add("customer_rating", "must be 0 (none) or 1-5")
	}
	if r := req.GetRepresentativeRating(); r < 0 || r > 5 {
		v.add("representative_rating", "must be 0 (none) or 1-5")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var sess policy.Session
	rev, err := ss.s.write(ctx, func(tx store.Tx) (err error) {
		sess, err = service.EndSession(ctx, tx, req.GetSessionId(), ss.s.now(), req.GetCustomerRating(), req.GetRepresentativeRating())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.EndSessionResponse{Session: sessionToProto(&sess)}, nil
}

// ListSessions lists an account's sessions that match the request's
// filters, in id order.
func (ss *sessionService) ListSessions(ctx context.Context, req *gatehousev1.ListSessionsRequest) (*gatehousev1.ListSessionsResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	v.checkID("representative_id", req.GetRepresentativeId(), true)
	v.checkID("customer_id", req.GetCustomerId(), true)
	if st := req.GetState(); st < gatehousev1.SessionState_SESSION_STATE_UNSPECIFIED || st > gatehousev1.SessionState_SESSION_STATE_ENDED {
		v.add("state", "must be SESSION_STATE_ACTIVE or SESSION_STATE_ENDED (or unset: any)")
	}
	if k := req.GetKind(); k < gatehousev1.SessionKind_SESSION_KIND_UNSPECIFIED || k > gatehousev1.SessionKind_SESSION_KIND_SUPPORT {
		v.add("kind", "must be SESSION_KIND_LIVE_GUIDE or SESSION_KIND_SUPPORT (or unset: any)")
	}
	var after, before time.Time
	if ts := req.GetStartedAfter(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("started_after", "%v", err)
		}
		after = ts.AsTime()
	}
	if ts := req.GetStartedBefore(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("started_before", "%v", err)
		}
		before = ts.AsTime()
	}
	limit, afterID, perr := pageParams(req.GetPageSize(), req.GetPageToken())
	if perr != nil {
		if e, ok := errs.As(perr); ok {
			v = append(v, e.Fields...)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var since time.Time // see tenantSince
	match := func(s *policy.Session) bool {
		return (req.GetState() == 0 || s.State == policy.SessionState(req.GetState())) &&
			(req.GetKind() == 0 || s.Kind == policy.SessionKind(req.GetKind())) &&
			(req.GetRepresentativeId() == "" || s.RepresentativeID == req.GetRepresentativeId()) &&
			(req.GetCustomerId() == "" || s.CustomerID == req.GetCustomerId()) &&
			(after.IsZero() || !s.StartTime.Before(after)) &&
			(before.IsZero() || s.StartTime.Before(before)) &&
			(since.IsZero() || !s.StartTime.Before(since))
	}
	var sessions []policy.Session
	var more bool
	err := ss.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if _, err = service.GetAccount(tx, req.GetAccountId()); err != nil {
			return err
		}
		if since, err = service.TenantSince(ctx, tx, req.GetAccountId()); err != nil {
			return err
		}
		sessions, more, err = store.ListSessions(tx, req.GetAccountId(), afterID, limit, match)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ListSessionsResponse{}
	for i := range sessions {
		resp.Sessions = append(resp.Sessions, sessionToProto(&sessions[i]))
	}
	last := ""
	if len(sessions) > 0 {
		last = sessions[len(sessions)-1].ID
	}
	resp.NextPageToken = nextPageToken(more, last)
	return resp, nil
}

func (ss *sessionService) InviteExternalSpecialist(ctx context.Context, req *gatehousev1.InviteExternalSpecialistRequest) (*gatehousev1.InviteExternalSpecialistResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	v.checkID("specialist_id", req.GetSpecialistId(), false)
	v.checkText("display_name", req.GetDisplayName(), true, maxDisplayName)
	if err := v.err(); err != nil {
		return nil, err
	}
	var sess policy.Session
	rev, err := ss.s.write(ctx, func(tx store.Tx) (err error) {
		sess, err = service.InviteSpecialist(ctx, tx, req.GetSessionId(), policy.Specialist{ID: req.GetSpecialistId(), DisplayName: req.GetDisplayName()})
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.InviteExternalSpecialistResponse{Session: sessionToProto(&sess)}, nil
}

func (ss *sessionService) RemoveExternalSpecialist(ctx context.Context, req *gatehousev1.RemoveExternalSpecialistRequest) (*gatehousev1.RemoveExternalSpecialistResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	v.checkID("specialist_id", req.GetSpecialistId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var sess policy.Session
	rev, err := ss.s.write(ctx, func(tx store.Tx) (err error) {
		sess, err = service.RemoveSpecialist(ctx, tx, req.GetSessionId(), req.GetSpecialistId())
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.RemoveExternalSpecialistResponse{Session: sessionToProto(&sess)}, nil
}
