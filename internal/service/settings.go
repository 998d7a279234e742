package service

import (
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// MaxURLLength bounds every URL a caller sends.
const MaxURLLength = 8192

// CheckStartURL checks a session start URL: empty, or an http(s) URL a
// browser would open that the account's allowlist allows (when it has one).
func CheckStartURL(tx store.ReadTx, acct, raw string) error {
	const field = "settings.session_start_url"
	var v errs.Violations
	if raw == "" {
		return nil
	}
	if len(raw) > MaxURLLength {
		v.Add(field, "must be at most %d bytes", MaxURLLength)
		return v.Err()
	}
	u, err := urlmatch.Parse(raw)
	if err != nil {
		v.Add(field, "%v", err)
		return v.Err()
	}
	entries, _, err := store.ListAllowlistEntries(tx, acct, "", 0)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		as := policy.Compile(policy.AccountData{Allowlist: entries})
		if _, ok, _ := as.AllowlistMatch(u); !ok {
			v.Add(field, "%q is not on the account's allowlist", raw)
		}
	}
	return v.Err()
}
