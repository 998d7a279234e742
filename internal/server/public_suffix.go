package server

// warnPublicSuffixEntries logs, at start-up, the allowlist entries stored
// before patterns covering public suffixes were refused. They keep working
// (refusing them now would cut live sessions off without warning); an admin
// should narrow them or acknowledge them with
// allow_public_suffix_subdomains. The gauge
// gatehouse_allowlist_public_suffix_entries counts them at any time.
func (s *Server) warnPublicSuffixEntries() {
	if s.snaps == nil || s.log == nil {
		return
	}
	some, n := s.snaps.Current().PublicSuffixEntries(10)
	if n > 0 {
		s.log.Warn("allowlist entries cover hosts under a public suffix without allow_public_suffix_subdomains; they keep working, review them",
			"entries", n, "examples", some)
	}
}
