package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain is the ErrorInfo domain of Gatehouse's machine-readable reasons.
const errorDomain = "gatehouse.dev"

// Machine-readable refusal reasons (errdetails.ErrorInfo.Reason).
const (
	reasonRepNotAllowed = "REP_NOT_ALLOWED"
	reasonStaleEtag     = "ETAG_MISMATCH"
	reasonInUse         = "RESOURCE_IN_USE"
	reasonSessionEnded  = "SESSION_ENDED"
)

// apiError is an error with a chosen gRPC status. Handlers and transaction
// closures return it; toStatus turns it into the wire status.
type apiError struct {
	code   codes.Code
	msg    string
	reason string
	meta   map[string]string
}

func (e *apiError) Error() string { return e.msg }

func newError(code codes.Code, reason string, meta map[string]string, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...), reason: reason, meta: meta}
}

func notFound(kind, id string) error {
	return newError(codes.NotFound, "", nil, "%s %q not found", kind, id)
}

func alreadyExists(kind, id string) error {
	return newError(codes.AlreadyExists, "", nil, "%s %q already exists", kind, id)
}

func staleEtag(kind, id, want, got string) error {
	return newError(codes.Aborted, reasonStaleEtag, map[string]string{"current_etag": want},
		"%s %q was changed by someone else (etag %q, current %q); read it again", kind, id, got, want)
}

// checkEtag fails with ABORTED when the caller sent an etag that is not the
// current one. An empty etag means an unconditional write.
func checkEtag(kind, id, sent string, rev uint64) error {
	if cur := etagOf(rev); sent != "" && sent != cur {
		return staleEtag(kind, id, cur, sent)
	}
	return nil
}

// violations collects field violations for one INVALID_ARGUMENT answer.
type violations []*errdetails.BadRequest_FieldViolation

func (v *violations) add(field, format string, args ...any) {
	*v = append(*v, &errdetails.BadRequest_FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was added.
func (v violations) err() error {
	if len(v) == 0 {
		return nil
	}
	return &validationError{v}
}

type validationError struct{ fields violations }

func (e *validationError) Error() string {
	return fmt.Sprintf("invalid request: %s: %s", e.fields[0].Field, e.fields[0].Description)
}

// isSlug reports whether id matches [a-z0-9][a-z0-9-]{0,62}. It is
// hand-written because it runs on every decision.
func isSlug(id string) bool {
	if len(id) == 0 || len(id) > 63 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// checkID adds a violation unless id is a slug; empty is allowed only when
// optional (the server generates one).
func (v *violations) checkID(field, id string, optional bool) {
	switch {
	case id == "" && optional:
	case id == "":
		v.add(field, "is required")
	case !isSlug(id):
		v.add(field, "must match [a-z0-9][a-z0-9-]{0,62}")
	}
}

// checkText adds a violation when s is longer than max characters, or empty
// when required.
func (v *violations) checkText(field, s string, required bool, max int) {
	n := len([]rune(s))
	switch {
	case required && n == 0:
		v.add(field, "is required")
	case n > max:
		v.add(field, "must be at most %d characters", max)
	}
}

// reasonChainTooDeep is the ErrorInfo reason of a write or a walk refused
// because a portal or team chain would be, or is, deeper than
// policy.MaxChainDepth.
const reasonChainTooDeep = "CHAIN_TOO_DEEP"

// toStatus maps an error to its gRPC status once, at the edge. Unknown
// errors become INTERNAL with a generic message; the cause is logged, never
// sent.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	var ve *validationError
	var ue *policy.UnreadableError
	var se *policy.SessionUnreadableError
	var cd *policy.ChainTooDeepError
	switch {
	case errors.As(err, &ve):
		st, _ := status.New(codes.InvalidArgument, ve.Error()).WithDetails(&errdetails.BadRequest{FieldViolations: ve.fields})
		return st.Err()
	case errors.As(err, &ae):
		st := status.New(ae.code, ae.msg)
		if ae.reason != "" {
			st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: ae.reason, Domain: errorDomain, Metadata: ae.meta})
		}
		return st.Err()
	case errors.As(err, &cd):
		st, _ := status.New(codes.FailedPrecondition, cd.Error()).WithDetails(&errdetails.ErrorInfo{Reason: reasonChainTooDeep, Domain: errorDomain,
			Metadata: map[string]string{"kind": cd.Kind, "id": cd.ID, "limit": strconv.Itoa(policy.MaxChainDepth)}})
		return st.Err()
	case errors.Is(err, policy.ErrBrokenChain):
		log.ErrorContext(ctx, "stored portal or team chain broken", "err", err)
		return status.Error(codes.DataLoss, "a stored portal or team chain is broken; an operator must repair the store")
	case errors.Is(err, policy.ErrSessionNotFound):
		return status.Error(codes.NotFound, "session not found")
	case errors.As(err, &se):
		log.ErrorContext(ctx, "decision refused: session unreadable", "session_id", se.SessionID, "account_id", se.AccountID, "err", se.Why)
		return status.Errorf(codes.DataLoss, "session %q cannot be read from the store; its decisions are refused until an operator repairs it", se.SessionID)
	case errors.As(err, &ue):
		log.ErrorContext(ctx, "decision refused: account unreadable", "account_id", ue.AccountID, "err", ue.Why)
		return status.Errorf(codes.DataLoss, "account %q cannot be read from the store; its decisions are refused until an operator repairs it", ue.AccountID)
	case errors.Is(err, store.ErrCorrupt):
		log.ErrorContext(ctx, "stored record undecodable", "err", err)
		return status.Error(codes.DataLoss, "a stored record cannot be decoded; an operator must repair the store")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, store.ErrAccountDeleting):
		return status.Error(codes.Aborted, "the account is still being deleted; retry when its deletion has finished")
	case errors.Is(err, store.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, store.ErrNoSpace):
		// Nothing was committed; the condition may pass, so the client may
		// retry later. Decisions keep being served from the last snapshot.
		log.ErrorContext(ctx, "store cannot grow", "err", err)
		return status.Error(codes.Unavailable, "the store is out of space; nothing was written")
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}
