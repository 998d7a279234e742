package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/selector"
	"github.com/gatehouse-dev/gatehouse/internal/urlmatch"
)

// TestPrivacyRule_PathVariantsStillMatch: spellings of a protected path
// that a web server serves as the same page must not escape the rule.
func TestPrivacyRule_PathVariantsStillMatch(t *testing.T) {
	t.Parallel()
	as := Compile(AccountData{Account: Account{ID: "acme"}, PrivacyRules: []PrivacyRule{
		{ID: "card", Kind: PrivacyRuleKindDataMask, Selector: "input[name=cvv]", URLPattern: "shop.example.com/checkout"},
	}})
	if len(as.Problems) > 0 {
		t.Fatal(as.Problems)
	}
	el := selector.Element{Tag: "input", Attributes: map[string]string{"name": "cvv"}}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://shop.example.com/checkout", true},
		{"https://shop.example.com/checkout/step1", true},
		{"https://shop.example.com/%63heckout", true},
		{"https://shop.example.com//checkout", true},
		{"https://shop.example.com/Checkout", true},
		{"https://shop.example.com/CHECKOUT/x", true},
		{"https://shop.example.com/checkout;jsessionid=1", true},
		{"https://shop.example.com/checkout%3Bx", true},
		{"https://shop.example.com/checkout%2Fpay", true},
		{"https://shop.example.com/x/..%2Fcheckout", true},
		{"https://shop.example.com/checkouts", true}, // a plain prefix: wider, never narrower
		{"https://shop.example.com/cart", false},
		{"https://other.example.com/checkout", false},
		{"https://shop.example.com.evil.net/checkout", false},
	} {
		u, err := urlmatch.Parse(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		q := &Query{Role: RoleAgent, Feature: FeatureViewElement, Element: &el}
		d, _ := as.checkPrivacy(context.Background(), q, u)
		got := !d.Allowed
		if got != tc.want {
			t.Errorf("%s: masked=%v, want %v", tc.url, got, tc.want)
		}
	}
}

// TestPathEscapes_ProtectiveReading: a malformed or ambiguous escape in a
// page path never makes a privacy rule skip a page under its path (both
// rule kinds), and never makes an allowlist entry with a path allow a page
// that might be outside it.
func TestPathEscapes_ProtectiveReading(t *testing.T) {
	t.Parallel()
	as := Compile(AccountData{Account: Account{ID: "acme"},
		Allowlist: []AllowlistEntry{{ID: "co", Pattern: "shop.example.com/checkout"}},
		PrivacyRules: []PrivacyRule{
			{ID: "mask", Kind: PrivacyRuleKindDataMask, Selector: "input", URLPattern: "shop.example.com/checkout"},
			{ID: "block", Kind: PrivacyRuleKindButtonBlock, Selector: "button", URLPattern: "shop.example.com/checkout"},
		}})
	if len(as.Problems) > 0 {
		t.Fatal(as.Problems)
	}
	const (
		protected = iota // under /checkout however it is read: rules apply, allowlist allows
		ambiguous        // may be under /checkout: rules apply, allowlist does not allow
		outside          // not under /checkout: rules do not apply, allowlist does not allow
	)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/checkout", protected},
		{"/checkout/%zz", protected},
		{"/checkout/%", protected},
		{"/checkout/x%", protected},
		{"/checkout/%2", protected},
		{"/checkout/%G1", protected},
		{"/checkout/%00", protected},
		{"/checkout/%e0%a4%b9", protected}, // valid UTF-8
		{"/%63heckout/%zz", ambiguous},
		{"/%63heckout/%", ambiguous},
		{"/%63heckout/%2", ambiguous},
		{"/%63heckout%G1", ambiguous},
		{"/%63heckout/%00", ambiguous},
		{"/%43HECKOUT/%zZ", ambiguous},
		{"/%63%68eckout%", ambiguous},
		{"/check%6Fut/%z", ambiguous},
		{"/checkout%2Fpay", ambiguous},
		{"/checkout%2f..%2f..%2fadmin", ambiguous}, // %2F kept inside the segment
		{"/x%2F..%2Fcheckout", ambiguous},          // %2F read as a slash
		{"/x%5C..%5Ccheckout", ambiguous},
		{"/checkout/%C0%AE%C0%AE/admin", ambiguous}, // overlong ".."
		{"/checkout/%E0%80%AE%E0%80%AE/admin", ambiguous},
		{"/x/%C0%AE%C0%AE/checkout", ambiguous},
		{"/%C0%AFcheckout", ambiguous}, // overlong "/"
		{"/x%C0%AF..%C0%AFcheckout", ambiguous},
		{"/cart", outside},
		{"/cart/%zz", outside},
		{"/cart/%", outside},
		{"/cart%2Fx", outside},
		{"/%63art%G1", outside},
	} {
		u, err := urlmatch.Parse("https://shop.example.com" + tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		wantRule := tc.want != outside
		wantAllow := tc.want == protected
		for _, k := range []struct {
			f  Feature
			el selector.Element
		}{{FeatureViewElement, selector.Element{Tag: "input"}}, {FeatureType, selector.Element{Tag: "input"}}, {FeatureClick, selector.Element{Tag: "button"}}} {
			q := &Query{Role: RoleAgent, Feature: k.f, Element: &k.el}
			d, err := as.checkPrivacy(context.Background(), q, u)
			if err != nil {
				t.Fatal(err)
			}
			if got := !d.Allowed; got != wantRule {
				t.Errorf("%s %v: rule applies=%v, want %v", tc.path, k.f, got, wantRule)
			}
		}
		if _, got, _ := as.AllowlistMatch(u); got != wantAllow {
			t.Errorf("%s: allowlist entry matches=%v, want %v", tc.path, got, wantAllow)
		}
	}
}

