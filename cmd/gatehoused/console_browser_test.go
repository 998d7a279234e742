//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The console's browser tests drive Debian's chromium (make chromium
// installs it) against a real daemon: the console is served by the daemon
// at / on its HTTP address and talks to the HTTP/JSON API only. Setup that
// is not under test goes through gRPC.

// browserStep bounds one scripted step in the browser (a page load, a
// click and the answer it waits for): far above the second such a step
// takes, for machines loaded by parallel test runs.
const browserStep = 30 * time.Second

// chromiumPath finds the browser. Without one the tests skip, except under
// CI=true, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found; `make chromium` installs it (apt-get install -y chromium)")
	}
	t.Skip("chromium not found; `make chromium` installs it (under CI=true this fails)")
	return ""
}

// The browser tests share one headless chromium (starting one takes
// seconds on a loaded machine); each test works in a browser context of
// its own, so cookies do not leak between tests.
var sharedBrowser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// closeSharedBrowser stops the shared chromium (TestMain).
func closeSharedBrowser() {
	if sharedBrowser.cancel != nil {
		sharedBrowser.cancel()
	}
}

// browser returns a tab in a new browser context of the shared chromium;
// tab opens more tabs in the same context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	sharedBrowser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // tests run as root in CI containers
			chromedp.WindowSize(1280, 900),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		sharedBrowser.ctx = bctx
		sharedBrowser.cancel = func() { cancelBrowser(); cancelAlloc() }
		if err := chromedp.Do(bctx); err != nil {
			sharedBrowser.err = fmt.Errorf("start chromium %s: %w", path, err)
		}
	})
	if sharedBrowser.err != nil {
		t.Fatal(sharedBrowser.err)
	}
	ctx, cancel := chromedp.NewContext(sharedBrowser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// tab opens another tab in the browser context of ctx.
func tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tctx, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatal(err)
	}
	return tctx
}

type step = chromedp.Action[chromedp.Void]

// do runs browser steps with a step deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...step) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('main') || document.body).innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
	}
}

// until waits for a JavaScript expression to be true.
func until(expr string) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserStep-time.Second))(ctx, tg)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return nil
	})
}

// js evaluates an expression into out.
func js[T any](expr string, out *T) step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
		*out, err = chromedp.Evaluate[T](expr)(ctx, tg)
		return err
	})
}

var navSeq atomic.Int64

// open shows a console route (a "#/…" hash) and waits until its page is
// complete: the first time by loading the console, then by changing the
// hash as a click on a link does, so the page keeps its state. A unique
// parameter makes every call a new route.
func open(base, hash string) step {
	sep := "?"
	if strings.Contains(hash, "?") {
		sep = "&"
	}
	h := fmt.Sprintf("%s%s_=%d", hash, sep, navSeq.Add(1))
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		loc, err := chromedp.Location()(ctx, tg)
		if err != nil {
			return err
		}
		if strings.HasPrefix(loc, base+"/") {
			_, err = chromedp.Evaluate[bool](fmt.Sprintf(`(location.hash = %q, true)`, h))(ctx, tg)
		} else {
			_, err = chromedp.Navigate(base+"/"+h)(ctx, tg)
		}
		if err != nil {
			return err
		}
		_, err = until(fmt.Sprintf(`document.getElementById('main')?.getAttribute('data-rendered') === %q`, h))(ctx, tg)
		return err
	})
}

// clear empties an input.
func clear(sel string) step {
	var done bool
	return js(fmt.Sprintf(`(document.querySelector(%q).value = '', true)`, sel), &done)
}

