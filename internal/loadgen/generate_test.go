package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

func mustGenerate(t testing.TB, c Config) *Dataset {
	t.Helper()
	d, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGenerate_ExactTotalsAndDeterministic(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{Tiny(), Small()} {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			d := mustGenerate(t, c)
			got := d.Counts()
			if got.Accounts != c.Accounts || got.AllowlistEntries != c.Allowlist || got.PrivacyRules != c.PrivacyRules ||
				got.TopPortals != c.Portals || got.Representatives != c.Representatives || got.Sessions != c.Sessions {
				t.Fatalf("counts %+v do not match config %+v", got, c)
			}
			if got.MaxAllowlist != c.BigAllowlist && got.MaxAllowlist < c.BigAllowlist {
				t.Errorf("largest allowlist %d, want at least %d", got.MaxAllowlist, c.BigAllowlist)
			}
			if got.PortalRecords <= got.TopPortals {
				t.Errorf("portals have no subportals: %+v", got)
			}
			again := mustGenerate(t, c)
			a, _ := json.Marshal(d.Accounts)
			b, _ := json.Marshal(again.Accounts)
			if string(a) != string(b) || !reflect.DeepEqual(d.Sessions, again.Sessions) || !reflect.DeepEqual(d.Probes(20), again.Probes(20)) {
				t.Fatal("the same config generated different data")
			}
			other := c
			other.Seed++
			if reflect.DeepEqual(mustGenerate(t, other).Sessions, d.Sessions) {
				t.Fatal("a different seed generated the same sessions")
			}
		})
	}
}

// TestProbes_DecideAsDescribed checks every probe of the small dataset
// against the engine: allowlisted pages pass the allowlist, the others are
// refused, targeted elements are blocked or masked, harmless ones are not.
func TestProbes_DecideAsDescribed(t *testing.T) {
	t.Parallel()
	d := mustGenerate(t, Small())
	snap := d.Snapshot(1)
	for i := range d.Accounts {
		if as := snap.Account(d.Accounts[i].Account.ID); len(as.Problems) > 0 {
			t.Errorf("account %s does not compile cleanly: %v", d.Accounts[i].Account.ID, as.Problems)
		}
	}
	probes := d.Probes(len(d.Sessions))
	if len(probes) != len(d.Sessions) {
		t.Fatalf("%d probes for %d sessions", len(probes), len(d.Sessions))
	}
	var support, privacy, denied int
	for _, p := range probes {
		as := snap.Account(p.AccountID)
		check := func(q policy.Query) policy.Decision {
			t.Helper()
			q.SessionID = p.SessionID
			dec, err := snap.Check(&q)
			if err != nil {
				t.Fatalf("session %s: %v", p.SessionID, err)
			}
			return dec
		}
		if p.Support {
			support++
			for _, fn := range p.Functions {
				dec := check(policy.Query{Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: policy.FeatureFunctionBase + policy.Feature(fn)})
				if want := as.EffectiveFunctions(d.Sessions[indexOf(d, p.SessionID)].PortalID, p.RepresentativeID).Has(policy.Function(fn)); dec.Allowed != want {
					t.Errorf("session %s function %d: %+v, effective %v", p.SessionID, fn, dec, want)
				}
			}
			continue
		}
		for _, u := range p.AllowedURLs {
			if dec := check(policy.Query{Role: policy.RoleCustomer, ActorID: p.CustomerID, Feature: policy.FeatureClick, URL: u}); !dec.Allowed {
				t.Errorf("%s: allowed URL %s: %+v", p.AccountID, u, dec)
			}
		}
		for _, u := range p.DeniedURLs {
			denied++
			if dec := check(policy.Query{Role: policy.RoleCustomer, ActorID: p.CustomerID, Feature: policy.FeatureNavigate, URL: u}); dec.Reason != policy.ReasonDomainNotAllowlisted {
				t.Errorf("%s: denied URL %s: %+v", p.AccountID, u, dec)
			}
		}
		if as.Settings.AgentClickRestricted || as.Settings.AgentInputRestricted {
			continue
		}
		for _, pp := range p.Privacy {
			privacy++
			el := pp.Element.Selector()
			dec := check(policy.Query{Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: pp.Feature, URL: pp.URL,
				Element: &el, Ancestors: pp.Element.SelectorAncestors()})
			switch {
			case pp.Rule == "" && !dec.Allowed:
				t.Errorf("%s: harmless element on %s: %+v", p.AccountID, pp.URL, dec)
			case pp.Rule != "" && dec.Reason != policy.ReasonElementBlocked && dec.Reason != policy.ReasonElementMasked:
				t.Errorf("%s: element of rule %s on %s: %+v", p.AccountID, pp.Rule, pp.URL, dec)
			}
		}
	}
	if support == 0 || privacy == 0 || denied == 0 {
		t.Fatalf("probes cover too little: %d support, %d privacy, %d denied", support, privacy, denied)
	}
}

func indexOf(d *Dataset, session string) int {
	for i := range d.Sessions {
		if d.Sessions[i].ID == session {
			return i
		}
	}
	return -1
}

