package server

import (
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestTestAllowlistUrl(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	test := func(url string, minRev uint64) *gatehousev1.TestAllowlistUrlResponse {
		t.Helper()
		r, err := e.admin.TestAllowlistUrl(ctx, &gatehousev1.TestAllowlistUrlRequest{AccountId: "acme", Url: url, MinRevision: minRev})
		if err != nil {
			t.Fatalf("TestAllowlistUrl(%q): %v", url, err)
		}
		return r
	}
	// An empty allowlist allows every http(s) page, naming no entry.
	if r := test("https://anything.example/x", 0); !r.GetAllowed() || r.GetEntryId() != "" || r.GetReason() != gatehousev1.Reason_REASON_ALLOWED {
		t.Fatalf("empty allowlist: %v", r)
	}
	w, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
		Entry: &gatehousev1.AllowlistEntry{Id: "shop", Pattern: "shop.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	rev := w.GetEntry().GetRevision()
	for _, c := range []struct {
		url    string
		reason gatehousev1.Reason
		entry  string
	}{
		{"https://a.shop.example.com/cart", gatehousev1.Reason_REASON_ALLOWED, "shop"},
		{"HTTPS://SHOP.example.com.:443/", gatehousev1.Reason_REASON_ALLOWED, "shop"},
		{"https://shop.example.com.evil.net/", gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED, ""},
		{"https://evil.net/?shop.example.com", gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED, ""},
		{"javascript:alert(1)", gatehousev1.Reason_REASON_URL_NOT_PERMITTED, ""},
		{"http://[::1", gatehousev1.Reason_REASON_URL_INVALID, ""},
	} {
		r := test(c.url, rev)
		if r.GetReason() != c.reason || r.GetEntryId() != c.entry || r.GetAllowed() != (c.reason == gatehousev1.Reason_REASON_ALLOWED) || r.GetMessage() == "" {
			t.Errorf("%q: got %v, want %v entry %q", c.url, r, c.reason, c.entry)
		}
		if r.GetRevision() < rev {
			t.Errorf("%q: revision %d < %d", c.url, r.GetRevision(), rev)
		}
	}
	if r := test("HTTPS://SHOP.example.com.:443/a/../b", rev); r.GetNormalizedUrl() != "https://shop.example.com/b" {
		t.Errorf("normalized %q", r.GetNormalizedUrl())
	}
	_, err = e.admin.TestAllowlistUrl(ctx, &gatehousev1.TestAllowlistUrlRequest{AccountId: "acme"})
	wantInvalid(t, err, "url")
	_, err = e.admin.TestAllowlistUrl(ctx, &gatehousev1.TestAllowlistUrlRequest{AccountId: "nobody", Url: "https://x.example"})
	wantCode(t, err, codes.NotFound)
}

func TestGetBusinessHoursStatus(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC) // Monday 09:00 in Berlin
	e := MustStart(t, "", func(o *Options) { o.Now = func() time.Time { return now } })
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	if _, err := e.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: "acme", BusinessHours: &gatehousev1.BusinessHours{
		Id: "office", Name: "Office", TimeZone: "Europe/Berlin",
		Weekly:   []*gatehousev1.WeeklyWindow{{Day: gatehousev1.Weekday_WEEKDAY_MONDAY, Start: "09:00", End: "17:00"}, {Day: gatehousev1.Weekday_WEEKDAY_TUESDAY, Start: "09:00", End: "17:00"}},
		Holidays: []*gatehousev1.Holiday{{Date: "2026-12-08", Name: "Closed day", Closed: true}},
	}}); err != nil {
		t.Fatal(err)
	}
	status := func(at *timestamppb.Timestamp) *gatehousev1.GetBusinessHoursStatusResponse {
		t.Helper()
		r, err := e.admin.GetBusinessHoursStatus(ctx, &gatehousev1.GetBusinessHoursStatusRequest{AccountId: "acme", Id: "office", Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Now (the server's clock): open, closes at 17:00 local, and after the
	// Tuesday holiday opens again the next Monday.
	r := status(nil)
	if !r.GetOpen() || r.GetCloseTime().AsTime() != time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC) ||
		r.GetNextOpenTime().AsTime() != time.Date(2026, 12, 14, 8, 0, 0, 0, time.UTC) || r.GetTimeZone() != "Europe/Berlin" {
		t.Fatalf("Monday 09:00: %v", r)
	}
	r = status(timestamppb.New(time.Date(2026, 12, 7, 16, 30, 0, 0, time.UTC)))
	if r.GetOpen() || r.GetCloseTime() != nil || r.GetNextOpenTime().AsTime() != time.Date(2026, 12, 14, 8, 0, 0, 0, time.UTC) {
		t.Fatalf("Monday 17:30: %v", r)
	}
	_, err := e.admin.GetBusinessHoursStatus(ctx, &gatehousev1.GetBusinessHoursStatusRequest{AccountId: "acme", Id: "nope"})
	wantCode(t, err, codes.NotFound)
	_, err = e.admin.GetBusinessHoursStatus(ctx, &gatehousev1.GetBusinessHoursStatusRequest{AccountId: "acme", Id: "office", Time: &timestamppb.Timestamp{Nanos: -1}})
	wantInvalid(t, err, "time")
}
