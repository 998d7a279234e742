package server

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

// TestAllowlist_PublicSuffixBelowPattern: an allowlist pattern whose host
// has a public suffix under it (ICANN or private section, wildcard rules
// included) is refused unless the entry acknowledges it; the error names
// the field and one suffix. Privacy rules may cover such hosts.
func TestAllowlist_PublicSuffixBelowPattern(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	for _, tc := range []struct{ pattern, under string }{
		{"amazonaws.com", "amazonaws.com"},
		{"*.amazonaws.com", "amazonaws.com"},
		{"https://amazonaws.com:443/bucket", "amazonaws.com"},
		{"AmazonAWS.com.", "amazonaws.com"},
		{"windows.net", "windows.net"}, // web.core.windows.net
	} {
		pattern := tc.pattern
		_, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
			Entry: &gatehousev1.AllowlistEntry{Pattern: pattern}})
		wantInvalid(t, err, "entry.pattern")
		st := wantCode(t, err, codes.InvalidArgument)
		var desc string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				desc = br.GetFieldViolations()[0].GetDescription()
			}
		}
		if !strings.Contains(desc, tc.under+"\"") || !strings.Contains(desc, "public suffix") || !strings.Contains(desc, "allow_public_suffix_subdomains") {
			t.Errorf("%s: violation %q does not name a suffix and the way out", pattern, desc)
		}
	}
	// Nothing under these is a public suffix.
	e.MustAllow("acme", "shop", "shop.example.com")
	e.MustAllow("acme", "s3", "my-bucket.s3.amazonaws.com")
	e.MustAllow("acme", "ip", "10.0.0.1")

	sess := e.MustStartSession("acme").GetId()
	nav := func(url string) bool {
		return e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"),
			Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: url}).GetDecision().GetAllowed()
	}
	if nav("https://attacker-bucket.s3.amazonaws.com/") {
		t.Fatal("another owner's bucket is allowed")
	}

	// Acknowledged: accepted, kept, audited, and it allows what it says.
	resp, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "aws", Pattern: "amazonaws.com", AllowPublicSuffixSubdomains: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetEntry().GetAllowPublicSuffixSubdomains() {
		t.Errorf("created entry lost the acknowledgement: %v", resp.GetEntry())
	}
	if !nav("https://attacker-bucket.s3.amazonaws.com/") {
		t.Error("acknowledged entry does not allow what it covers")
	}
	ev, err := e.admin.ListAuditEvents(ctx, &gatehousev1.ListAuditEventsRequest{AccountId: "acme", ResourceType: "allowlist_entry", ResourceId: "aws"})
	if err != nil || len(ev.GetEvents()) == 0 || !strings.Contains(ev.GetEvents()[0].GetAfterJson(), `"allow_public_suffix_subdomains":true`) {
		t.Errorf("audit event does not record the acknowledgement: %v %v", ev, err)
	}

	// Updates: clearing the acknowledgement is refused while the pattern
	// needs it; moving an entry onto such a pattern needs it too.
	_, err = e.admin.UpdateAllowlistEntry(ctx, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "aws"}, UpdateMask: mask("allow_public_suffix_subdomains")})
	wantInvalid(t, err, "entry.pattern")
	_, err = e.admin.UpdateAllowlistEntry(ctx, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "shop", Pattern: "*.amazonaws.com"}, UpdateMask: mask("pattern")})
	wantInvalid(t, err, "entry.pattern")
	if _, err := e.admin.UpdateAllowlistEntry(ctx, &gatehousev1.UpdateAllowlistEntryRequest{AccountId: "acme",
		Entry:      &gatehousev1.AllowlistEntry{Id: "shop", Pattern: "*.amazonaws.com", AllowPublicSuffixSubdomains: true},
		UpdateMask: mask("pattern", "allow_public_suffix_subdomains")}); err != nil {
		t.Errorf("acknowledged update: %v", err)
	}

	// A privacy rule covering more only protects more: accepted.
	e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK,
		Selector: "input", UrlPattern: "amazonaws.com"})
}

// TestAllowlist_StoredPublicSuffixEntriesKeepWorking: entries stored before
// the check keep allowing what they did, and the daemon reports them at
// start-up and in a gauge.
func TestAllowlist_StoredPublicSuffixEntriesKeepWorking(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	if _, err := e.store.Update(ctx, func(tx store.Tx) error {
		return store.PutAllowlistEntry(tx, "acme", &policy.AllowlistEntry{ID: "old", Pattern: "amazonaws.com"})
	}); err != nil {
		t.Fatal(err)
	}
	e = e.Restart()
	var logged strings.Builder
	s := &Server{snaps: e.srv.snaps, log: slog.New(slog.NewTextHandler(io.MultiWriter(io.Discard, &logged), nil))}
	s.warnPublicSuffixEntries()
	if !strings.Contains(logged.String(), "acme/old") {
		t.Errorf("start-up warning does not name the entry: %q", logged.String())
	}
	if _, n := e.srv.snaps.Current().PublicSuffixEntries(10); n != 1 {
		t.Errorf("PublicSuffixEntries = %d, want 1", n)
	}
	sess := e.MustStartSession("acme").GetId()
	d := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"),
		Feature: gatehousev1.Feature_FEATURE_NAVIGATE, Url: "https://x.s3.amazonaws.com/"}).GetDecision()
	if !d.GetAllowed() {
		t.Errorf("stored entry stopped working: %v", d)
	}
}
