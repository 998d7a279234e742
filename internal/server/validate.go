package server

import (
	"github.com/gatehouse-dev/gatehouse/internal/policy"
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
