package policy

import "errors"

// ErrSessionNotFound is returned by Check when the snapshot does not know the
// session (or its account).
var ErrSessionNotFound = errors.New("session not found")

// Query is one question: may this actor use this feature in this session?
type Query struct {
	SessionID string
	Role      Role
	ActorID   string
	Feature   Feature
	URL       string
	Frame     Frame
}

// Check answers q. A denial is a Decision with Allowed false, not an error;
// the only error is ErrSessionNotFound. Evaluation order, first denial wins:
// session ended, actor not in session, feature not of this session kind,
// role switches.
func (s *Snapshot) Check(q *Query) (Decision, error) {
	sess := s.sessions[q.SessionID]
	if sess == nil {
		return Decision{}, ErrSessionNotFound
	}
	as := s.accounts[sess.AccountID]
	if as == nil {
		return Decision{}, ErrSessionNotFound
	}
	if sess.State != SessionStateActive {
		return deny(ReasonSessionEnded, ""), nil
	}
	if !sess.hasActor(q.Role, q.ActorID) {
		return deny(ReasonActorNotInSession, ""), nil
	}
	switch sess.Kind {
	case SessionKindLiveGuide:
		if !q.Feature.IsCobrowse() {
			return deny(ReasonFeatureNotInSessionKind, ""), nil
		}
		return as.checkCobrowse(q), nil
	default:
		// Support sessions are decided by the portal chain, which this
		// version does not evaluate yet: deny rather than guess.
		return deny(ReasonFeatureNotInSessionKind, ""), nil
	}
}

func (s *Session) hasActor(role Role, id string) bool {
	switch role {
	case RoleAgent:
		return id == s.RepresentativeID
	case RoleCustomer:
		return id == s.CustomerID
	case RoleExternalSpecialist:
		return s.HasSpecialist(id)
	}
	return false
}

// checkCobrowse applies the account switches. External specialists are
// treated as agents.
func (as *AccountState) checkCobrowse(q *Query) Decision {
	agent := q.Role != RoleCustomer
	st := &as.Settings
	switch q.Feature {
	case FeatureClick, FeatureScroll:
		if agent && st.AgentClickRestricted {
			return deny(ReasonAgentClickRestricted, "agent_click_restricted")
		}
	case FeatureType:
		if agent && st.AgentInputRestricted {
			return deny(ReasonAgentInputRestricted, "agent_input_restricted")
		}
	case FeatureClipboard:
		return roleSwitch(agent, st.ClipboardAgent, st.ClipboardCustomer, "clipboard_agent", "clipboard_customer")
	case FeatureVideo:
		return roleSwitch(agent, st.VideoAgent, st.VideoCustomer, "video_agent", "video_customer")
	case FeatureDocumentShare:
		return roleSwitch(agent, st.DocumentShareAgent, st.DocumentShareCustomer, "document_share_agent", "document_share_customer")
	case FeatureVoiceChat:
		return accountSwitch(st.VoiceChat, "voice_chat")
	case FeatureRecording:
		return accountSwitch(st.SessionRecording, "session_recording")
	case FeatureDocumentDownload:
		return accountSwitch(st.DocumentDownload, "document_download")
	case FeatureChat:
		return accountSwitch(st.Chat, "chat")
	}
	return allow()
}

func roleSwitch(agent, agentOn, customerOn bool, agentRule, customerRule string) Decision {
	if agent {
		return accountSwitch(agentOn, agentRule)
	}
	return accountSwitch(customerOn, customerRule)
}

func accountSwitch(on bool, rule string) Decision {
	if !on {
		return deny(ReasonFeatureDisabled, rule)
	}
	return allow()
}
