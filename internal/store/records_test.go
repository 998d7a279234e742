package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// The typed record helpers (records.go) over a real bbolt store: what
// they write, read back, list, count and delete. The driver itself is
// tested by internal/store/storetest.

// openStore opens a fresh store that is closed when t ends.
func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRecords(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Accounts", testAccounts},
		{"DeleteAccount", testDeleteAccount},
		{"LoadAccount", testLoadAccount},
		{"ParseKey", testParseKey},
		{"ChangedKeysParse", testChangedKeysParse},
		{"Sessions", testSessions},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, openStore(t)) })
	}
}

func sortedKeys(c store.Change) []string {
	ks := slices.Clone(c.Keys)
	slices.Sort(ks)
	return ks
}

func account(id string) policy.Account {
	return policy.Account{
		ID:          id,
		DisplayName: "Account " + id,
		CobrowseURL: "https://" + id + ".example.com/",
		CreateTime:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// MustPutAccounts writes accounts in one transaction and returns them as
// stored (with their revision).
func MustPutAccounts(t testing.TB, s store.Store, ids ...string) []policy.Account {
	t.Helper()
	out := make([]policy.Account, len(ids))
	rev := storetest.MustUpdate(t, s, func(tx store.Tx) error {
		for i, id := range ids {
			out[i] = account(id)
			if err := store.PutAccount(tx, &out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range out {
		store.WrittenAt(&out[i], rev)
	}
	return out
}

func accountIDs(as []policy.Account) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

func testAccounts(t *testing.T, s store.Store) {
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		as, more, err := store.ListAccounts(tx, "", 0)
		if err != nil || len(as) != 0 || more {
			t.Errorf("ListAccounts on an empty store = %v, %v, %v", as, more, err)
		}
		ids, err := store.AccountIDs(tx)
		if err != nil || len(ids) != 0 {
			t.Errorf("AccountIDs on an empty store = %q, %v", ids, err)
		}
		if _, err := store.GetAccount(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAccount of a missing account: %v; want ErrNotFound", err)
		}
		return nil
	})

	stored := MustPutAccounts(t, s, "c", "a", "d", "ab", "a-b", "b")
	// Records under an account do not show up as accounts.
	storetest.MustUpdate(t, s, func(tx store.Tx) error {
		set := policy.DefaultLiveGuideSettings("a")
		return store.PutSettings(tx, &set)
	})
	byID := map[string]policy.Account{}
	for _, a := range stored {
		byID[a.ID] = a
	}
	sorted := []string{"a", "a-b", "ab", "b", "c", "d"}

	storetest.MustView(t, s, func(tx store.ReadTx) error {
		for _, id := range sorted {
			got, err := store.GetAccount(tx, id)
			if err != nil {
				t.Errorf("GetAccount(%q): %v", id, err)
				continue
			}
			if !reflect.DeepEqual(got, byID[id]) {
				t.Errorf("GetAccount(%q) = %+v; want %+v", id, got, byID[id])
			}
		}
		ids, err := store.AccountIDs(tx)
		if err != nil || !slices.Equal(ids, sorted) {
			t.Errorf("AccountIDs = %q, %v; want %q", ids, err, sorted)
		}
		return nil
	})

	tests := []struct {
		afterID  string
		limit    int
		want     []string
		wantMore bool
	}{
		{"", 0, sorted, false},
		{"", -1, sorted, false},
		{"", 6, sorted, false},
		{"", 7, sorted, false},
		{"", 5, sorted[:5], true},
		{"", 2, []string{"a", "a-b"}, true},
		{"", 1, []string{"a"}, true},
		{"a", 2, []string{"a-b", "ab"}, true},
		{"a-b", 2, []string{"ab", "b"}, true},
		{"b", 2, []string{"c", "d"}, false},
		{"c", 2, []string{"d"}, false},
		{"d", 2, nil, false},
		{"aa", 0, []string{"ab", "b", "c", "d"}, false},
		{"0", 2, []string{"a", "a-b"}, true},
		{"zzz", 0, nil, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after %q limit %d", tc.afterID, tc.limit), func(t *testing.T) {
			storetest.MustView(t, s, func(tx store.ReadTx) error {
				as, more, err := store.ListAccounts(tx, tc.afterID, tc.limit)
				if err != nil {
					t.Fatalf("ListAccounts: %v", err)
				}
				if got := accountIDs(as); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
					t.Errorf("ids = %q; want %q", got, tc.want)
				}
				if more != tc.wantMore {
					t.Errorf("more = %v; want %v", more, tc.wantMore)
				}
				for _, a := range as {
					if !reflect.DeepEqual(a, byID[a.ID]) {
						t.Errorf("listed %+v; stored %+v", a, byID[a.ID])
					}
				}
				return nil
			})
		})
	}

	for limit := 1; limit <= 7; limit++ {
		t.Run(fmt.Sprintf("paging by %d", limit), func(t *testing.T) {
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(sorted) {
					t.Fatalf("paging does not end: %q", got)
				}
				var as []policy.Account
				var more bool
				storetest.MustView(t, s, func(tx store.ReadTx) (err error) {
					as, more, err = store.ListAccounts(tx, after, limit)
					return err
				})
				got = append(got, accountIDs(as)...)
				if !more {
					break
				}
				after = as[len(as)-1].ID
			}
			if !slices.Equal(got, sorted) {
				t.Errorf("paged ids = %q; want %q", got, sorted)
			}
		})
	}
}

func rep(id string, fns policy.Functions) policy.Representative {
	return policy.Representative{ID: id, DisplayName: "Rep " + id, TeamID: "team-1", Functions: fns, LiveGuideEnabled: true}
}

func session(acct, id, repID string, state policy.SessionState) policy.Session {
	s := policy.Session{
		ID:               id,
		AccountID:        acct,
		Kind:             policy.SessionKindLiveGuide,
		State:            state,
		RepresentativeID: repID,
		CustomerID:       "cust-" + id,
		StartTime:        time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}
	if state == policy.SessionStateEnded {
		s.EndTime = s.StartTime.Add(time.Hour)
		s.CustomerRating = 5
	}
	return s
}

// tenant is everything stored for one account.
type tenant struct {
	account  policy.Account
	settings *policy.LiveGuideSettings
	reps     []policy.Representative
	sessions []policy.Session
}

// mustPutTenant writes an account with settings (when custom is set), two
// representatives and three sessions, and returns what was stored.
func mustPutTenant(t testing.TB, s store.Store, id string, custom bool) tenant {
	t.Helper()
	tn := tenant{
		account: account(id),
		reps:    []policy.Representative{rep("r1", 3), rep("r2", 5)},
		sessions: []policy.Session{
			session(id, id+"-s1", "r1", policy.SessionStateActive),
			session(id, id+"-s2", "r1", policy.SessionStateEnded),
			session(id, id+"-s3", "r2", policy.SessionStateActive),
		},
	}
	tn.sessions[2].Specialists = []policy.Specialist{{ID: "sp1", DisplayName: "Specialist"}}
	if custom {
		set := policy.DefaultLiveGuideSettings(id)
		set.Chat, set.VoiceChat, set.ClipboardAgent = true, true, false
		set.SessionStartURL = "https://" + id + ".example.com/start"
		tn.settings = &set
	}
	rev := storetest.MustUpdate(t, s, func(tx store.Tx) error {
		if err := store.PutAccount(tx, &tn.account); err != nil {
			return err
		}
		if tn.settings != nil {
			if err := store.PutSettings(tx, tn.settings); err != nil {
				return err
			}
		}
		// Written out of order; they come back in id order.
		for _, i := range []int{1, 0} {
			if err := store.PutRepresentative(tx, id, &tn.reps[i]); err != nil {
				return err
			}
		}
		for i := range tn.sessions {
			if err := store.PutSession(tx, &tn.sessions[i]); err != nil {
				return err
			}
		}
		return nil
	})
	store.WrittenAt(&tn.account, rev)
	if tn.settings != nil {
		store.WrittenAt(tn.settings, rev)
	}
	for i := range tn.reps {
		store.WrittenAt(&tn.reps[i], rev)
	}
	for i := range tn.sessions {
		store.WrittenAt(&tn.sessions[i], rev)
	}
	return tn
}

func (tn tenant) data() policy.AccountData {
	d := policy.AccountData{
		Account:         tn.account,
		Settings:        policy.DefaultLiveGuideSettings(tn.account.ID),
		Representatives: tn.reps,
	}
	if tn.settings != nil {
		d.Settings = *tn.settings
	}
	return d
}

func testLoadAccount(t *testing.T, s store.Store) {
	withSettings := mustPutTenant(t, s, "acme", true)
	defaults := mustPutTenant(t, s, "acme-2", false)
	bare := MustPutAccounts(t, s, "bare")[0]

	tests := []struct {
		name         string
		acct         string
		withSessions bool
		want         policy.AccountData
		wantSessions []policy.Session
		wantErr      error
	}{
		{"settings, no sessions", "acme", false, withSettings.data(), nil, nil},
		{"settings and sessions", "acme", true, withSettings.data(), withSettings.sessions, nil},
		{"default settings", "acme-2", true, defaults.data(), defaults.sessions, nil},
		{"no records", "bare", true, policy.AccountData{
			Account:  bare,
			Settings: policy.DefaultLiveGuideSettings("bare"),
		}, nil, nil},
		{"missing account", "acm", true, policy.AccountData{}, nil, store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.MustView(t, s, func(tx store.ReadTx) error {
				d, sessions, err := store.LoadAccount(tx, tc.acct, tc.withSessions)
				if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
					t.Fatalf("LoadAccount error = %v; want %v", err, tc.wantErr)
				}
				if tc.wantErr != nil {
					return nil
				}
				if !reflect.DeepEqual(d, tc.want) {
					t.Errorf("LoadAccount data =\n%+v\nwant\n%+v", d, tc.want)
				}
				if !reflect.DeepEqual(sessions, tc.wantSessions) {
					t.Errorf("LoadAccount sessions =\n%+v\nwant\n%+v", sessions, tc.wantSessions)
				}
				if !tc.withSessions && sessions != nil {
					t.Errorf("sessions loaded without withSessions: %+v", sessions)
				}
				return nil
			})
		})
	}
}

