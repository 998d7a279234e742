package server

import (
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

func (e *testEnv) mustGetCustomization(acct, lang string) *gatehousev1.Customization {
	e.t.Helper()
	resp, err := e.admin.GetCustomization(ctxT(e.t), &gatehousev1.GetCustomizationRequest{AccountId: acct, Language: lang})
	if err != nil {
		e.t.Fatalf("GetCustomization(%s, %q): %v", acct, lang, err)
	}
	return resp.GetCustomization()
}

func TestCustomization_DefaultsPerLanguage(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	for _, lang := range policy.Languages {
		got := e.mustGetCustomization("acme", lang)
		d := policy.DefaultCustomization("acme", lang)
		want := &gatehousev1.Customization{AccountId: "acme", Language: lang, DisclaimerText: d.DisclaimerText,
			AgentAlias: d.AgentAlias, CustomerAlias: d.CustomerAlias, Etag: "0", Revision: 0}
		if !proto.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", lang, got, want)
		}
	}
	for in, want := range map[string]string{
		"fr-CA": "fr", "de-AT": "de", "pt-BR": "pt", "nl-BE": "nl", "EN-gb": "en", "": "en", "ja": "en",
		"garbage!!": "en", "da, fr;q=0.8": "fr", "es-419": "es", "it-CH": "it",
	} {
		got := e.mustGetCustomization("acme", in)
		if got.GetLanguage() != want || got.GetDisclaimerText() != policy.DefaultCustomization("acme", want).DisclaimerText {
			t.Errorf("language %q: got %v, want the %s defaults", in, got, want)
		}
	}
}

func TestCustomization_GetValidation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	_, err := e.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{Language: "fr"})
	wantInvalid(t, err, "account_id")
	_, err = e.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: "Not A Slug"})
	wantInvalid(t, err, "account_id")
	_, err = e.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: "acme", Language: strings.Repeat("fr,", 1000)})
	wantInvalid(t, err, "language")
	_, err = e.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: "nobody", Language: "fr"})
	wantCode(t, err, codes.NotFound)
}

func TestCustomization_UpdateMaskAndEtag(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	def := policy.DefaultCustomization("acme", "fr")

	// Defaults are in force: etag "0"; any other etag is stale.
	_, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "fr", AgentAlias: "Conseiller", Etag: "7"},
		UpdateMask:    mask("agent_alias")})
	st := wantCode(t, err, codes.Aborted)
	if errorReason(st) != service.ReasonStaleEtag {
		t.Fatalf("reason = %q", errorReason(st))
	}

	// A masked update changes only the named field, starting from the defaults.
	resp, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "fr", AgentAlias: "Conseiller",
			DisclaimerText: "ignored: not in the mask", Etag: "0"},
		UpdateMask: mask("agent_alias")})
	if err != nil {
		t.Fatal(err)
	}
	c1 := resp.GetCustomization()
	if c1.GetAgentAlias() != "Conseiller" || c1.GetDisclaimerText() != def.DisclaimerText || c1.GetCustomerAlias() != def.CustomerAlias ||
		c1.GetAccountId() != "acme" || c1.GetLanguage() != "fr" || c1.GetRevision() == 0 || c1.GetEtag() != service.EtagOf(c1.GetRevision()) {
		t.Fatalf("after masked update: %v", c1)
	}
	if got := e.mustGetCustomization("acme", "fr-CA"); !proto.Equal(got, c1) {
		t.Fatalf("GetCustomization = %v, want %v", got, c1)
	}
	// Other languages keep their defaults.
	if got := e.mustGetCustomization("acme", "de"); got.GetRevision() != 0 || got.GetAgentAlias() != policy.DefaultCustomization("acme", "de").AgentAlias {
		t.Fatalf("de changed: %v", got)
	}

	// The etag of the defaults is stale now.
	_, err = e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "fr", AgentAlias: "X", Etag: "0"},
		UpdateMask:    mask("agent_alias")})
	wantCode(t, err, codes.Aborted)

	// An empty mask replaces every mutable field; an empty disclaimer is allowed.
	resp, err = e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "fr", AgentAlias: "Expert",
			CustomerAlias: "Visiteur", Etag: c1.GetEtag(), Revision: 999}})
	if err != nil {
		t.Fatal(err)
	}
	c2 := resp.GetCustomization()
	if c2.GetDisclaimerText() != "" || c2.GetAgentAlias() != "Expert" || c2.GetCustomerAlias() != "Visiteur" ||
		c2.GetRevision() <= c1.GetRevision() || c2.GetEtag() == c1.GetEtag() {
		t.Fatalf("after full update: %v", c2)
	}

	// Paths outside the mutable fields are refused, and nothing changes.
	for _, p := range []string{"language", "account_id", "etag", "revision", "nope"} {
		_, err = e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
			Customization: &gatehousev1.Customization{AccountId: "acme", Language: "fr", AgentAlias: "Y"},
			UpdateMask:    mask("agent_alias", p)})
		wantInvalid(t, err, "update_mask.paths[1]")
	}
	if got := e.mustGetCustomization("acme", "fr"); !proto.Equal(got, c2) {
		t.Fatalf("refused updates changed %v to %v", c2, got)
	}
}

