package server

import (
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// maxURLLength bounds every URL a caller sends.
const maxURLLength = 8192

// validateStartURL checks a session start URL: empty, or an http(s) URL a
// browser would open that the account's allowlist allows (when it has one).
func validateStartURL(tx store.ReadTx, acct, raw string) error {
	const field = "settings.session_start_url"
	var v violations
	if raw == "" {
		return nil
	}
	if len(raw) > maxURLLength {
		v.add(field, "must be at most %d bytes", maxURLLength)
		return v.err()
	}
	u, err := urlmatch.Parse(raw)
	if err != nil {
		v.add(field, "%v", err)
		return v.err()
	}
	entries, _, err := store.ListAllowlistEntries(tx, acct, "", 0)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		as := policy.Compile(policy.AccountData{Allowlist: entries})
		if _, ok, _ := as.AllowlistMatch(u); !ok {
			v.add(field, "%q is not on the account's allowlist", raw)
		}
	}
	return v.err()
}

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
