package replica_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// TestReplica_IncrementalEqualsFullLoad writes random changes of every
// record kind to a generated store and checks, after each commit, that the
// snapshot the replica built incrementally (re-reading only written keys
// and recompiling only what changed) is the snapshot a fresh full load
// builds: the same records, problems and decisions for every account.
func TestReplica_IncrementalEqualsFullLoad(t *testing.T) {
	t.Parallel()
	d, err := loadgen.Generate(loadgen.Small())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := loadgen.WriteStore(ctx, st, d, loadgen.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := replica.New(ctx, st, log)
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(fctx) }()
	defer func() { stop(); <-done }()

	probes := d.Probes(40)
	rng := rand.New(rand.NewPCG(5, 9))
	ids := make([]string, len(d.Accounts))
	for i := range d.Accounts {
		ids[i] = d.Accounts[i].Account.ID
	}
	for step := range 100 {
		var what []string
		rev, err := st.Update(ctx, func(tx store.Tx) error {
			what = what[:0]
			for range 1 + rng.IntN(4) {
				w, err := randomWrite(tx, rng, ids, step)
				if err != nil {
					return err
				}
				what = append(what, w)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		inc, err := f.WaitFor(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		full, err := replica.New(ctx, st, log)
		if err != nil {
			t.Fatal(err)
		}
		if full.Current().Revision() != inc.Revision() {
			continue // another commit landed in between; compare next time
		}
		compareSnapshots(t, fmt.Sprintf("step %d (%v)", step, what), inc, full.Current(), append(ids, "acct-new"), probes)
	}
}

// randomWrite makes one random change and says what it did.
func randomWrite(tx store.Tx, rng *rand.Rand, ids []string, step int) (string, error) {
	ai := rng.IntN(len(ids))
	acct := ids[ai]
	if _, err := store.GetAccount(tx, acct); err != nil {
		return "skip", nil //nolint:nilerr // deleted earlier
	}
	n := rng.IntN(1000)
	switch rng.IntN(13) {
	case 0:
		s, err := store.GetSettings(tx, acct)
		if err != nil {
			return "", err
		}
		s.AgentClickRestricted = !s.AgentClickRestricted
		return "settings " + acct, store.PutSettings(tx, &s)
	case 1:
		e := policy.AllowlistEntry{ID: fmt.Sprintf("al-%05d", n%40), Pattern: fmt.Sprintf("new%d.example-%d.com", n, step)}
		return "allow put " + acct, store.PutAllowlistEntry(tx, acct, &e)
	case 2:
		// A pattern that no longer compiles (a public suffix).
		e := policy.AllowlistEntry{ID: fmt.Sprintf("al-%05d", n%40), Pattern: "co.uk"}
		return "allow broken " + acct, store.PutAllowlistEntry(tx, acct, &e)
	case 3:
		return "allow delete " + acct, store.DeleteAllowlistEntry(tx, acct, fmt.Sprintf("al-%05d", n%40))
	case 4, 12:
		// Selector and url_pattern change independently, on few accounts
		// and rule ids so that the same rule is rewritten often; the
		// queries in compareSnapshots name its elements and pages.
		ai = n % 3
		acct = ids[ai]
		if _, err := store.GetAccount(tx, acct); err != nil {
			return "skip", nil //nolint:nilerr // deleted earlier
		}
		r := policy.PrivacyRule{ID: fmt.Sprintf("pr-9%03d", n%3), Kind: policy.PrivacyRuleKind(1 + n%2),
			Selector:   []string{"#card-number-x", "input.x", "[data-x] input"}[n%3],
			URLPattern: []string{"", loadgen.SiteOf(ai), loadgen.SiteOf(ai) + "/checkout", "not a pattern", loadgen.SiteOf(ai) + "/other"}[(n/3)%5]}
		return "privacy put " + acct, store.PutPrivacyRule(tx, acct, &r)
	case 5:
		return "privacy delete " + acct, store.DeletePrivacyRule(tx, acct, fmt.Sprintf("pr-9%03d", n%3))
	case 6:
		r := policy.Representative{ID: fmt.Sprintf("rep-%05d", n%30), DisplayName: "New Rep", TeamID: "team-000",
			Functions: policy.Functions(n), LiveGuideEnabled: true}
		return "rep put " + acct, store.PutRepresentative(tx, acct, &r)
	case 7:
		ps, _, err := store.ListPortals(tx, acct, "", 0)
		if err != nil || len(ps) == 0 {
			return "no portal", err
		}
		p := ps[n%len(ps)]
		p.Functions = policy.Functions(n)
		return "portal put " + acct, store.PutPortal(tx, acct, &p)
	case 8:
		c := policy.Customization{AccountID: acct, Language: []string{"fr", "it", "de"}[n%3], AgentAlias: fmt.Sprintf("alias %d", n)}
		return "custom put " + acct, store.PutCustomization(tx, &c)
	case 9:
		a, err := store.GetAccount(tx, acct)
		if err != nil {
			return "", err
		}
		a.DisplayName = fmt.Sprintf("Renamed %d", n)
		return "account put " + acct, store.PutAccount(tx, &a)
	case 10:
		ts, _, err := store.ListTeams(tx, acct, "", 0)
		if err != nil || len(ts) == 0 {
			return "no team", err
		}
		return "team delete " + acct, store.DeleteTeam(tx, acct, ts[n%len(ts)].ID)
	default:
		if n%5 == 0 {
			_, err := store.DeleteAccount(tx, acct, 0)
			return "account delete " + acct, err
		}
		a := policy.Account{ID: "acct-new", DisplayName: "New"}
		if err := store.PutAccount(tx, &a); err != nil {
			return "", err
		}
		e := policy.AllowlistEntry{ID: fmt.Sprintf("al-%d", n), Pattern: "brand-new.example.com"}
		return "account new", store.PutAllowlistEntry(tx, a.ID, &e)
	}
}

func compareSnapshots(t *testing.T, at string, inc, full *policy.Snapshot, ids []string, probes []loadgen.Probe) {
	t.Helper()
	for _, id := range ids {
		a, b := inc.Account(id), full.Account(id)
		if (a == nil) != (b == nil) {
			t.Fatalf("%s: account %s: incremental %v, full load %v", at, id, a != nil, b != nil)
		}
		if a == nil {
			continue
		}
		if !reflect.DeepEqual(normalized(a.Data()), normalized(b.Data())) {
			t.Fatalf("%s: account %s: records differ\nincremental %+v\nfull        %+v", at, id, a.Data(), b.Data())
		}
		if !reflect.DeepEqual(a.Problems, b.Problems) || !reflect.DeepEqual(a.Settings, b.Settings) || a.Account != b.Account {
			t.Fatalf("%s: account %s: compiled state differs: %v / %v", at, id, a.Problems, b.Problems)
		}
	}
	for _, p := range probes {
		var qs []policy.Query
		for _, u := range append(append([]string{}, p.AllowedURLs...), p.DeniedURLs...) {
			qs = append(qs, policy.Query{SessionID: p.SessionID, Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: policy.FeatureClick, URL: u})
		}
		for _, pp := range p.Privacy {
			el := pp.Element.Selector()
			qs = append(qs, policy.Query{SessionID: p.SessionID, Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: pp.Feature,
				URL: pp.URL, Element: &el, Ancestors: pp.Element.SelectorAncestors()})
		}
		// Elements and pages the random privacy rules name.
		site := loadgen.SiteOf(indexOfAccount(p.AccountID))
		for _, u := range []string{"https://" + site + "/checkout/a", "https://www." + site + "/other", "https://" + site + "/"} {
			for _, f := range []policy.Feature{policy.FeatureClick, policy.FeatureViewElement} {
				el := policy.Query{SessionID: p.SessionID, Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: f, URL: u}
				el.Element = &targetElement
				el.Ancestors = targetAncestors
				qs = append(qs, el)
			}
		}
		for _, fn := range p.Functions {
			qs = append(qs, policy.Query{SessionID: p.SessionID, Role: policy.RoleAgent, ActorID: p.RepresentativeID,
				Feature: policy.FeatureFunctionBase + policy.Feature(fn)})
		}
		for _, q := range qs {
			d1, err1 := inc.Check(&q)
			d2, err2 := full.Check(&q)
			if d1 != d2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("%s: %+v: incremental %+v %v, full load %+v %v", at, q, d1, err1, d2, err2)
			}
		}
	}
}

var (
	targetElement   = selector.Element{Tag: "input", ID: "card-number-x", Classes: []string{"x"}}
	targetAncestors = []selector.Element{{Tag: "html"}, {Tag: "form", Attributes: map[string]string{"data-x": ""}}}
)

func indexOfAccount(id string) int {
	var i int
	fmt.Sscanf(id, "acct-%d", &i)
	return i
}

// normalized maps empty slices to nil: a record list emptied by deletes is
// the same as one that never had records.
func normalized(d policy.AccountData) policy.AccountData {
	if len(d.Representatives) == 0 {
		d.Representatives = nil
	}
	if len(d.Allowlist) == 0 {
		d.Allowlist = nil
	}
	if len(d.PrivacyRules) == 0 {
		d.PrivacyRules = nil
	}
	if len(d.Customizations) == 0 {
		d.Customizations = nil
	}
	if len(d.Portals) == 0 {
		d.Portals = nil
	}
	if len(d.Teams) == 0 {
		d.Teams = nil
	}
	if len(d.BusinessHours) == 0 {
		d.BusinessHours = nil
	}
	return d
}