func TestCustomization_UpdateValidation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	long := func(n int) string { return strings.Repeat("é", n) } // counted in characters, not bytes
	tests := []struct {
		name   string
		in     *gatehousev1.Customization
		mask   []string
		fields []string
	}{
		{"no customization", nil, nil, []string{"customization"}},
		{"no account", &gatehousev1.Customization{Language: "fr"}, nil, []string{"customization.account_id"}},
		{"no language", &gatehousev1.Customization{AccountId: "acme", AgentAlias: "A"}, []string{"agent_alias"}, []string{"customization.language"}},
		{"regional language", &gatehousev1.Customization{AccountId: "acme", Language: "fr-CA", AgentAlias: "A"}, []string{"agent_alias"}, []string{"customization.language"}},
		{"upper-case language", &gatehousev1.Customization{AccountId: "acme", Language: "FR", AgentAlias: "A"}, []string{"agent_alias"}, []string{"customization.language"}},
		{"unsupported language", &gatehousev1.Customization{AccountId: "acme", Language: "ja", AgentAlias: "A"}, []string{"agent_alias"}, []string{"customization.language"}},
		{"empty agent alias", &gatehousev1.Customization{AccountId: "acme", Language: "fr"}, []string{"agent_alias"}, []string{"customization.agent_alias"}},
		{"blank customer alias", &gatehousev1.Customization{AccountId: "acme", Language: "fr", CustomerAlias: "  \t"}, []string{"customer_alias"}, []string{"customization.customer_alias"}},
		{"long agent alias", &gatehousev1.Customization{AccountId: "acme", Language: "de", AgentAlias: long(101)}, []string{"agent_alias"}, []string{"customization.agent_alias"}},
		{"long customer alias", &gatehousev1.Customization{AccountId: "acme", Language: "de", CustomerAlias: long(101)}, []string{"customer_alias"}, []string{"customization.customer_alias"}},
		{"long disclaimer", &gatehousev1.Customization{AccountId: "acme", Language: "de", DisclaimerText: long(2001)}, []string{"disclaimer_text"}, []string{"customization.disclaimer_text"}},
		{"empty mask clears the aliases", &gatehousev1.Customization{AccountId: "acme", Language: "it", DisclaimerText: "x"}, nil,
			[]string{"customization.agent_alias", "customization.customer_alias"}},
	}
	for _, tt := range tests {
		_, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{Customization: tt.in, UpdateMask: mask(tt.mask...)})
		if err == nil {
			t.Fatalf("%s: accepted", tt.name)
		}
		t.Run(tt.name, func(t *testing.T) { wantInvalid(t, err, tt.fields...) })
	}
	// The bounds themselves are accepted.
	resp, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "de",
			DisclaimerText: long(2000), AgentAlias: long(100), CustomerAlias: "K"}})
	if err != nil {
		t.Fatalf("update at the bounds: %v", err)
	}
	if c := resp.GetCustomization(); c.GetDisclaimerText() != long(2000) || c.GetAgentAlias() != long(100) || c.GetCustomerAlias() != "K" {
		t.Fatalf("written = %v", c)
	}
	// Nothing was written by the refused updates.
	for _, lang := range []string{"fr", "it"} {
		if got := e.mustGetCustomization("acme", lang); got.GetRevision() != 0 {
			t.Fatalf("%s was written: %v", lang, got)
		}
	}
	_, err = e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "nobody", Language: "fr", AgentAlias: "A"}, UpdateMask: mask("agent_alias")})
	wantCode(t, err, codes.NotFound)
}

func TestCustomization_AccountIsolation(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acct-a")
	e.MustCreateAccount("acct-b")
	resp, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acct-a", Language: "en", DisclaimerText: "A's secret words",
			AgentAlias: "A agent", CustomerAlias: "A customer"}})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.GetCustomization()
	if got := e.mustGetCustomization("acct-a", "en"); !proto.Equal(got, a) {
		t.Fatalf("A reads %v, want %v", got, a)
	}
	b := e.mustGetCustomization("acct-b", "en")
	if b.GetAccountId() != "acct-b" || b.GetRevision() != 0 || b.GetDisclaimerText() != policy.DefaultCustomization("acct-b", "en").DisclaimerText {
		t.Fatalf("B reads %v, want its own defaults", b)
	}
	// B's etag "0" does not let B (or anyone) touch A's texts: the account
	// in the request decides whose texts are written.
	if _, err := e.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acct-b", Language: "en", AgentAlias: "B agent", Etag: "0"},
		UpdateMask:    mask("agent_alias")}); err != nil {
		t.Fatal(err)
	}
	if got := e.mustGetCustomization("acct-a", "en"); !proto.Equal(got, a) {
		t.Fatalf("B's update changed A: %v", got)
	}
	// Deleting A drops its texts; a new A starts from the defaults.
	if _, err := e.admin.DeleteAccount(ctx, &gatehousev1.DeleteAccountRequest{Id: "acct-a"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: "acct-a", Language: "en"})
	wantCode(t, err, codes.NotFound)
	e.MustCreateAccount("acct-a")
	if got := e.mustGetCustomization("acct-a", "en"); got.GetRevision() != 0 || got.GetAgentAlias() != policy.DefaultCustomization("acct-a", "en").AgentAlias {
		t.Fatalf("recreated A reads %v", got)
	}
}

func TestCustomization_SurvivesRestart(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	resp, err := e.admin.UpdateCustomization(ctxT(t), &gatehousev1.UpdateCustomizationRequest{
		Customization: &gatehousev1.Customization{AccountId: "acme", Language: "nl", DisclaimerText: "Welkom bij Acme.",
			AgentAlias: "Adviseur", CustomerAlias: "Bezoeker"}})
	if err != nil {
		t.Fatal(err)
	}
	want := resp.GetCustomization()
	e = e.Restart()
	if got := e.mustGetCustomization("acme", "nl-BE"); !proto.Equal(got, want) {
		t.Fatalf("after restart: %v, want %v", got, want)
	}
	if got := e.mustGetCustomization("acme", "fr"); got.GetRevision() != 0 {
		t.Fatalf("fr after restart: %v", got)
	}
}
