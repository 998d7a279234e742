package server

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var cobrowseURLPattern = regexp.MustCompile(`^https://[a-z]+-[a-z]+-[1-9][0-9]{3}\.support\.me$`)

func (e *testEnv) mustGenerateCobrowseURL(acct string) *gatehousev1.GenerateCobrowseUrlResponse {
	e.t.Helper()
	resp, err := e.admin.GenerateCobrowseUrl(ctxT(e.t), &gatehousev1.GenerateCobrowseUrlRequest{AccountId: acct})
	if err != nil {
		e.t.Fatalf("GenerateCobrowseUrl(%s): %v", acct, err)
	}
	return resp
}

func (e *testEnv) mustGetAccount(id string) *gatehousev1.Account {
	e.t.Helper()
	resp, err := e.admin.GetAccount(ctxT(e.t), &gatehousev1.GetAccountRequest{Id: id})
	if err != nil {
		e.t.Fatalf("GetAccount(%s): %v", id, err)
	}
	return resp.GetAccount()
}

// operatorAdmin is the admin service the operator branch of SetCobrowseUrl
// will use.
func (e *testEnv) operatorAdmin() *adminService { return &adminService{s: e.srv} }

func TestCobrowse_GenerateOnce(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	before := e.mustGetAccount("acme")

	resp := e.mustGenerateCobrowseURL("acme")
	url := resp.GetUrl()
	if !cobrowseURLPattern.MatchString(url) {
		t.Fatalf("url %q does not match %v", url, cobrowseURLPattern)
	}
	host := strings.TrimPrefix(url, "https://")
	if label, _, _ := strings.Cut(host, "."); !service.IsDNSLabel(label) {
		t.Fatalf("label %q is not a DNS label", label)
	}
	acct := resp.GetAccount()
	if acct.GetId() != "acme" || acct.GetCobrowseUrl() != url || acct.GetRevision() <= before.GetRevision() ||
		acct.GetDisplayName() != before.GetDisplayName() {
		t.Fatalf("account as written = %v", acct)
	}
	if got := e.mustGetAccount("acme"); got.GetCobrowseUrl() != url || got.GetRevision() != acct.GetRevision() {
		t.Fatalf("GetAccount = %v", got)
	}

	// Once only.
	_, err := e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "acme"})
	st := wantCode(t, err, codes.FailedPrecondition)
	if errorReason(st) != "COBROWSE_URL_ALREADY_SET" {
		t.Fatalf("reason = %q (%v)", errorReason(st), err)
	}
	if got := e.mustGetAccount("acme"); got.GetCobrowseUrl() != url || got.GetRevision() != acct.GetRevision() {
		t.Fatalf("second Generate changed the account: %v", got)
	}
	// UpdateAccount cannot change it either.
	_, err = e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", CobrowseUrl: "https://mine.support.me"}, UpdateMask: mask("cobrowse_url")})
	wantInvalid(t, err, "update_mask.paths[0]")

	// The URL survives a restart, and so does the once-only rule.
	e = e.Restart()
	if got := e.mustGetAccount("acme"); got.GetCobrowseUrl() != url {
		t.Fatalf("after restart: %v", got)
	}
	_, err = e.admin.GenerateCobrowseUrl(ctxT(t), &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "acme"})
	wantCode(t, err, codes.FailedPrecondition)
}

func TestCobrowse_GenerateValidation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	_, err := e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{})
	wantInvalid(t, err, "account_id")
	_, err = e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "Bad_Id"})
	wantInvalid(t, err, "account_id")
	_, err = e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "nobody"})
	wantCode(t, err, codes.NotFound)
}

