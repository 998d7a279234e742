package policy

import (
	"context"
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
