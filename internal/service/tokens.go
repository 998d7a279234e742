package service

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// BootstrapOperatorToken creates an operator token named name when the
// store has no usable operator token, and returns its bearer string
// (created is false, and bearer empty, when one exists). It lets a daemon
// that requires authentication be administered from its first start.
func BootstrapOperatorToken(ctx context.Context, st store.Store, name string, now time.Time) (bearer string, created bool, err error) {
	_, err = st.Update(ctx, func(tx store.Tx) error {
		// The function may run more than once: only the last run's
		// outcome counts.
		bearer, created = "", false
		toks, _, err := store.ListTokens(tx, "", 0)
		if err != nil {
			return err
		}
		for _, t := range toks {
			if t.Role == auth.RoleOperator && !t.Revoked {
				return nil
			}
		}
		id, b, hash := auth.NewBearer()
		tok := auth.Token{ID: id, Name: name, Role: auth.RoleOperator, Hash: hash, CreateTime: now.UTC()}
		bearer, created = b, true
		return store.PutToken(tx, &tok)
	})
	if err != nil {
		return "", false, err
	}
	return bearer, created, nil
}

// RevokeTokensOf revokes every caller credential scoped to acct, so that
// a new account created later under the same id is not open to the
// callers of the deleted one.
func RevokeTokensOf(tx store.Tx, acct string) error {
	// An undecodable token authenticates nobody already; skip it.
	toks, err := store.LoadTokens(tx, func(string, error) {})
	if err != nil {
		return err
	}
	for i := range toks {
		if t := &toks[i]; t.AccountID == acct && !t.Revoked {
			t.Revoked = true
			if err := store.PutToken(tx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckCertIdentityFree refuses a second unrevoked credential for one
// certificate identity of one kind, so that a certificate field names one
// caller.
func CheckCertIdentityFree(tx store.ReadTx, id auth.CertID) error {
	toks, _, err := store.ListTokens(tx, "", 0)
	if err != nil {
		return err
	}
	for _, t := range toks {
		if t.CertIdentity != "" && t.CertID() == id && !t.Revoked {
			return errs.New(errs.AlreadyExists, "certificate identity %s already belongs to token %q; revoke it first", id, t.ID)
		}
	}
	return nil
}

// CreateToken writes a new caller credential: its account, when it is
// scoped to one, exists, and a certificate identity belongs to no other
// unrevoked credential.
func CreateToken(tx store.Tx, tok *auth.Token) error {
	if tok.AccountID != "" {
		if _, err := GetAccount(tx, tok.AccountID); err != nil {
			return err
		}
	}
	if tok.CertIdentity != "" {
		if err := CheckCertIdentityFree(tx, tok.CertID()); err != nil {
			return err
		}
	}
	return store.PutToken(tx, tok)
}

// RevokeToken revokes caller credential id; revoking a revoked one
// changes nothing.
func RevokeToken(tx store.Tx, id string) (auth.Token, error) {
	tok, err := store.GetToken(tx, id)
	if err != nil || tok.Revoked {
		return tok, Found(err, "token", id)
	}
	tok.Revoked = true
	return tok, store.PutToken(tx, &tok)
}
