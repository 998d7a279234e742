package policy

import "maps"

// Snapshot is an immutable, compiled view of the whole store at one
// revision. The decision path reads only snapshots; a new one is built after
// every commit and swapped in atomically, so readers never lock.
type Snapshot struct {
	revision uint64
	accounts map[string]*AccountState
	sessions map[string]*Session
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
	next := &Snapshot{revision: rev, accounts: s.accounts, sessions: s.sessions}
	if len(accounts) > 0 {
		next.accounts = applyMap(s.accounts, accounts)
	}
	if len(sessions) > 0 {
		next.sessions = applyMap(s.sessions, sessions)
	}
	return next
}

func applyMap[V any](base, changes map[string]*V) map[string]*V {
	out := maps.Clone(base)
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
}

// AccountState is an account compiled for decisions. It is immutable.
type AccountState struct {
	Account         Account
	Settings        LiveGuideSettings
	representatives map[string]*Representative
}

// Compile builds the decision state of one account.
func Compile(d AccountData) *AccountState {
	as := &AccountState{
		Account:         d.Account,
		Settings:        d.Settings,
		representatives: make(map[string]*Representative, len(d.Representatives)),
	}
	for i := range d.Representatives {
		r := d.Representatives[i]
		as.representatives[r.ID] = &r
	}
	return as
}

// Representative returns a representative of the account, or nil.
func (as *AccountState) Representative(id string) *Representative { return as.representatives[id] }
