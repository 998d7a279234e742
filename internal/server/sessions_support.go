package server

import (
	"context"
	"errors"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/hours"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

const (
	reasonPortalClosed     = "PORTAL_CLOSED"
	reasonNotSubportal     = "NOT_A_SUBPORTAL"
	reasonSpecialistsLimit = "SPECIALIST_LIMIT"
	reasonNotSupport       = "NOT_A_SUPPORT_SESSION"
	reasonFunctionDisabled = "FUNCTION_DISABLED"
	// maxSpecialists is how many external specialists a session may have
	// at once.
	maxSpecialists = 5
)

// checkSupportStart decides whether rep may start a support session at
// portalID now: the portal is a subportal, the representative's team chain
// resolves to it (or to one of its ancestors), and the portal is open.
func checkSupportStart(tx store.ReadTx, acct string, rep *policy.Representative, portalID string, now time.Time) error {
	if _, err := portals.load(tx, acct, portalID); err != nil {
		return err
	}
	chain, err := policy.PortalChain(portalID, txPortals(tx, acct))
	if err != nil {
		return err
	}
	if len(chain) < 2 {
		return newError(codes.FailedPrecondition, reasonNotSubportal, map[string]string{"portal_id": portalID},
			"portal %q is a top portal; support sessions start at one of its subportals", portalID)
	}
	teamPortal := ""
	if rep.TeamID != "" {
		if teamPortal, err = policy.TeamPortal(rep.TeamID, txTeams(tx, acct)); err != nil {
			return err
		}
	}
	if !policy.CanServe(teamPortal, chain) {
		return newError(codes.FailedPrecondition, reasonRepNotAllowed,
			map[string]string{"representative_id": rep.ID, "portal_id": portalID},
			"representative %q is not assigned to portal %q through its team", rep.ID, portalID)
	}
	// The nearest portal of the chain with business hours decides.
	for _, p := range chain {
		if p.BusinessHoursID == "" {
			continue
		}
		bh, err := store.GetBusinessHours(tx, acct, p.BusinessHoursID)
		if err != nil {
			return err
		}
		sched, err := hours.Compile(hoursSpec(&bh))
		if err != nil {
			return err
		}
		if sched.IsOpen(now) {
			return nil
		}
		meta := map[string]string{"portal_id": portalID, "business_hours_id": bh.ID}
		msg := "portal %q is closed (business hours %q) and never opens again"
		if next, ok := sched.NextOpen(now); ok {
			meta["next_open"] = next.UTC().Format(time.RFC3339)
			msg = "portal %q is closed (business hours %q); it opens at " + meta["next_open"]
		}
		return newError(codes.FailedPrecondition, reasonPortalClosed, meta, msg, portalID, bh.ID)
	}
	return nil
}

// hoursSpec converts a stored set to the hours package's input.
func hoursSpec(bh *policy.BusinessHours) hours.Spec {
	spec := hours.Spec{TimeZone: bh.TimeZone}
	for _, w := range bh.Weekly {
		spec.Weekly = append(spec.Weekly, hours.Window{Day: w.Day, Start: w.Start, End: w.End})
	}
	for _, h := range bh.Holidays {
		spec.Holidays = append(spec.Holidays, hours.Holiday{Date: h.Date, Name: h.Name, Closed: h.Closed, Start: h.Start, End: h.End})
	}
	return spec
}

func (ss *sessionService) InviteExternalSpecialist(ctx context.Context, req *gatehousev1.InviteExternalSpecialistRequest) (*gatehousev1.InviteExternalSpecialistResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	v.checkID("specialist_id", req.GetSpecialistId(), false)
	v.checkText("display_name", req.GetDisplayName(), true, maxDisplayName)
	if err := v.err(); err != nil {
		return nil, ss.s.status(ctx, err)
	}
	var sess policy.Session
	rev, err := ss.s.write(ctx, func(tx store.Tx) (err error) {
		if sess, err = activeSupportSession(ctx, tx, req.GetSessionId()); err != nil {
			return err
		}
		if err := checkSessionAccess(ctx, &sess); err != nil {
			return err
		}
		if err := checkSessionFunction(tx, &sess, policy.FunctionInviteExternalSpecialist); err != nil {
			return err
		}
		if sess.HasSpecialist(req.GetSpecialistId()) || req.GetSpecialistId() == sess.RepresentativeID || req.GetSpecialistId() == sess.CustomerID {
			return alreadyExists("participant", req.GetSpecialistId())
		}
		// The check and the write are one transaction, and the store
		// serializes writers, so concurrent invites cannot exceed the limit.
		if len(sess.Specialists) >= maxSpecialists {
			return newError(codes.ResourceExhausted, reasonSpecialistsLimit, nil,
				"session %q already has %d external specialists, the most allowed at once", sess.ID, maxSpecialists)
		}
		sess.Specialists = append(sess.Specialists, policy.Specialist{ID: req.GetSpecialistId(), DisplayName: req.GetDisplayName()})
		return store.PutSession(tx, &sess)
	})
	if err != nil {
		return nil, ss.s.status(ctx, err)
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.InviteExternalSpecialistResponse{Session: sessionToProto(&sess)}, nil
}

func (ss *sessionService) RemoveExternalSpecialist(ctx context.Context, req *gatehousev1.RemoveExternalSpecialistRequest) (*gatehousev1.RemoveExternalSpecialistResponse, error) {
	var v violations
	v.checkID("session_id", req.GetSessionId(), false)
	v.checkID("specialist_id", req.GetSpecialistId(), false)
	if err := v.err(); err != nil {
		return nil, ss.s.status(ctx, err)
	}
	var sess policy.Session
	rev, err := ss.s.write(ctx, func(tx store.Tx) (err error) {
		if sess, err = getSession(ctx, tx, req.GetSessionId()); err != nil {
			return err
		}
		if err := checkSessionAccess(ctx, &sess); err != nil {
			return err
		}
		kept := sess.Specialists[:0:0]
		for _, sp := range sess.Specialists {
			if sp.ID != req.GetSpecialistId() {
				kept = append(kept, sp)
			}
		}
		if len(kept) == len(sess.Specialists) {
			return notFound("specialist", req.GetSpecialistId())
		}
		sess.Specialists = kept
		return store.PutSession(tx, &sess)
	})
	if err != nil {
		return nil, ss.s.status(ctx, err)
	}
	store.WrittenAt(&sess, rev)
	return &gatehousev1.RemoveExternalSpecialistResponse{Session: sessionToProto(&sess)}, nil
}

// activeSupportSession reads a session that must be an active support
// session.
func activeSupportSession(ctx context.Context, tx store.ReadTx, id string) (policy.Session, error) {
	sess, err := getSession(ctx, tx, id)
	switch {
	case err != nil:
		return sess, err
	case sess.State != policy.SessionStateActive:
		return sess, newError(codes.FailedPrecondition, reasonSessionEnded, nil, "session %q has ended", id)
	case sess.Kind != policy.SessionKindSupport:
		return sess, newError(codes.FailedPrecondition, reasonNotSupport, nil, "session %q is not a support session", id)
	}
	return sess, nil
}

// checkSessionFunction refuses unless fn is effective for the session's
// representative at its portal, read in the same transaction.
func checkSessionFunction(tx store.ReadTx, sess *policy.Session, fn policy.Function) error {
	chain, err := policy.PortalChain(sess.PortalID, txPortals(tx, sess.AccountID))
	if err != nil {
		return err
	}
	feature := gatehousev1.Feature(policy.FeatureFunctionBase + policy.Feature(fn))
	if by := policy.DisablingPortal(chain, fn); by != "" {
		return newError(codes.FailedPrecondition, reasonFunctionDisabled, map[string]string{"portal_id": by},
			"%s is turned off for portal %q", feature, by)
	}
	rep, err := store.GetRepresentative(tx, sess.AccountID, sess.RepresentativeID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil || !rep.Functions.Has(fn) {
		return newError(codes.FailedPrecondition, reasonFunctionDisabled, map[string]string{"representative_id": sess.RepresentativeID},
			"%s is turned off for representative %q", feature, sess.RepresentativeID)
	}
	return nil
}