// text reads the text of the first element matching a CSS selector.
func text(sel string, out *string) step {
	return js(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ''`, sel), out)
}

// consoleDaemon starts a daemon with its HTTP address on a free loopback
// port and returns it with the console's base URL.
func consoleDaemon(t *testing.T, extra ...string) (*daemon, string) {
	t.Helper()
	args := loopbackArgs(filepath.Join(t.TempDir(), "data"), append([]string{"--http-addr", "127.0.0.1:0"}, extra...)...)
	d := start(t, nil, args...)
	return d, "http://" + d.httpAddr()
}

// browserTestContext bounds a browser test's gRPC calls; a browser test
// on a loaded machine runs longer than testTimeout.
func browserTestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustOK[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// TestConsoleBrowser_ClickRestriction: the agent click restriction turned
// on in the Live Guide page changes the explorer's CLICK answer from
// ALLOWED to AGENT_CLICK_RESTRICTED, and the answer links to the switch;
// the allowlist tester answers as the server does.
func TestConsoleBrowser_ClickRestriction(t *testing.T) {
	t.Parallel()
	d, base := consoleDaemon(t)
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	mustOK[*gatehousev1.CreateAccountResponse](t, "account")(c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}))
	mustOK[*gatehousev1.CreateRepresentativeResponse](t, "rep")(c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}))
	sess := mustOK[*gatehousev1.StartSessionResponse](t, "session")(c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "bob"})).GetSession()

	b := browser(t)
	explorer := "#/a/acme/explorer?session=" + sess.GetId()
	decide := func(want string) {
		t.Helper()
		do(t, b, "explorer "+want,
			open(base, explorer),
			chromedp.WaitVisible(chromedp.CSS(`#explorer-form`)),
			chromedp.SetValue(chromedp.CSS(`#explorer-form select[name=feature]`), "FEATURE_CLICK"),
			chromedp.Click(chromedp.CSS(`#explorer-form button[type=submit]`)),
			until(fmt.Sprintf(`(document.querySelector('#explorer-reason') || {}).textContent === %q`, want)))
	}
	decide("ALLOWED")

	do(t, b, "turn on the click restriction",
		open(base, "#/a/acme/liveguide"),
		chromedp.WaitVisible(chromedp.CSS(`#liveguide-form`)),
		chromedp.Click(chromedp.CSS(`#liveguide-form input[name=agent_click_restricted]`)),
		chromedp.Click(chromedp.CSS(`#liveguide-form button[type=submit]`)),
		until(`document.getElementById('toast').textContent === 'Saved'`))
	decide("AGENT_CLICK_RESTRICTED")
	var href string
	do(t, b, "rule link", js(`document.querySelector('#explorer-rule').getAttribute('href')`, &href))
	if !strings.HasSuffix(href, "/liveguide?focus=agent_click_restricted") {
		t.Errorf("the explorer's rule links to %q, want the Live Guide switch", href)
	}
	// The link leads to the switch, which is on.
	var focused string
	do(t, b, "follow the rule link",
		chromedp.Click(chromedp.CSS(`#explorer-rule`)),
		until(`document.activeElement && document.activeElement.dataset.id === 'agent_click_restricted'`),
		js(`String(document.querySelector('#liveguide-form input[name=agent_click_restricted]').checked)`, &focused))
	if focused != "true" {
		t.Errorf("switch shown as %s after the change", focused)
	}
	got := mustOK[*gatehousev1.GetLiveGuideSettingsResponse](t, "settings")(c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"}))
	if !got.GetSettings().GetAgentClickRestricted() || got.GetSettings().GetChat() {
		t.Errorf("settings after the console's save: %v", got.GetSettings())
	}

	// The allowlist tester: an entry added in the console, then URLs typed.
	var verdict, reason, entry string
	do(t, b, "add an allowlist entry",
		open(base, "#/a/acme/allowlist"),
		chromedp.WaitVisible(chromedp.CSS(`#add-entry`)),
		chromedp.SendKeys(chromedp.CSS(`#add-entry input[name=pattern]`), "shop.example.com"),
		chromedp.SendKeys(chromedp.CSS(`#add-entry input[name=id]`), "shop"),
		chromedp.Click(chromedp.CSS(`#add-entry button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#allowlist-table tr[data-id="shop"]`)),
		chromedp.SendKeys(chromedp.CSS(`#tester-url`), "https://a.shop.example.com/cart"),
		until(`!!document.querySelector('#tester-entry')`),
		text(`#tester-verdict`, &verdict), text(`#tester-entry`, &entry))
	if verdict != "Allowed" || entry != "shop" {
		t.Errorf("tester on an allowlisted URL: %q entry %q", verdict, entry)
	}
	do(t, b, "test a lookalike URL",
		clear(`#tester-url`),
		chromedp.SendKeys(chromedp.CSS(`#tester-url`), "https://shop.example.com.evil.net/"),
		until(`(document.querySelector('#tester-reason') || {}).textContent === 'DOMAIN_NOT_ALLOWLISTED'`),
		text(`#tester-verdict`, &verdict), text(`#tester-reason`, &reason))
	if verdict != "Denied" {
		t.Errorf("tester on a lookalike: %q %q", verdict, reason)
	}
}

