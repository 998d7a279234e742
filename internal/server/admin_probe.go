package server

import (
	"context"
	"errors"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/hours"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestAllowlistUrl answers the URL step of a decision for a top-level page
// without a session: the same parser, the same compiled allowlist and the
// same reasons as CheckFeature's NAVIGATE.
func (a *adminService) TestAllowlistUrl(ctx context.Context, req *gatehousev1.TestAllowlistUrlRequest) (*gatehousev1.TestAllowlistUrlResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	switch u := req.GetUrl(); {
	case u == "":
		v.add("url", "is required")
	case len(u) > maxURLLength:
		v.add("url", "must be at most %d bytes", maxURLLength)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	snap, err := a.s.snapshotAt(ctx, req.GetMinRevision())
	if err != nil {
		return nil, err
	}
	as := snap.Account(req.GetAccountId())
	if as == nil {
		return nil, errs.NotFoundf("account", req.GetAccountId())
	}
	out := &gatehousev1.TestAllowlistUrlResponse{Revision: snap.Revision()}
	answer := func(r policy.Reason) *gatehousev1.TestAllowlistUrlResponse {
		out.Allowed = r == policy.ReasonAllowed
		out.Reason = gatehousev1.Reason(r)
		out.Message = r.Message()
		return out
	}
	u, err := urlmatch.Parse(req.GetUrl())
	switch {
	case errors.Is(err, urlmatch.ErrNotPermitted):
		return answer(policy.ReasonURLNotPermitted), nil
	case err != nil:
		return answer(policy.ReasonURLInvalid), nil
	}
	out.NormalizedUrl = u.String()
	id, ok, _ := as.AllowlistMatch(u)
	if !ok {
		return answer(policy.ReasonDomainNotAllowlisted), nil
	}
	out.EntryId = id
	return answer(policy.ReasonAllowed), nil
}

// GetBusinessHoursStatus evaluates a stored business-hours set with the
// schedule compiler StartSession uses.
func (a *adminService) GetBusinessHoursStatus(ctx context.Context, req *gatehousev1.GetBusinessHoursStatusRequest) (*gatehousev1.GetBusinessHoursStatusResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	v.checkID("id", req.GetId(), false)
	at := a.s.now()
	if ts := req.GetTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("time", "must be a valid timestamp")
		}
		at = ts.AsTime()
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	var bh policy.BusinessHours
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		bh, err = businessHours.load(tx, req.GetAccountId(), req.GetId())
		return err
	})
	if err != nil {
		return nil, err
	}
	sched, err := hours.Compile(service.HoursSpec(&bh))
	if err != nil {
		return nil, err
	}
	out := &gatehousev1.GetBusinessHoursStatusResponse{
		Open:     sched.IsOpen(at),
		TimeZone: bh.TimeZone,
		Time:     timestamppb.New(at),
	}
	from := at
	if out.Open {
		closes, ok := sched.NextChange(at)
		if !ok {
			return out, nil
		}
		out.CloseTime = timestamppb.New(closes)
		from = closes
	}
	if next, ok := sched.NextOpen(from); ok {
		out.NextOpenTime = timestamppb.New(next)
	}
	return out, nil
}
