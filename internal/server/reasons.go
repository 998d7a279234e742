package server

import (
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Machine-readable refusal reasons (errs.Error.Reason, ErrorInfo.Reason on
// the wire).
const (
	reasonRepNotAllowed = "REP_NOT_ALLOWED"
	reasonStaleEtag     = "ETAG_MISMATCH"
	reasonInUse         = "RESOURCE_IN_USE"
	reasonSessionEnded  = "SESSION_ENDED"
)

// found translates the store's store.ErrNotFound for the record kind/id
// into errs NotFound, with the one wording of every NOT_FOUND; other
// errors pass as they are. Reads of a record that the caller named go
// through it (getAccount, collection.load, getSession, …).
func found(err error, kind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errs.NotFoundf(kind, id)
	}
	return err
}

// sessionErr translates the policy engine's policy.ErrSessionNotFound for
// session id into the one NOT_FOUND of an unknown session; other errors
// pass as they are.
func sessionErr(err error, id string) error {
	if errors.Is(err, policy.ErrSessionNotFound) {
		return errs.SessionNotFound(id)
	}
	return err
}

// checkEtag refuses with errs.Conflict a write conditional on an etag that
// is not the current one. An empty etag means an unconditional write.
func checkEtag(kind, id, sent string, rev uint64) error {
	if cur := etagOf(rev); sent != "" && sent != cur {
		return errs.StaleEtag(kind, id, cur, sent)
	}
	return nil
}