// TestConsoleBrowser_PortalChain: a portal tree built in the console, a
// function turned off at the top portal: the portals below show where it
// is off, and a representative whose team serves a portal two levels down
// shows the function off, naming the top portal.
func TestConsoleBrowser_PortalChain(t *testing.T) {
	t.Parallel()
	d, base := consoleDaemon(t)
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	mustOK[*gatehousev1.CreateAccountResponse](t, "account")(c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}))

	b := browser(t)
	addPortal := func(id, name, parent string) {
		t.Helper()
		do(t, b, "add portal "+id,
			open(base, "#/a/acme/portals"),
			chromedp.WaitVisible(chromedp.CSS(`#add-portal`)),
			chromedp.SendKeys(chromedp.CSS(`#add-portal input[name=id]`), id),
			chromedp.SendKeys(chromedp.CSS(`#add-portal input[name=name]`), name),
			chromedp.SetValue(chromedp.CSS(`#add-portal select[name=parent_id]`), parent),
			chromedp.Click(chromedp.CSS(`#add-portal button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#portal-tree .node[data-id=%q]`, id))))
	}
	addPortal("hq", "Headquarters", "")
	addPortal("emea", "EMEA", "hq")
	addPortal("paris", "Paris desk", "emea")

	// Every function on along the chain and for the representative, so
	// that only the switch under test turns one off.
	all := &gatehousev1.SupportFunctions{SendFiles: true, ReceiveFiles: true, Annotations: true}
	for _, id := range []string{"hq", "emea", "paris"} {
		mustOK[*gatehousev1.UpdatePortalResponse](t, "portal "+id)(c.admin.UpdatePortal(ctx, &gatehousev1.UpdatePortalRequest{AccountId: "acme",
			Portal: &gatehousev1.Portal{Id: id, Functions: all}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"functions"}}}))
	}
	mustOK[*gatehousev1.CreateTeamResponse](t, "team")(c.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "paris-team", Name: "Paris", PortalId: "paris"}}))
	mustOK[*gatehousev1.CreateTeamResponse](t, "subteam")(c.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "tier2", Name: "Tier 2", ParentId: "paris-team"}}))
	mustOK[*gatehousev1.CreateRepresentativeResponse](t, "rep")(c.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "rita", DisplayName: "Rita", TeamId: "tier2", Functions: all}}))

	effective := func(fn string) (string, string) {
		var txt, offAt string
		do(t, b, "representatives page",
			open(base, "#/a/acme/representatives"),
			chromedp.WaitVisible(chromedp.CSS(`section[data-id="rita"] table.effective`)),
			text(fmt.Sprintf(`section[data-id="rita"] tr[data-function=%q] td:last-child`, fn), &txt),
			js(fmt.Sprintf(`(document.querySelector('section[data-id="rita"] tr[data-function=%q] [data-off-at]') || {dataset: {}}).dataset.offAt || ''`, fn), &offAt))
		return txt, offAt
	}
	if txt, _ := effective("send_files"); txt != "on" {
		t.Fatalf("send_files before the change: %q", txt)
	}

	// With the keyboard: Space on the focused checkbox saves it, and the
	// rebuilt page gives the focus back to the same checkbox.
	do(t, b, "turn send_files off at the top portal",
		open(base, "#/a/acme/portals"),
		chromedp.WaitVisible(chromedp.CSS(`#portal-tree .node[data-id="hq"]`)),
		chromedp.Focus(chromedp.CSS(`#portal-tree .node[data-id="hq"] input[name=send_files]`)),
		chromedp.KeyEvent(" "),
		// the save has finished: no switch is busy, or the save failed
		// (its alert is read below)
		until(`!document.querySelector('#portal-tree [aria-busy="true"]') || !!document.querySelector('#portal-tree [role=alert]')`))
	var alert string
	do(t, b, "read the portal tree's alerts", text(`#portal-tree [role=alert]`, &alert))
	if alert != "" {
		t.Fatalf("turning send_files off at hq: %s", alert)
	}
	do(t, b, "the portal tree after the save",
		// the subportal two levels down names the top portal beside the
		// function (other functions are off at hq from the start, so
		// the send_files switch's own note is the one to look at)
		until(`(document.querySelector('#portal-tree .node[data-id="paris"] input[name=send_files]')?.closest('label')?.querySelector('[data-off-at="hq"]')?.textContent || '').includes('Headquarters (hq)')`),
		until(`document.querySelector('#portal-tree .node[data-id="hq"] input[name=send_files]')?.checked === false`),
		until(`document.activeElement?.name === 'send_files' && document.activeElement.closest('[data-id]')?.dataset.id === 'hq'`))
	txt, offAt := effective("send_files")
	if offAt != "hq" || !strings.Contains(txt, "Headquarters (hq)") {
		t.Errorf("representative two levels down: %q (off at %q), want off at the top portal", txt, offAt)
	}
	if txt, _ := effective("receive_files"); txt != "on" {
		t.Errorf("an untouched function: %q", txt)
	}
	// The server agrees: the top portal's switch is off, the others on.
	p := mustOK[*gatehousev1.GetPortalResponse](t, "portal")(c.admin.GetPortal(ctx, &gatehousev1.GetPortalRequest{AccountId: "acme", Id: "hq"}))
	if p.GetPortal().GetFunctions().GetSendFiles() || !p.GetPortal().GetFunctions().GetReceiveFiles() {
		t.Errorf("hq functions after the click: %v", p.GetPortal().GetFunctions())
	}
}

