package policy

// SessionPolicy is everything a session client needs to enforce an
// account's rules locally, for one session and language.
type SessionPolicy struct {
	Session          *Session
	Settings         LiveGuideSettings
	Allowlist        []AllowlistEntry
	PrivacyRules     []PrivacyRule
	Language         string
	Customization    Customization
	AgentDisplayName string
	CobrowseURL      string
	// Functions are the effective support functions of a support
	// session's representative at its portal; none for Live Guide.
	Functions Functions
	Revision  uint64
}

// SessionPolicy builds the policy of a session for a language tag (it is
// negotiated to one of Languages). It returns ErrSessionNotFound for an
// unknown session, the errors of Check for an unreadable one, and ok false when the actor is not a participant.
func (s *Snapshot) SessionPolicy(sessionID string, role Role, actorID, languageTag string) (p SessionPolicy, ok bool, err error) {
	sess := s.sessions[sessionID]
	if sess == nil {
		return p, false, s.missingSession(sessionID)
	}
	as := s.accounts[sess.AccountID]
	if as == nil {
		return p, false, s.missingAccount(sess.AccountID)
	}
	if !sess.hasActor(role, actorID) {
		return p, false, nil
	}
	lang := NegotiateLanguage(languageTag)
	c, stored := as.StoredCustomization(lang)
	if !stored {
		c = DefaultCustomization(as.Account.ID, lang)
	}
	p = SessionPolicy{
		Session:       sess,
		Settings:      as.Settings,
		Allowlist:     as.Allowlist(),
		PrivacyRules:  as.PrivacyRules(),
		Language:      lang,
		Customization: c,
		CobrowseURL:   as.Account.CobrowseURL,
		Revision:      s.revision,
	}
	if sess.Kind == SessionKindSupport {
		p.Functions = as.EffectiveFunctions(sess.PortalID, sess.RepresentativeID)
	}
	p.AgentDisplayName = c.AgentAlias
	if rep := as.Representative(sess.RepresentativeID); as.Settings.DisplayAgentName && rep != nil && rep.DisplayName != "" {
		p.AgentDisplayName = rep.DisplayName
	}
	return p, true, nil
}