// TestCobrowse_GenerateConcurrentAccounts generates URLs for 50 accounts at
// once: every URL is distinct and held by its account.
func TestCobrowse_GenerateConcurrentAccounts(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	const n = 50
	for i := range n {
		if _, err := e.admin.CreateAccount(ctxT(t), &gatehousev1.CreateAccountRequest{
			Account: &gatehousev1.Account{Id: fmt.Sprintf("acct-%02d", i), DisplayName: "A"}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t)
	urls := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: fmt.Sprintf("acct-%02d", i)})
			urls[i], errs[i] = resp.GetUrl(), err
		})
	}
	wg.Wait()
	owners := map[string]string{}
	for i := range n {
		id := fmt.Sprintf("acct-%02d", i)
		if errs[i] != nil {
			t.Fatalf("%s: %v", id, errs[i])
		}
		if !cobrowseURLPattern.MatchString(urls[i]) {
			t.Fatalf("%s: url %q", id, urls[i])
		}
		if other, dup := owners[urls[i]]; dup {
			t.Fatalf("%s and %s both got %s", other, id, urls[i])
		}
		owners[urls[i]] = id
	}
	err := e.store.View(ctx, func(tx store.ReadTx) error {
		for url, id := range owners {
			if owner, err := store.CobrowseOwner(tx, url); err != nil || owner != id {
				return fmt.Errorf("index: %s is held by %q (%v), want %s", url, owner, err, id)
			}
			if a, err := store.GetAccount(tx, id); err != nil || a.CobrowseURL != url {
				return fmt.Errorf("account %s has %q (%v), want %s", id, a.CobrowseURL, err, url)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCobrowse_GenerateConcurrentSameAccount calls Generate 10 times at once
// for one account: exactly one wins, the others are FAILED_PRECONDITION,
// and the index holds only the winner's URL.
func TestCobrowse_GenerateConcurrentSameAccount(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	ctx := ctxT(t)
	const n = 10
	urls := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "acme"})
			urls[i], errs[i] = resp.GetUrl(), err
		})
	}
	wg.Wait()
	won := ""
	for i := range n {
		switch code := status.Code(errs[i]); {
		case errs[i] == nil:
			if won != "" {
				t.Fatalf("two calls succeeded: %s and %s", won, urls[i])
			}
			won = urls[i]
		case code == codes.FailedPrecondition:
			if r := errorReason(status.Convert(errs[i])); r != "COBROWSE_URL_ALREADY_SET" {
				t.Fatalf("reason = %q", r)
			}
		default:
			t.Fatalf("call %d: %v", i, errs[i])
		}
	}
	if won == "" {
		t.Fatal("no call succeeded")
	}
	if got := e.mustGetAccount("acme"); got.GetCobrowseUrl() != won {
		t.Fatalf("account has %q, winner got %q", got.GetCobrowseUrl(), won)
	}
	var held []string
	err := e.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Scan("cobrowse/", "", func(key string, val []byte, _ uint64) (bool, error) {
			held = append(held, strings.TrimPrefix(key, "cobrowse/")+"="+string(val))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || held[0] != won+"=acme" {
		t.Fatalf("index = %v, want only %s=acme", held, won)
	}
}

// TestCobrowse_GenerateRetriesCollisions drives the generator with names
// that are taken: it retries until a free one, and gives up after a bounded
// number of attempts with RESOURCE_EXHAUSTED rather than INTERNAL.
func TestCobrowse_GenerateRetriesCollisions(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("first")
	e.MustCreateAccount("second")
	e.MustCreateAccount("third")
	if _, err := e.store.Update(ctx, func(tx store.Tx) error {
		_, err := service.GenerateCobrowseURL(tx, "first", "support.me", func() string { return "taken-name-1111" })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	names := []string{"taken-name-1111", "taken-name-1111", "free-name-2222"}
	calls := 0
	var got policy.Account
	if _, err := e.store.Update(ctx, func(tx store.Tx) (err error) {
		calls = 0 // the function may run more than once
		got, err = service.GenerateCobrowseURL(tx, "second", "support.me", func() string { calls++; return names[calls-1] })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got.CobrowseURL != "https://free-name-2222.support.me" || calls != 3 {
		t.Fatalf("second got %q after %d names", got.CobrowseURL, calls)
	}

	_, err := e.store.Update(ctx, func(tx store.Tx) error {
		calls = 0
		_, err := service.GenerateCobrowseURL(tx, "third", "support.me", func() string { calls++; return "taken-name-1111" })
		return err
	})
	if calls != service.CobrowseNameAttempts {
		t.Fatalf("tried %d names, want %d", calls, service.CobrowseNameAttempts)
	}
	if e, ok := errs.As(err); !ok || e.Kind != errs.ResourceExhausted || e.Reason != service.ReasonCobrowseNamesExhausted {
		t.Fatalf("giving up: %v, want %s %s", err, errs.ResourceExhausted, service.ReasonCobrowseNamesExhausted)
	}
	if a := e.mustGetAccount("third"); a.GetCobrowseUrl() != "" {
		t.Fatalf("third got %q after giving up", a.GetCobrowseUrl())
	}
}

// TestCobrowse_BaseDomain generates under a configured base domain. The
// server shares the store and snapshot follower of a started one.
func TestCobrowse_BaseDomain(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	srv := New(Options{Store: e.store, Snapshots: e.srv.snaps, Logger: e.srv.log, CobrowseBaseDomain: "cobrowse.example.com"})
	custom := &adminService{s: srv}
	ctx := ctxT(t)
	resp, err := custom.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^https://[a-z]+-[a-z]+-[0-9]{4}\.cobrowse\.example\.com$`)
	if !re.MatchString(resp.GetUrl()) {
		t.Fatalf("url %q does not match %v", resp.GetUrl(), re)
	}
	if got := e.mustGetAccount("acme"); got.GetCobrowseUrl() != resp.GetUrl() {
		t.Fatalf("account has %q", got.GetCobrowseUrl())
	}
	// The operator path checks URLs against the configured base as well.
	_, err = custom.setCobrowseURL(ctx, "other", "https://other.support.me")
	wantInvalid(t, err, "url")
	if _, err := custom.setCobrowseURL(ctx, "other", "https://other.cobrowse.example.com"); err != nil {
		t.Fatal(err)
	}
}

// TestCobrowse_SetRefused: SetCobrowseUrl is operator-only, and no caller
// can be an operator yet, so every call is PERMISSION_DENIED and changes
// nothing, valid or not.
// TestCobrowse_SetOperatorOnly: only an operator may set a co-browse URL;
// an admin, even of the account and of all accounts, is refused and
// nothing changes.
func TestCobrowse_SetOperatorOnly(t *testing.T) {
	t.Parallel()
	e := mustStartAuth(t)
	ctx := ctxT(t)
	before := e.mustGetAccountAs("a", e.tokens["operator"])
	for _, who := range []string{"admin-a", "admin-all", "decider-a"} {
		_, err := e.admin.SetCobrowseUrl(withToken(ctx, e.tokens[who]), &gatehousev1.SetCobrowseUrlRequest{AccountId: "a", Url: "https://alpha.support.me"})
		wantCode(t, err, codes.PermissionDenied)
	}
	if got := e.mustGetAccountAs("a", e.tokens["operator"]); got.GetRevision() != before.GetRevision() || got.GetCobrowseUrl() != "" {
		t.Fatalf("refused calls changed the account: %v", got)
	}
	resp, err := e.admin.SetCobrowseUrl(withToken(ctx, e.tokens["operator"]), &gatehousev1.SetCobrowseUrlRequest{AccountId: "a", Url: "https://alpha.support.me"})
	if err != nil || resp.GetUrl() != "https://alpha.support.me" || resp.GetAccount().GetCobrowseUrl() != resp.GetUrl() {
		t.Fatalf("operator: %v %v", resp, err)
	}
}

func (e *authEnv) mustGetAccountAs(id, bearer string) *gatehousev1.Account {
	e.t.Helper()
	resp, err := e.admin.GetAccount(withToken(ctxT(e.t), bearer), &gatehousev1.GetAccountRequest{Id: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetAccount()
}

func TestCobrowse_SetLogic(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	op := e.operatorAdmin()
	ctx := ctxT(t)

	invalid := []struct{ name, url string }{
		{"empty", ""},
		{"http", "http://acme.support.me"},
		{"no scheme", "acme.support.me"},
		{"upper-case scheme", "HTTPS://acme.support.me"},
		{"upper-case label", "https://Acme.support.me"},
		{"upper-case base", "https://acme.Support.Me"},
		{"two labels", "https://a.b.support.me"},
		{"empty label", "https://.support.me"},
		{"bare base", "https://support.me"},
		{"other base", "https://acme.support.me.evil.net"},
		{"base as suffix of label", "https://acmesupport.me"},
		{"port", "https://acme.support.me:443"},
		{"path", "https://acme.support.me/x"},
		{"trailing slash", "https://acme.support.me/"},
		{"query", "https://acme.support.me?x=1"},
		{"fragment", "https://acme.support.me#x"},
		{"userinfo", "https://user@acme.support.me"},
		{"trailing dot", "https://acme.support.me."},
		{"leading hyphen", "https://-acme.support.me"},
		{"trailing hyphen", "https://acme-.support.me"},
		{"underscore", "https://ac_me.support.me"},
		{"unicode", "https://àcme.support.me"},
		{"space", "https://ac me.support.me"},
		{"label too long", "https://" + strings.Repeat("a", 64) + ".support.me"},
		{"very long", "https://" + strings.Repeat("a", maxURLLength) + ".support.me"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			_, err := op.setCobrowseURL(ctx, "acme", tt.url)
			wantInvalid(t, err, "url")
		})
	}
	_, err := op.setCobrowseURL(ctx, "", "https://acme.support.me")
	wantInvalid(t, err, "account_id")
	_, err = op.setCobrowseURL(ctx, "nobody", "https://acme.support.me")
	wantCode(t, err, codes.NotFound)

	// Valid forms, including a 63-character label and digits or hyphens inside.
	long := strings.Repeat("a", 62) + "z"
	for _, url := range []string{"https://acme.support.me", "https://acme-2.support.me", "https://7.support.me", "https://" + long + ".support.me"} {
		resp, err := op.setCobrowseURL(ctx, "acme", url)
		if err != nil {
			t.Fatalf("set %s: %v", url, err)
		}
		if resp.GetUrl() != url || resp.GetAccount().GetCobrowseUrl() != url {
			t.Fatalf("set %s: response %v", url, resp)
		}
	}
	first, err := op.setCobrowseURL(ctx, "acme", "https://acme.support.me")
	if err != nil {
		t.Fatal(err)
	}
	// Setting the same URL again succeeds and writes nothing.
	again, err := op.setCobrowseURL(ctx, "acme", "https://acme.support.me")
	if err != nil {
		t.Fatal(err)
	}
	if again.GetAccount().GetRevision() != first.GetAccount().GetRevision() {
		t.Fatalf("no-op set wrote: revision %d → %d", first.GetAccount().GetRevision(), again.GetAccount().GetRevision())
	}
	// Another account cannot take it.
	_, err = op.setCobrowseURL(ctx, "other", "https://acme.support.me")
	wantCode(t, err, codes.AlreadyExists)
	// The URLs acme held before were released: other can take one.
	if _, err := op.setCobrowseURL(ctx, "other", "https://acme-2.support.me"); err != nil {
		t.Fatalf("previous URL was not released: %v", err)
	}
	// A URL an operator set counts for Generate's once-only rule.
	_, err = e.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: "other"})
	wantCode(t, err, codes.FailedPrecondition)

	var held []string
	err = e.store.View(ctx, func(tx store.ReadTx) error {
		return tx.Scan("cobrowse/", "", func(key string, val []byte, _ uint64) (bool, error) {
			held = append(held, strings.TrimPrefix(key, "cobrowse/")+"="+string(val))
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 {
		t.Fatalf("index = %v, want one URL per account", held)
	}
}

// TestCobrowse_DeleteAccountReleasesURL: deleting an account frees its URL
// for another account.
func TestCobrowse_DeleteAccountReleasesURL(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("old")
	e.MustCreateAccount("new")
	url := e.mustGenerateCobrowseURL("old").GetUrl()
	op := e.operatorAdmin()
	ctx := ctxT(t)
	_, err := op.setCobrowseURL(ctx, "new", url)
	wantCode(t, err, codes.AlreadyExists)
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "old"}); err != nil {
		t.Fatal(err)
	}
	resp, err := op.setCobrowseURL(ctx, "new", url)
	if err != nil {
		t.Fatalf("URL of a deleted account is still held: %v", err)
	}
	if resp.GetAccount().GetCobrowseUrl() != url || e.mustGetAccount("new").GetCobrowseUrl() != url {
		t.Fatalf("new account = %v", resp.GetAccount())
	}
	// A recreated "old" starts without a URL and can generate a new one.
	e.MustCreateAccount("old")
	if got := e.mustGenerateCobrowseURL("old").GetUrl(); got == url {
		t.Fatalf("recreated account got the taken URL %s", got)
	}
}

// TestCobrowse_SetDoesNotCrossAccounts: an operator changing one account's
// URL leaves the other accounts' URLs and index entries alone, even when
// the index was left inconsistent.
func TestCobrowse_SetDoesNotCrossAccounts(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")
	op := e.operatorAdmin()
	ctx := ctxT(t)
	if _, err := op.setCobrowseURL(ctx, "other", "https://shared.support.me"); err != nil {
		t.Fatal(err)
	}
	// acme's record claims a URL that the index gives to other.
	if _, err := e.store.Update(ctx, func(tx store.Tx) error {
		a, err := store.GetAccount(tx, "acme")
		if err != nil {
			return err
		}
		a.CobrowseURL = "https://shared.support.me"
		return store.PutAccount(tx, &a)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.setCobrowseURL(ctx, "acme", "https://acme.support.me"); err != nil {
		t.Fatal(err)
	}
	err := e.store.View(ctx, func(tx store.ReadTx) error {
		if owner, err := store.CobrowseOwner(tx, "https://shared.support.me"); err != nil || owner != "other" {
			return fmt.Errorf("shared URL held by %q (%v), want other", owner, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
