package policy

// Role is the part an actor plays in a session.
type Role int

// Roles; the values equal the wire enum's.
const (
	RoleUnspecified Role = iota
	RoleAgent
	RoleCustomer
	RoleExternalSpecialist
)

// Frame tells where on the page an action happens.
type Frame int

// Frames; the values equal the wire enum's. FrameUnspecified means top level.
const (
	FrameUnspecified Frame = iota
	FrameTopLevel
	FrameIframe
)

// Feature is something an actor may want to do. Co-browse features are
// numbered from 1, support functions from 101; the values equal the wire
// enum's.
type Feature int

// Co-browse features.
const (
	FeatureUnspecified Feature = iota
	FeatureNavigate
	FeatureClick
	FeatureScroll
	FeatureType
	FeatureViewElement
	FeatureClipboard
	FeatureVideo
	FeatureVoiceChat
	FeatureRecording
	FeatureDocumentShare
	FeatureDocumentDownload
	FeatureChat
	lastCobrowseFeature = FeatureChat
)

// Support-function features: FeatureFunctionBase + Function.
const (
	FeatureFunctionBase             Feature = 101
	FeatureCustomerScreenSharing            = FeatureFunctionBase + Feature(FunctionCustomerScreenSharing)
	FeatureRepScreenSharing                 = FeatureFunctionBase + Feature(FunctionRepScreenSharing)
	FeatureRecordCustomerScreen             = FeatureFunctionBase + Feature(FunctionRecordCustomerScreen)
	FeatureRecordRepScreen                  = FeatureFunctionBase + Feature(FunctionRecordRepScreen)
	FeatureSendFiles                        = FeatureFunctionBase + Feature(FunctionSendFiles)
	FeatureReceiveFiles                     = FeatureFunctionBase + Feature(FunctionReceiveFiles)
	FeatureRunAsService                     = FeatureFunctionBase + Feature(FunctionRunAsService)
	FeatureStartAsService                   = FeatureFunctionBase + Feature(FunctionStartAsService)
	FeatureUninstallServiceOnEnd            = FeatureFunctionBase + Feature(FunctionUninstallServiceOnEnd)
	FeatureChatReceiptSound                 = FeatureFunctionBase + Feature(FunctionChatReceiptSound)
	FeatureAnnotations                      = FeatureFunctionBase + Feature(FunctionAnnotations)
	FeatureInviteExternalSpecialist         = FeatureFunctionBase + Feature(FunctionInviteExternalSpecialist)
)

// IsCobrowse reports whether f is a Live Guide feature.
func (f Feature) IsCobrowse() bool { return f >= FeatureNavigate && f <= lastCobrowseFeature }

// Function returns the support function f stands for, and false when f is
// not a support function. The range is checked on f itself, before any
// conversion: Function is narrower than Feature, so converting first would
// let an undeclared feature (101+256) alias a declared function.
func (f Feature) Function() (Function, bool) {
	if f < FeatureFunctionBase || f >= FeatureFunctionBase+Feature(NumFunctions) {
		return 0, false
	}
	return Function(f - FeatureFunctionBase), true
}

// Valid reports whether f is a known feature.
func (f Feature) Valid() bool {
	_, ok := f.Function()
	return f.IsCobrowse() || ok
}

// NeedsURL reports whether decisions about f look at the page URL.
func (f Feature) NeedsURL() bool {
	switch f {
	case FeatureNavigate, FeatureClick, FeatureScroll, FeatureType, FeatureViewElement, FeatureClipboard:
		return true
	}
	return false
}

// Function is one of the twelve support functions.
type Function uint8

// The twelve support functions, in wire order.
const (
	FunctionCustomerScreenSharing Function = iota
	FunctionRepScreenSharing
	FunctionRecordCustomerScreen
	FunctionRecordRepScreen
	FunctionSendFiles
	FunctionReceiveFiles
	FunctionRunAsService
	FunctionStartAsService
	FunctionUninstallServiceOnEnd
	FunctionChatReceiptSound
	FunctionAnnotations
	FunctionInviteExternalSpecialist
	NumFunctions
)

// Functions is a set of enabled support functions, one bit per Function.
type Functions uint16

// Has reports whether fn is in the set; never for a value that is not one
// of the twelve functions.
func (fs Functions) Has(fn Function) bool { return fn < NumFunctions && fs&(1<<fn) != 0 }

// With returns the set with fn switched on or off.
func (fs Functions) With(fn Function, on bool) Functions {
	if fn >= NumFunctions {
		return fs
	}
	if on {
		return fs | 1<<fn
	}
	return fs &^ (1 << fn)
}

