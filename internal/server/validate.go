package server

import (
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// maxURLLength bounds every URL a caller sends.
const maxURLLength = 8192

// validateStartURL checks a session start URL: empty, or an http(s) URL a
// browser would open.
func validateStartURL(raw string) error {
	var v violations
	if raw == "" {
		return nil
	}
	if len(raw) > maxURLLength {
		v.add("settings.session_start_url", "must be at most %d bytes", maxURLLength)
	} else if _, err := urlmatch.Parse(raw); err != nil {
		v.add("settings.session_start_url", "%v", err)
	}
	return v.err()
}
