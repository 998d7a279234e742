package server

import (
	"fmt"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func TestAccounts_CRUD(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)

	created, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme"}})
	if err != nil {
		t.Fatal(err)
	}
	a := created.GetAccount()
	if a.GetId() != "acme" || a.GetDisplayName() != "Acme" || a.GetRevision() == 0 || a.GetEtag() == "" || a.GetCreateTime() == nil {
		t.Fatalf("created account = %v", a)
	}
	_, err = e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "acme", DisplayName: "Again"}})
	wantCode(t, err, codes.AlreadyExists)

	gen, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{DisplayName: "Generated"}})
	if err != nil {
		t.Fatal(err)
	}
	if !service.IsSlug(gen.GetAccount().GetId()) {
		t.Fatalf("generated id %q is not a slug", gen.GetAccount().GetId())
	}
	if gen.GetAccount().GetRevision() <= a.GetRevision() {
		t.Fatalf("revision did not increase: %d then %d", a.GetRevision(), gen.GetAccount().GetRevision())
	}

	got, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetAccount(), a) {
		t.Fatalf("GetAccount = %v, want %v", got.GetAccount(), a)
	}

	// Stale etag: ABORTED, and nothing changes.
	_, err = e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme Corp", Etag: "999"}, UpdateMask: mask("display_name")})
	wantCode(t, err, codes.Aborted)
	upd, err := e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "Acme Corp", Etag: a.GetEtag()}, UpdateMask: mask("display_name")})
	if err != nil {
		t.Fatal(err)
	}
	if upd.GetAccount().GetDisplayName() != "Acme Corp" || upd.GetAccount().GetEtag() == a.GetEtag() {
		t.Fatalf("updated = %v", upd.GetAccount())
	}
	_, err = e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: "x"}, UpdateMask: mask("cobrowse_url")})
	wantInvalid(t, err, "update_mask.paths[0]")
	_, err = e.admin.UpdateAccount(ctx, &gatehousev1.UpdateAccountRequest{
		Account: &gatehousev1.Account{Id: "acme", DisplayName: ""}, UpdateMask: mask("display_name")})
	wantInvalid(t, err, "account.display_name")

	_, err = e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme", Etag: a.GetEtag()})
	wantCode(t, err, codes.Aborted)
	del, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if del.GetRevision() <= upd.GetAccount().GetRevision() {
		t.Fatalf("delete revision %d not after update %d", del.GetRevision(), upd.GetAccount().GetRevision())
	}
	_, err = e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acme"})
	wantCode(t, err, codes.NotFound)
}

func TestAccounts_ListPaging(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	for i := range 5 {
		e.MustCreateAccount(fmt.Sprintf("acct-%d", i))
	}
	var ids []string
	token := ""
	pages := 0
	for {
		resp, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range resp.GetAccounts() {
			ids = append(ids, a.GetId())
		}
		// A write between pages must not disturb the listing.
		if pages == 1 {
			e.MustCreateAccount("acct-0a")
		}
		token = resp.GetNextPageToken()
		if token == "" {
			break
		}
	}
	// acct-0a sorts before the cursor, so it is not in the remaining pages;
	// nothing is repeated or skipped.
	want := []string{"acct-0", "acct-1", "acct-2", "acct-3", "acct-4"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", ids, want)
	}
	if pages != 3 {
		t.Fatalf("pages = %d, want 3", pages)
	}
	_, err := e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{PageToken: "garbage"})
	wantInvalid(t, err, "page_token")
	_, err = e.admin.ListAccounts(ctx, &gatehousev1.ListAccountsRequest{PageSize: -1})
	wantInvalid(t, err, "page_size")
}