func testDeleteAccount(t *testing.T, s store.Store) {
	victim := mustPutTenant(t, s, "acme", true)
	// Neighbours whose ids share a prefix with the victim's.
	neighbours := []tenant{
		mustPutTenant(t, s, "acm", true),
		mustPutTenant(t, s, "acme-2", false),
		mustPutTenant(t, s, "acmea", true),
	}
	snapshot := func() map[string]string {
		keys, vals := storetest.MustScan(t, s, "", "")
		m := map[string]string{}
		for i, k := range keys {
			m[k] = vals[i]
		}
		return m
	}
	before := snapshot()

	rev := storetest.MustUpdate(t, s, func(tx store.Tx) error { _, err := store.DeleteAccount(tx, "acme", 0); return err })

	storetest.MustView(t, s, func(tx store.ReadTx) error {
		if _, err := store.GetAccount(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetAccount after delete: %v; want ErrNotFound", err)
		}
		if _, err := store.GetSettings(tx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSettings after delete: %v; want ErrNotFound", err)
		}
		for _, r := range victim.reps {
			if _, err := store.GetRepresentative(tx, "acme", r.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRepresentative(%q) after delete: %v; want ErrNotFound", r.ID, err)
			}
		}
		for _, ss := range victim.sessions {
			if _, err := store.GetSession(tx, ss.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSession(%q) after delete: %v; want ErrNotFound", ss.ID, err)
			}
			if ok, err := store.SessionExists(tx, ss.ID); ok || err != nil {
				t.Errorf("SessionExists(%q) after delete = %v, %v; want false", ss.ID, ok, err)
			}
		}
		if _, _, err := store.LoadAccount(tx, "acme", true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LoadAccount after delete: %v; want ErrNotFound", err)
		}
		ids, err := store.AccountIDs(tx)
		if want := []string{"acm", "acme-2", "acmea"}; err != nil || !slices.Equal(ids, want) {
			t.Errorf("AccountIDs = %q, %v; want %q", ids, err, want)
		}
		for _, n := range neighbours {
			d, sessions, err := store.LoadAccount(tx, n.account.ID, true)
			if err != nil {
				t.Errorf("LoadAccount(%q): %v", n.account.ID, err)
				continue
			}
			if !reflect.DeepEqual(d, n.data()) || !reflect.DeepEqual(sessions, n.sessions) {
				t.Errorf("neighbour %q changed:\n%+v %+v\nwant\n%+v %+v", n.account.ID, d, sessions, n.data(), n.sessions)
			}
			for _, ss := range n.sessions {
				if got, err := store.GetSession(tx, ss.ID); err != nil || !reflect.DeepEqual(got, ss) {
					t.Errorf("GetSession(%q) = %+v, %v; want %+v", ss.ID, got, err, ss)
				}
			}
		}
		return nil
	})

	// Exactly the victim's keys are gone, and they are the change's keys.
	after := snapshot()
	var gone []string
	for k, v := range before {
		if av, ok := after[k]; !ok {
			gone = append(gone, k)
		} else if av != v {
			t.Errorf("key %q changed from %q to %q", k, v, av)
		}
	}
	if len(after)+len(gone) != len(before) {
		t.Errorf("%d keys after the delete, %d before, %d gone", len(after), len(before), len(gone))
	}
	slices.Sort(gone)
	var want []string
	for k := range before {
		info := store.ParseKey(k)
		id, isIndex := strings.CutPrefix(k, "sess/")
		if info.Account == "acme" || isIndex && slices.ContainsFunc(victim.sessions, func(ss policy.Session) bool { return ss.ID == id }) {
			want = append(want, k)
		}
	}
	slices.Sort(want)
	if !slices.Equal(gone, want) {
		t.Errorf("deleted keys %q; want acme's %q", gone, want)
	}
	// account + settings + 2 reps + 3 sessions + 3 session index entries
	if len(gone) != 10 {
		t.Errorf("deleted %d keys %q; want 10", len(gone), gone)
	}
	cs := storetest.MustChanges(t, s, rev-1)
	if len(cs) != 1 || cs[0].Revision != rev || !slices.Equal(sortedKeys(cs[0]), gone) {
		t.Errorf("Changes of the delete = %+v; want {%d %q}", cs, rev, gone)
	}

	t.Run("missing account", func(t *testing.T) {
		before := s.Revision()
		_, err := s.Update(context.Background(), func(tx store.Tx) error { _, err := store.DeleteAccount(tx, "acme", 0); return err })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteAccount of a deleted account: %v; want ErrNotFound", err)
		}
		if got := s.Revision(); got != before {
			t.Errorf("Revision() = %d; want %d", got, before)
		}
	})
}

