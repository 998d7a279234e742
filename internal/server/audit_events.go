package server

import (
	"context"
	"slices"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func (a *adminService) ListAuditEvents(ctx context.Context, req *gatehousev1.ListAuditEventsRequest) (*gatehousev1.ListAuditEventsResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), true)
	if rt := req.GetResourceType(); rt != "" && !slices.Contains(store.AuditResourceTypes(), rt) {
		v.add("resource_type", "must be empty (any) or one of %s", strings.Join(store.AuditResourceTypes(), ", "))
	}
	v.checkID("resource_id", req.GetResourceId(), true)
	var start, end time.Time
	if ts := req.GetStartTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("start_time", "%v", err)
		}
		start = ts.AsTime()
	}
	if ts := req.GetEndTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("end_time", "%v", err)
		}
		end = ts.AsTime()
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var since time.Time // see tenantSince
	match := func(e *store.AuditEvent) bool {
		return (req.GetAccountId() == "" || e.AccountID == req.GetAccountId()) &&
			(since.IsZero() || !e.Time.Before(since)) &&
			(req.GetResourceType() == "" || e.ResourceType == req.GetResourceType()) &&
			(req.GetResourceId() == "" || e.ResourceID == req.GetResourceId()) &&
			(start.IsZero() || !e.Time.Before(start)) &&
			(end.IsZero() || e.Time.Before(end))
	}
	var events []store.AuditEvent
	var next string
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if since, err = service.TenantSince(ctx, tx, req.GetAccountId()); err != nil {
			return err
		}
		events, next, err = store.ListAuditEvents(tx, after, limit, a.s.auditScan, match)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ListAuditEventsResponse{}
	for i := range events {
		e := &events[i]
		resp.Events = append(resp.Events, &gatehousev1.AuditEvent{Id: e.ID, AccountId: e.AccountID, Caller: e.Caller, Time: timestampOf(e.Time),
			Rpc: e.RPC, ResourceType: e.ResourceType, ResourceId: e.ResourceID, BeforeJson: e.Before, AfterJson: e.After, Revision: e.Revision})
	}
	resp.NextPageToken = nextPageToken(next != "", next)
	return resp, nil
}
