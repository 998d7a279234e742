package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// This file is the one place where errors become gRPC statuses. Handlers,
// services and their transaction closures return errs.Error values (and
// the sentinel errors of internal/policy and internal/store); the server's
// interceptors (unaryChain, streamChain) pass every error a call ends with
// through toStatus once.

// errorDomain is the ErrorInfo domain of Gatehouse's machine-readable reasons.
const errorDomain = "gatehouse.dev"

// reasonChainTooDeep is the ErrorInfo reason of a write or a walk refused
// because a portal or team chain would be, or is, deeper than
// policy.MaxChainDepth.
const reasonChainTooDeep = "CHAIN_TOO_DEEP"

// reasonStoreTxnLimit is the ErrorInfo reason of a write refused because
// it needs more operations or bytes than one store transaction may hold.
const reasonStoreTxnLimit = "STORE_TXN_LIMIT"

// kindCodes is the status code of each errs.Kind.
var kindCodes = [...]codes.Code{
	errs.Internal:           codes.Internal,
	errs.Invalid:            codes.InvalidArgument,
	errs.NotFound:           codes.NotFound,
	errs.AlreadyExists:      codes.AlreadyExists,
	errs.Conflict:           codes.Aborted,
	errs.FailedPrecondition: codes.FailedPrecondition,
	errs.PermissionDenied:   codes.PermissionDenied,
	errs.Unauthenticated:    codes.Unauthenticated,
	errs.ResourceExhausted:  codes.ResourceExhausted,
	errs.DataLoss:           codes.DataLoss,
	errs.Unavailable:        codes.Unavailable,
	errs.Unimplemented:      codes.Unimplemented,
}

// toStatus maps the error a call ended with to its gRPC status, counts the
// refusals that have a metric, and logs what an operator must see. Unknown
// errors become INTERNAL with a generic message; the cause is logged here,
// once, and never sent.
func (s *Server) toStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	s.obs.CountRefusal(err)
	return mapErrorTo(ctx, causeLog{log: s.log, budget: s.causeLog}, err)
}

// causeLog writes the line that says why a call failed, beside its
// "finished call" line. The lines of the codes a caller can cause (a store
// that cannot be reached fails every caller's writes, at any rate) share a
// budget per code of their own, as the call log does (callLogBudget); the
// server's faults (INTERNAL, DATA_LOSS) are always written.
type causeLog struct {
	log    *slog.Logger
	budget *callLogBudget // nil: no bound
}

// write logs msg with err at lvl for a call that fails with code, within
// the code's budget.
func (c causeLog) write(ctx context.Context, lvl slog.Level, code codes.Code, msg string, err error) {
	if !c.log.Enabled(ctx, lvl) {
		return
	}
	suppressed, ok := c.budget.take(code, time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		c.log.LogAttrs(ctx, lvl, msg, slog.Any("err", err), slog.Int64("suppressed", suppressed))
		return
	}
	c.log.LogAttrs(ctx, lvl, msg, slog.Any("err", err))
}

// mapError is mapErrorTo with no bound on log.
func mapError(ctx context.Context, log *slog.Logger, err error) error {
	return mapErrorTo(ctx, causeLog{log: log}, err)
}

