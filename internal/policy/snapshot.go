package policy

import (
	"errors"
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
	// certs indexes the unrevoked certificate credentials by identity.
	certs map[auth.CertID]*auth.Token
	// unreadable holds the accounts left out because a stored record of
	// theirs cannot be decoded, with why; their sessions' decisions fail
	// with an UnreadableError instead of being answered.
	unreadable map[string]string
	// unreadableSessions holds the sessions left out because their own
	// stored record cannot be read, by id; decisions in them fail with a
	// *SessionUnreadableError instead of NOT_FOUND.
	unreadableSessions map[string]UnreadableSession
	// loggedAccounts counts accounts with a decision log, so that the
	// decision path skips the log's lookups while no account has one.
	loggedAccounts int
}

func logs(as *AccountState) bool { return as != nil && as.Account.DecisionLogPercent > 0 }

// NewSnapshot returns a snapshot at revision rev. It takes ownership of the
// maps.
func NewSnapshot(rev uint64, accounts map[string]*AccountState, sessions map[string]*Session) *Snapshot {
	if accounts == nil {
		accounts = map[string]*AccountState{}
	}
	if sessions == nil {
		sessions = map[string]*Session{}
	}
	snap := &Snapshot{revision: rev, accounts: accounts, sessions: sessions}
	for _, as := range accounts {
		if logs(as) {
			snap.loggedAccounts++
		}
	}
	return snap
}

// DecisionLogged reports whether any account has its decision log on.
func (s *Snapshot) DecisionLogged() bool { return s.loggedAccounts > 0 }

// Revision is the store revision the snapshot reflects.
func (s *Snapshot) Revision() uint64 { return s.revision }

// Account returns the compiled state of an account, or nil.
func (s *Snapshot) Account(id string) *AccountState { return s.accounts[id] }

// Session returns a session, or nil.
func (s *Snapshot) Session(id string) *Session { return s.sessions[id] }

// NumAccounts returns the number of accounts in the snapshot.
func (s *Snapshot) NumAccounts() int { return len(s.accounts) }

// PublicSuffixEntries returns up to limit allowlist entries, as
// "account/entry", that cover hosts under a public suffix without
// acknowledging it, and how many there are in all.
func (s *Snapshot) PublicSuffixEntries(limit int) ([]string, int) {
	var out []string
	n := 0
	for id, as := range s.accounts {
		for _, e := range as.PublicSuffixEntries {
			if len(out) < limit {
				out = append(out, id+"/"+e)
			}
			n++
		}
	}
	return out, n
}

// NumSessions returns the number of sessions in the snapshot.
func (s *Snapshot) NumSessions() int { return len(s.sessions) }

