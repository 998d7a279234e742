package loadgen

import (
	"encoding/base32"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// Dataset is a generated tenant population. Accounts are in id order;
// Sessions are grouped by account, in account order.
type Dataset struct {
	Config   Config
	Accounts []policy.AccountData
	Sessions []policy.Session

	byAccount map[string]int // account id -> index in Accounts
	stampedAt time.Time      // sessions started shortly before it
}

// Counts summarizes a Dataset.
type Counts struct {
	Accounts         int `json:"accounts"`
	AllowlistEntries int `json:"allowlist_entries"`
	MaxAllowlist     int `json:"max_allowlist_per_account"`
	EmptyAllowlists  int `json:"accounts_without_allowlist"`
	PrivacyRules     int `json:"privacy_rules"`
	MaxPrivacyRules  int `json:"max_privacy_rules_per_account"`
	TopPortals       int `json:"top_portals"`
	PortalRecords    int `json:"portal_records"`
	Teams            int `json:"teams"`
	Representatives  int `json:"representatives"`
	MaxReps          int `json:"max_representatives_per_account"`
	Sessions         int `json:"sessions"`
	SupportSessions  int `json:"support_sessions"`
	Customizations   int `json:"customizations"`
	BusinessHours    int `json:"business_hours"`
}

// Counts returns the record counts of d.
func (d *Dataset) Counts() Counts {
	c := Counts{Accounts: len(d.Accounts), Sessions: len(d.Sessions)}
	for i := range d.Accounts {
		a := &d.Accounts[i]
		c.AllowlistEntries += len(a.Allowlist)
		c.MaxAllowlist = max(c.MaxAllowlist, len(a.Allowlist))
		if len(a.Allowlist) == 0 {
			c.EmptyAllowlists++
		}
		c.PrivacyRules += len(a.PrivacyRules)
		c.MaxPrivacyRules = max(c.MaxPrivacyRules, len(a.PrivacyRules))
		c.PortalRecords += len(a.Portals)
		for _, p := range a.Portals {
			if p.ParentID == "" {
				c.TopPortals++
			}
		}
		c.Teams += len(a.Teams)
		c.Representatives += len(a.Representatives)
		c.MaxReps = max(c.MaxReps, len(a.Representatives))
		c.Customizations += len(a.Customizations)
		c.BusinessHours += len(a.BusinessHours)
	}
	for i := range d.Sessions {
		if d.Sessions[i].Kind == policy.SessionKindSupport {
			c.SupportSessions++
		}
	}
	return c
}

// Account returns the data of an account, or nil.
func (d *Dataset) Account(id string) *policy.AccountData {
	i, ok := d.byAccount[id]
	if !ok {
		return nil
	}
	return &d.Accounts[i]
}

// Snapshot compiles every account and session into a decision snapshot at
// revision rev, as the daemon's replica would after loading a
// store holding d.
func (d *Dataset) Snapshot(rev uint64) *policy.Snapshot {
	accounts := make(map[string]*policy.AccountState, len(d.Accounts))
	for i := range d.Accounts {
		accounts[d.Accounts[i].Account.ID] = policy.Compile(d.Accounts[i])
	}
	sessions := make(map[string]*policy.Session, len(d.Sessions))
	for i := range d.Sessions {
		s := d.Sessions[i]
		sessions[s.ID] = &s
	}
	return policy.NewSnapshot(rev, accounts, sessions)
}

// epoch is the fixed creation time of generated records, so that the
// dataset does not depend on the clock. Sessions start shortly before it
// (at most SessionSpread); StampSessions moves them to a time of the
// caller's choosing, because a daemon ends sessions older than its
// --session-max-age at start-up and a load test must ask about live ones.
var epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// SessionSpread bounds how long before the stamp time a generated session
// started: sessions of account i start (i mod 60) minutes plus one second
// per earlier session of the account before it.
const SessionSpread = 2 * time.Hour

// sessionAge is how long before the stamp time the k-th session of the
// i-th account started.
func sessionAge(i, k int) time.Duration {
	return min(time.Duration(i%60)*time.Minute+time.Duration(k)*time.Second, SessionSpread)
}

// StampSessions sets the start times of d's sessions so that the newest
// starts at at and the oldest SessionSpread before it at most. It returns
// at.
func (d *Dataset) StampSessions(at time.Time) time.Time {
	at = at.UTC().Truncate(time.Second)
	shift := at.Sub(d.stampedAt)
	for i := range d.Sessions {
		d.Sessions[i].StartTime = d.Sessions[i].StartTime.Add(shift)
	}
	d.stampedAt = at
	return at
}

// SessionsStampedAt returns the time the session start times are relative
// to (the epoch until StampSessions is called).
func (d *Dataset) SessionsStampedAt() time.Time { return d.stampedAt }

// AccountID returns the id of the i-th generated account.
func AccountID(i int) string { return fmt.Sprintf("acct-%04d", i) }

// Generate builds the population described by c. It is deterministic: the
// same Config always yields the same Dataset.
func Generate(c Config) (*Dataset, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	top := rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15))
	small := c.Accounts - c.BigAccounts
	allow := withBig(c.BigAccounts, c.BigAllowlist, spread(top, c.Allowlist-c.BigAccounts*c.BigAllowlist, small, 0.12, 0))
	privacy := withBig(c.BigAccounts, c.BigPrivacy, spread(top, c.PrivacyRules-c.BigAccounts*c.BigPrivacy, small, 0.2, 0))
	portals := withBig(c.BigAccounts, c.BigPortals, spread(top, c.Portals-c.BigAccounts*c.BigPortals, small, 0.3, 0))
	reps := withBig(c.BigAccounts, c.BigReps, spread(top, c.Representatives-c.BigAccounts*c.BigReps, small, 0, 1))
	weights := make([]float64, c.Accounts)
	for i, n := range reps {
		weights[i] = float64(n)
	}
	sessions := spreadWeighted(c.Sessions, weights)

	d := &Dataset{Config: c, Accounts: make([]policy.AccountData, c.Accounts), byAccount: make(map[string]int, c.Accounts), stampedAt: epoch}
	seen := make(map[string]bool, c.Sessions)
	for i := range c.Accounts {
		rng := rand.New(rand.NewPCG(c.Seed, uint64(i)+1))
		g := accountGen{
			rng: rng, i: i, id: AccountID(i), big: i < c.BigAccounts,
			brand: fmt.Sprintf("brand%04d", i), tld: tlds[i%len(tlds)],
		}
		ad, err := g.account(allow[i], privacy[i], portals[i], reps[i])
		if err != nil {
			return nil, err
		}
		d.Accounts[i] = ad
		d.byAccount[ad.Account.ID] = i
		d.Sessions = append(d.Sessions, g.sessions(&d.Accounts[i], sessions[i], seen)...)
	}
	return d, nil
}