func testParseKey(t *testing.T, _ store.Store) {
	tests := []struct {
		key  string
		want store.KeyInfo
	}{
		{"acct/acme", store.KeyInfo{Account: "acme"}},
		{"acct/acme-2", store.KeyInfo{Account: "acme-2"}},
		{"t/acme/settings", store.KeyInfo{Account: "acme"}},
		{"t/acme/rep/r1", store.KeyInfo{Account: "acme"}},
		{"t/acme/session/s1", store.KeyInfo{Account: "acme", Session: "s1"}},
		{"t/acme-2/session/s-2", store.KeyInfo{Account: "acme-2", Session: "s-2"}},
		{"t/acme/sessions/s1", store.KeyInfo{Account: "acme"}},
		{"t/acme/rep/session", store.KeyInfo{Account: "acme"}},
		{"t/acme", store.KeyInfo{Account: "acme"}},
		{"sess/s1", store.KeyInfo{}},
		{"other/acme", store.KeyInfo{}},
		{"acct", store.KeyInfo{}},
		{"", store.KeyInfo{}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := store.ParseKey(tc.key); got != tc.want {
				t.Errorf("ParseKey(%q) = %+v; want %+v", tc.key, got, tc.want)
			}
		})
	}
}

// Every key the typed helpers write parses to its account (and session).
func testChangedKeysParse(t *testing.T, s store.Store) {
	base := s.Revision()
	tn := mustPutTenant(t, s, "acme", true)
	cs := storetest.MustChanges(t, s, base)
	if len(cs) != 1 {
		t.Fatalf("Changes(%d) = %+v; want one change", base, cs)
	}
	sessions := map[string]bool{}
	for _, ss := range tn.sessions {
		sessions[ss.ID] = true
	}
	accountKeys, sessionKeys := 0, 0
	for _, k := range cs[0].Keys {
		info := store.ParseKey(k)
		switch {
		case info.Session != "":
			sessionKeys++
			if info.Account != "acme" || !sessions[info.Session] {
				t.Errorf("ParseKey(%q) = %+v; want a session of acme", k, info)
			}
		case info.Account != "":
			accountKeys++
			if info.Account != "acme" {
				t.Errorf("ParseKey(%q) = %+v; want account acme", k, info)
			}
		}
	}
	// account, settings, two representatives; three session records.
	if accountKeys != 4 || sessionKeys != 3 {
		t.Errorf("keys %q: %d account keys, %d session keys; want 4 and 3", cs[0].Keys, accountKeys, sessionKeys)
	}
}

