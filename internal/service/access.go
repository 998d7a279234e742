package service

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CheckSessionAccess refuses a caller scoped to another account than the
// session's. Session-addressed calls make it once they have found the
// session.
func CheckSessionAccess(ctx context.Context, sess *policy.Session) error {
	return CheckOwnedAccess(ctx, "session", sess.ID, sess.AccountID)
}

// CheckOwnedAccess refuses a caller scoped to another account than acct,
// the account of the resource kind/id. Calls that name a resource by id
// alone make it once they have found the resource.
func CheckOwnedAccess(ctx context.Context, kind, id, acct string) error {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return errs.Denied("no caller")
	}
	if !caller.CanAccess(acct) {
		return errs.Denied("caller %q may not access %s %q", caller.Name, kind, id)
	}
	return nil
}

// TenantSince returns, for a caller scoped to one account, when that
// account was created: records of the account's id that are older belong
// to an earlier account of the same id, deleted since, and are not the
// caller's to see. For a caller scoped to all accounts it is zero.
func TenantSince(ctx context.Context, tx store.ReadTx, acct string) (time.Time, error) {
	caller, ok := auth.FromContext(ctx)
	if unscoped := ok && caller.AccountID == ""; unscoped || acct == "" {
		return time.Time{}, nil
	}
	a, err := GetAccount(tx, acct)
	if err != nil {
		return time.Time{}, err
	}
	return a.CreateTime, nil
}