// Apply returns a new snapshot at revision rev with the given accounts and
// sessions replaced; a nil value removes the entry. s is left unchanged. A
// map is copied only when it changes, so a session start does not copy the
// account map and a settings change does not copy the session map.
func (s *Snapshot) Apply(rev uint64, accounts map[string]*AccountState, sessions map[string]*Session) *Snapshot {
	next := &Snapshot{revision: rev, accounts: s.accounts, sessions: s.sessions, tokens: s.tokens, certs: s.certs,
		unreadable: s.unreadable, unreadableSessions: s.unreadableSessions, loggedAccounts: s.loggedAccounts}
	if len(accounts) > 0 {
		for id, as := range accounts {
			if logs(s.accounts[id]) {
				next.loggedAccounts--
			}
			if logs(as) {
				next.loggedAccounts++
			}
		}
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
	// Callers are few and change rarely: rebuild the certificate index.
	next.certs = map[auth.CertID]*auth.Token{}
	for _, t := range next.tokens {
		if t.CertIdentity != "" && !t.Revoked {
			next.certs[t.CertID()] = t
		}
	}
	return &next
}

// WithUnreadable returns s with accounts marked unreadable (a non-empty
// reason) or no longer unreadable (an empty one). s is left unchanged.
func (s *Snapshot) WithUnreadable(changes map[string]string) *Snapshot {
	next := *s
	next.unreadable = maps.Clone(s.unreadable)
	if next.unreadable == nil {
		next.unreadable = map[string]string{}
	}
	for id, why := range changes {
		if why == "" {
			delete(next.unreadable, id)
		} else {
			next.unreadable[id] = why
		}
	}
	return &next
}

// Unreadable returns why an account's records cannot be read, and false
// when they can (or the account does not exist).
func (s *Snapshot) Unreadable(id string) (string, bool) {
	why, ok := s.unreadable[id]
	return why, ok
}

// NumUnreadable returns how many accounts are unreadable.
func (s *Snapshot) NumUnreadable() int { return len(s.unreadable) }

// ErrAccountUnreadable is the error, wrapped in an *UnreadableError, of a
// decision in a session whose account cannot be read from the store.
var ErrAccountUnreadable = errors.New("account unreadable")

// UnreadableError says which account cannot be read, and why.
type UnreadableError struct {
	AccountID string
	Why       string
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("account %q cannot be read from the store: %s", e.AccountID, e.Why)
}

func (e *UnreadableError) Unwrap() error { return ErrAccountUnreadable }

// missingAccount is the error of a session whose account the snapshot does
// not hold: unreadable, or gone.
func (s *Snapshot) missingAccount(id string) error {
	if why, ok := s.unreadable[id]; ok {
		return &UnreadableError{AccountID: id, Why: why}
	}
	return ErrSessionNotFound
}

// UnreadableSession is a session whose stored record cannot be read: the
// account its key names, and why.
type UnreadableSession struct {
	AccountID string
	Why       string
}

// WithUnreadableSessions returns s with sessions marked unreadable (a
// non-empty Why) or no longer unreadable (an empty one). s is left
// unchanged.
func (s *Snapshot) WithUnreadableSessions(changes map[string]UnreadableSession) *Snapshot {
	next := *s
	next.unreadableSessions = maps.Clone(s.unreadableSessions)
	if next.unreadableSessions == nil {
		next.unreadableSessions = map[string]UnreadableSession{}
	}
	for id, u := range changes {
		if u.Why == "" {
			delete(next.unreadableSessions, id)
		} else {
			next.unreadableSessions[id] = u
		}
	}
	return &next
}

// UnreadableSession returns the account and cause of a session whose
// stored record cannot be read, and false when it can (or there is no
// such session).
func (s *Snapshot) UnreadableSession(id string) (UnreadableSession, bool) {
	u, ok := s.unreadableSessions[id]
	return u, ok
}

// NumUnreadableSessions returns how many sessions are unreadable.
func (s *Snapshot) NumUnreadableSessions() int { return len(s.unreadableSessions) }

// ErrSessionUnreadable is the error, wrapped in a *SessionUnreadableError,
// of a decision in a session whose own record cannot be read from the
// store.
var ErrSessionUnreadable = errors.New("session unreadable")

// SessionUnreadableError says which session cannot be read, and why.
type SessionUnreadableError struct {
	SessionID string
	AccountID string
	Why       string
}

func (e *SessionUnreadableError) Error() string {
	return fmt.Sprintf("session %q of account %q cannot be read from the store: %s", e.SessionID, e.AccountID, e.Why)
}

func (e *SessionUnreadableError) Unwrap() error { return ErrSessionUnreadable }

// missingSession is the error of a session id the snapshot holds no
// session for: unreadable, or unknown.
func (s *Snapshot) missingSession(id string) error {
	if u, ok := s.unreadableSessions[id]; ok {
		return &SessionUnreadableError{SessionID: id, AccountID: u.AccountID, Why: u.Why}
	}
	return ErrSessionNotFound
}

// Token returns a caller token by id, or nil.
func (s *Snapshot) Token(id string) *auth.Token { return s.tokens[id] }

// CertToken returns the unrevoked certificate credential registered for a
// client certificate identity of that kind, or nil.
func (s *Snapshot) CertToken(id auth.CertID) *auth.Token { return s.certs[id] }

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
	privacyIndex   [numIndexedKinds]ruleIndex
	privacyRules   []PrivacyRule
	customizations map[string]Customization
	support        supportState

	// Problems lists stored records that no longer compile (for example a
	// pattern that became a public suffix after a list update). Each is
	// handled fail-closed; see Compile.
	Problems []string

	// PublicSuffixEntries lists the ids of allowlist entries whose pattern
	// covers hosts under a public suffix without acknowledging it (stored
	// before such patterns were refused). They keep working; the daemon
	// reports them.
	PublicSuffixEntries []string

	// What CompileFrom reuses: the input records (see Data), the parsed
	// pattern of each allowlist entry (zero when it does not compile) and
	// the problems of each part.
	data          AccountData
	allowPatterns []urlmatch.Pattern
	problems      [numParts][]string
}

// The parts of an account whose problems are kept apart, in the order
// Problems lists them.
const (
	partAllowlist = iota
	partPrivacy
	partSupport
	numParts
)

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
// entry is left out (it allows nothing), a privacy rule matches more. The
// state keeps d's slices; they must not be modified afterwards.
func Compile(d AccountData) *AccountState { return CompileFrom(nil, d) }