// TestConsoleBrowser_EtagConflict: two tabs read the same settings; the
// second to save is told that someone else changed them, and a reload
// shows the first tab's change without losing it.
func TestConsoleBrowser_EtagConflict(t *testing.T) {
	t.Parallel()
	d, base := consoleDaemon(t)
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	mustOK[*gatehousev1.CreateAccountResponse](t, "account")(c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}))
	a := browser(t)
	b := tab(t, a)
	for _, x := range []context.Context{a, b} {
		do(t, x, "open the Live Guide page", open(base, "#/a/acme/liveguide"), chromedp.WaitVisible(chromedp.CSS(`#liveguide-form`)))
	}
	do(t, a, "tab A saves chat on",
		chromedp.Click(chromedp.CSS(`#liveguide-form input[name=chat]`)),
		chromedp.Click(chromedp.CSS(`#liveguide-form button[type=submit]`)),
		until(`document.getElementById('toast').textContent === 'Saved'`))
	var alert string
	do(t, b, "tab B saves voice chat on",
		chromedp.Click(chromedp.CSS(`#liveguide-form input[name=voice_chat]`)),
		chromedp.Click(chromedp.CSS(`#liveguide-form button[type=submit]`)),
		until(`!!document.querySelector('#liveguide-form .alert')`),
		text(`#liveguide-form .alert`, &alert))
	if !strings.Contains(alert, "Changed by someone else — reload") {
		t.Fatalf("tab B's conflict message: %q", alert)
	}
	got := mustOK[*gatehousev1.GetLiveGuideSettingsResponse](t, "settings")(c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"}))
	if !got.GetSettings().GetChat() || got.GetSettings().GetVoiceChat() {
		t.Fatalf("after the conflict: %v", got.GetSettings())
	}
	var chat string
	do(t, b, "tab B reloads and saves again",
		chromedp.Click(chromedp.CSS(`#liveguide-form .alert button`)),
		until(`document.querySelector('#liveguide-form input[name=chat]')?.checked === true && !document.querySelector('#liveguide-form .alert')`),
		js(`String(document.querySelector('#liveguide-form input[name=chat]').checked)`, &chat),
		chromedp.Click(chromedp.CSS(`#liveguide-form input[name=voice_chat]`)),
		chromedp.Click(chromedp.CSS(`#liveguide-form button[type=submit]`)),
		until(`document.getElementById('toast').textContent === 'Saved'`))
	got = mustOK[*gatehousev1.GetLiveGuideSettingsResponse](t, "settings")(c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"}))
	if !got.GetSettings().GetChat() || !got.GetSettings().GetVoiceChat() {
		t.Fatalf("after the reload and save: %v", got.GetSettings())
	}
}

// TestConsoleBrowser_MarkupStaysText: markup typed into descriptions and
// names is shown as text, never run; a selector the server refuses is
// reported next to its field.
func TestConsoleBrowser_MarkupStaysText(t *testing.T) {
	t.Parallel()
	d, base := consoleDaemon(t)
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	mustOK[*gatehousev1.CreateAccountResponse](t, "account")(c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}))
	const payload = `<img src=x onerror="window.__xss=1;document.title='pwned'"><b>bold</b>`
	b := browser(t)
	var desc, team string
	var imgs int
	do(t, b, "allowlist description",
		open(base, "#/a/acme/allowlist"),
		chromedp.WaitVisible(chromedp.CSS(`#add-entry`)),
		chromedp.SendKeys(chromedp.CSS(`#add-entry input[name=pattern]`), "xss.example.com"),
		chromedp.SetValue(chromedp.CSS(`#add-entry input[name=description]`), payload),
		chromedp.Click(chromedp.CSS(`#add-entry button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#allowlist-table td.desc`)),
		text(`#allowlist-table td.desc`, &desc))
	do(t, b, "team name",
		open(base, "#/a/acme/teams"),
		chromedp.WaitVisible(chromedp.CSS(`#add-team`)),
		chromedp.SetValue(chromedp.CSS(`#add-team input[name=name]`), payload),
		chromedp.Click(chromedp.CSS(`#add-team button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#team-tree .node strong`)),
		text(`#team-tree .node strong`, &team),
		// give an injected image's error handler the time to run
		chromedp.Sleep(300*time.Millisecond),
		js(`document.querySelectorAll('main img, main b').length`, &imgs))
	var xss bool
	do(t, b, "no script ran", js(`window.__xss === 1 || document.title === 'pwned'`, &xss))
	if desc != payload || team != payload || imgs != 0 || xss {
		t.Fatalf("markup was interpreted: description %q, team %q, %d elements, ran %v", desc, team, imgs, xss)
	}
	// The server stored the text unchanged.
	entries := mustOK[*gatehousev1.ListAllowlistEntriesResponse](t, "list")(c.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "acme"}))
	if len(entries.GetEntries()) != 1 || entries.GetEntries()[0].GetDescription() != payload {
		t.Fatalf("stored entries: %v", entries.GetEntries())
	}

	var fieldErr, describedBy string
	do(t, b, "a refused selector",
		open(base, "#/a/acme/privacy"),
		chromedp.WaitVisible(chromedp.CSS(`#add-rule`)),
		chromedp.SendKeys(chromedp.CSS(`#add-rule input[name=selector]`), "a:hover"),
		chromedp.Click(chromedp.CSS(`#add-rule button[type=submit]`)),
		until(`!!document.querySelector('#add-rule input[name=selector] + .field-error')`),
		text(`#add-rule input[name=selector] + .field-error`, &fieldErr),
		js(`document.querySelector('#add-rule input[name=selector]').getAttribute('aria-describedby') === document.querySelector('#add-rule .field-error').id ? 'linked' : 'unlinked'`, &describedBy))
	if fieldErr == "" || describedBy != "linked" {
		t.Errorf("selector error %q (%s)", fieldErr, describedBy)
	}
}

