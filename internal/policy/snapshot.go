package policy

import (
	"fmt"
	"maps"

	"github.com/gatehouse-dev/gatehouse/internal/auth"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// Snapshot is an immutable, compiled view of the whole store at one
// revision. The decision path reads only snapshots; a new one is built after
// every commit and swapped in atomically, so readers never lock.
type Snapshot struct {
	revision uint64
	accounts map[string]*AccountState
	sessions map[string]*Session
	tokens   map[string]*auth.Token
}

// NewSnapshot returns a snapshot at revision rev. It takes ownership of the
// maps.
func NewSnapshot(rev uint64, accounts map[string]*AccountState, sessions map[string]*Session) *Snapshot {
	if accounts == nil {
		accounts = map[string]*AccountState{}
	}
	if sessions == nil {
		sessions = map[string]*Session{}
	}
	return &Snapshot{revision: rev, accounts: accounts, sessions: sessions}
}

// Revision is the store revision the snapshot reflects.
func (s *Snapshot) Revision() uint64 { return s.revision }

// Account returns the compiled state of an account, or nil.
func (s *Snapshot) Account(id string) *AccountState { return s.accounts[id] }

// Session returns a session, or nil.
func (s *Snapshot) Session(id string) *Session { return s.sessions[id] }

// NumAccounts returns the number of accounts in the snapshot.
func (s *Snapshot) NumAccounts() int { return len(s.accounts) }

// NumSessions returns the number of sessions in the snapshot.
func (s *Snapshot) NumSessions() int { return len(s.sessions) }

// Apply returns a new snapshot at revision rev with the given accounts and
// sessions replaced; a nil value removes the entry. s is left unchanged. A
// map is copied only when it changes, so a session start does not copy the
// account map and a settings change does not copy the session map.
func (s *Snapshot) Apply(rev uint64, accounts map[string]*AccountState, sessions map[string]*Session) *Snapshot {
	next := &Snapshot{revision: rev, accounts: s.accounts, sessions: s.sessions, tokens: s.tokens}
	if len(accounts) > 0 {
		next.accounts = applyMap(s.accounts, accounts)
	}
	if len(sessions) > 0 {
		next.sessions = applyMap(s.sessions, sessions)
	}
	return next
}

// WithTokens returns s with the given caller tokens replaced (nil removes
// one). s is left unchanged.
func (s *Snapshot) WithTokens(changes map[string]*auth.Token) *Snapshot {
	next := *s
	next.tokens = applyMap(s.tokens, changes)
	return &next
}

// Token returns a caller token by id, or nil.
func (s *Snapshot) Token(id string) *auth.Token { return s.tokens[id] }

func applyMap[V any](base, changes map[string]*V) map[string]*V {
	out := maps.Clone(base)
	if out == nil {
		out = make(map[string]*V, len(changes))
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// AccountData is everything stored for one account except its sessions: the
// input of Compile.
type AccountData struct {
	Account         Account
	Settings        LiveGuideSettings
	Representatives []Representative
	Allowlist       []AllowlistEntry
	PrivacyRules    []PrivacyRule
	Customizations  []Customization
	Portals         []Portal
	Teams           []Team
	BusinessHours   []BusinessHours
}

// AccountState is an account compiled for decisions. It is immutable.
type AccountState struct {
	Account         Account
	Settings        LiveGuideSettings
	representatives map[string]*Representative

	// allowlist holds the stored entries in id order; allowIndex answers
	// matches. The allowlist is "non-empty" whenever entries are stored,
	// even if some no longer compile, so a broken entry can only narrow
	// what is allowed, never open every page.
	allowlist  []AllowlistEntry
	allowIndex *urlmatch.Index

	privacy        []compiledRule
	privacyRules   []PrivacyRule
	customizations map[string]Customization
	support        supportState

	// Problems lists stored records that no longer compile (for example a
	// pattern that became a public suffix after a list update). Each is
	// handled fail-closed; see Compile.
	Problems []string
}

// compiledRule is a privacy rule ready for matching. A nil selector or
// pattern that failed to compile makes the rule match every element or
// every page: a broken privacy rule protects more, never less.
type compiledRule struct {
	id      string
	kind    PrivacyRuleKind
	sel     *selector.Selector
	pattern urlmatch.Pattern // host part; see rulePattern
	// pathPrefix is the loose path prefix of the url_pattern, "" for none.
	pathPrefix string
	anyPage    bool
	selError   bool
}

// Compile builds the decision state of one account. Records that no longer
// compile are reported in Problems and handled fail-closed: an allowlist
// entry is left out (it allows nothing), a privacy rule matches more.
func Compile(d AccountData) *AccountState {
	as := &AccountState{
		Account:         d.Account,
		Settings:        d.Settings,
		representatives: make(map[string]*Representative, len(d.Representatives)),
		allowlist:       d.Allowlist,
		privacyRules:    d.PrivacyRules,
		customizations:  make(map[string]Customization, len(d.Customizations)),
	}
	for i := range d.Representatives {
		r := d.Representatives[i]
		as.representatives[r.ID] = &r
	}
	entries := make([]urlmatch.Entry, 0, len(d.Allowlist))
	for _, e := range d.Allowlist {
		p, err := urlmatch.ParsePattern(e.Pattern)
		if err != nil {
			as.Problems = append(as.Problems, fmt.Sprintf("allowlist entry %q: %v", e.ID, err))
			continue
		}
		entries = append(entries, urlmatch.Entry{ID: e.ID, Pattern: p})
	}
	as.allowIndex = urlmatch.NewIndex(entries)
	for _, r := range d.PrivacyRules {
		cr := compiledRule{id: r.ID, kind: r.Kind, anyPage: r.URLPattern == ""}
		if sel, err := selector.Compile(r.Selector); err != nil {
			as.Problems = append(as.Problems, fmt.Sprintf("privacy rule %q: %v", r.ID, err))
			cr.selError = true
		} else {
			cr.sel = sel
		}
		if !cr.anyPage {
			if p, prefix, err := rulePattern(r.URLPattern); err != nil {
				as.Problems = append(as.Problems, fmt.Sprintf("privacy rule %q: url_pattern: %v", r.ID, err))
				cr.anyPage = true
			} else {
				cr.pattern, cr.pathPrefix = p, prefix
			}
		}
		as.privacy = append(as.privacy, cr)
	}
	for _, c := range d.Customizations {
		as.customizations[c.Language] = c
	}
	var problems []string
	as.support, problems = compileSupport(&d)
	as.Problems = append(as.Problems, problems...)
	return as
}

// Representative returns a representative of the account, or nil.
func (as *AccountState) Representative(id string) *Representative { return as.representatives[id] }

// Allowlist returns the account's allowlist entries in id order. The slice
// must not be modified.
func (as *AccountState) Allowlist() []AllowlistEntry { return as.allowlist }

// PrivacyRules returns the account's privacy rules in id order. The slice
// must not be modified.
func (as *AccountState) PrivacyRules() []PrivacyRule { return as.privacyRules }

// StoredCustomization returns the account's stored texts for a language.
func (as *AccountState) StoredCustomization(lang string) (Customization, bool) {
	c, ok := as.customizations[lang]
	return c, ok
}

// AllowlistMatch reports which entry allows u, whether one does, and
// whether the account has an allowlist at all (an empty allowlist allows
// every http(s) page).
func (as *AccountState) AllowlistMatch(u urlmatch.URL) (id string, ok, restricted bool) {
	if len(as.allowlist) == 0 {
		return "", true, false
	}
	id, ok = as.allowIndex.Match(u)
	return id, ok, true
}
