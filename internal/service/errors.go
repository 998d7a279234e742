package service

import (
	"errors"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Machine-readable refusal reasons (errs.Error.Reason, ErrorInfo.Reason on
// the wire).
const (
	ReasonRepNotAllowed    = "REP_NOT_ALLOWED"
	ReasonStaleEtag        = errs.ReasonStaleEtag
	ReasonInUse            = "RESOURCE_IN_USE"
	ReasonSessionEnded     = "SESSION_ENDED"
	ReasonPortalClosed     = "PORTAL_CLOSED"
	ReasonNotSubportal     = "NOT_A_SUBPORTAL"
	ReasonSpecialistsLimit = "SPECIALIST_LIMIT"
	ReasonNotSupport       = "NOT_A_SUPPORT_SESSION"
	ReasonFunctionDisabled = "FUNCTION_DISABLED"
	ReasonLastSubportal    = "LAST_SUBPORTAL"
)

// Found translates the store's store.ErrNotFound for the record kind/id
// into errs NotFound, with the one wording of every NOT_FOUND; other
// errors pass as they are. Reads of a record that the caller named go
// through it (GetAccount, GetSession, the edge's collections, …).
func Found(err error, kind, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errs.NotFoundf(kind, id)
	}
	return err
}

// SessionErr translates the policy engine's policy.ErrSessionNotFound for
// session id into the one NOT_FOUND of an unknown session; other errors
// pass as they are.
func SessionErr(err error, id string) error {
	if errors.Is(err, policy.ErrSessionNotFound) {
		return errs.SessionNotFound(id)
	}
	return err
}

// InUse is the refusal of a delete because of what still references the
// resource.
func InUse(kind, id, by string) error {
	return errs.Precondition(ReasonInUse, map[string]string{"referenced_by": by},
		"%s %q is still in use by %s", kind, id, by)
}

// EtagOf is the etag of a record last written at revision rev.
func EtagOf(rev uint64) string { return strconv.FormatUint(rev, 10) }

// CheckEtag refuses with errs.Conflict a write conditional on an etag that
// is not the current one. An empty etag means an unconditional write.
func CheckEtag(kind, id, sent string, rev uint64) error {
	if cur := EtagOf(rev); sent != "" && sent != cur {
		return errs.StaleEtag(kind, id, cur, sent)
	}
	return nil
}