// FuzzPrivacyPathEscapes: when a privacy rule applies on a page, it applies
// on every spelling of that page that adds a malformed escape or
// percent-encodes one more character: such a variant is never less
// protected.
func FuzzPrivacyPathEscapes(f *testing.F) {
	f.Add("/checkout", "/checkout", uint8(1))
	f.Add("/checkout", "/%63heckout", uint8(3))
	f.Add("/Pay/Card", "/pay/card/x", uint8(0))
	f.Add("/a;b", "/a/b;c", uint8(2))
	f.Add("/checkout", "/x/..%2Fcheckout", uint8(5))
	f.Fuzz(func(t *testing.T, rulePath, pagePath string, k uint8) {
		if !strings.HasPrefix(pagePath, "/") || strings.ContainsAny(pagePath, "?#") || len(pagePath) > 200 {
			return
		}
		as := Compile(AccountData{Account: Account{ID: "acme"}, PrivacyRules: []PrivacyRule{
			{ID: "r", Kind: PrivacyRuleKindDataMask, Selector: "input", URLPattern: "shop.example.com" + rulePath},
		}})
		if len(as.Problems) > 0 || len(as.privacy) != 1 || as.privacy[0].anyPage {
			return
		}
		r := &as.privacy[0]
		u, err := urlmatch.Parse("https://shop.example.com" + pagePath)
		if err != nil || !r.matchPage(u) {
			return
		}
		variants := []string{pagePath + "%zz", pagePath + "%", pagePath + "%2", pagePath + "%G1", pagePath + "/%", pagePath + "%00"}
		// Percent-encode the byte at k (not a slash, backslash or '%',
		// whose escapes mean something else, nor a byte of an escape),
		// alternately in upper and lower case.
		i := int(k) % len(pagePath)
		inEscape := i >= 1 && pagePath[i-1] == '%' || i >= 2 && pagePath[i-2] == '%'
		if c := pagePath[i]; c != '/' && c != '\\' && c != '%' && !inEscape {
			esc := fmt.Sprintf("%%%02X", pagePath[i])
			if k&1 == 1 {
				esc = strings.ToLower(esc)
			}
			variants = append(variants, pagePath[:i]+esc+pagePath[i+1:])
		}
		for _, v := range variants {
			vu, err := urlmatch.Parse("https://shop.example.com" + v)
			if err != nil {
				continue
			}
			if !r.matchPage(vu) {
				t.Errorf("rule %q applies on %q (%q) but not on %q (%q)", rulePath, pagePath, u.Path, v, vu.Path)
			}
		}
	})
}
