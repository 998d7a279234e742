package server

import (
	"context"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func (a *adminService) GenerateCobrowseUrl(ctx context.Context, req *gatehousev1.GenerateCobrowseUrlRequest) (*gatehousev1.GenerateCobrowseUrlResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, err
	}
	var acct policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		acct, err = service.GenerateCobrowseURL(tx, req.GetAccountId(), a.s.cobrowseBase, service.RandomCobrowseName)
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.GenerateCobrowseUrlResponse{Url: acct.CobrowseURL, Account: accountToProto(&acct)}, nil
}

// SetCobrowseUrl is operator-only: the access rules refuse every other
// caller before the handler runs (the product lets only support staff
// change an account's URL).
func (a *adminService) SetCobrowseUrl(ctx context.Context, req *gatehousev1.SetCobrowseUrlRequest) (*gatehousev1.SetCobrowseUrlResponse, error) {
	return a.setCobrowseURL(ctx, req.GetAccountId(), req.GetUrl())
}

// checkCobrowseURLField adds a violation of field when url is not a
// co-browse URL this server may assign.
func (a *adminService) checkCobrowseURLField(v *violations, field, url string) {
	switch {
	case url == "":
		v.add(field, "is required")
	case len(url) > maxURLLength:
		v.add(field, "must be at most %d bytes", maxURLLength)
	default:
		if why := service.CheckCobrowseURL(url, a.s.cobrowseBase); why != "" {
			v.add(field, "%s", why)
		}
	}
}

// setCobrowseURL sets an account's co-browse URL for an operator caller:
// url must be https://<label>.<base> (INVALID_ARGUMENT on field "url"
// otherwise) and not held by another account (ALREADY_EXISTS); the
// account's previous URL is released for others to take. Setting the URL
// the account already has succeeds without writing.
func (a *adminService) setCobrowseURL(ctx context.Context, acctID, url string) (*gatehousev1.SetCobrowseUrlResponse, error) {
	var v violations
	v.checkID("account_id", acctID, false)
	a.checkCobrowseURLField(&v, "url", url)
	if err := v.err(); err != nil {
		return nil, err
	}
	var acct policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		acct, err = service.SetCobrowseURL(tx, acctID, url)
		return err
	})
	if err != nil {
		return nil, err
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.SetCobrowseUrlResponse{Url: acct.CobrowseURL, Account: accountToProto(&acct)}, nil
}
