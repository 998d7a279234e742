package urlmatch

import "errors"

// ErrInvalid is wrapped by every error that Parse returns for input that is
// not a URL at all: empty input, a missing scheme, a missing or malformed
// host, a bad port, and similar. Test for it with errors.Is.
var ErrInvalid = errors.New("urlmatch: invalid URL")

// ErrNotPermitted is wrapped by every error that Parse returns for input that
// has a syntactically valid scheme other than http or https. Test for it with
// errors.Is.
var ErrNotPermitted = errors.New("urlmatch: scheme not permitted")

// ErrInvalidPattern is matched by every *PatternError through errors.Is.
var ErrInvalidPattern = errors.New("urlmatch: invalid pattern")

// parseError is the error type returned by Parse. It never contains the
// input itself, because URLs can carry credentials in their userinfo.
type parseError struct {
	kind   error
	reason string
}

func (e *parseError) Error() string { return e.kind.Error() + ": " + e.reason }

func (e *parseError) Unwrap() error { return e.kind }

func invalid(reason string) error { return &parseError{kind: ErrInvalid, reason: reason} }

func notPermitted(reason string) error { return &parseError{kind: ErrNotPermitted, reason: reason} }

// reasonOf returns the human-readable reason of an error built by invalid or
// notPermitted, and err.Error() for anything else.
func reasonOf(err error) string {
	var pe *parseError
	if errors.As(err, &pe) {
		return pe.reason
	}
	return err.Error()
}

// PatternError is the error returned by ParsePattern. Reason is a lower-case
// human-readable explanation suitable for showing to the person who typed
// the pattern, for example `pattern is a public suffix ("co.uk")`.
type PatternError struct {
	Reason string
}

// Error returns the reason prefixed with "urlmatch: invalid pattern: ".
func (e *PatternError) Error() string { return ErrInvalidPattern.Error() + ": " + e.Reason }

// Unwrap returns ErrInvalidPattern so that errors.Is(err, ErrInvalidPattern)
// holds for every *PatternError.
func (e *PatternError) Unwrap() error { return ErrInvalidPattern }

func patternErr(reason string) error { return &PatternError{Reason: reason} }