func TestWriteStore_RoundTrip(t *testing.T) {
	t.Parallel()
	d := mustGenerate(t, Small())
	dir := t.TempDir()
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	commits := 0
	rev, err := WriteStore(ctx, st, d, WriteOptions{BatchRecords: 200, Progress: func(done, total int) { commits++ }})
	if err != nil {
		t.Fatal(err)
	}
	if commits < 2 || rev != st.Revision() {
		t.Fatalf("%d commits, revision %d, store at %d", commits, rev, st.Revision())
	}
	if _, err := WriteStore(ctx, st, d, WriteOptions{}); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("second write: %v, want ErrNotEmpty", err)
	}
	f, err := replica.New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	snap := f.Current()
	if snap.NumAccounts() != len(d.Accounts) || snap.NumSessions() != len(d.Sessions) {
		t.Fatalf("store holds %d accounts and %d sessions, want %d and %d", snap.NumAccounts(), snap.NumSessions(), len(d.Accounts), len(d.Sessions))
	}
	err = st.View(ctx, func(tx store.ReadTx) error {
		for i := range d.Accounts {
			want := &d.Accounts[i]
			got, _, err := store.LoadAccount(tx, want.Account.ID, false)
			if err != nil {
				return err
			}
			if len(got.Allowlist) != len(want.Allowlist) || len(got.PrivacyRules) != len(want.PrivacyRules) ||
				len(got.Representatives) != len(want.Representatives) || len(got.Portals) != len(want.Portals) || len(got.Teams) != len(want.Teams) {
				t.Errorf("account %s read back differently", want.Account.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	m := NewManifest(d, rev, 10)
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	back, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Matches(Small()) || back.Matches(Tiny()) || back.Revision != rev || len(back.Probes) < 10 || back.Accounts[0].ID != AccountID(0) {
		t.Fatalf("manifest read back as %+v", back.Counts)
	}
}

func TestSpread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ total, n, least int }{{0, 5, 0}, {7, 3, 1}, {100, 7, 0}, {3, 5, 1}} {
		rng := rand.New(rand.NewPCG(1, 2))
		got := spread(rng, tc.total, tc.n, 0.3, tc.least)
		sum := 0
		for _, x := range got {
			sum += x
		}
		if sum != tc.total || len(got) != tc.n {
			t.Errorf("spread(%d, %d) = %v", tc.total, tc.n, got)
		}
	}
}

// TestWriteStore_WithinTransactionLimits: on a store that bounds its
// transactions as etcd does (and on one whose byte bound is far smaller
// than a chunk of records), WriteStore commits every record in
// transactions within the bounds, from several writers, and the store
// reads back as the dataset.
func TestWriteStore_WithinTransactionLimits(t *testing.T) {
	t.Parallel()
	d := mustGenerate(t, Small())
	for _, lim := range []store.Limits{{MaxOps: 128, MaxTxnBytes: 3 << 19}, {MaxOps: 128, MaxTxnBytes: 4 << 10}} {
		st, err := bolt.OpenWith(t.TempDir(), bolt.Options{Limits: lim})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := context.Background()
		last := 0
		rev, err := WriteStore(ctx, st, d, WriteOptions{Concurrency: 4, Progress: func(done, total int) { last = done }})
		if err != nil {
			t.Fatalf("limits %+v: %v", lim, err)
		}
		if rev != st.Revision() {
			t.Errorf("limits %+v: returned revision %d, store at %d", lim, rev, st.Revision())
		}
		want := 0
		bySession := map[string][]policy.Session{}
		for _, s := range d.Sessions {
			bySession[s.AccountID] = append(bySession[s.AccountID], s)
		}
		for i := range d.Accounts {
			want += d.records(&d.Accounts[i], bySession[d.Accounts[i].Account.ID])
		}
		if last != want {
			t.Errorf("limits %+v: progress ended at %d records, want %d", lim, last, want)
		}
		f, err := replica.New(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if snap := f.Current(); snap.NumAccounts() != len(d.Accounts) || snap.NumSessions() != len(d.Sessions) {
			t.Fatalf("limits %+v: store holds %d accounts and %d sessions, want %d and %d", lim, snap.NumAccounts(), snap.NumSessions(), len(d.Accounts), len(d.Sessions))
		}
		err = st.View(ctx, func(tx store.ReadTx) error {
			for i := range d.Accounts {
				want := &d.Accounts[i]
				got, _, err := store.LoadAccount(tx, want.Account.ID, false)
				if err != nil {
					return err
				}
				if len(got.Allowlist) != len(want.Allowlist) || len(got.PrivacyRules) != len(want.PrivacyRules) ||
					len(got.Representatives) != len(want.Representatives) || len(got.Portals) != len(want.Portals) || len(got.Teams) != len(want.Teams) ||
					len(got.Customizations) != len(want.Customizations) || len(got.BusinessHours) != len(want.BusinessHours) || got.Settings.AccountID != want.Account.ID {
					t.Errorf("limits %+v: account %s read back differently", lim, want.Account.ID)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