// Reason says why a decision came out the way it did; the values equal the
// wire enum's.
type Reason int

// Reasons.
const (
	ReasonUnspecified Reason = iota
	ReasonAllowed
	ReasonSessionEnded
	ReasonActorNotInSession
	ReasonFeatureNotInSessionKind
	ReasonURLInvalid
	ReasonURLNotPermitted
	ReasonDomainNotAllowlisted
	ReasonAgentClickRestricted
	ReasonAgentInputRestricted
	ReasonFeatureDisabled
	ReasonElementBlocked
	ReasonElementMasked
	ReasonPortalFunctionDisabled
	ReasonRepresentativeFunctionDisabled
	// NumReasons is the number of reasons, for tables indexed by Reason.
	NumReasons
)

// reasonMessages are fixed so that building a decision never allocates.
var reasonMessages = [NumReasons]string{
	ReasonUnspecified:                    "no decision",
	ReasonAllowed:                        "allowed",
	ReasonSessionEnded:                   "the session has ended",
	ReasonActorNotInSession:              "the actor is not a participant of this session",
	ReasonFeatureNotInSessionKind:        "the feature does not exist in this kind of session",
	ReasonURLInvalid:                     "the URL cannot be parsed",
	ReasonURLNotPermitted:                "only http and https pages may be co-browsed",
	ReasonDomainNotAllowlisted:           "the page is not on the account's allowlist",
	ReasonAgentClickRestricted:           "agent clicks and scrolls are restricted for this account",
	ReasonAgentInputRestricted:           "agent input is restricted for this account",
	ReasonFeatureDisabled:                "the feature is turned off for this account",
	ReasonElementBlocked:                 "a privacy rule blocks the agent from clicking this element",
	ReasonElementMasked:                  "a privacy rule masks this element from the agent",
	ReasonPortalFunctionDisabled:         "the function is turned off for the portal",
	ReasonRepresentativeFunctionDisabled: "the function is turned off for the representative",
}

// Message returns a fixed English explanation of r.
func (r Reason) Message() string {
	if r < 0 || r >= NumReasons {
		return reasonMessages[ReasonUnspecified]
	}
	return reasonMessages[r]
}

// Decision is the answer to one check. Rule names what decided: a setting
// name, an allowlist entry id, a privacy rule id or a portal id.
type Decision struct {
	Allowed bool
	Reason  Reason
	Rule    string
}

func allow() Decision                     { return Decision{Allowed: true, Reason: ReasonAllowed} }
func deny(r Reason, rule string) Decision { return Decision{Reason: r, Rule: rule} }

var featureNames = map[Feature]string{
	FeatureNavigate: "navigate", FeatureClick: "click", FeatureScroll: "scroll", FeatureType: "type",
	FeatureViewElement: "view_element", FeatureClipboard: "clipboard", FeatureVideo: "video",
	FeatureVoiceChat: "voice_chat", FeatureRecording: "recording", FeatureDocumentShare: "document_share",
	FeatureDocumentDownload: "document_download", FeatureChat: "chat",
	FeatureCustomerScreenSharing: "customer_screen_sharing", FeatureRepScreenSharing: "rep_screen_sharing",
	FeatureRecordCustomerScreen: "record_customer_screen", FeatureRecordRepScreen: "record_rep_screen",
	FeatureSendFiles: "send_files", FeatureReceiveFiles: "receive_files", FeatureRunAsService: "run_as_service",
	FeatureStartAsService: "start_as_service", FeatureUninstallServiceOnEnd: "uninstall_service_on_end",
	FeatureChatReceiptSound: "chat_receipt_sound", FeatureAnnotations: "annotations",
	FeatureInviteExternalSpecialist: "invite_external_specialist",
}

// String returns the feature's lower-case name ("send_files"), or
// "unknown".
func (f Feature) String() string {
	if n, ok := featureNames[f]; ok {
		return n
	}
	return "unknown"
}

var reasonNames = [NumReasons]string{
	"unspecified", "allowed", "session_ended", "actor_not_in_session", "feature_not_in_session_kind",
	"url_invalid", "url_not_permitted", "domain_not_allowlisted", "agent_click_restricted",
	"agent_input_restricted", "feature_disabled", "element_blocked", "element_masked",
	"portal_function_disabled", "representative_function_disabled",
}

// String returns the reason's lower-case name ("agent_click_restricted").
func (r Reason) String() string {
	if r < 0 || r >= NumReasons {
		return "unknown"
	}
	return reasonNames[r]
}
