package policy

import (
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// Languages are the languages an account's texts exist in, as bare ISO 639-1
// codes. English comes first: it is what negotiation falls back to.
var Languages = []string{"en", "fr", "it", "de", "es", "pt", "nl"}

// FallbackLanguage is the language used when negotiation finds no match.
const FallbackLanguage = "en"

// defaultTexts are the built-in texts of each language of Languages.
var defaultTexts = map[string]struct{ disclaimer, agent, customer string }{
	"en": {
		disclaimer: "A support agent may see this session. You can end it at any time.",
		agent:      "Support agent",
		customer:   "Customer",
	},
	"fr": {
		disclaimer: "Un agent du support peut voir cette session. Vous pouvez y mettre fin à tout moment.",
		agent:      "Agent du support",
		customer:   "Client",
	},
	"it": {
		disclaimer: "Un operatore dell'assistenza può vedere questa sessione. Puoi terminarla in qualsiasi momento.",
		agent:      "Operatore",
		customer:   "Cliente",
	},
	"de": {
		disclaimer: "Ein Support-Mitarbeiter kann diese Sitzung sehen. Sie können sie jederzeit beenden.",
		agent:      "Support-Mitarbeiter",
		customer:   "Kunde",
	},
	"es": {
		disclaimer: "Un agente de soporte puede ver esta sesión. Puede finalizarla en cualquier momento.",
		agent:      "Agente de soporte",
		customer:   "Cliente",
	},
	"pt": {
		disclaimer: "Um agente de suporte pode ver esta sessão. Você pode encerrá-la a qualquer momento.",
		agent:      "Agente de suporte",
		customer:   "Cliente",
	},
	"nl": {
		disclaimer: "Een medewerker van de klantenservice kan deze sessie zien. U kunt de sessie op elk moment beëindigen.",
		agent:      "Medewerker",
		customer:   "Klant",
	},
}

// DefaultCustomization returns the built-in texts of a language for an
// account: a disclaimer saying that a support agent may see the session and
// that the customer can end it at any time, and the agent and customer
// aliases. Its Revision is 0, which marks texts that were never stored. A
// language outside Languages gets the English texts (and Language "en").
func DefaultCustomization(acct, lang string) Customization {
	t, ok := defaultTexts[lang]
	if !ok {
		lang = FallbackLanguage
		t = defaultTexts[lang]
	}
	return Customization{
		AccountID:      acct,
		Language:       lang,
		DisclaimerText: t.disclaimer,
		AgentAlias:     t.agent,
		CustomerAlias:  t.customer,
	}
}

// IsLanguage reports whether lang is exactly one of Languages.
func IsLanguage(lang string) bool { return slices.Contains(Languages, lang) }

// languageMatcher negotiates BCP 47 tags against Languages; its first
// supported tag (English) is the fallback.
var languageMatcher = func() language.Matcher {
	tags := make([]language.Tag, len(Languages))
	for i, l := range Languages {
		tags[i] = language.MustParse(l)
	}
	return language.NewMatcher(tags)
}()

// NegotiateLanguage picks the member of Languages that best serves tag, a
// BCP 47 tag ("fr-CA" → "fr", "de-AT" → "de", "pt-BR" → "pt") or an
// Accept-Language list ("da, fr;q=0.8" → "fr"). Case and '_' separators are
// tolerated. Empty, malformed and unsupported input gives "en"; in a list,
// malformed entries are skipped.
func NegotiateLanguage(tag string) string {
	tags := parseLanguageList(tag)
	if len(tags) == 0 {
		return FallbackLanguage
	}
	_, i, conf := languageMatcher.Match(tags...)
	if conf == language.No || i < 0 || i >= len(Languages) {
		return FallbackLanguage
	}
	return Languages[i]
}

// parseLanguageList parses an Accept-Language style list, most preferred
// first. When the list as a whole does not parse, every entry is parsed on
// its own and the malformed ones are dropped.
func parseLanguageList(s string) []language.Tag {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if tags, _, err := language.ParseAcceptLanguage(s); err == nil {
		return tags
	}
	type weighted struct {
		tag language.Tag
		q   float32
	}
	var ok []weighted
	for entry := range strings.SplitSeq(s, ",") {
		tags, qs, err := language.ParseAcceptLanguage(entry)
		if err != nil {
			continue
		}
		for i := range tags {
			ok = append(ok, weighted{tags[i], qs[i]})
		}
	}
	slices.SortStableFunc(ok, func(a, b weighted) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	out := make([]language.Tag, len(ok))
	for i, w := range ok {
		out[i] = w.tag
	}
	return out
}
