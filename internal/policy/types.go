package policy

import "time"

// Account is a tenant.
type Account struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name"`
	CobrowseURL string    `json:"cobrowse_url,omitempty"`
	CreateTime  time.Time `json:"create_time"`
	// DecisionLogPercent is the share of the account's decisions logged.
	DecisionLogPercent uint32 `json:"decision_log_percent,omitempty"`
	Revision           uint64 `json:"revision"`
}

// LiveGuideSettings are an account's co-browse switches.
type LiveGuideSettings struct {
	AccountID             string `json:"account_id"`
	AgentClickRestricted  bool   `json:"agent_click_restricted"`
	AgentInputRestricted  bool   `json:"agent_input_restricted"`
	ClipboardAgent        bool   `json:"clipboard_agent"`
	ClipboardCustomer     bool   `json:"clipboard_customer"`
	VideoAgent            bool   `json:"video_agent"`
	VideoCustomer         bool   `json:"video_customer"`
	VoiceChat             bool   `json:"voice_chat"`
	SessionRecording      bool   `json:"session_recording"`
	DocumentShareAgent    bool   `json:"document_share_agent"`
	DocumentShareCustomer bool   `json:"document_share_customer"`
	DocumentDownload      bool   `json:"document_download"`
	Chat                  bool   `json:"chat"`
	DisplayAgentName      bool   `json:"display_agent_name"`
	ShowDisclaimer        bool   `json:"show_disclaimer"`
	LanguageSelector      bool   `json:"language_selector"`
	SessionStartURL       string `json:"session_start_url"`
	Revision              uint64 `json:"revision"`
}

// DefaultLiveGuideSettings returns the settings a new account starts with:
// the product's documented defaults, and the least privilege where it
// documents none (clipboard and the disclaimer are on, everything else off).
func DefaultLiveGuideSettings(accountID string) LiveGuideSettings {
	return LiveGuideSettings{
		AccountID:         accountID,
		ClipboardAgent:    true,
		ClipboardCustomer: true,
		ShowDisclaimer:    true,
	}
}

// Representative is an agent who serves sessions.
type Representative struct {
	ID               string    `json:"id"`
	DisplayName      string    `json:"display_name"`
	TeamID           string    `json:"team_id,omitempty"`
	Functions        Functions `json:"functions"`
	LiveGuideEnabled bool      `json:"live_guide_enabled"`
	Revision         uint64    `json:"revision"`
}

// SessionKind is the product family of a session.
type SessionKind int

// Session kinds; the values equal the wire enum's.
const (
	SessionKindUnspecified SessionKind = iota
	SessionKindLiveGuide
	SessionKindSupport
)

// SessionState is the life-cycle state of a session.
type SessionState int

// Session states; the values equal the wire enum's.
const (
	SessionStateUnspecified SessionState = iota
	SessionStateActive
	SessionStateEnded
)

// Specialist is an external specialist taking part in a support session.
type Specialist struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

// Session is a Live Guide or support session.
type Session struct {
	ID                   string       `json:"id"`
	AccountID            string       `json:"account_id"`
	Kind                 SessionKind  `json:"kind"`
	State                SessionState `json:"state"`
	RepresentativeID     string       `json:"representative_id"`
	CustomerID           string       `json:"customer_id"`
	PortalID             string       `json:"portal_id,omitempty"`
	Specialists          []Specialist `json:"specialists,omitempty"`
	StartTime            time.Time    `json:"start_time"`
	EndTime              time.Time    `json:"end_time,omitzero"`
	CustomerRating       int32        `json:"customer_rating,omitempty"`
	RepresentativeRating int32        `json:"representative_rating,omitempty"`
	Revision             uint64       `json:"revision"`
}

// HasSpecialist reports whether id is currently a specialist in s.
func (s *Session) HasSpecialist(id string) bool {
	for i := range s.Specialists {
		if s.Specialists[i].ID == id {
			return true
		}
	}
	return false
}

// AllowlistEntry allows co-browsing of the pages its pattern matches. The
// pattern is stored in its normalized form.
type AllowlistEntry struct {
	ID          string `json:"id"`
	Pattern     string `json:"pattern"`
	Description string `json:"description,omitempty"`
	Revision    uint64 `json:"revision"`
	// AllowPublicSuffixSubdomains acknowledges that the pattern covers
	// hosts under a public suffix (urlmatch.PublicSuffixBelow).
	AllowPublicSuffixSubdomains bool `json:"allow_public_suffix_subdomains,omitempty"`
}

// PrivacyRuleKind is what a privacy rule does; the values equal the wire
// enum's.
type PrivacyRuleKind int

// Privacy rule kinds.
const (
	PrivacyRuleKindUnspecified PrivacyRuleKind = iota
	PrivacyRuleKindButtonBlock
	PrivacyRuleKindDataMask
)

// PrivacyRule hides elements from, or protects them against, the agent.
// URLPattern uses the allowlist syntax; empty means every page.
type PrivacyRule struct {
	ID          string          `json:"id"`
	Kind        PrivacyRuleKind `json:"kind"`
	Selector    string          `json:"selector"`
	URLPattern  string          `json:"url_pattern,omitempty"`
	Description string          `json:"description,omitempty"`
	Revision    uint64          `json:"revision"`
}

// Customization holds an account's texts for one language.
type Customization struct {
	AccountID      string `json:"account_id"`
	Language       string `json:"language"`
	DisclaimerText string `json:"disclaimer_text"`
	AgentAlias     string `json:"agent_alias"`
	CustomerAlias  string `json:"customer_alias"`
	Revision       uint64 `json:"revision"`
}

// Portal is a remote-support portal (ParentID empty) or subportal.
type Portal struct {
	ID                string    `json:"id"`
	ParentID          string    `json:"parent_id,omitempty"`
	Name              string    `json:"name"`
	Functions         Functions `json:"functions"`
	NotificationEmail string    `json:"notification_email,omitempty"`
	BusinessHoursID   string    `json:"business_hours_id,omitempty"`
	Revision          uint64    `json:"revision"`
}

// Team groups representatives; a team without a portal of its own inherits
// its parent's.
type Team struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Name     string `json:"name"`
	PortalID string `json:"portal_id,omitempty"`
	Revision uint64 `json:"revision"`
}

// WeeklyWindow is an opening window in a business-hours set's time zone.
type WeeklyWindow struct {
	Day   time.Weekday `json:"day"`
	Start string       `json:"start"`
	End   string       `json:"end"`
}

// Holiday overrides the weekly windows on one local date.
type Holiday struct {
	Date   string `json:"date"`
	Name   string `json:"name,omitempty"`
	Closed bool   `json:"closed,omitempty"`
	Start  string `json:"start,omitempty"`
	End    string `json:"end,omitempty"`
}

// BusinessHours is a named set of opening hours assigned to portals.
type BusinessHours struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	TimeZone string         `json:"time_zone"`
	Weekly   []WeeklyWindow `json:"weekly,omitempty"`
	Holidays []Holiday      `json:"holidays,omitempty"`
	Revision uint64         `json:"revision"`
}
