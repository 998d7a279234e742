package service

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/hours"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// MaxSpecialists is how many external specialists a session may have at
// once.
const MaxSpecialists = 5

// StartSession starts sess (its account, kind, representative, customer
// and portal set) at now: the representative must exist; a Live Guide
// session needs a representative enabled for Live Guide, a support
// session one that may serve the portal while it is open
// (CheckSupportStart). It gives sess a new id and writes it.
func StartSession(tx store.Tx, sess *policy.Session, now time.Time) error {
	rep, err := GetRepresentative(tx, sess.AccountID, sess.RepresentativeID)
	if err != nil {
		return err
	}
	if sess.Kind == policy.SessionKindSupport {
		if err := CheckSupportStart(tx, sess.AccountID, &rep, sess.PortalID, now); err != nil {
			return err
		}
	} else if !rep.LiveGuideEnabled {
		return errs.Precondition(ReasonRepNotAllowed,
			map[string]string{"representative_id": rep.ID},
			"representative %q is not enabled for Live Guide", rep.ID)
	}
	for {
		sess.ID = NewID("s-")
		taken, err := store.SessionExists(tx, sess.ID)
		if err != nil {
			return err
		}
		if !taken {
			break
		}
	}
	return store.PutSession(tx, sess)
}

// EndSession ends session id at now with the participants' ratings (0:
// none). Ending a support session queues its completed-session record in
// the same transaction: both happen, or neither does.
func EndSession(ctx context.Context, tx store.Tx, id string, now time.Time, customerRating, repRating int32) (policy.Session, error) {
	sess, err := GetSession(ctx, tx, id)
	if err != nil {
		return sess, err
	}
	if sess.State == policy.SessionStateEnded {
		return sess, errs.Precondition(ReasonSessionEnded, nil, "session %q has already ended", sess.ID)
	}
	sess.State = policy.SessionStateEnded
	sess.EndTime = now.UTC()
	sess.CustomerRating = customerRating
	sess.RepresentativeRating = repRating
	if err := store.PutSession(tx, &sess); err != nil {
		return sess, err
	}
	return sess, EnqueueCompletedSession(tx, &sess)
}

// InviteSpecialist adds an external specialist to an active support
// session whose portal chain and representative have
// INVITE_EXTERNAL_SPECIALIST on, up to MaxSpecialists at once.
func InviteSpecialist(ctx context.Context, tx store.Tx, sessionID string, sp policy.Specialist) (policy.Session, error) {
	sess, err := activeSupportSession(ctx, tx, sessionID)
	if err != nil {
		return sess, err
	}
	if err := checkSessionFunction(tx, &sess, policy.FunctionInviteExternalSpecialist); err != nil {
		return sess, err
	}
	if sess.HasSpecialist(sp.ID) || sp.ID == sess.RepresentativeID || sp.ID == sess.CustomerID {
		return sess, errs.Exists("participant", sp.ID)
	}
	// The check and the write are one transaction, and the store
	// serializes writers, so concurrent invites cannot exceed the limit.
	if len(sess.Specialists) >= MaxSpecialists {
		return sess, errs.Refuse(errs.ResourceExhausted, ReasonSpecialistsLimit, nil,
			"session %q already has %d external specialists, the most allowed at once", sess.ID, MaxSpecialists)
	}
	sess.Specialists = append(sess.Specialists, sp)
	return sess, store.PutSession(tx, &sess)
}

// RemoveSpecialist removes an external specialist from a session.
func RemoveSpecialist(ctx context.Context, tx store.Tx, sessionID, specialistID string) (policy.Session, error) {
	sess, err := GetSession(ctx, tx, sessionID)
	if err != nil {
		return sess, err
	}
	kept := sess.Specialists[:0:0]
	for _, sp := range sess.Specialists {
		if sp.ID != specialistID {
			kept = append(kept, sp)
		}
	}
	if len(kept) == len(sess.Specialists) {
		return sess, errs.NotFoundf("specialist", specialistID)
	}
	sess.Specialists = kept
	return sess, store.PutSession(tx, &sess)
}

// CheckSupportStart decides whether rep may start a support session at
// portalID now: the portal is a subportal, the representative's team chain
// resolves to it (or to one of its ancestors), and the portal is open.
func CheckSupportStart(tx store.ReadTx, acct string, rep *policy.Representative, portalID string, now time.Time) error {
	if _, err := GetPortal(tx, acct, portalID); err != nil {
		return err
	}
	chain, err := policy.PortalChain(portalID, TxPortals(tx, acct))
	if err != nil {
		return err
	}
	if len(chain) < 2 {
		return errs.Precondition(ReasonNotSubportal, map[string]string{"portal_id": portalID},
			"portal %q is a top portal; support sessions start at one of its subportals", portalID)
	}
	teamPortal := ""
	if rep.TeamID != "" {
		if teamPortal, err = policy.TeamPortal(rep.TeamID, TxTeams(tx, acct)); err != nil {
			return err
		}
	}
	if !policy.CanServe(teamPortal, chain) {
		return errs.Precondition(ReasonRepNotAllowed,
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
		sched, err := hours.Compile(HoursSpec(&bh))
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
		return errs.Precondition(ReasonPortalClosed, meta, msg, portalID, bh.ID)
	}
	return nil
}

// HoursSpec converts a stored set to the hours package's input.
func HoursSpec(bh *policy.BusinessHours) hours.Spec {
	spec := hours.Spec{TimeZone: bh.TimeZone}
	for _, w := range bh.Weekly {
		spec.Weekly = append(spec.Weekly, hours.Window{Day: w.Day, Start: w.Start, End: w.End})
	}
	for _, h := range bh.Holidays {
		spec.Holidays = append(spec.Holidays, hours.Holiday{Date: h.Date, Name: h.Name, Closed: h.Closed, Start: h.Start, End: h.End})
	}
	return spec
}

// activeSupportSession reads a session that must be an active support
// session.
func activeSupportSession(ctx context.Context, tx store.ReadTx, id string) (policy.Session, error) {
	sess, err := GetSession(ctx, tx, id)
	switch {
	case err != nil:
		return sess, err
	case sess.State != policy.SessionStateActive:
		return sess, errs.Precondition(ReasonSessionEnded, nil, "session %q has ended", id)
	case sess.Kind != policy.SessionKindSupport:
		return sess, errs.Precondition(ReasonNotSupport, nil, "session %q is not a support session", id)
	}
	return sess, nil
}

// checkSessionFunction refuses unless fn is effective for the session's
// representative at its portal, read in the same transaction.
func checkSessionFunction(tx store.ReadTx, sess *policy.Session, fn policy.Function) error {
	chain, err := policy.PortalChain(sess.PortalID, TxPortals(tx, sess.AccountID))
	if err != nil {
		return err
	}
	// The feature's name on the wire: FEATURE_INVITE_EXTERNAL_SPECIALIST.
	feature := "FEATURE_" + strings.ToUpper((policy.FeatureFunctionBase + policy.Feature(fn)).String())
	if by := policy.DisablingPortal(chain, fn); by != "" {
		return errs.Precondition(ReasonFunctionDisabled, map[string]string{"portal_id": by},
			"%s is turned off for portal %q", feature, by)
	}
	rep, err := store.GetRepresentative(tx, sess.AccountID, sess.RepresentativeID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil || !rep.Functions.Has(fn) {
		return errs.Precondition(ReasonFunctionDisabled, map[string]string{"representative_id": sess.RepresentativeID},
			"%s is turned off for representative %q", feature, sess.RepresentativeID)
	}
	return nil
}