func TestLiveGuideSettings_DefaultsAndMask(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")

	got, err := e.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	// The defaults table of the design: clipboard and disclaimer on,
	// everything else off.
	want := &gatehousev1.LiveGuideSettings{AccountId: "acme", ClipboardAgent: true, ClipboardCustomer: true, ShowDisclaimer: true}
	def := got.GetSettings()
	cmp := proto.Clone(def).(*gatehousev1.LiveGuideSettings)
	cmp.Etag, cmp.Revision = "", 0
	if !proto.Equal(cmp, want) {
		t.Fatalf("defaults = %v, want %v", cmp, want)
	}

	// One path changes one field and leaves the rest alone.
	s1 := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentClickRestricted: true, Chat: true}, "agent_click_restricted")
	if !s1.GetAgentClickRestricted() || s1.GetChat() || !s1.GetClipboardAgent() || !s1.GetShowDisclaimer() {
		t.Fatalf("after masked update: %v", s1)
	}
	if s1.GetRevision() <= def.GetRevision() || s1.GetEtag() == def.GetEtag() {
		t.Fatalf("revision/etag did not change: %v -> %v", def, s1)
	}

	// A stale etag is ABORTED and changes nothing.
	_, err = e.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", Chat: true, Etag: def.GetEtag()}, UpdateMask: mask("chat")})
	st := wantCode(t, err, codes.Aborted)
	if errorReason(st) != service.ReasonStaleEtag {
		t.Fatalf("reason = %q", errorReason(st))
	}

	// An empty mask replaces every mutable field.
	s2 := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", VoiceChat: true, Etag: s1.GetEtag()})
	if s2.GetAgentClickRestricted() || !s2.GetVoiceChat() || s2.GetClipboardAgent() || s2.GetShowDisclaimer() {
		t.Fatalf("after full replace: %v", s2)
	}

	for _, tc := range []struct {
		name   string
		req    *gatehousev1.UpdateLiveGuideSettingsRequest
		fields []string
		code   codes.Code
	}{
		{"no settings", &gatehousev1.UpdateLiveGuideSettingsRequest{}, []string{"settings"}, codes.InvalidArgument},
		{"bad account id", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "Acme!"}}, []string{"settings.account_id"}, codes.InvalidArgument},
		{"unknown path", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme"}, UpdateMask: mask("chat", "nope")}, []string{"update_mask.paths[1]"}, codes.InvalidArgument},
		{"output-only path", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme"}, UpdateMask: mask("revision")}, []string{"update_mask.paths[0]"}, codes.InvalidArgument},
		{"javascript start url", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "javascript:alert(1)"}, UpdateMask: mask("session_start_url")}, []string{"settings.session_start_url"}, codes.InvalidArgument},
		{"relative start url", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "example.com/x"}, UpdateMask: mask("session_start_url")}, []string{"settings.session_start_url"}, codes.InvalidArgument},
		{"unknown account", &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: "nobody"}, UpdateMask: mask("chat")}, nil, codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.admin.UpdateLiveGuideSettings(ctx, tc.req)
			if tc.code == codes.InvalidArgument {
				wantInvalid(t, err, tc.fields...)
			} else {
				wantCode(t, err, tc.code)
			}
		})
	}
	// Nothing the failed calls sent was stored.
	after, err := e.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(after.GetSettings(), s2) {
		t.Fatalf("settings changed by rejected calls: %v, want %v", after.GetSettings(), s2)
	}
	s3 := e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", SessionStartUrl: "https://help.example.com/start"}, "session_start_url")
	if s3.GetSessionStartUrl() != "https://help.example.com/start" {
		t.Fatalf("start url = %q", s3.GetSessionStartUrl())
	}
}

func TestRepresentatives_CRUD(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustCreateAccount("other")

	rep, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob",
			Functions: &gatehousev1.SupportFunctions{SendFiles: true, Annotations: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.GetRepresentative(); !r.GetFunctions().GetSendFiles() || !r.GetFunctions().GetAnnotations() || r.GetFunctions().GetReceiveFiles() || r.GetLiveGuideEnabled() {
		t.Fatalf("created = %v", r)
	}
	_, err = e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob 2"}})
	wantCode(t, err, codes.AlreadyExists)
	_, err = e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "nobody",
		Representative: &gatehousev1.Representative{Id: "bob", DisplayName: "Bob"}})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "-bad", DisplayName: ""}})
	wantInvalid(t, err, "representative.id")

	// A nested path changes one function and leaves the others alone.
	upd, err := e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob", Functions: &gatehousev1.SupportFunctions{ReceiveFiles: true}},
		UpdateMask:     mask("functions.receive_files", "live_guide_enabled")})
	if err != nil {
		t.Fatal(err)
	}
	if f := upd.GetRepresentative().GetFunctions(); !f.GetSendFiles() || !f.GetReceiveFiles() || !f.GetAnnotations() || upd.GetRepresentative().GetLiveGuideEnabled() {
		t.Fatalf("after nested update: %v", upd.GetRepresentative())
	}
	_, err = e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob"}, UpdateMask: mask("functions.no_such_function")})
	wantInvalid(t, err, "update_mask.paths[0]")
	_, err = e.admin.UpdateRepresentative(ctx, &gatehousev1.UpdateRepresentativeRequest{AccountId: "acme",
		Representative: &gatehousev1.Representative{Id: "bob"}, UpdateMask: mask("display_name.x")})
	wantInvalid(t, err, "update_mask.paths[0]")

	// Another account cannot see or change acme's representatives.
	_, err = e.admin.GetRepresentative(ctx, &gatehousev1.GetRepresentativeRequest{AccountId: "other", Id: "bob"})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.DeleteRepresentative(ctx, &gatehousev1.DeleteRepresentativeRequest{AccountId: "other", Id: "bob"})
	wantCode(t, err, codes.NotFound)

	list, err := e.admin.ListRepresentatives(ctx, &gatehousev1.ListRepresentativesRequest{AccountId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetRepresentatives()); n != 2 || list.GetRepresentatives()[0].GetId() != "alice" || list.GetNextPageToken() != "" {
		t.Fatalf("list = %v", list)
	}

	// A representative with an active session cannot be deleted.
	sess := e.MustStartSession("acme")
	_, err = e.admin.DeleteRepresentative(ctx, &gatehousev1.DeleteRepresentativeRequest{AccountId: "acme", Id: "alice"})
	st := wantCode(t, err, codes.FailedPrecondition)
	if errorReason(st) != service.ReasonInUse {
		t.Fatalf("reason = %q", errorReason(st))
	}
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: sess.GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeleteRepresentative(ctx, &gatehousev1.DeleteRepresentativeRequest{AccountId: "acme", Id: "alice"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetRepresentative(ctx, &gatehousev1.GetRepresentativeRequest{AccountId: "acme", Id: "alice"})
	wantCode(t, err, codes.NotFound)
}