func mapErrorTo(ctx context.Context, log causeLog, err error) error {
	var e *errs.Error
	var ue *policy.UnreadableError
	var se *policy.SessionUnreadableError
	var cd *policy.ChainTooDeepError
	switch {
	case errors.As(err, &e) && (e.Kind == errs.Internal || int(e.Kind) >= len(kindCodes)):
		// An internal error that was logged where it happened (a panic,
		// with its stack) has no cause left to log.
		if e.Cause != nil {
			log.write(ctx, slog.LevelError, codes.Internal, "internal error", e.Cause)
		}
		return status.Error(codes.Internal, "internal error")
	case e != nil:
		if e.Cause != nil {
			log.write(ctx, slog.LevelError, kindCodes[e.Kind], e.Message, e.Cause)
		}
		return statusOf(e).Err()
	case errors.As(err, &cd):
		st, _ := status.New(codes.FailedPrecondition, cd.Error()).WithDetails(&errdetails.ErrorInfo{Reason: reasonChainTooDeep, Domain: errorDomain,
			Metadata: map[string]string{"kind": cd.Kind, "id": cd.ID, "limit": strconv.Itoa(policy.MaxChainDepth)}})
		return st.Err()
	case errors.Is(err, policy.ErrBrokenChain):
		log.write(ctx, slog.LevelError, codes.DataLoss, "stored portal or team chain broken", err)
		return status.Error(codes.DataLoss, "a stored portal or team chain is broken; an operator must repair the store")
	case errors.As(err, &se):
		log.log.ErrorContext(ctx, "decision refused: session unreadable", "session_id", se.SessionID, "account_id", se.AccountID, "err", se.Why)
		return status.Errorf(codes.DataLoss, "session %q cannot be read from the store; its decisions are refused until an operator repairs it", se.SessionID)
	case errors.As(err, &ue):
		log.log.ErrorContext(ctx, "decision refused: account unreadable", "account_id", ue.AccountID, "err", ue.Why)
		return status.Errorf(codes.DataLoss, "account %q cannot be read from the store; its decisions are refused until an operator repairs it", ue.AccountID)
	case errors.Is(err, store.ErrCorrupt):
		log.write(ctx, slog.LevelError, codes.DataLoss, "stored record undecodable", err)
		return status.Error(codes.DataLoss, "a stored record cannot be decoded; an operator must repair the store")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, store.ErrAccountDeleting):
		return status.Error(codes.Aborted, "the account is still being deleted; retry when its deletion has finished")
	case errors.Is(err, store.ErrClosed):
		return status.Error(codes.Unavailable, "server is shutting down")
	case errors.Is(err, store.ErrCommitUnknown):
		// etcd stopped answering after the commit was sent.
		log.write(ctx, slog.LevelError, codes.Unavailable, "store did not confirm a commit", err)
		return statusOf(errs.Refuse(errs.Unavailable, errs.ReasonStoreUnavailable, map[string]string{"outcome": "unknown"},
			"the store (etcd) did not confirm the write in time; it may or may not have been applied: read it before you retry")).Err()
	case errors.Is(err, store.ErrOverloaded):
		// etcd answered but refused the request; nothing was committed.
		log.write(ctx, slog.LevelWarn, codes.Unavailable, "store overloaded: etcd refused a request (too many requests)", err)
		e := errs.Refuse(errs.Unavailable, errs.ReasonStoreUnavailable, map[string]string{"cause": "overloaded"},
			"the store (etcd) is overloaded and refused the request; nothing was written; retry later")
		e.RetryAfter = time.Second
		return statusOf(e).Err()
	case errors.Is(err, store.ErrUnavailable):
		// Nothing was committed. Decisions keep being answered from the
		// replica's snapshot, up to --max-staleness.
		log.write(ctx, slog.LevelWarn, codes.Unavailable, "store unavailable", err)
		return statusOf(errs.Refuse(errs.Unavailable, errs.ReasonStoreUnavailable, nil,
			"the store (etcd) cannot be reached; nothing was written; retry later")).Err()
	case errors.Is(err, store.ErrNoSpace):
		// Nothing was committed; the condition may pass, so the client may
		// retry later. Decisions keep being served from the last snapshot.
		// The cause says what to do: free the disk (bbolt), or compact,
		// defragment and disarm etcd's NOSPACE alarm.
		log.write(ctx, slog.LevelError, codes.Unavailable, "store cannot grow", err)
		return status.Error(codes.Unavailable, "the store is out of space; nothing was written")
	case errors.Is(err, store.ErrAccessDenied):
		// etcd refused this replica's credentials: the caller can do
		// nothing about it, and another replica may still be let in.
		log.write(ctx, slog.LevelError, codes.Unavailable, "store refused this replica's credentials: restore the etcd user's role and permissions on --etcd-prefix (or its password), see docs/operations.md", err)
		return statusOf(errs.Refuse(errs.Unavailable, errs.ReasonStoreUnavailable, map[string]string{"cause": "access_denied"},
			"the store (etcd) refused this replica's credentials; nothing was written; an operator must restore its access")).Err()
	case errors.Is(err, store.ErrTooManyOps), errors.Is(err, store.ErrTxnTooLarge):
		// More than one store transaction may hold; nothing was committed.
		// When etcd itself refused it, its limits are below the driver's
		// and the cause says which flag to raise.
		log.write(ctx, slog.LevelWarn, codes.ResourceExhausted, "write larger than one store transaction", err)
		return statusOf(errs.Refuse(errs.ResourceExhausted, reasonStoreTxnLimit, nil,
			"the write is larger than one store transaction may hold; nothing was written; write less at once")).Err()
	case errors.Is(err, store.ErrCompacted):
		// The store's history this call needed is gone; a retry reads
		// the current state.
		log.write(ctx, slog.LevelWarn, codes.Aborted, "store history compacted", err)
		return status.Error(codes.Aborted, "the store's history this call needed was compacted; nothing was written; retry")
	}
	// A status made by grpc-go itself (a transport error on a stream, a
	// message over the size limit) passes as it is.
	if _, ok := status.FromError(err); ok {
		return err
	}
	log.write(ctx, slog.LevelError, codes.Internal, "internal error", err)
	return status.Error(codes.Internal, "internal error")
}

// statusOf is the status of e: its kind's code and message, with its field
// violations (BadRequest), its reason (ErrorInfo) and its retry delay
// (RetryInfo) as details, in that order.
func statusOf(e *errs.Error) *status.Status {
	st := status.New(kindCodes[e.Kind], e.Message)
	var details []protoadapt.MessageV1
	if len(e.Fields) > 0 {
		fv := make([]*errdetails.BadRequest_FieldViolation, len(e.Fields))
		for i, f := range e.Fields {
			fv[i] = &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description}
		}
		details = append(details, &errdetails.BadRequest{FieldViolations: fv})
	}
	if e.Reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: e.Reason, Domain: errorDomain, Metadata: e.Metadata})
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if len(details) == 0 {
		return st
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st
	}
	return withDetails
}

// tapStatus is the status of a refusal made before a call reaches the
// interceptors (the server's InTapHandle), which gRPC sends as it is.
func tapStatus(err error) error {
	if e, ok := errs.As(err); ok {
		return statusOf(e).Err()
	}
	return status.Error(codes.Internal, "internal error")
}
