package hours

import (
	"errors"
	"strings"
)

// ErrInvalid is matched through errors.Is by every error that [Compile]
// returns.
var ErrInvalid = errors.New("hours: invalid business hours")

// Error is one problem found in a [Spec]. Field names the offending field
// the way the API spells it, for example "time_zone", "weekly[2].end" or
// "holidays[0].date"; Reason is a lower-case explanation suitable for
// showing to the person who wrote the spec.
type Error struct {
	Field  string
	Reason string
}

// Error returns the field and the reason prefixed with
// "hours: invalid business hours: ".
func (e *Error) Error() string {
	return ErrInvalid.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalid so that errors.Is(err, ErrInvalid) holds for
// every *Error.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is the error returned by [Compile]: every problem found in the
// spec, in field order (time_zone, then weekly, then holidays). It is never
// empty. errors.Is(err, ErrInvalid) holds for it, and errors.As finds the
// individual *Error values through Unwrap.
type Errors []*Error

// Error lists every problem, separated by "; ".
func (es Errors) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, e := range es {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(e.Field)
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns the individual problems, so that errors.Is and errors.As
// look into each of them.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
