package server

import (
	"context"
	"errors"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// representativeMutable are the Representative fields an update may change.
var representativeMutable = []string{"display_name", "functions", "live_guide_enabled"}

func getRepresentative(tx store.ReadTx, acct, id string) (policy.Representative, error) {
	if _, err := getAccount(tx, acct); err != nil {
		return policy.Representative{}, err
	}
	r, err := store.GetRepresentative(tx, acct, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, notFound("representative", id)
	}
	return r, err
}

// validateRepresentative checks the fields of a representative to write.
func validateRepresentative(r *gatehousev1.Representative) error {
	var v violations
	v.checkText("representative.display_name", r.GetDisplayName(), true, maxDisplayName)
	if r.GetTeamId() != "" {
		v.add("representative.team_id", "teams are not supported by this version; leave empty")
	}
	return v.err()
}

func (a *adminService) CreateRepresentative(ctx context.Context, req *gatehousev1.CreateRepresentativeRequest) (*gatehousev1.CreateRepresentativeResponse, error) {
	var v violations
	in := req.GetRepresentative()
	v.checkID("account_id", req.GetAccountId(), false)
	if in == nil {
		v.add("representative", "is required")
	}
	v.checkID("representative.id", in.GetId(), true)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	if err := validateRepresentative(in); err != nil {
		return nil, a.s.status(ctx, err)
	}
	rep := representativeFromProto(in)
	if rep.ID == "" {
		rep.ID = newID("r-")
	}
	acct := req.GetAccountId()
	_, err := a.s.write(ctx, func(tx store.Tx) error {
		if _, err := getAccount(tx, acct); err != nil {
			return err
		}
		switch _, err := store.GetRepresentative(tx, acct, rep.ID); {
		case err == nil:
			return alreadyExists("representative", rep.ID)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return store.PutRepresentative(tx, acct, &rep)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.CreateRepresentativeResponse{Representative: representativeToProto(&rep)}, nil
}

func (a *adminService) GetRepresentative(ctx context.Context, req *gatehousev1.GetRepresentativeRequest) (*gatehousev1.GetRepresentativeResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	var rep policy.Representative
	err := a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		rep, err = getRepresentative(tx, req.GetAccountId(), req.GetId())
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.GetRepresentativeResponse{Representative: representativeToProto(&rep)}, nil
}

func (a *adminService) ListRepresentatives(ctx context.Context, req *gatehousev1.ListRepresentativesRequest) (*gatehousev1.ListRepresentativesResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	var list []policy.Representative
	var more bool
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if _, err := getAccount(tx, req.GetAccountId()); err != nil {
			return err
		}
		list, more, err = store.ListRepresentatives(tx, req.GetAccountId(), after, limit)
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	resp := &gatehousev1.ListRepresentativesResponse{}
	for i := range list {
		resp.Representatives = append(resp.Representatives, representativeToProto(&list[i]))
	}
	if more {
		resp.NextPageToken = nextPageToken(more, list[len(list)-1].ID)
	}
	return resp, nil
}

func (a *adminService) UpdateRepresentative(ctx context.Context, req *gatehousev1.UpdateRepresentativeRequest) (*gatehousev1.UpdateRepresentativeResponse, error) {
	var v violations
	in := req.GetRepresentative()
	v.checkID("account_id", req.GetAccountId(), false)
	if in == nil {
		v.add("representative", "is required")
	}
	v.checkID("representative.id", in.GetId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	acct := req.GetAccountId()
	var out policy.Representative
	_, err := a.s.write(ctx, func(tx store.Tx) error {
		cur, err := getRepresentative(tx, acct, in.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag("representative", cur.ID, in.GetEtag(), cur.Revision); err != nil {
			return err
		}
		p := representativeToProto(&cur)
		if err := applyMask(p, in, req.GetUpdateMask(), representativeMutable); err != nil {
			return err
		}
		if err := validateRepresentative(p); err != nil {
			return err
		}
		out = representativeFromProto(p)
		return store.PutRepresentative(tx, acct, &out)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.UpdateRepresentativeResponse{Representative: representativeToProto(&out)}, nil
}

func (a *adminService) DeleteRepresentative(ctx context.Context, req *gatehousev1.DeleteRepresentativeRequest) (*gatehousev1.DeleteRepresentativeResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	v.checkID("id", req.GetId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	acct := req.GetAccountId()
	rev, err := a.s.write(ctx, func(tx store.Tx) error {
		cur, err := getRepresentative(tx, acct, req.GetId())
		if err != nil {
			return err
		}
		if err := checkEtag("representative", cur.ID, req.GetEtag(), cur.Revision); err != nil {
			return err
		}
		n, err := store.ActiveSessionsOf(tx, acct, cur.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return newError(codes.FailedPrecondition, reasonInUse, nil,
				"representative %q has %d active session(s); end them first", cur.ID, n)
		}
		return store.DeleteRepresentative(tx, acct, cur.ID)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	return &gatehousev1.DeleteRepresentativeResponse{Revision: rev}, nil
}
