package server

import (
	"context"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var representatives = &collection[policy.Representative, *gatehousev1.Representative]{
	kind:     "representative",
	field:    "representative",
	idPrefix: "r-",
	mutable:  []string{"display_name", "team_id", "functions", "live_guide_enabled"},
	get:      store.GetRepresentative,
	put:      store.PutRepresentative,
	del:      store.DeleteRepresentative,
	list:     store.ListRepresentatives,
	id:       func(r *policy.Representative) string { return r.ID },
	revision: func(r *policy.Representative) uint64 { return r.Revision },
	toProto:  representativeToProto,
	fromProto: func(tx store.ReadTx, acct string, p *gatehousev1.Representative) (policy.Representative, error) {
		var v violations
		v.checkText("representative.display_name", p.GetDisplayName(), true, maxDisplayName)
		out := representativeFromProto(p)
		return out, service.CheckRepresentativeWrite(tx, (*errs.Violations)(&v), acct, &out)
	},
	beforeDelete: service.BeforeDeleteRepresentative,
}

func (a *adminService) CreateRepresentative(ctx context.Context, req *gatehousev1.CreateRepresentativeRequest) (*gatehousev1.CreateRepresentativeResponse, error) {
	return reply[*gatehousev1.CreateRepresentativeResponse](representatives.create(ctx, a.s, req.GetAccountId(), req.GetRepresentative(), req.GetRepresentative().GetId()))
}

func (a *adminService) GetRepresentative(ctx context.Context, req *gatehousev1.GetRepresentativeRequest) (*gatehousev1.GetRepresentativeResponse, error) {
	return reply[*gatehousev1.GetRepresentativeResponse](representatives.getOne(ctx, a.s, req.GetAccountId(), req.GetId()))
}

func (a *adminService) ListRepresentatives(ctx context.Context, req *gatehousev1.ListRepresentativesRequest) (*gatehousev1.ListRepresentativesResponse, error) {
	return replyPage[*gatehousev1.ListRepresentativesResponse](representatives.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken()))
}

func (a *adminService) UpdateRepresentative(ctx context.Context, req *gatehousev1.UpdateRepresentativeRequest) (*gatehousev1.UpdateRepresentativeResponse, error) {
	return reply[*gatehousev1.UpdateRepresentativeResponse](representatives.update(ctx, a.s, req.GetAccountId(), req.GetRepresentative(), req.GetRepresentative().GetId(), req.GetRepresentative().GetEtag(), req.GetUpdateMask()))
}

func (a *adminService) DeleteRepresentative(ctx context.Context, req *gatehousev1.DeleteRepresentativeRequest) (*gatehousev1.DeleteRepresentativeResponse, error) {
	return replyRevision[*gatehousev1.DeleteRepresentativeResponse](representatives.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag()))
}
