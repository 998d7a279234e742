package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain is the ErrorInfo domain of the server's machine-readable
// reasons.
const errorDomain = "gatehouse.dev"

// Sentinel errors. Every error a call returns for a gRPC status is an
// *Error; errors.Is matches it against the sentinels of its status code and
// of its ErrorInfo reason (an error can match several: a refused portal
// matches both ErrPortalClosed and ErrFailedPrecondition). A deadline or a
// cancellation also matches context.DeadlineExceeded or context.Canceled.
var (
	// Errors by status code.
	ErrInvalidArgument    = errors.New("gatehouse: invalid argument")
	ErrNotFound           = errors.New("gatehouse: not found")
	ErrAlreadyExists      = errors.New("gatehouse: already exists")
	ErrPermissionDenied   = errors.New("gatehouse: permission denied")
	ErrUnauthenticated    = errors.New("gatehouse: unauthenticated")
	ErrFailedPrecondition = errors.New("gatehouse: failed precondition")
	ErrResourceExhausted  = errors.New("gatehouse: resource exhausted")
	ErrAborted            = errors.New("gatehouse: aborted")
	ErrUnavailable        = errors.New("gatehouse: unavailable")
	ErrDataLoss           = errors.New("gatehouse: data loss")
	ErrInternal           = errors.New("gatehouse: internal error")

	// ErrSessionNotFound: the session named by the call does not exist
	// (NOT_FOUND from a call addressed to a session). Also matches
	// ErrNotFound.
	ErrSessionNotFound = errors.New("gatehouse: session not found")

	// Errors by ErrorInfo reason.

	// ErrOverloaded: the server shed the call (RESOURCE_EXHAUSTED,
	// OVERLOADED). The client already retried it after the delay the server
	// asked for; see RetryDelay.
	ErrOverloaded = errors.New("gatehouse: server overloaded")
	// ErrRepresentativeNotAllowed: the representative may not serve this
	// session (not enabled for Live Guide, or not assigned to the portal).
	ErrRepresentativeNotAllowed = errors.New("gatehouse: representative not allowed")
	// ErrPortalClosed: the portal is outside its business hours; see
	// (*Error).NextOpen.
	ErrPortalClosed = errors.New("gatehouse: portal closed")
	// ErrSessionEnded: the session has already ended.
	ErrSessionEnded = errors.New("gatehouse: session ended")
	// ErrActorNotInSession: the actor asking is not part of the session.
	ErrActorNotInSession = errors.New("gatehouse: actor not in session")
	// ErrNotSupportSession: the call needs a support session.
	ErrNotSupportSession = errors.New("gatehouse: not a support session")
	// ErrNotSubportal: a support session must start at a subportal.
	ErrNotSubportal = errors.New("gatehouse: not a subportal")
	// ErrFunctionDisabled: a support function the call needs is off for
	// the portal chain or the representative.
	ErrFunctionDisabled = errors.New("gatehouse: support function disabled")
	// ErrSpecialistLimit: the session already has the most external
	// specialists allowed at once.
	ErrSpecialistLimit = errors.New("gatehouse: external specialist limit reached")
	// ErrChainTooDeep: a portal or team chain is deeper than the server's
	// limit.
	ErrChainTooDeep = errors.New("gatehouse: chain too deep")
	// ErrEtagMismatch: a conditional write lost to another writer.
	ErrEtagMismatch = errors.New("gatehouse: etag mismatch")
	// ErrResourceInUse: the resource is still referenced.
	ErrResourceInUse = errors.New("gatehouse: resource in use")
	// ErrCollectionFull: the account already holds the most resources of
	// that kind (allowlist entries, privacy rules) it may; delete one first.
	ErrCollectionFull = errors.New("gatehouse: account holds the most resources of that kind")
	// ErrStreamLimit: the server, or the caller's share of it, has as many
	// streams open as it allows.
	ErrStreamLimit = errors.New("gatehouse: stream limit reached")
	// ErrSnapshotStale: the replica's data is older than its staleness
	// bound (UNAVAILABLE, reason SNAPSHOT_STALE): its store (etcd) has not
	// confirmed it for longer than the replica's --max-staleness, so it
	// refused to decide. Nothing was decided; retry later or ask another
	// replica. (*Error).Metadata holds "staleness" and "max_staleness".
	// Also matches ErrUnavailable. A LocalSession whose policy watch ends
	// so stops deciding locally at once (its policy came from that data).
	ErrSnapshotStale = errors.New("gatehouse: replica data older than its staleness bound")
	// ErrStoreUnavailable: the replica's store (etcd) could not serve the
	// call (UNAVAILABLE, reason STORE_UNAVAILABLE): unreachable, without a
	// leader, overloaded, or refusing the replica's credentials
	// ((*Error).Metadata["cause"]: "overloaded", "access_denied", or
	// absent). Nothing was written, except when Metadata["outcome"] is
	// "unknown": the write may have been applied, read before retrying.
	// Decisions keep being answered from the replica's snapshot. Also
	// matches ErrUnavailable.
	ErrStoreUnavailable = errors.New("gatehouse: store unavailable")
	// ErrStoreTxnLimit: the write needs more operations or bytes than one
	// transaction of the replica's store may hold (RESOURCE_EXHAUSTED,
	// reason STORE_TXN_LIMIT); nothing was written. Also matches
	// ErrResourceExhausted.
	ErrStoreTxnLimit = errors.New("gatehouse: write larger than one store transaction")
)

