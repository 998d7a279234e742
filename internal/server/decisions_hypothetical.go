package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
)

// hypotheticalSessionID names the session of CheckHypothetical in its
// queries; it is never stored.
const hypotheticalSessionID = "hypothetical"

// defaultHypotheticalCustomer is the customer of a hypothetical session
// that names none.
const defaultHypotheticalCustomer = "customer"

// CheckHypothetical answers checks in a session that is not started, with
// the engine and snapshot CheckFeatures uses: a decision test against the
// live account. It creates nothing; each call is logged as a dry run.
func (d *decisionService) CheckHypothetical(ctx context.Context, req *gatehousev1.CheckHypotheticalRequest) (*gatehousev1.CheckHypotheticalResponse, error) {
	var v violations
	acct := req.GetAccountId()
	v.checkID("account_id", acct, false)
	hs := req.GetSession()
	sess := &policy.Session{ID: hypotheticalSessionID, AccountID: acct, Kind: policy.SessionKind(hs.GetKind()), State: policy.SessionStateActive,
		RepresentativeID: hs.GetRepresentativeId(), CustomerID: hs.GetCustomerId(), PortalID: hs.GetPortalId()}
	if sess.CustomerID == "" {
		sess.CustomerID = defaultHypotheticalCustomer
	}
	switch {
	case hs == nil:
		v.add("session", "is required")
	case hs.GetKind() == gatehousev1.SessionKind_SESSION_KIND_UNSPECIFIED:
		v.add("session.kind", "is required (SESSION_KIND_LIVE_GUIDE or SESSION_KIND_SUPPORT)")
	case hs.GetKind() != gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE && hs.GetKind() != gatehousev1.SessionKind_SESSION_KIND_SUPPORT:
		v.add("session.kind", "must be SESSION_KIND_LIVE_GUIDE or SESSION_KIND_SUPPORT")
	}
	v.checkID("session.representative_id", hs.GetRepresentativeId(), false)
	v.checkID("session.customer_id", hs.GetCustomerId(), true)
	if hs.GetKind() == gatehousev1.SessionKind_SESSION_KIND_SUPPORT {
		v.checkID("session.portal_id", hs.GetPortalId(), false)
	} else if hs.GetPortalId() != "" {
		v.add("session.portal_id", "must be empty for a Live Guide session")
	}
	if len(hs.GetSpecialistIds()) > service.MaxSpecialists {
		v.add("session.specialist_ids", "must hold at most %d specialists", service.MaxSpecialists)
	}
	for i, id := range hs.GetSpecialistIds() {
		v.checkID(fmt.Sprintf("session.specialist_ids[%d]", i), id, false)
		sess.Specialists = append(sess.Specialists, policy.Specialist{ID: id})
	}
	checks := req.GetChecks()
	switch {
	case len(checks) == 0:
		v.add("checks", "is required (at least one check)")
	case len(checks) > maxChecks:
		v.add("checks", "must hold at most %d checks, got %d", maxChecks, len(checks))
	}
	qs := make([]policy.Query, len(checks))
	for i, c := range checks {
		var cv violations
		validateCheck(&cv, "", &gatehousev1.CheckFeatureRequest{SessionId: hypotheticalSessionID, Actor: c.GetActor(), Feature: c.GetFeature(),
			Url: c.GetUrl(), Frame: c.GetFrame(), Element: c.GetElement()}, &qs[i])
		for j := range cv {
			cv[j].Field = fmt.Sprintf("checks[%d].%s", i, cv[j].Field)
		}
		v = append(v, cv...)
		qs[i].Hypothetical = sess
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	snap, err := d.s.snapshotAt(ctx, req.GetMinRevision())
	if err != nil {
		return nil, err
	}
	as := snap.Account(acct)
	if as == nil {
		if why, bad := snap.Unreadable(acct); bad {
			return nil, &policy.UnreadableError{AccountID: acct, Why: why}
		}
		return nil, errs.NotFoundf("account", acct)
	}
	// The session's people and portal must exist, as StartSession requires.
	if as.Representative(sess.RepresentativeID) == nil {
		return nil, errs.NotFoundf("representative", sess.RepresentativeID)
	}
	if sess.Kind == policy.SessionKindSupport && as.Portal(sess.PortalID) == nil {
		return nil, errs.NotFoundf("portal", sess.PortalID)
	}
	resp := &gatehousev1.CheckHypotheticalResponse{Decisions: make([]*gatehousev1.Decision, len(qs)), Revision: snap.Revision()}
	work := policy.NewBatchWork()
	allowed := 0
	for i := range qs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dec, err := snap.CheckBatched(ctx, &qs[i], work)
		if err != nil {
			return nil, err
		}
		if dec.Allowed {
			allowed++
		}
		resp.Decisions[i] = decisionToProto(dec, snap.Revision()).GetDecision()
	}
	caller := auth.Local.Name
	if c, ok := auth.FromContext(ctx); ok {
		caller = c.Name
	}
	d.logDryRun(ctx, acct, caller, sess.RepresentativeID, int(sess.Kind), len(qs), allowed, snap.Revision())
	return resp, nil
}

// logDryRun writes the line of a CheckHypothetical call within its budget
// (Options.CallLogRate lines a second): the line after suppressed ones
// says how many (suppressed).
func (d *decisionService) logDryRun(ctx context.Context, acct, caller, rep string, kind, checks, allowed int, rev uint64) {
	if !d.s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	suppressed, ok := d.s.dryRunLog.take(time.Now())
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("account", acct), slog.String("caller", caller), slog.String("representative", rep),
		slog.Int("kind", kind), slog.Int("checks", checks), slog.Int("allowed", allowed), slog.Uint64("revision", rev)}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	d.s.log.LogAttrs(ctx, slog.LevelInfo, "hypothetical decisions (dry run, no session)", attrs...)
}
