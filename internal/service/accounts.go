package service

import (
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CreateAccount writes a new account with the default Live Guide
// settings; ALREADY_EXISTS when its id is taken.
func CreateAccount(tx store.Tx, acct *policy.Account) error {
	switch _, err := store.GetAccount(tx, acct.ID); {
	case err == nil:
		return errs.Exists("account", acct.ID)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	if err := store.PutAccount(tx, acct); err != nil {
		return err
	}
	settings := policy.DefaultLiveGuideSettings(acct.ID)
	return store.PutSettings(tx, &settings)
}

// DeleteAccount deletes account id with everything it holds (conditional
// on etag when it is set) and revokes the credentials scoped to it, so
// that an account created later under the same id is not open to them.
// It deletes at most batch records (store.DeleteBatch); more reports that
// records are left, to be deleted by AccountDeleter.FinishAccountDeletion
// (the account is gone for readers from this commit on).
func DeleteAccount(tx store.Tx, id, etag string, batch int) (more bool, err error) {
	cur, err := GetAccount(tx, id)
	switch {
	case errors.Is(err, store.ErrCorrupt) && etag == "":
		// Deleting a damaged account is the repair of last resort; it
		// cannot be conditional, as the etag cannot be read.
	case err != nil:
		return false, err
	default:
		if err := CheckEtag("account", cur.ID, etag, cur.Revision); err != nil {
			return false, err
		}
	}
	if more, err = store.DeleteAccount(tx, id, batch); err != nil {
		return false, err
	}
	return more, RevokeTokensOf(tx, id)
}