var byCode = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.NotFound:           ErrNotFound,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.Aborted:            ErrAborted,
	codes.Unavailable:        ErrUnavailable,
	codes.DataLoss:           ErrDataLoss,
	codes.Internal:           ErrInternal,
	codes.DeadlineExceeded:   context.DeadlineExceeded,
	codes.Canceled:           context.Canceled,
}

var byReason = map[string]error{
	"OVERLOADED":            ErrOverloaded,
	"REP_NOT_ALLOWED":       ErrRepresentativeNotAllowed,
	"PORTAL_CLOSED":         ErrPortalClosed,
	"SESSION_ENDED":         ErrSessionEnded,
	"ACTOR_NOT_IN_SESSION":  ErrActorNotInSession,
	"NOT_A_SUPPORT_SESSION": ErrNotSupportSession,
	"NOT_A_SUBPORTAL":       ErrNotSubportal,
	"FUNCTION_DISABLED":     ErrFunctionDisabled,
	"SPECIALIST_LIMIT":      ErrSpecialistLimit,
	"CHAIN_TOO_DEEP":        ErrChainTooDeep,
	"ETAG_MISMATCH":         ErrEtagMismatch,
	"RESOURCE_IN_USE":       ErrResourceInUse,
	"RESOURCE_LIMIT":        ErrCollectionFull,
	"STREAM_LIMIT":          ErrStreamLimit,
	"SNAPSHOT_STALE":        ErrSnapshotStale,
	"STORE_UNAVAILABLE":     ErrStoreUnavailable,
	"STORE_TXN_LIMIT":       ErrStoreTxnLimit,
}

// FieldViolation is one field of a request the server refused with
// INVALID_ARGUMENT, and why.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a call's failure as the server (or the gRPC runtime) reported
// it. Use errors.Is with the sentinels above to branch on it, errors.As to
// read its details; status.FromError and status.Code still see the
// original status.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the server's message.
	Message string
	// Reason and Metadata are the server's errdetails.ErrorInfo, when it
	// sent one.
	Reason   string
	Metadata map[string]string
	// Violations are the fields refused with INVALID_ARGUMENT.
	Violations []FieldViolation
	// RetryDelay is the server's errdetails.RetryInfo delay (0 when none).
	RetryDelay time.Duration

	st      *status.Status
	session bool // NOT_FOUND names the session of the call
}

// Error describes the failure.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gatehouse: %s: %s", e.Code, e.Message)
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	return b.String()
}

// GRPCStatus returns the original status, so that status.FromError and
// status.Code see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the sentinels e matches.
func (e *Error) Unwrap() []error {
	var out []error
	if s, ok := byCode[e.Code]; ok {
		out = append(out, s)
	}
	if e.Code == codes.NotFound && e.session {
		out = append(out, ErrSessionNotFound)
	}
	if s, ok := byReason[e.Reason]; ok {
		out = append(out, s)
	}
	return out
}

// NextOpen is when a closed portal opens next (ErrPortalClosed); false
// when the error is another one or the portal never opens again.
func (e *Error) NextOpen() (time.Time, bool) {
	if e.Reason != "PORTAL_CLOSED" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, e.Metadata["next_open"])
	return t, err == nil
}

// fromStatus converts a call's error to an *Error; errors that carry no
// gRPC status are returned as they are. sessionCall says that NOT_FOUND
// from this call means its session is unknown.
func fromStatus(err error, sessionCall bool) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), st: st}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.GetDomain() == errorDomain {
				e.Reason, e.Metadata = d.GetReason(), d.GetMetadata()
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryDelay = d.GetRetryDelay().AsDuration()
		}
	}
	// RemoveExternalSpecialist answers NOT_FOUND for an unknown specialist
	// of a known session too.
	e.session = sessionCall && !strings.HasPrefix(e.Message, "specialist ")
	return e
}
