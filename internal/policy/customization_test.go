package policy

import (
	"strings"
	"testing"
)

func TestNegotiateLanguage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		// Exact languages.
		{"en", "en"}, {"fr", "fr"}, {"it", "it"}, {"de", "de"}, {"es", "es"}, {"pt", "pt"}, {"nl", "nl"},
		// Regional variants.
		{"fr-CA", "fr"}, {"fr-BE", "fr"}, {"de-AT", "de"}, {"de-CH", "de"}, {"pt-BR", "pt"}, {"pt-PT", "pt"},
		{"nl-BE", "nl"}, {"es-419", "es"}, {"es-MX", "es"}, {"it-CH", "it"}, {"en-US", "en"},
		// Case and separators.
		{"EN-gb", "en"}, {"FR-ca", "fr"}, {"de_AT", "de"}, {" nl ", "nl"},
		// Scripts and extensions.
		{"de-Latn-DE", "de"}, {"fr-u-ca-gregory", "fr"},
		// Languages close enough to a supported one.
		{"gsw", "de"}, {"af", "nl"},
		// Nothing usable: English.
		{"", "en"}, {"   ", "en"}, {"garbage!!", "en"}, {"ja", "en"}, {"zh-Hant-TW", "en"}, {"und", "en"},
		{"*", "en"}, {"x-private", "en"}, {"fr;q=0", "en"}, {"-", "en"}, {"en-", "en"},
		// Accept-Language lists.
		{"da, fr;q=0.8", "fr"},
		{"ja, de;q=0.5, fr;q=0.8", "fr"},
		{"fr;q=0.2, it;q=0.9", "it"},
		{"nl-BE,nl;q=0.9,en;q=0.8", "nl"},
		{"ja,zh;q=0.9", "en"},
		{"fr;q=0, es;q=0.5", "es"},
		// A malformed entry does not spoil the rest of a list.
		{"!!, pt-BR;q=0.7", "pt"},
		{"de;q=abc, it;q=0.3", "it"},
	}
	for _, tt := range tests {
		if got := NegotiateLanguage(tt.in); got != tt.want {
			t.Errorf("NegotiateLanguage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNegotiateLanguage_HostileInput(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		strings.Repeat("a-", 5000),
		strings.Repeat("fr,", 5000),
		strings.Repeat(";q=", 1000),
		"\x00\xff",
		"en-" + strings.Repeat("x", 10000),
	} {
		if got := NegotiateLanguage(in); !IsLanguage(got) {
			t.Errorf("NegotiateLanguage(%.20q…) = %q, not a language", in, got)
		}
	}
}

func TestIsLanguage(t *testing.T) {
	t.Parallel()
	for _, l := range Languages {
		if !IsLanguage(l) {
			t.Errorf("IsLanguage(%q) = false", l)
		}
	}
	for _, l := range []string{"", "EN", "en-US", "fr-CA", "ja", "pt_BR", " en", "english"} {
		if IsLanguage(l) {
			t.Errorf("IsLanguage(%q) = true", l)
		}
	}
}

func TestDefaultCustomization(t *testing.T) {
	t.Parallel()
	if len(Languages) != 7 || Languages[0] != "en" {
		t.Fatalf("Languages = %v, want seven with en first", Languages)
	}
	disclaimers := map[string]string{}
	agents := map[string]string{}
	for _, l := range Languages {
		c := DefaultCustomization("acme", l)
		if c.AccountID != "acme" || c.Language != l || c.Revision != 0 {
			t.Errorf("%s: header = %+v", l, c)
		}
		if c.DisclaimerText == "" || c.AgentAlias == "" || c.CustomerAlias == "" {
			t.Errorf("%s: empty text in %+v", l, c)
		}
		if n := len([]rune(c.AgentAlias)); n > 100 {
			t.Errorf("%s: agent alias has %d characters", l, n)
		}
		if n := len([]rune(c.CustomerAlias)); n > 100 {
			t.Errorf("%s: customer alias has %d characters", l, n)
		}
		if n := len([]rune(c.DisclaimerText)); n > 2000 {
			t.Errorf("%s: disclaimer has %d characters", l, n)
		}
		if c.AgentAlias == c.CustomerAlias {
			t.Errorf("%s: agent and customer alias are both %q", l, c.AgentAlias)
		}
		if other, dup := disclaimers[c.DisclaimerText]; dup {
			t.Errorf("%s and %s share the disclaimer %q", other, l, c.DisclaimerText)
		}
		disclaimers[c.DisclaimerText] = l
		if other, dup := agents[c.AgentAlias]; dup {
			t.Errorf("%s and %s share the agent alias %q", other, l, c.AgentAlias)
		}
		agents[c.AgentAlias] = l
	}
	if len(defaultTexts) != len(Languages) {
		t.Errorf("%d default texts for %d languages", len(defaultTexts), len(Languages))
	}
	// Unknown languages get the English texts.
	for _, l := range []string{"", "ja", "fr-CA"} {
		c := DefaultCustomization("acme", l)
		if want := DefaultCustomization("acme", "en"); c != want {
			t.Errorf("DefaultCustomization(%q) = %+v, want the English %+v", l, c, want)
		}
	}
}

// TestNegotiateLanguage_DefaultsAgree checks that the texts of a negotiated
// language exist, so a lookup never lands on the fallback by accident.
func TestNegotiateLanguage_DefaultsAgree(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"fr-CA", "de-AT", "pt-BR", "nl-BE", "es-419", "it-IT"} {
		lang := NegotiateLanguage(in)
		if c := DefaultCustomization("a", lang); c.Language != lang || lang == "en" {
			t.Errorf("%s → %s → %+v", in, lang, c)
		}
	}
}