// TestConsoleBrowser_SignIn: with authentication on, the console asks for
// a caller token before anything else, keeps it out of the script's reach
// (HttpOnly cookie), refuses a wrong one, and forgets it on sign-out.
func TestConsoleBrowser_SignIn(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "operator.token")
	d, base := consoleDaemon(t, "--auth", "token", "--bootstrap-token-file", tokenFile)
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	bearer := strings.TrimSpace(string(raw))
	c := dial(t, d.addr)
	ctx := metadata.AppendToOutgoingContext(browserTestContext(t), "authorization", "Bearer "+bearer)
	mustOK[*gatehousev1.CreateAccountResponse](t, "account")(c.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}}))

	b := browser(t)
	var alert, cookies, title string
	do(t, b, "the console asks for a token",
		chromedp.Navigate(base+"/#/a/acme/liveguide"),
		chromedp.WaitVisible(chromedp.CSS(`#signin-form`)),
		chromedp.SendKeys(chromedp.CSS(`#signin-form input[name=token]`), "gh_k-nope_wrong"),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#signin-form .alert`)),
		text(`#signin-form .alert`, &alert))
	if !strings.Contains(alert, "token") {
		t.Errorf("wrong token: %q", alert)
	}
	do(t, b, "sign in",
		clear(`#signin-form input[name=token]`),
		chromedp.SendKeys(chromedp.CSS(`#signin-form input[name=token]`), bearer),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#liveguide-form`)),
		text(`main h1`, &title),
		js(`document.cookie`, &cookies))
	if title != "Live Guide" || strings.Contains(cookies, "gatehouse_token") || strings.Contains(cookies, bearer) {
		t.Fatalf("after sign-in: page %q, script sees cookies %q", title, cookies)
	}
	do(t, b, "sign out",
		chromedp.Click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`#signin-form`)),
		chromedp.Navigate(base+"/#/a/acme/allowlist"),
		chromedp.WaitVisible(chromedp.CSS(`#signin-form`)))
}

