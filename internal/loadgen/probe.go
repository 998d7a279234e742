package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// Element is a DOM element as a session client reports it, with its
// ancestors outermost first.
type Element struct {
	Tag        string            `json:"tag"`
	ID         string            `json:"id,omitempty"`
	Classes    []string          `json:"classes,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Ancestors  []Element         `json:"ancestors,omitempty"`
}

// Selector converts e (without ancestors) to the engine's element type.
func (e *Element) Selector() selector.Element {
	return selector.Element{Tag: e.Tag, ID: e.ID, Classes: e.Classes, Attributes: e.Attributes}
}

// SelectorAncestors converts e's ancestors to the engine's element type.
func (e *Element) SelectorAncestors() []selector.Element {
	out := make([]selector.Element, len(e.Ancestors))
	for i := range e.Ancestors {
		out[i] = e.Ancestors[i].Selector()
	}
	return out
}

// Probe describes one generated session and questions worth asking about
// it: pages its account allowlists and pages it does not, elements its
// account's privacy rules target, support functions.
type Probe struct {
	SessionID        string   `json:"session_id"`
	AccountID        string   `json:"account_id"`
	Support          bool     `json:"support,omitempty"`
	RepresentativeID string   `json:"representative_id"`
	CustomerID       string   `json:"customer_id"`
	Specialists      []string `json:"specialists,omitempty"`
	// Restricted is whether the account has an allowlist; without one,
	// DeniedURLs is empty (every http(s) page is allowed).
	Restricted bool `json:"restricted"`
	// ClickRestricted and InputRestricted are the account's
	// agent_click_restricted and agent_input_restricted switches, as
	// generated.
	ClickRestricted bool     `json:"agent_click_restricted,omitempty"`
	InputRestricted bool     `json:"agent_input_restricted,omitempty"`
	AllowedURLs     []string `json:"allowed_urls,omitempty"`
	DeniedURLs      []string `json:"denied_urls,omitempty"`
	// Privacy holds elements on allowlisted pages: ones that a privacy
	// rule targets (Rule set) and ones no rule targets.
	Privacy []PrivacyProbe `json:"privacy,omitempty"`
	// Functions are support functions (policy.Function values) to ask
	// about in a support session.
	Functions []int `json:"functions,omitempty"`
	// FunctionExpect[i] is the decision Functions[i] must get, worked out
	// from the generated portals and representative (see functionExpect).
	FunctionExpect []Expect `json:"function_expect,omitempty"`
}

// PrivacyProbe is an element on a page, with the feature an agent would
// use on it.
type PrivacyProbe struct {
	URL     string         `json:"url"`
	Feature policy.Feature `json:"feature"`
	// Rule is the id of a rule that targets the element and Kind its
	// kind; Rule is "" when no rule does.
	Rule    string                 `json:"rule,omitempty"`
	Kind    policy.PrivacyRuleKind `json:"kind,omitempty"`
	Element Element                `json:"element"`
}

// AllowedURL returns a page URL that pattern p allows; k varies the page.
func AllowedURL(p urlmatch.Pattern, k int) string {
	var b strings.Builder
	scheme := p.Scheme()
	if scheme == "" {
		scheme = "https"
		if p.IsIP() {
			scheme = "http"
		}
	}
	b.WriteString(scheme)
	b.WriteString("://")
	if p.IsWildcard() || (!p.IsIP() && k%2 == 1) {
		b.WriteString([]string{"www.", "m.", "eu."}[k%3])
	}
	b.WriteString(p.Host())
	if p.Port() != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(p.Port())))
	}
	if path := p.Path(); path != "" {
		b.WriteString(path)
		if !strings.HasSuffix(path, "/") {
			b.WriteByte('/')
		}
		fmt.Fprintf(&b, "article-%d", k)
	} else {
		fmt.Fprintf(&b, "/products/item-%d", k)
	}
	if k%3 == 0 {
		fmt.Fprintf(&b, "?ref=campaign-%d&utm_source=mail", k)
	}
	return b.String()
}

// deniedURLs returns pages no entry of the account allows, some of them
// crafted the way an attacker would (lookalike suffixes, userinfo).
func deniedURLs(site string, k int) []string {
	return []string{
		fmt.Sprintf("https://%s.evil-%d.net/login", site, k),
		fmt.Sprintf("https://www.unlisted-%d.org/products/item-%d", k, k),
		fmt.Sprintf("https://%s@phish-%d.example/account", site, k),
		fmt.Sprintf("https://not%s/help", site),
	}
}

// Probe builds the probe of session i (an index into d.Sessions). It is
// deterministic.
func (d *Dataset) Probe(i int) Probe {
	s := &d.Sessions[i]
	ad := d.Account(s.AccountID)
	rng := rand.New(rand.NewPCG(d.Config.Seed, 0x5eed0000+uint64(i)))
	p := Probe{
		SessionID: s.ID, AccountID: s.AccountID, Support: s.Kind == policy.SessionKindSupport,
		RepresentativeID: s.RepresentativeID, CustomerID: s.CustomerID, Restricted: len(ad.Allowlist) > 0,
		ClickRestricted: ad.Settings.AgentClickRestricted, InputRestricted: ad.Settings.AgentInputRestricted,
	}
	for _, sp := range s.Specialists {
		p.Specialists = append(p.Specialists, sp.ID)
	}
	if p.Support {
		for range 4 {
			fn := rng.IntN(int(policy.NumFunctions))
			p.Functions = append(p.Functions, fn)
			p.FunctionExpect = append(p.FunctionExpect, functionExpect(ad, s, policy.Function(fn)))
		}
		return p
	}
	site := SiteOf(d.byAccount[ad.Account.ID])
	if len(ad.Allowlist) == 0 {
		p.AllowedURLs = []string{"https://www." + site + "/", fmt.Sprintf("https://news-%d.example.org/story", rng.IntN(1000))}
	}
	for k := range min(6, len(ad.Allowlist)) {
		e := ad.Allowlist[rng.IntN(len(ad.Allowlist))]
		pat, err := urlmatch.ParsePattern(e.Pattern)
		if err != nil {
			continue
		}
		p.AllowedURLs = append(p.AllowedURLs, AllowedURL(pat, k+rng.IntN(100)))
	}
	if p.Restricted {
		p.DeniedURLs = deniedURLs(site, rng.IntN(1000))
	}
	for range min(4, len(ad.PrivacyRules)) {
		j := rng.IntN(len(ad.PrivacyRules))
		r := ad.PrivacyRules[j]
		pp := PrivacyProbe{Rule: r.ID, Kind: r.Kind, Element: ruleShapes[j%len(ruleShapes)].el(j), Feature: policy.FeatureClick}
		if r.Kind == policy.PrivacyRuleKindDataMask {
			pp.Feature = []policy.Feature{policy.FeatureType, policy.FeatureViewElement}[rng.IntN(2)]
		}
		if r.URLPattern == "" {
			pp.URL = p.AllowedURLs[rng.IntN(len(p.AllowedURLs))]
		} else {
			pp.URL = "https://" + r.URLPattern + "/step-2?session=" + strconv.Itoa(rng.IntN(1000))
		}
		p.Privacy = append(p.Privacy, pp)
		// The same page with a field no rule targets.
		p.Privacy = append(p.Privacy, PrivacyProbe{URL: pp.URL, Feature: pp.Feature, Element: harmlessElement()})
	}
	return p
}

// Probes returns the probes of up to n sessions spread evenly over the
// dataset, plus one Live Guide session of every big account.
func (d *Dataset) Probes(n int) []Probe {
	var out []Probe
	picked := map[int]bool{}
	if n > 0 && len(d.Sessions) > 0 {
		step := max(1, len(d.Sessions)/n)
		for i := 0; i < len(d.Sessions) && len(out) < n; i += step {
			picked[i] = true
			out = append(out, d.Probe(i))
		}
	}
	for b := range d.Config.BigAccounts {
		if i := d.SessionOf(AccountID(b), policy.SessionKindLiveGuide); i >= 0 && !picked[i] {
			out = append(out, d.Probe(i))
		}
	}
	return out
}

// SessionOf returns the index of the first session of the given kind in
// the account, or -1.
func (d *Dataset) SessionOf(account string, kind policy.SessionKind) int {
	for i := range d.Sessions {
		if d.Sessions[i].AccountID == account && d.Sessions[i].Kind == kind {
			return i
		}
	}
	return -1
}
