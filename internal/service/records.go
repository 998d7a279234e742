package service

import (
	"context"
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// GetAccount reads an account; NOT_FOUND when it does not exist.
func GetAccount(tx store.ReadTx, id string) (policy.Account, error) {
	a, err := store.GetAccount(tx, id)
	return a, Found(err, "account", id)
}

// GetPortal reads a portal of an existing account.
func GetPortal(tx store.ReadTx, acct, id string) (policy.Portal, error) {
	if _, err := GetAccount(tx, acct); err != nil {
		return policy.Portal{}, err
	}
	p, err := store.GetPortal(tx, acct, id)
	return p, Found(err, "portal", id)
}

// GetRepresentative reads a representative of an existing account.
func GetRepresentative(tx store.ReadTx, acct, id string) (policy.Representative, error) {
	if _, err := GetAccount(tx, acct); err != nil {
		return policy.Representative{}, err
	}
	r, err := store.GetRepresentative(tx, acct, id)
	return r, Found(err, "representative", id)
}

// GetSession reads a session for a session-addressed call and checks the
// caller's scope (CheckSessionAccess). A session whose record cannot be
// read is DATA_LOSS naming it — after the caller's scope is checked
// against the account the session index names, so that a caller scoped to
// another account is refused as for a readable session.
func GetSession(ctx context.Context, tx store.ReadTx, id string) (policy.Session, error) {
	s, err := store.GetSession(tx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s, Found(err, "session", id)
	case errors.Is(err, store.ErrCorrupt):
		acct, aerr := store.SessionAccount(tx, id)
		if aerr != nil {
			return s, err // the index itself is damaged: the account is unknown
		}
		if aerr := CheckOwnedAccess(ctx, "session", id, acct); aerr != nil {
			return s, aerr
		}
		return s, &policy.SessionUnreadableError{SessionID: id, AccountID: acct, Why: err.Error()}
	case err != nil:
		return s, err
	}
	return s, CheckSessionAccess(ctx, &s)
}

// TxPortals and TxTeams look records up inside a transaction, for the
// chain walks of internal/policy.
func TxPortals(tx store.ReadTx, acct string) func(string) (*policy.Portal, bool) {
	return func(id string) (*policy.Portal, bool) {
		p, err := store.GetPortal(tx, acct, id)
		return &p, err == nil
	}
}

func TxTeams(tx store.ReadTx, acct string) func(string) (*policy.Team, bool) {
	return func(id string) (*policy.Team, bool) {
		t, err := store.GetTeam(tx, acct, id)
		return &t, err == nil
	}
}
