package policy_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/loadgen"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
)

// The decision benchmarks run every feature family against a snapshot
// compiled in-process from the generated populations (internal/loadgen):
// "small" (10 accounts, largest allowlist 100 entries) and "large" (1 000
// accounts, 100 000 allowlist entries, five accounts with 10 000 entries and
// 1 000 privacy rules each, 10 000 sessions). Within a scale, "big" asks
// about sessions of the largest accounts and "typical" about sessions of
// median-sized ones. Each benchmark cycles through up to 64 different
// questions of its family so that one hot URL does not flatter it.

type benchEnv struct {
	d    *loadgen.Dataset
	snap *policy.Snapshot
	// accounts by class: "big" and "typical".
	accounts map[string][]string
}

var (
	benchMu   sync.Mutex
	benchEnvs = map[string]*benchEnv{}
)

func loadBenchEnv(b *testing.B, scale string) *benchEnv {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if e := benchEnvs[scale]; e != nil {
		return e
	}
	cfg, err := loadgen.Preset(scale)
	if err != nil {
		b.Fatal(err)
	}
	d, err := loadgen.Generate(cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{d: d, snap: d.Snapshot(1), accounts: map[string][]string{}}
	for i := range cfg.BigAccounts {
		e.accounts["big"] = append(e.accounts["big"], loadgen.AccountID(i))
	}
	// Typical: the accounts around the median allowlist size, among those
	// that have an allowlist and privacy rules.
	var rest []*policy.AccountData
	for i := cfg.BigAccounts; i < len(d.Accounts); i++ {
		if a := &d.Accounts[i]; len(a.Allowlist) > 0 && len(a.PrivacyRules) > 0 && len(a.Portals) > 0 {
			rest = append(rest, a)
		}
	}
	slices.SortStableFunc(rest, func(x, y *policy.AccountData) int { return len(x.Allowlist) - len(y.Allowlist) })
	mid := len(rest) / 2
	for _, a := range rest[max(0, mid-5):min(len(rest), mid+5)] {
		e.accounts["typical"] = append(e.accounts["typical"], a.Account.ID)
	}
	benchEnvs[scale] = e
	return e
}

// family builds the questions of one feature family from a session's
// probe, and says which answers belong to the family.
type family struct {
	name    string
	support bool
	queries func(p *loadgen.Probe) []policy.Query
	want    func(d policy.Decision) bool
}

func agent(p *loadgen.Probe, f policy.Feature, url string) policy.Query {
	return policy.Query{SessionID: p.SessionID, Role: policy.RoleAgent, ActorID: p.RepresentativeID, Feature: f, URL: url}
}

// link is what an ordinary click reports: a navigation link.
var link, linkAncestors = func() (*selector.Element, []selector.Element) {
	e := loadgen.Element{Tag: "a", Classes: []string{"nav-link"}, Attributes: map[string]string{"href": "/products"},
		Ancestors: []loadgen.Element{{Tag: "html"}, {Tag: "body", Classes: []string{"logged-in"}}, {Tag: "div", ID: "app"}, {Tag: "nav", Classes: []string{"menu"}}, {Tag: "ul"}, {Tag: "li"}}}
	s := e.Selector()
	return &s, e.SelectorAncestors()
}()

var families = []family{
	{
		name: "switch",
		queries: func(p *loadgen.Probe) []policy.Query {
			return []policy.Query{agent(p, policy.FeatureVideo, ""), agent(p, policy.FeatureChat, ""), agent(p, policy.FeatureRecording, "")}
		},
		want: func(d policy.Decision) bool {
			return d.Reason == policy.ReasonAllowed || d.Reason == policy.ReasonFeatureDisabled
		},
	},
	{
		name: "allowlist-hit",
		queries: func(p *loadgen.Probe) []policy.Query {
			var qs []policy.Query
			for _, u := range p.AllowedURLs {
				q := agent(p, policy.FeatureClick, u)
				q.Element, q.Ancestors = link, linkAncestors
				qs = append(qs, q, agent(p, policy.FeatureScroll, u))
			}
			return qs
		},
		want: func(d policy.Decision) bool { return d.Allowed },
	},
	{
		name: "allowlist-miss",
		queries: func(p *loadgen.Probe) []policy.Query {
			var qs []policy.Query
			for _, u := range p.DeniedURLs {
				qs = append(qs, agent(p, policy.FeatureClick, u))
			}
			return qs
		},
		want: func(d policy.Decision) bool { return d.Reason == policy.ReasonDomainNotAllowlisted },
	},
	{
		name: "privacy-rule",
		queries: func(p *loadgen.Probe) []policy.Query {
			var qs []policy.Query
			for _, pp := range p.Privacy {
				if pp.Rule != "" {
					qs = append(qs, privacyQuery(p, pp))
				}
			}
			return qs
		},
		want: func(d policy.Decision) bool {
			return d.Reason == policy.ReasonElementBlocked || d.Reason == policy.ReasonElementMasked
		},
	},
	{
		name: "privacy-pass",
		queries: func(p *loadgen.Probe) []policy.Query {
			var qs []policy.Query
			for _, pp := range p.Privacy {
				if pp.Rule == "" {
					qs = append(qs, privacyQuery(p, pp))
				}
			}
			return qs
		},
		want: func(d policy.Decision) bool { return d.Allowed },
	},
	{
		name:    "support-chain",
		support: true,
		queries: func(p *loadgen.Probe) []policy.Query {
			var qs []policy.Query
			for _, fn := range p.Functions {
				qs = append(qs, agent(p, policy.FeatureFunctionBase+policy.Feature(fn), ""))
			}
			return qs
		},
		want: func(d policy.Decision) bool {
			return d.Allowed || d.Reason == policy.ReasonPortalFunctionDisabled || d.Reason == policy.ReasonRepresentativeFunctionDisabled
		},
	},
}

func privacyQuery(p *loadgen.Probe, pp loadgen.PrivacyProbe) policy.Query {
	q := agent(p, pp.Feature, pp.URL)
	el := pp.Element.Selector()
	q.Element, q.Ancestors = &el, pp.Element.SelectorAncestors()
	return q
}

// questions returns up to 64 questions of family f about sessions of the
// given accounts, each checked to get an answer of the family.
func (e *benchEnv) questions(b *testing.B, f family, accounts []string) []policy.Query {
	b.Helper()
	in := map[string]bool{}
	for _, a := range accounts {
		in[a] = true
	}
	var qs []policy.Query
	for i := range e.d.Sessions {
		s := &e.d.Sessions[i]
		if !in[s.AccountID] || (s.Kind == policy.SessionKindSupport) != f.support {
			continue
		}
		p := e.d.Probe(i)
		for _, q := range f.queries(&p) {
			d, err := e.snap.Check(&q)
			if err != nil {
				b.Fatal(err)
			}
			if f.want(d) {
				qs = append(qs, q)
			}
		}
		if len(qs) >= 64 {
			break
		}
	}
	if len(qs) == 0 {
		b.Skipf("no %s question in %v", f.name, accounts)
	}
	return qs[:min(len(qs), 64)]
}

// BenchmarkCheck measures one decision per feature family, scale and
// account class. Besides ns/op it reports cpu-ns/op, the CPU time of the
// benchmark's thread per decision (Linux), which a loaded machine disturbs
// far less.
func BenchmarkCheck(b *testing.B) {
	for _, f := range families {
		for _, scale := range []string{"small", "large"} {
			for _, class := range []string{"typical", "big"} {
				b.Run(fmt.Sprintf("%s/%s/%s", f.name, scale, class), func(b *testing.B) {
					e := loadBenchEnv(b, scale)
					qs := e.questions(b, f, e.accounts[class])
					b.ReportAllocs()
					b.ResetTimer()
					done := measureCPU(b)
					i := 0
					for b.Loop() {
						if _, err := e.snap.Check(&qs[i]); err != nil {
							b.Fatal(err)
						}
						i++
						if i == len(qs) {
							i = 0
						}
					}
					done()
				})
			}
		}
	}
}

// BenchmarkCheckMix measures the load test's mix of checks (80 % CLICK,
// TYPE and SCROLL on allowlisted and other pages, 10 % privacy-rule
// elements, 10 % support functions) over many sessions of every account
// size.
func BenchmarkCheckMix(b *testing.B) {
	for _, scale := range []string{"small", "large"} {
		b.Run(scale, func(b *testing.B) {
			e := loadBenchEnv(b, scale)
			m := loadgen.NewManifest(e.d, 1, 300)
			w, err := loadgen.BuildWorkload(m, 4096, loadgen.DefaultMix, 1)
			if err != nil {
				b.Fatal(err)
			}
			qs := make([]policy.Query, len(w.Checks))
			for i, c := range w.Checks {
				qs[i] = policy.Query{SessionID: c.GetSessionId(), Role: policy.Role(c.GetActor().GetRole()), ActorID: c.GetActor().GetId(),
					Feature: policy.Feature(c.GetFeature()), URL: c.GetUrl(), Frame: policy.Frame(c.GetFrame())}
				if el := c.GetElement(); el != nil {
					le := loadgen.Element{Tag: el.GetTag(), ID: el.GetId(), Classes: el.GetClasses(), Attributes: el.GetAttributes()}
					for _, a := range el.GetAncestors() {
						le.Ancestors = append(le.Ancestors, loadgen.Element{Tag: a.GetTag(), ID: a.GetId(), Classes: a.GetClasses(), Attributes: a.GetAttributes()})
					}
					s := le.Selector()
					qs[i].Element, qs[i].Ancestors = &s, le.SelectorAncestors()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			done := measureCPU(b)
			i := 0
			for b.Loop() {
				if _, err := e.snap.Check(&qs[i]); err != nil {
					b.Fatal(err)
				}
				i++
				if i == len(qs) {
					i = 0
				}
			}
			done()
		})
	}
}

// BenchmarkCompileLarge measures building the whole large snapshot, what
// the daemon does at start-up after reading the store.
func BenchmarkCompileLarge(b *testing.B) {
	e := loadBenchEnv(b, "large")
	b.ReportAllocs()
	for b.Loop() {
		e.d.Snapshot(1)
	}
}

// BenchmarkCompileBigAccount measures compiling the largest account, what
// the follower does after a write to it.
func BenchmarkCompileBigAccount(b *testing.B) {
	e := loadBenchEnv(b, "large")
	ad := e.d.Account(loadgen.AccountID(0))
	b.ReportAllocs()
	for b.Loop() {
		policy.Compile(*ad)
	}
}