// withBig prepends n copies of big to rest.
func withBig(n, big int, rest []int) []int {
	out := make([]int, 0, n+len(rest))
	for range n {
		out = append(out, big)
	}
	return append(out, rest...)
}

// spread splits total into n skewed counts (log-normal weights): a
// fraction zeroFrac of the slots gets nothing, every other slot at least
// least. The counts sum to total exactly.
func spread(rng *rand.Rand, total, n int, zeroFrac float64, least int) []int {
	if n == 0 {
		return nil
	}
	w := make([]float64, n)
	nonzero := 0
	for i := range w {
		if least == 0 && rng.Float64() < zeroFrac {
			continue
		}
		w[i] = math.Exp(rng.NormFloat64() * 0.9)
		nonzero++
	}
	if nonzero == 0 {
		w[0], nonzero = 1, 1
	}
	if least*nonzero > total {
		least = 0
	}
	out := spreadWeighted(total-least*nonzero, w)
	for i := range out {
		if w[i] > 0 {
			out[i] += least
		}
	}
	return out
}

// spreadWeighted splits total in proportion to w; the counts sum to total.
func spreadWeighted(total int, w []float64) []int {
	out := make([]int, len(w))
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	if sum == 0 || total == 0 {
		return out
	}
	got := 0
	for i, x := range w {
		out[i] = int(float64(total) * x / sum)
		got += out[i]
	}
	for i := 0; got < total; i = (i + 1) % len(w) {
		if w[i] > 0 {
			out[i]++
			got++
		}
	}
	return out
}