func testSessions(t *testing.T, s store.Store) {
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		if ok, err := store.SessionExists(tx, "acme-s1"); ok || err != nil {
			t.Errorf("SessionExists on an empty store = %v, %v", ok, err)
		}
		if _, err := store.GetSession(tx, "acme-s1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession on an empty store: %v; want ErrNotFound", err)
		}
		return nil
	})
	acme := mustPutTenant(t, s, "acme", true)
	other := mustPutTenant(t, s, "other", false)
	// One more active session of acme's r1, and an ended one of r2.
	extra := []policy.Session{
		session("acme", "acme-s4", "r1", policy.SessionStateActive),
		session("acme", "acme-s5", "r2", policy.SessionStateEnded),
		session("acme", "acme-s6", "r3", policy.SessionStateUnspecified),
	}
	rev := storetest.MustUpdate(t, s, func(tx store.Tx) error {
		for i := range extra {
			if err := store.PutSession(tx, &extra[i]); err != nil {
				return err
			}
		}
		return nil
	})
	for i := range extra {
		if extra[i].Revision != 0 {
			t.Errorf("session %q: Revision %d after PutSession; want 0 until the commit", extra[i].ID, extra[i].Revision)
		}
		store.WrittenAt(&extra[i], rev)
	}

	storetest.MustView(t, s, func(tx store.ReadTx) error {
		for _, ss := range append(append(slices.Clone(acme.sessions), other.sessions...), extra...) {
			got, err := store.GetSession(tx, ss.ID)
			if err != nil || !reflect.DeepEqual(got, ss) {
				t.Errorf("GetSession(%q) = %+v, %v; want %+v", ss.ID, got, err, ss)
			}
			if ok, err := store.SessionExists(tx, ss.ID); !ok || err != nil {
				t.Errorf("SessionExists(%q) = %v, %v; want true", ss.ID, ok, err)
			}
		}
		for _, ss := range extra {
			if got, err := store.GetSession(tx, ss.ID); err != nil || got.Revision != rev {
				t.Errorf("session %q read at revision %d, %v; commit %d", ss.ID, got.Revision, err, rev)
			}
		}
		if ok, err := store.SessionExists(tx, "acme-s9"); ok || err != nil {
			t.Errorf("SessionExists of a missing session = %v, %v", ok, err)
		}
		return nil
	})

	tests := []struct {
		acct, rep string
		want      int
	}{
		{"acme", "r1", 2},
		{"acme", "r2", 1},
		{"acme", "r3", 0},
		{"acme", "nobody", 0},
		{"other", "r1", 1},
		{"other", "r2", 1},
		{"acm", "r1", 0},
		{"missing", "r1", 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("ActiveSessionsOf %s %s", tc.acct, tc.rep), func(t *testing.T) {
			storetest.MustView(t, s, func(tx store.ReadTx) error {
				n, err := store.ActiveSessionsOf(tx, tc.acct, tc.rep)
				if err != nil || n != tc.want {
					t.Errorf("ActiveSessionsOf(%q, %q) = %d, %v; want %d", tc.acct, tc.rep, n, err, tc.want)
				}
				return nil
			})
		})
	}

	t.Run("ending a session", func(t *testing.T) {
		storetest.MustUpdate(t, s, func(tx store.Tx) error {
			ss, err := store.GetSession(tx, "acme-s1")
			if err != nil {
				return err
			}
			ss.State = policy.SessionStateEnded
			return store.PutSession(tx, &ss)
		})
		storetest.MustView(t, s, func(tx store.ReadTx) error {
			if n, err := store.ActiveSessionsOf(tx, "acme", "r1"); err != nil || n != 1 {
				t.Errorf("ActiveSessionsOf after ending one = %d, %v; want 1", n, err)
			}
			return nil
		})
	})

	t.Run("corrupt record", func(t *testing.T) {
		storetest.MustPut(t, s, "sess/bad", "acme", "t/acme/session/bad", "{not json")
		storetest.MustView(t, s, func(tx store.ReadTx) error {
			if _, err := store.GetSession(tx, "bad"); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("GetSession of an undecodable record: %v; want ErrCorrupt", err)
			}
			if _, err := store.ActiveSessionsOf(tx, "acme", "r1"); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("ActiveSessionsOf over an undecodable record: %v; want ErrCorrupt", err)
			}
			if _, _, err := store.LoadAccount(tx, "acme", true); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("LoadAccount with sessions over an undecodable session: %v; want ErrCorrupt", err)
			}
			if _, _, err := store.LoadAccount(tx, "acme", false); err != nil {
				t.Errorf("LoadAccount without sessions over an undecodable session: %v; want no error", err)
			}
			return nil
		})
	})
}

