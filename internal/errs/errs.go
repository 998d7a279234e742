// Package errs is Gatehouse's error model: the kinds of refusal the domain
// reports (invalid input with field violations, not found, already exists,
// a stale etag, a failed precondition with a reason, permission, data loss,
// unavailable, resource exhausted), with no transport types. The services
// and their transaction closures return these; the gRPC edge maps them to
// status codes and error details in one place (internal/server/status.go).
// An error that is none of these is a bug of ours and answers INTERNAL.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a refusal. Each kind maps to one gRPC code at the
// edge; the names say what happened, not how it is transported.
type Kind uint8

const (
	// Internal is the kind of every error that is not an *Error.
	Internal Kind = iota
	// Invalid: the request is malformed; Fields names what is wrong.
	Invalid
	// NotFound: the resource named does not exist.
	NotFound
	// AlreadyExists: the resource to create exists.
	AlreadyExists
	// Conflict: the caller's etag is not the resource's current one.
	Conflict
	// FailedPrecondition: the request is valid but the system's state
	// refuses it (Reason says why).
	FailedPrecondition
	// PermissionDenied: the caller may not do this.
	PermissionDenied
	// Unauthenticated: the caller is not known.
	Unauthenticated
	// ResourceExhausted: a limit was reached.
	ResourceExhausted
	// DataLoss: stored data needed for the answer cannot be read.
	DataLoss
	// Unavailable: try again later; nothing was done.
	Unavailable
	// Unimplemented: this server cannot do it.
	Unimplemented
)

var kindNames = [...]string{"internal", "invalid", "not found", "already exists", "conflict",
	"failed precondition", "permission denied", "unauthenticated", "resource exhausted", "data loss",
	"unavailable", "unimplemented"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// FieldViolation names one invalid request field.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a refusal of one kind. Message is for the caller; Reason and
// Metadata are machine-readable (an ErrorInfo at the edge); Fields lists
// the violations of an Invalid error; RetryAfter, when positive, suggests
// when to retry.
type Error struct {
	Kind       Kind
	Message    string
	Reason     string
	Metadata   map[string]string
	Fields     []FieldViolation
	RetryAfter time.Duration
	// Cause is logged by the edge, never sent.
	Cause error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an error of kind with a formatted message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Refuse returns an error of kind with a machine-readable reason and its
// metadata (may be nil).
func Refuse(kind Kind, reason string, meta map[string]string, format string, args ...any) *Error {
	return &Error{Kind: kind, Reason: reason, Metadata: meta, Message: fmt.Sprintf(format, args...)}
}

// Precondition is Refuse(FailedPrecondition, …).
func Precondition(reason string, meta map[string]string, format string, args ...any) *Error {
	return Refuse(FailedPrecondition, reason, meta, format, args...)
}

// NotFoundf returns NotFound for the resource kind named id: `kind "id" not
// found`, the one wording of every NOT_FOUND.
func NotFoundf(kind, id string) *Error {
	return New(NotFound, "%s %q not found", kind, id)
}

// SessionNotFound is the refusal of a session id the store does not hold.
func SessionNotFound(id string) *Error { return NotFoundf("session", id) }

// Exists returns AlreadyExists for the resource kind named id.
func Exists(kind, id string) *Error {
	return New(AlreadyExists, "%s %q already exists", kind, id)
}

// ReasonStaleEtag is the reason of a Conflict: the etag sent is not current.
const ReasonStaleEtag = "ETAG_MISMATCH"

// ReasonLimit is the reason of a refusal because a fixed limit on what an
// account may hold was reached.
const ReasonLimit = "RESOURCE_LIMIT"

// ReasonApplyTooLarge is the reason of an ApplyAccount refused because the
// document needs more writes than one transaction may hold.
const ReasonApplyTooLarge = "APPLY_TOO_LARGE"

// ReasonSnapshotStale is the reason of a decision refused because the
// replica's snapshot is older than its staleness bound (--max-staleness).
const ReasonSnapshotStale = "SNAPSHOT_STALE"

// ReasonStoreUnavailable is the reason of a call refused because the
// store (etcd) did not answer in time.
const ReasonStoreUnavailable = "STORE_UNAVAILABLE"

// StaleEtag returns Conflict for a write conditional on etag sent while
// current is the resource's etag.
func StaleEtag(kind, id, current, sent string) *Error {
	return Refuse(Conflict, ReasonStaleEtag, map[string]string{"current_etag": current},
		"%s %q was changed by someone else (etag %q, current %q); read it again", kind, id, sent, current)
}

// Denied returns PermissionDenied.
func Denied(format string, args ...any) *Error { return New(PermissionDenied, format, args...) }

// Violations collects the field violations of one Invalid answer.
type Violations []FieldViolation

// Add adds a violation of field.
func (v *Violations) Add(field, format string, args ...any) {
	*v = append(*v, FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was added, else an Invalid error whose
// message names the first violation.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Kind: Invalid, Fields: v, Message: fmt.Sprintf("invalid request: %s: %s", v[0].Field, v[0].Description)}
}

// As returns err's *Error, if it holds one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf returns the kind of err: Internal unless it holds an *Error.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// ReasonOf returns the reason of err ("" without one).
func ReasonOf(err error) string {
	if e, ok := As(err); ok {
		return e.Reason
	}
	return ""
}

// Prefix returns err with p before its message (for the error of one
// element of a batch: "checks[3]: "). Errors that are not an *Error are
// returned as they are.
func Prefix(err error, p string) error {
	e, ok := As(err)
	if !ok {
		return err
	}
	c := *e
	c.Message = p + e.Message
	return &c
}
