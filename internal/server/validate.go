package server

import (
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/service"
)

// maxURLLength bounds every URL a caller sends.
const maxURLLength = service.MaxURLLength

// violations collects the field violations of one errs.Invalid answer.
type violations errs.Violations

func (v *violations) add(field, format string, args ...any) {
	(*errs.Violations)(v).Add(field, format, args...)
}

// err returns nil when nothing was added.
func (v violations) err() error { return errs.Violations(v).Err() }

// checkID adds a violation unless id is a slug; empty is allowed only when
// optional (the server generates one).
func (v *violations) checkID(field, id string, optional bool) {
	switch {
	case id == "" && optional:
	case id == "":
		v.add(field, "is required")
	case !service.IsSlug(id):
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
