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
	r, err := representatives.create(ctx, a.s, req.GetAccountId(), req.GetRepresentative(), req.GetRepresentative().GetId())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.CreateRepresentativeResponse{Representative: r}, nil
}

func (a *adminService) GetRepresentative(ctx context.Context, req *gatehousev1.GetRepresentativeRequest) (*gatehousev1.GetRepresentativeResponse, error) {
	r, err := representatives.getOne(ctx, a.s, req.GetAccountId(), req.GetId())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.GetRepresentativeResponse{Representative: r}, nil
}

func (a *adminService) ListRepresentatives(ctx context.Context, req *gatehousev1.ListRepresentativesRequest) (*gatehousev1.ListRepresentativesResponse, error) {
	items, next, err := representatives.listPage(ctx, a.s, req.GetAccountId(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.ListRepresentativesResponse{Representatives: items, NextPageToken: next}, nil
}

func (a *adminService) UpdateRepresentative(ctx context.Context, req *gatehousev1.UpdateRepresentativeRequest) (*gatehousev1.UpdateRepresentativeResponse, error) {
	in := req.GetRepresentative()
	r, err := representatives.update(ctx, a.s, req.GetAccountId(), in, in.GetId(), in.GetEtag(), req.GetUpdateMask())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.UpdateRepresentativeResponse{Representative: r}, nil
}

func (a *adminService) DeleteRepresentative(ctx context.Context, req *gatehousev1.DeleteRepresentativeRequest) (*gatehousev1.DeleteRepresentativeResponse, error) {
	rev, err := representatives.remove(ctx, a.s, req.GetAccountId(), req.GetId(), req.GetEtag())
	if err != nil {
		return nil, err
	}
	return &gatehousev1.DeleteRepresentativeResponse{Revision: rev}, nil
}