var (
	tlds  = []string{"com", "de", "co.uk", "fr", "net", "io", "nl", "it", "es", "ch", "com.au", "org"}
	words = []string{"shop", "help", "docs", "portal", "pay", "secure", "app", "my", "support", "login",
		"account", "store", "news", "mail", "cdn", "api", "static", "media", "forum", "status", "checkout", "bank"}
	firstNames = []string{"Alice", "Bruno", "Chloé", "Dmitri", "Emma", "Farid", "Greta", "Hiro", "Inès", "Jonas",
		"Kemal", "Lena", "Marco", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tamara"}
	lastNames = []string{"Andersen", "Bianchi", "Costa", "Dubois", "Eriksson", "Fischer", "García", "Hansen",
		"Ivanova", "Jansen", "Kowalski", "Laurent", "Müller", "Novak", "O'Brien", "Petrov", "Rossi", "Schmidt"}
	pages    = []string{"/checkout", "/account", "/transfer", "/profile", "/billing", "/settings", "/orders"}
	idBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// accountGen generates one account from its own random stream, so that an
// account does not depend on the ones generated before it.
type accountGen struct {
	rng   *rand.Rand
	i     int
	id    string
	big   bool
	brand string
	tld   string

	// teamPortal maps a team to the top portal its chain resolves to;
	// subportals maps a top portal to its descendant portals.
	teamPortal map[string]string
	subportals map[string][]string
}

func (g *accountGen) site() string { return g.brand + "." + g.tld }

// SiteOf returns the web site of the i-th generated account.
func SiteOf(i int) string { return fmt.Sprintf("brand%04d.%s", i, tlds[i%len(tlds)]) }

func (g *accountGen) chance(p float64) bool { return g.rng.Float64() < p }

func (g *accountGen) account(nAllow, nPrivacy, nPortals, nReps int) (policy.AccountData, error) {
	d := policy.AccountData{
		Account: policy.Account{ID: g.id, DisplayName: fmt.Sprintf("Brand %04d", g.i), CreateTime: epoch.Add(time.Duration(g.i) * time.Minute)},
	}
	if g.chance(0.3) {
		d.Account.CobrowseURL = "https://" + g.brand + ".support.me"
	}
	var err error
	if d.Allowlist, err = g.allowlist(nAllow); err != nil {
		return d, err
	}
	d.Settings = g.settings(len(d.Allowlist) > 0)
	d.PrivacyRules = g.privacyRules(nPrivacy, d.Allowlist)
	if g.chance(0.2) {
		for _, lang := range []string{"fr", "de"} {
			d.Customizations = append(d.Customizations, policy.Customization{
				AccountID: g.id, Language: lang,
				DisclaimerText: "Session enregistrée / Sitzung wird aufgezeichnet (" + g.brand + ")",
				AgentAlias:     "Conseiller", CustomerAlias: "Client",
			})
		}
	}
	if nPortals > 0 && g.chance(0.3) {
		d.BusinessHours = []policy.BusinessHours{{
			ID: "bh-office", Name: "Office hours", TimeZone: "Europe/Berlin",
			Weekly: []policy.WeeklyWindow{
				{Day: time.Monday, Start: "08:00", End: "18:00"}, {Day: time.Tuesday, Start: "08:00", End: "18:00"},
				{Day: time.Wednesday, Start: "08:00", End: "18:00"}, {Day: time.Thursday, Start: "08:00", End: "18:00"},
				{Day: time.Friday, Start: "08:00", End: "16:00"},
			},
			Holidays: []policy.Holiday{{Date: "2026-12-25", Name: "Christmas", Closed: true}},
		}}
	}
	d.Portals = g.portals(nPortals, len(d.BusinessHours) > 0)
	d.Teams = g.teams(nPortals)
	d.Representatives = g.representatives(nReps, d.Teams)
	return d, nil
}

func (g *accountGen) settings(hasAllowlist bool) policy.LiveGuideSettings {
	s := policy.DefaultLiveGuideSettings(g.id)
	if !g.big {
		s.AgentClickRestricted = g.chance(0.03)
		s.AgentInputRestricted = g.chance(0.08)
	}
	s.ClipboardAgent = g.chance(0.85)
	s.VideoAgent = g.chance(0.4)
	s.VideoCustomer = g.chance(0.3)
	s.VoiceChat = g.chance(0.3)
	s.SessionRecording = g.chance(0.25)
	s.DocumentShareAgent = g.chance(0.3)
	s.DocumentShareCustomer = g.chance(0.2)
	s.DocumentDownload = g.chance(0.2)
	s.Chat = g.chance(0.6)
	s.DisplayAgentName = g.chance(0.4)
	s.ShowDisclaimer = g.chance(0.9)
	s.LanguageSelector = g.chance(0.3)
	if hasAllowlist && g.chance(0.5) {
		s.SessionStartURL = "https://www." + g.site() + "/welcome"
	}
	return s
}

// allowlist returns n entries: the brand's own site, then partner and
// service hosts in the shapes admins write (plain domains, "*."
// wildcards, path prefixes, ports, scheme-restricted entries, a few IP
// literals). Patterns are stored normalized, as the API stores them.
func (g *accountGen) allowlist(n int) ([]policy.AllowlistEntry, error) {
	out := make([]policy.AllowlistEntry, 0, n)
	for j := range n {
		var raw, desc string
		host := fmt.Sprintf("%s%d-%s.%s", words[j%len(words)], j, g.brand, tlds[(g.i+j)%len(tlds)])
		switch {
		case j == 0:
			raw, desc = g.site(), "the brand's web site"
		case j%200 == 199:
			raw, desc = fmt.Sprintf("10.%d.%d.%d", g.i%250, j/250%250, j%250+1), "on-premises service"
		case j%20 < 11:
			raw, desc = host, "partner site"
		case j%20 < 14:
			raw, desc = "*."+host, "partner subdomains"
		case j%20 < 17:
			raw, desc = host+"/help/", "partner help pages"
		case j%20 == 17:
			raw, desc = host+":8443", "partner admin port"
		case j%20 == 18:
			raw, desc = "https://"+host, "partner site, https only"
		default:
			raw, desc = fmt.Sprintf("app%d.%s/portal/", j, g.site()), "brand application"
		}
		p, err := urlmatch.ParsePattern(raw)
		if err != nil {
			return nil, fmt.Errorf("generated pattern %q: %w", raw, err)
		}
		out = append(out, policy.AllowlistEntry{ID: fmt.Sprintf("al-%05d", j), Pattern: p.String(), Description: desc})
	}
	return out, nil
}

// ruleShape is a privacy-rule template: a selector and an element (with
// its ancestors) that the selector matches.
type ruleShape struct {
	kind policy.PrivacyRuleKind
	sel  string // with %d for the rule number
	el   func(j int) Element
}

// baseChain is the ancestor chain of a typical form field, outermost
// first.
func baseChain(extra ...Element) []Element {
	return append([]Element{
		{Tag: "html"},
		{Tag: "body", Classes: []string{"logged-in", "theme-light"}, Attributes: map[string]string{"data-page": "app"}},
		{Tag: "div", ID: "app"},
		{Tag: "main", Classes: []string{"layout"}},
		{Tag: "section", Classes: []string{"panel", "panel--wide"}},
	}, extra...)
}

var ruleShapes = []ruleShape{
	{policy.PrivacyRuleKindButtonBlock, "button.transfer-%d", func(j int) Element {
		return Element{Tag: "button", Classes: []string{"btn", fmt.Sprintf("transfer-%d", j)},
			Ancestors: baseChain(Element{Tag: "form", Classes: []string{"transfer"}}, Element{Tag: "div", Classes: []string{"actions"}})}
	}},
	{policy.PrivacyRuleKindDataMask, "input[name=cvv-%d]", func(j int) Element {
		return Element{Tag: "input", Classes: []string{"field", "field--small"}, Attributes: map[string]string{"name": fmt.Sprintf("cvv-%d", j), "type": "password"},
			Ancestors: baseChain(Element{Tag: "form", ID: "pay-form", Classes: []string{"checkout"}}, Element{Tag: "fieldset", Classes: []string{"card"}}, Element{Tag: "label"})}
	}},
	{policy.PrivacyRuleKindButtonBlock, "#pay-now-%d", func(j int) Element {
		return Element{Tag: "button", ID: fmt.Sprintf("pay-now-%d", j), Classes: []string{"btn", "btn-primary"},
			Ancestors: baseChain(Element{Tag: "form", Classes: []string{"checkout"}})}
	}},
	{policy.PrivacyRuleKindDataMask, "#card-number-%d", func(j int) Element {
		return Element{Tag: "input", ID: fmt.Sprintf("card-number-%d", j), Attributes: map[string]string{"autocomplete": "cc-number"},
			Ancestors: baseChain(Element{Tag: "form", Classes: []string{"checkout"}}, Element{Tag: "div", Classes: []string{"row"}})}
	}},
	{policy.PrivacyRuleKindButtonBlock, "form.checkout-%d button[type=submit]", func(j int) Element {
		return Element{Tag: "button", Attributes: map[string]string{"type": "submit"},
			Ancestors: baseChain(Element{Tag: "form", Classes: []string{"checkout", fmt.Sprintf("checkout-%d", j)}}, Element{Tag: "div", Classes: []string{"row"}})}
	}},
	{policy.PrivacyRuleKindDataMask, "[data-private] input.iban-%d", func(j int) Element {
		return Element{Tag: "input", Classes: []string{"field", fmt.Sprintf("iban-%d", j)},
			Ancestors: baseChain(Element{Tag: "form", Attributes: map[string]string{"data-private": ""}}, Element{Tag: "div", Classes: []string{"row"}}, Element{Tag: "label"})}
	}},
	{policy.PrivacyRuleKindButtonBlock, "div.actions > a.delete-%d", func(j int) Element {
		return Element{Tag: "a", Classes: []string{"link", fmt.Sprintf("delete-%d", j)}, Attributes: map[string]string{"href": "#"},
			Ancestors: baseChain(Element{Tag: "div", Classes: []string{"actions"}})}
	}},
	{policy.PrivacyRuleKindDataMask, "span.balance-%[1]d, td.balance-%[1]d", func(j int) Element {
		return Element{Tag: "span", Classes: []string{fmt.Sprintf("balance-%d", j)},
			Ancestors: baseChain(Element{Tag: "table"}, Element{Tag: "tr"}, Element{Tag: "td"})}
	}},
}

// harmlessElement is a form field that no generated rule matches.
func harmlessElement() Element {
	return Element{Tag: "input", Classes: []string{"field"}, Attributes: map[string]string{"name": "email", "type": "email"},
		Ancestors: baseChain(Element{Tag: "form", Classes: []string{"newsletter"}}, Element{Tag: "div", Classes: []string{"row"}}, Element{Tag: "label"})}
}

// privacyRules returns n rules. A few apply on every page (global masks);
// the others apply to one page of one allowlisted host.
func (g *accountGen) privacyRules(n int, allow []policy.AllowlistEntry) []policy.PrivacyRule {
	hosts := ruleHosts(allow, g.site())
	global := min(n, 2+n/200)
	out := make([]policy.PrivacyRule, 0, n)
	for j := range n {
		shape := ruleShapes[j%len(ruleShapes)]
		r := policy.PrivacyRule{
			ID: fmt.Sprintf("pr-%04d", j), Kind: shape.kind, Selector: fmt.Sprintf(shape.sel, j),
			Description: "generated rule",
		}
		if j >= global {
			r.URLPattern = ruleURLPattern(hosts, j)
		}
		out = append(out, r)
	}
	return out
}

// ruleHosts lists the hosts that page-specific privacy rules use: the
// brand's site and up to 200 plain allowlisted hosts, so that every rule's
// page is allowlisted.
func ruleHosts(allow []policy.AllowlistEntry, site string) []string {
	hosts := []string{site}
	for _, e := range allow {
		if len(hosts) == 200 {
			break
		}
		p, err := urlmatch.ParsePattern(e.Pattern)
		if err != nil || p.IsWildcard() || p.IsIP() || p.Path() != "" || p.Port() != 0 || p.Scheme() != "" || p.Host() == site {
			continue
		}
		hosts = append(hosts, p.Host())
	}
	return hosts
}

func ruleURLPattern(hosts []string, j int) string {
	return hosts[j%len(hosts)] + pages[(j/len(hosts))%len(pages)]
}

func randomFunctions(rng *rand.Rand, p float64) policy.Functions {
	var fs policy.Functions
	for fn := range policy.NumFunctions {
		fs = fs.With(fn, rng.Float64() < p)
	}
	return fs
}

const allFunctions = policy.Functions(1<<policy.NumFunctions - 1)

// portals returns n top portals, each with its default subportal (every
// function on, as CreatePortal makes it) and up to two more subportals,
// some with a subportal of their own.
func (g *accountGen) portals(n int, hours bool) []policy.Portal {
	g.subportals = make(map[string][]string, n)
	var out []policy.Portal
	for t := range n {
		top := policy.Portal{
			ID: fmt.Sprintf("portal-%03d", t), Name: fmt.Sprintf("%s support %d", g.brand, t),
			Functions:         randomFunctions(g.rng, 0.85),
			NotificationEmail: fmt.Sprintf("support+%d@%s", t, g.site()),
		}
		if hours && t%2 == 0 {
			top.BusinessHoursID = "bh-office"
		}
		def := policy.Portal{ID: top.ID + "-default", ParentID: top.ID, Name: top.Name + " (default)", Functions: allFunctions}
		out = append(out, top, def)
		subs := []string{def.ID}
		for e := range g.rng.IntN(3) {
			sub := policy.Portal{ID: fmt.Sprintf("%s-sub%d", top.ID, e), ParentID: top.ID, Name: fmt.Sprintf("%s / region %d", top.Name, e),
				Functions: randomFunctions(g.rng, 0.9)}
			out = append(out, sub)
			subs = append(subs, sub.ID)
			if g.chance(0.25) {
				leaf := policy.Portal{ID: sub.ID + "-x", ParentID: sub.ID, Name: sub.Name + " / VIP", Functions: allFunctions}
				out = append(out, leaf)
				subs = append(subs, leaf.ID)
			}
		}
		g.subportals[top.ID] = subs
	}
	return out
}

// teams returns a team tree: one top team per top portal (serving it),
// each with one to three subteams that inherit the portal, some with a
// further subteam. Accounts without portals get a Live Guide team tree.
func (g *accountGen) teams(nPortals int) []policy.Team {
	g.teamPortal = map[string]string{}
	var out []policy.Team
	add := func(t policy.Team, portal string) {
		out = append(out, t)
		g.teamPortal[t.ID] = portal
	}
	tops := nPortals
	if tops == 0 {
		tops = 1
	}
	for t := range tops {
		top := policy.Team{ID: fmt.Sprintf("team-%03d", t), Name: fmt.Sprintf("Team %d", t)}
		portal := ""
		if nPortals > 0 {
			portal = fmt.Sprintf("portal-%03d", t)
			top.PortalID = portal
		}
		add(top, portal)
		for s := range 1 + g.rng.IntN(3) {
			sub := policy.Team{ID: fmt.Sprintf("%s-%d", top.ID, s), ParentID: top.ID, Name: fmt.Sprintf("Team %d.%d", t, s)}
			add(sub, portal)
			if g.chance(0.3) {
				add(policy.Team{ID: sub.ID + "-1", ParentID: sub.ID, Name: sub.Name + ".1"}, portal)
			}
		}
	}
	return out
}

func (g *accountGen) representatives(n int, teams []policy.Team) []policy.Representative {
	out := make([]policy.Representative, 0, n)
	for j := range n {
		out = append(out, policy.Representative{
			ID:               fmt.Sprintf("rep-%05d", j),
			DisplayName:      firstNames[g.rng.IntN(len(firstNames))] + " " + lastNames[g.rng.IntN(len(lastNames))],
			TeamID:           teams[g.rng.IntN(len(teams))].ID,
			Functions:        randomFunctions(g.rng, 0.7),
			LiveGuideEnabled: j == 0 || g.chance(0.8),
		})
	}
	return out
}

// sessions returns n active sessions of the account: support sessions (at
// a subportal the representative's team serves) in accounts with portals,
// Live Guide sessions with Live Guide representatives otherwise.
func (g *accountGen) sessions(d *policy.AccountData, n int, seen map[string]bool) []policy.Session {
	out := make([]policy.Session, 0, n)
	reps := d.Representatives
	for k := range n {
		s := policy.Session{
			ID: g.sessionID(seen), AccountID: g.id, State: policy.SessionStateActive,
			CustomerID: fmt.Sprintf("cust-%06d", g.rng.IntN(1_000_000)),
			StartTime:  epoch.Add(-sessionAge(g.i, k)),
		}
		rep := &reps[g.rng.IntN(len(reps))]
		if len(d.Portals) > 0 && g.chance(0.4) {
			s.Kind = policy.SessionKindSupport
			subs := g.subportals[g.teamPortal[rep.TeamID]]
			s.PortalID = subs[g.rng.IntN(len(subs))]
			if g.chance(0.1) {
				for x := range 1 + g.rng.IntN(2) {
					s.Specialists = append(s.Specialists, policy.Specialist{ID: fmt.Sprintf("spec-%d", x), DisplayName: fmt.Sprintf("Specialist %d", x)})
				}
			}
		} else {
			s.Kind = policy.SessionKindLiveGuide
			for try := 0; !rep.LiveGuideEnabled; try++ {
				if try == 20 {
					rep = &reps[0] // always Live Guide enabled
					break
				}
				rep = &reps[g.rng.IntN(len(reps))]
			}
		}
		s.RepresentativeID = rep.ID
		out = append(out, s)
	}
	return out
}

func (g *accountGen) sessionID(seen map[string]bool) string {
	for {
		var b [10]byte
		for i := range b {
			b[i] = byte(g.rng.Uint32())
		}
		id := "s-" + idBase32.EncodeToString(b[:])
		if !seen[id] {
			seen[id] = true
			return id
		}
	}
}