// CompileFrom returns what Compile(d) returns, reusing the work done for
// prev (an earlier state of the same account, or nil): parts whose record
// slices are the ones prev was compiled from are taken over as they are,
// and allowlist entries and privacy rules that are unchanged are not parsed
// again. A write to a large account then costs what changed, not the size
// of the account.
func CompileFrom(prev *AccountState, d AccountData) *AccountState {
	as := &AccountState{
		Account:         d.Account,
		Settings:        d.Settings,
		representatives: make(map[string]*Representative, len(d.Representatives)),
		allowlist:       d.Allowlist,
		privacyRules:    d.PrivacyRules,
		customizations:  make(map[string]Customization, len(d.Customizations)),
		data:            d,
	}
	if prev == nil {
		prev = &AccountState{}
	}
	for i := range d.Representatives {
		as.representatives[d.Representatives[i].ID] = &d.Representatives[i]
	}
	if sameSlice(prev.data.Allowlist, d.Allowlist) && prev.allowIndex != nil {
		as.allowIndex, as.allowPatterns, as.problems[partAllowlist] = prev.allowIndex, prev.allowPatterns, prev.problems[partAllowlist]
		as.PublicSuffixEntries = prev.PublicSuffixEntries
	} else {
		as.compileAllowlist(prev)
	}
	if sameSlice(prev.data.PrivacyRules, d.PrivacyRules) && prev.data.PrivacyRules != nil {
		as.privacy, as.privacyIndex, as.problems[partPrivacy] = prev.privacy, prev.privacyIndex, prev.problems[partPrivacy]
	} else {
		as.compilePrivacy(prev)
	}
	for _, c := range d.Customizations {
		as.customizations[c.Language] = c
	}
	if sameSlice(prev.data.Portals, d.Portals) && sameSlice(prev.data.Teams, d.Teams) && prev.support.portals != nil {
		as.support, as.problems[partSupport] = prev.support, prev.problems[partSupport]
	} else {
		as.support, as.problems[partSupport] = compileSupport(&as.data)
	}
	for _, p := range as.problems {
		as.Problems = append(as.Problems, p...)
	}
	return as
}

// sameSlice reports whether a and b are the same slice (not just equal).
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (as *AccountState) compileAllowlist(prev *AccountState) {
	d := &as.data
	as.allowPatterns = make([]urlmatch.Pattern, len(d.Allowlist))
	entries := make([]urlmatch.Entry, 0, len(d.Allowlist))
	j := 0 // prev.data.Allowlist and d.Allowlist are both in id order
	for i, e := range d.Allowlist {
		for j < len(prev.data.Allowlist) && prev.data.Allowlist[j].ID < e.ID {
			j++
		}
		if j < len(prev.data.Allowlist) && prev.data.Allowlist[j].ID == e.ID && prev.data.Allowlist[j].Pattern == e.Pattern &&
			prev.allowPatterns[j].Host() != "" {
			as.allowPatterns[i] = prev.allowPatterns[j]
		} else {
			p, err := urlmatch.ParsePattern(e.Pattern)
			if err != nil {
				as.problems[partAllowlist] = append(as.problems[partAllowlist], fmt.Sprintf("allowlist entry %q: %v", e.ID, err))
				continue
			}
			as.allowPatterns[i] = p
		}
		if p := as.allowPatterns[i]; !p.IsIP() && !e.AllowPublicSuffixSubdomains {
			if _, ok := urlmatch.PublicSuffixBelow(p.Host()); ok {
				as.PublicSuffixEntries = append(as.PublicSuffixEntries, e.ID)
			}
		}
		entries = append(entries, urlmatch.Entry{ID: e.ID, Pattern: as.allowPatterns[i]})
	}
	as.allowIndex = urlmatch.NewIndex(entries)
}

func (as *AccountState) compilePrivacy(prev *AccountState) {
	d := &as.data
	as.privacy = make([]compiledRule, 0, len(d.PrivacyRules))
	j := 0 // both in id order
	for _, r := range d.PrivacyRules {
		for j < len(prev.data.PrivacyRules) && prev.data.PrivacyRules[j].ID < r.ID {
			j++
		}
		if j < len(prev.data.PrivacyRules) {
			if old, cr := prev.data.PrivacyRules[j], prev.privacy[j]; old.ID == r.ID && old.Kind == r.Kind && old.Selector == r.Selector &&
				old.URLPattern == r.URLPattern && !cr.selError && cr.anyPage == (r.URLPattern == "") {
				as.privacy = append(as.privacy, cr)
				continue
			}
		}
		cr := compiledRule{id: r.ID, kind: r.Kind, anyPage: r.URLPattern == ""}
		if sel, err := selector.Compile(r.Selector); err != nil {
			as.problems[partPrivacy] = append(as.problems[partPrivacy], fmt.Sprintf("privacy rule %q: %v", r.ID, err))
			cr.selError = true
		} else {
			cr.sel = sel
		}
		if !cr.anyPage {
			if p, prefix, err := rulePattern(r.URLPattern); err != nil {
				as.problems[partPrivacy] = append(as.problems[partPrivacy], fmt.Sprintf("privacy rule %q: url_pattern: %v", r.ID, err))
				cr.anyPage = true
			} else {
				cr.pattern, cr.pathPrefix = p, prefix
			}
		}
		as.privacy = append(as.privacy, cr)
	}
	as.indexPrivacy()
}

// Data returns the records the state was compiled from. They are shared
// with the state: replace slices to change them, never modify them in
// place.
func (as *AccountState) Data() AccountData { return as.data }

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