// TestConsoleScreenshots writes PNG screenshots of the console's main
// pages, against a daemon with demo data, to the directory named by
// GATEHOUSE_TEST_SCREENSHOTS (make console-screenshots); without it the
// test does nothing, so that test runs do not rewrite committed files.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("GATEHOUSE_TEST_SCREENSHOTS")
	if dir == "" {
		t.Skip("set GATEHOUSE_TEST_SCREENSHOTS to a directory (make console-screenshots)")
	}
	d, base := consoleDaemon(t, "--demo")
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	sess := mustOK[*gatehousev1.StartSessionResponse](t, "session")(c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "carol"})).GetSession()
	mustOK[*gatehousev1.CreateBusinessHoursResponse](t, "hours")(c.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: "demo",
		BusinessHours: &gatehousev1.BusinessHours{Id: "office", Name: "Office hours", TimeZone: "Europe/Paris",
			Weekly: []*gatehousev1.WeeklyWindow{
				{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "09:00", End: "17:00"}, {Day: gatehousev1.Weekday_WEEKDAY_TUESDAY, Start: "09:00", End: "17:00"},
				{Day: gatehousev1.Weekday_WEEKDAY_WEDNESDAY, Start: "09:00", End: "17:00"}, {Day: gatehousev1.Weekday_WEEKDAY_THURSDAY, Start: "09:00", End: "17:00"},
				{Day: gatehousev1.Weekday_WEEKDAY_FRIDAY, Start: "09:00", End: "16:00"}},
			Holidays: []*gatehousev1.Holiday{{Date: "2026-12-25", Name: "Christmas", Closed: true}, {Date: "2026-12-31", Name: "New Year's Eve", Start: "09:00", End: "12:00"}}}}))
	b := browser(t)
	shots := []struct{ name, path, ready string }{
		{"liveguide", "#/a/demo/liveguide", "#liveguide-form"},
		{"allowlist", "#/a/demo/allowlist", "#allowlist-table"},
		{"privacy", "#/a/demo/privacy", "#privacy-table"},
		{"portals", "#/a/demo/portals", "#portal-tree"},
		{"representatives", "#/a/demo/representatives", "table.effective"},
		{"hours", "#/a/demo/hours", ".next-open"},
		{"audit", "#/a/demo/audit", "table.diff"},
		{"explorer", "#/a/demo/explorer?session=" + sess.GetId(), "#explorer-form"},
	}
	for _, s := range shots {
		var png []byte
		actions := []step{open(base, s.path), chromedp.WaitVisible(chromedp.CSS(s.ready))}
		switch s.name {
		case "allowlist":
			actions = append(actions, chromedp.SendKeys(chromedp.CSS(`#tester-url`), "https://shop.example.com.evil.net/"),
				until(`!!document.querySelector('#tester-verdict')`))
		case "explorer":
			actions = append(actions, chromedp.SetValue(chromedp.CSS(`#explorer-form input[name=url]`), "https://www.example.com/transfer"),
				chromedp.SetValue(chromedp.CSS(`#explorer-form input[name=tag]`), "button"),
				chromedp.SetValue(chromedp.CSS(`#explorer-form input[name=classes]`), "transfer"),
				chromedp.Click(chromedp.CSS(`#explorer-form button[type=submit]`)),
				until(`!!document.querySelector('#explorer-verdict')`))
		}
		actions = append(actions, chromedp.Sleep(200*time.Millisecond), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			png, err = chromedp.FullScreenshot(100)(ctx, tg)
			return err
		}))
		do(t, b, "screenshot "+s.name, actions...)
		// Quality 100 makes FullScreenshot a PNG (below 100: a JPEG).
		if err := os.WriteFile(filepath.Join(dir, s.name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// acceptDialogs accepts every confirm() of the tab and returns the
// messages it accepted, for the test to check that a destructive action
// asked first.
func acceptDialogs(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	opened := make(chan string, 16)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			select {
			case opened <- e.Message:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case msg := <-opened:
				mu.Lock()
				seen = append(seen, msg)
				mu.Unlock()
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestConsoleBrowser_EveryPage: every page loads against a daemon with
// demo data without an error, and the pages' main actions work through the
// API: customization in French, business hours with the next opening and a
// refused time next to its field, a session started and ended, the
// notification queue (retry to a corrected recipient, drop), a credential
// created (shown once) and revoked. Destructive actions ask first.
func TestConsoleBrowser_EveryPage(t *testing.T) {
	t.Parallel()
	// A mail server that refuses connections keeps the records queued.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	_ = closed.Close()
	d, base := consoleDaemon(t, "--demo", "--smtp-addr", refused)
	c := dial(t, d.addr)
	ctx := browserTestContext(t)
	// Two completed support sessions of a portal with a notification
	// address queue two records.
	for i := range 2 {
		s := mustOK[*gatehousev1.StartSessionResponse](t, "support session")(c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo",
			Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "bob", CustomerId: fmt.Sprintf("cust-%d", i), PortalId: "helpdesk-default"}))
		mustOK[*gatehousev1.EndSessionResponse](t, "end")(c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: s.GetSession().GetId()}))
	}
	b := browser(t)
	dialogs := acceptDialogs(t, b)
	noAlert := func(route, ready string) {
		t.Helper()
		var alerts string
		do(t, b, "page "+route, open(base, route), chromedp.WaitVisible(chromedp.CSS(ready)),
			js(`Array.from(document.querySelectorAll('main .alert')).map(e => e.textContent).join('; ')`, &alerts))
		if alerts != "" {
			t.Errorf("%s shows an error: %s", route, alerts)
		}
	}
	for _, p := range []struct{ route, ready string }{
		{"#/", `main tr[data-id="demo"]`},
		{"#/credentials", "#tokens table"},
		{"#/a/demo/liveguide", "#liveguide-form"},
		{"#/a/demo/allowlist", `#allowlist-table tr[data-id="site"]`},
		{"#/a/demo/privacy", `#privacy-table tr[data-id="card"]`},
		{"#/a/demo/customization", "#customization-form"},
		{"#/a/demo/portals", `#portal-tree .node[data-id="helpdesk-default"]`},
		{"#/a/demo/teams", `#team-tree .node[data-id="tier1"]`},
		{"#/a/demo/representatives", `section[data-id="alice"] table.effective`},
		{"#/a/demo/hours", "#add-hours"},
		{"#/a/demo/sessions?state=all", "#sessions-table"},
		{"#/a/demo/notifications", "#notifications-table"},
		{"#/a/demo/audit", "main section.card"},
		{"#/a/demo/explorer", "main h1"},
	} {
		noAlert(p.route, p.ready)
	}

	// The skip link, followed with the keyboard, moves the focus past the
	// navigation and keeps the page.
	do(t, b, "skip link",
		chromedp.Focus(chromedp.CSS(`.skip`)),
		chromedp.KeyEvent("\r"),
		until(`document.activeElement?.id === 'main' && location.hash.startsWith('#/a/demo/explorer')`))

	// Customization: the French texts, saved and read back over gRPC.
	do(t, b, "customization fr",
		open(base, "#/a/demo/customization?lang=fr"),
		clear(`#customization-form input[name=agent_alias]`),
		chromedp.SendKeys(chromedp.CSS(`#customization-form input[name=agent_alias]`), "Conseiller"),
		chromedp.Click(chromedp.CSS(`#customization-form button[type=submit]`)),
		until(`document.getElementById('toast').textContent === 'Saved'`))
	cz := mustOK[*gatehousev1.GetCustomizationResponse](t, "customization")(c.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: "demo", Language: "fr"}))
	if cz.GetCustomization().GetAgentAlias() != "Conseiller" || cz.GetCustomization().GetDisclaimerText() == "" {
		t.Errorf("French texts after saving: %v", cz.GetCustomization())
	}

	// Business hours: a refused time is reported next to the weekly
	// windows; a valid set shows whether it is open and its next opening.
	var weeklyErr, status string
	do(t, b, "hours with a bad time",
		open(base, "#/a/demo/hours"),
		chromedp.SendKeys(chromedp.CSS(`#add-hours input[name=name]`), "Office"),
		clear(`#add-hours input[name=time_zone]`),
		chromedp.SendKeys(chromedp.CSS(`#add-hours input[name=time_zone]`), "Europe/Paris"),
		chromedp.SendKeys(chromedp.CSS(`#add-hours textarea[name=weekly]`), "MON 25:00-17:00"),
		chromedp.Click(chromedp.CSS(`#add-hours button[type=submit]`)),
		until(`!!document.querySelector('#add-hours textarea[name=weekly] + .field-error')`),
		text(`#add-hours textarea[name=weekly] + .field-error`, &weeklyErr))
	if weeklyErr == "" {
		t.Error("no error next to the weekly windows")
	}
	do(t, b, "hours",
		clear(`#add-hours textarea[name=weekly]`),
		chromedp.SendKeys(chromedp.CSS(`#add-hours textarea[name=weekly]`), "MON 09:00-17:00\nTUE 09:00-17:00"),
		chromedp.SendKeys(chromedp.CSS(`#add-hours textarea[name=holidays]`), "2026-12-25 closed Christmas"),
		chromedp.Click(chromedp.CSS(`#add-hours button[type=submit]`)),
		until(`!!document.querySelector('section[data-id] .hours-status .next-open')`),
		text(`section[data-id] .hours-status`, &status))
	// The times are shown as local dates in the set's zone, not as raw
	// timestamps.
	if !strings.Contains(status, "Open now") && !strings.Contains(status, "Closed now") || strings.Contains(status, "[object") ||
		regexp.MustCompile(`\d{4}-\d\d-\d\dT`).MatchString(status) {
		t.Errorf("hours status %q", status)
	}

	// Sessions: start one in the console, end it (after a confirmation).
	do(t, b, "start a session",
		open(base, "#/a/demo/sessions"),
		chromedp.SendKeys(chromedp.CSS(`#start-session input[name=representative_id]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#start-session input[name=customer_id]`), "dora"),
		chromedp.Click(chromedp.CSS(`#start-session button[type=submit]`)),
		until(`document.querySelectorAll('#sessions-table tbody tr').length === 1`))
	var sid string
	do(t, b, "end it",
		js(`document.querySelector('#sessions-table tbody tr').dataset.id`, &sid),
		chromedp.Click(chromedp.CSS(`#sessions-table tbody tr button.danger`)),
		until(`!document.querySelector('#sessions-table')`))
	got := mustOK[*gatehousev1.GetSessionResponse](t, "session")(c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sid}))
	if got.GetSession().GetState() != gatehousev1.SessionState_SESSION_STATE_ENDED {
		t.Errorf("session %s after End: %v", sid, got.GetSession().GetState())
	}

	// External specialists of a support session: invite, then remove
	// (after a confirmation).
	sup := mustOK[*gatehousev1.StartSessionResponse](t, "support session")(c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "demo",
		Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "bob", CustomerId: "erin", PortalId: "helpdesk-default"})).GetSession()
	row := fmt.Sprintf(`#sessions-table tr[data-id=%q]`, sup.GetId())
	do(t, b, "invite a specialist",
		open(base, "#/a/demo/sessions"),
		chromedp.SendKeys(chromedp.CSS(row+` input[name=specialist_id]`), "spec-1"),
		chromedp.SendKeys(chromedp.CSS(row+` input[name=display_name]`), "Sam Specialist"),
		chromedp.Click(chromedp.CSS(row+` form button[type=submit]`)),
		until(fmt.Sprintf(`(document.querySelector(%q)?.textContent || '').includes('Sam Specialist')`, row)))
	if s := mustOK[*gatehousev1.GetSessionResponse](t, "session")(c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sup.GetId()})); len(s.GetSession().GetSpecialistIds()) != 1 {
		t.Errorf("specialists after the invitation: %v", s.GetSession().GetSpecialistIds())
	}
	do(t, b, "remove the specialist",
		chromedp.Click(chromedp.CSS(row+` td:nth-child(8) button.danger`)),
		until(fmt.Sprintf(`!(document.querySelector(%q)?.textContent || 'Sam Specialist').includes('Sam Specialist')`, row)))
	if s := mustOK[*gatehousev1.GetSessionResponse](t, "session")(c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: sup.GetId()})); len(s.GetSession().GetSpecialistIds()) != 0 {
		t.Errorf("specialists after the removal: %v", s.GetSession().GetSpecialistIds())
	}

	// The co-browse URL: generated once; then only changed on purpose.
	var cobrowse string
	do(t, b, "generate the co-browse URL",
		open(base, "#/a/demo/liveguide"),
		chromedp.Click(chromedp.CSS(`#generate-cobrowse`)),
		chromedp.WaitVisible(chromedp.CSS(`#cobrowse-url`)),
		text(`#cobrowse-url`, &cobrowse))
	acct := mustOK[*gatehousev1.GetAccountResponse](t, "account")(c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "demo"}))
	if cobrowse == "" || cobrowse != acct.GetAccount().GetCobrowseUrl() {
		t.Errorf("co-browse URL shown %q, stored %q", cobrowse, acct.GetAccount().GetCobrowseUrl())
	}

	// Notifications: retry the first to a corrected recipient, drop the
	// second.
	var to string
	do(t, b, "retry to a corrected recipient",
		open(base, "#/a/demo/notifications"),
		clear(`#notifications-table tbody tr input[name=to]`),
		chromedp.SendKeys(chromedp.CSS(`#notifications-table tbody tr input[name=to]`), "ops@example.com"),
		chromedp.Click(chromedp.CSS(`#notifications-table tbody tr button[type=submit]`)),
		until(`document.getElementById('toast').textContent === 'Queued for retry'`),
		until(`(document.querySelector('#notifications-table tbody tr td:nth-child(2)')?.textContent || '') !== ''`),
		js(`Array.from(document.querySelectorAll('#notifications-table tbody tr td:nth-child(2)')).map(e => e.textContent).join(',')`, &to))
	if !strings.Contains(to, "ops@example.com") {
		t.Errorf("recipients after the retry: %q", to)
	}
	do(t, b, "drop one",
		chromedp.Click(chromedp.CSS(`#notifications-table tbody tr:last-child button.danger`)),
		until(`(document.querySelectorAll('#notifications-table tbody tr').length === 1) || !!document.querySelector('#no-notifications')`))
	left := mustOK[*gatehousev1.ListNotificationsResponse](t, "notifications")(c.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{AccountId: "demo"}))
	if len(left.GetNotifications()) != 1 {
		t.Errorf("notifications after one drop: %v", left.GetNotifications())
	}

	// Credentials: the bearer is shown once; revoking asks first.
	var secret string
	do(t, b, "create a credential",
		open(base, "#/credentials"),
		chromedp.SendKeys(chromedp.CSS(`#create-token input[name=name]`), "console test"),
		chromedp.SendKeys(chromedp.CSS(`#create-token input[name=account_id]`), "demo"),
		chromedp.Click(chromedp.CSS(`#create-token button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#token-secret`)),
		text(`#token-secret`, &secret))
	if !strings.HasPrefix(secret, "gh_k-") {
		t.Fatalf("shown secret %q", secret)
	}
	var shownAgain bool
	do(t, b, "revoke it",
		chromedp.Click(chromedp.CSS(`#tokens tr:last-child button.danger`)),
		until(`!document.querySelector('#tokens tr:last-child button.danger')`),
		open(base, "#/credentials"),
		js(`document.body.innerText.includes(`+fmt.Sprintf("%q", secret)+`)`, &shownAgain))
	if shownAgain {
		t.Error("the secret is shown again after a reload of the page")
	}
	toks := mustOK[*gatehousev1.ListCallerTokensResponse](t, "tokens")(c.admin.ListCallerTokens(ctx, &gatehousev1.ListCallerTokensRequest{}))
	for _, tk := range toks.GetTokens() {
		if tk.GetName() == "console test" && !tk.GetRevoked() {
			t.Error("the credential is not revoked")
		}
	}
	asked := dialogs()
	if len(asked) != 4 {
		t.Errorf("confirmations asked: %q, want end session, remove specialist, drop notification, revoke", asked)
	}
}