// TestDeleteAccount_InBatches deletes an account of 1 000 allowlist entries
// and 40 sessions on a store with etcd's default limits: the account is gone
// for readers at the first commit, the rest goes in batches the limits
// allow, a restart in the middle resumes, and the id is free at the end.
func TestDeleteAccount_InBatches(t *testing.T) {
	dir := t.TempDir()
	lim := store.Limits{MaxOps: 128, MaxTxnBytes: 3 << 19}
	open := func() store.Store {
		s, err := bolt.OpenWith(dir, bolt.Options{Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s := open()
	MustPutAccounts(t, s, "big", "other")
	for i := 0; i < 1000; i += 100 {
		storetest.MustUpdate(t, s, func(tx store.Tx) error {
			for j := i; j < i+100; j++ {
				if err := store.PutAllowlistEntry(tx, "big", &policy.AllowlistEntry{ID: fmt.Sprintf("e%04d", j), Pattern: "h.example.com"}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	storetest.MustUpdate(t, s, func(tx store.Tx) error {
		for i := range 40 {
			ss := session("big", fmt.Sprintf("big-s%02d", i), "r1", policy.SessionStateActive)
			if err := store.PutSession(tx, &ss); err != nil {
				return err
			}
		}
		ss := session("other", "other-s1", "r1", policy.SessionStateActive)
		return store.PutSession(tx, &ss)
	})
	batch := store.DeleteBatch(lim)
	if batch*3+16 > lim.MaxOps {
		t.Fatalf("DeleteBatch(%+v) = %d leaves no room for audit events", lim, batch)
	}

	// The first transaction: the account is gone for every reader.
	var more bool
	storetest.MustUpdate(t, s, func(tx store.Tx) (err error) {
		more, err = store.DeleteAccount(tx, "big", batch)
		return err
	})
	if !more {
		t.Fatal("DeleteAccount of 1 040 records finished in one batch")
	}
	goneForReaders := func(s store.Store) {
		t.Helper()
		storetest.MustView(t, s, func(tx store.ReadTx) error {
			if _, err := store.GetAccount(tx, "big"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetAccount of a deleted account: %v; want ErrNotFound", err)
			}
			if _, _, err := store.LoadAccount(tx, "big", true); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("LoadAccount of a deleted account: %v; want ErrNotFound", err)
			}
			if ids, err := store.AccountIDs(tx); err != nil || !slices.Equal(ids, []string{"other"}) {
				t.Errorf("AccountIDs = %q, %v; want [other]", ids, err)
			}
			for i := range 40 {
				id := fmt.Sprintf("big-s%02d", i)
				if _, err := store.GetSession(tx, id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("GetSession(%s) of a deleted account: %v; want ErrNotFound", id, err)
				}
				if _, err := store.GetAccountSession(tx, "big", id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("GetAccountSession(%s) of a deleted account: %v; want ErrNotFound", id, err)
				}
			}
			if _, err := store.GetSession(tx, "other-s1"); err != nil {
				t.Errorf("GetSession of another account's session: %v", err)
			}
			return nil
		})
		_, err := s.Update(context.Background(), func(tx store.Tx) error {
			a := account("big")
			return store.PutAccount(tx, &a)
		})
		if !errors.Is(err, store.ErrAccountDeleting) {
			t.Errorf("PutAccount of an id being deleted: %v; want ErrAccountDeleting", err)
		}
	}
	goneForReaders(s)

	// One more batch, then a restart.
	storetest.MustUpdate(t, s, func(tx store.Tx) (err error) {
		more, err = store.ContinueAccountDeletion(tx, "big", batch)
		return err
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	goneForReaders(s)
	var pending []string
	storetest.MustView(t, s, func(tx store.ReadTx) (err error) {
		pending, err = store.AccountsBeingDeleted(tx)
		return err
	})
	if !slices.Equal(pending, []string{"big"}) {
		t.Fatalf("AccountsBeingDeleted after a restart = %q; want [big]", pending)
	}
	commits := 0
	for more {
		storetest.MustUpdate(t, s, func(tx store.Tx) (err error) {
			more, err = store.ContinueAccountDeletion(tx, "big", batch)
			return err
		})
		commits++
	}
	if want := (1040+batch-1)/batch - 2; commits != want {
		t.Errorf("%d more commits to finish; want %d", commits, want)
	}
	keys, _ := storetest.MustScan(t, s, "", "")
	for _, k := range keys {
		if strings.Contains(k, "big") {
			t.Errorf("%s is left after the deletion finished", k)
		}
	}
	storetest.MustView(t, s, func(tx store.ReadTx) error {
		if ids, err := store.AccountsBeingDeleted(tx); err != nil || len(ids) != 0 {
			t.Errorf("AccountsBeingDeleted after the end = %q, %v", ids, err)
		}
		return nil
	})
	_, err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := store.ContinueAccountDeletion(tx, "big", batch)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ContinueAccountDeletion with nothing pending: %v; want ErrNotFound", err)
	}
	MustPutAccounts(t, s, "big") // the id is free again
}
