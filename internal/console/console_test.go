package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeAPI stands in for the HTTP/JSON API: it answers 401 without the
// bearer "gh_k-good_secret" and otherwise echoes the method, path and
// authorization it saw.
func fakeAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := r.Header.Get("Authorization"); auth != "" && auth != "Bearer gh_k-good_secret" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"code":16,"message":"unknown or revoked token"}`)
			return
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	})
}

type client struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]string
}

func newClient(t *testing.T, opts Options) *client {
	return &client{t: t, h: Handler(fakeAPI(), opts), cookies: map[string]string{}}
}

func (c *client) do(method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:8471"+path, strings.NewReader(body))
	for k, v := range c.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return w
}

func TestIndex_HeadersAndCSRFCookie(t *testing.T) {
	c := newClient(t, Options{Loopback: true})
	w := c.do("GET", "/", "", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "/console/app.js") {
		t.Fatalf("index: %d %q", w.Code, w.Body.String())
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline code: %q", csp)
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers: %v", w.Header())
	}
	var csrf *http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == CSRFCookie {
			csrf = ck
		}
	}
	if csrf == nil || len(csrf.Value) < 32 || csrf.SameSite != http.SameSiteStrictMode || csrf.HttpOnly || csrf.Secure {
		t.Fatalf("csrf cookie %+v", csrf)
	}
	for _, asset := range []string{"/console/app.js", "/console/app.css"} {
		if w := c.do("GET", asset, "", nil); w.Code != 200 || w.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d", asset, w.Code)
		}
	}
	if w := c.do("GET", "/console/", "", nil); w.Code != 404 {
		t.Errorf("directory listing: %d", w.Code)
	}
}

// The console's files hold no inline script, inline style or event
// handler attribute (the CSP would block them), no third-party origin, and
// the script never writes HTML: innerHTML, outerHTML, insertAdjacentHTML,
// document.write, eval and string timers are absent, and neither
// localStorage nor sessionStorage is used.
func TestStatic_NoInlineCodeNoHTMLSinks(t *testing.T) {
	page, _ := staticFS.ReadFile("static/index.html")
	js, _ := staticFS.ReadFile("static/app.js")
	for _, re := range []string{`<script>`, `<script[^>]*>[^<]`, `<style`, `\son[a-z]+=`, `style=`, `https?://`, `javascript:`} {
		if m := regexp.MustCompile(`(?i)` + re).Find(page); m != nil {
			t.Errorf("index.html holds %q", m)
		}
	}
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "sessionStorage", "setTimeout('", "setTimeout(\""} {
		if strings.Contains(string(js), sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	if m := regexp.MustCompile(`https?://[a-z]`).FindAll(js, -1); len(m) > 0 {
		for _, u := range m {
			if !strings.HasPrefix(string(u), "https://w") { // placeholder example URLs only
				t.Errorf("app.js names an origin: %q", u)
			}
		}
	}
}

func TestSignIn_CookieAndForwarding(t *testing.T) {
	c := newClient(t, Options{TLS: true})
	c.do("GET", "/", "", map[string]string{"Host": "127.0.0.1:8471"})
	csrf := map[string]string{CSRFHeader: c.cookies[CSRFCookie], "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8471"}

	// A bad token is refused with the API's message and sets no cookie.
	w := c.do("POST", "/console/signin", `{"token":"gh_k-bad_x"}`, csrf)
	if w.Code != 401 || !strings.Contains(w.Body.String(), "unknown or revoked token") || c.cookies[TokenCookie] != "" {
		t.Fatalf("bad token: %d %s %v", w.Code, w.Body, c.cookies)
	}
	// Sign-in without the CSRF header is refused (login CSRF).
	if w := c.do("POST", "/console/signin", `{"token":"gh_k-good_secret"}`, map[string]string{"Sec-Fetch-Site": "same-origin"}); w.Code != 403 {
		t.Fatalf("sign-in without csrf: %d", w.Code)
	}
	w = c.do("POST", "/console/signin", `{"token":"gh_k-good_secret"}`, csrf)
	if w.Code != 200 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	var tok *http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == TokenCookie {
			tok = ck
		}
	}
	if tok == nil || !tok.HttpOnly || !tok.Secure || tok.SameSite != http.SameSiteStrictMode || tok.Path != "/" {
		t.Fatalf("token cookie %+v", tok)
	}
	// Reads carry the cookie's token as the bearer.
	if w := c.do("GET", "/v1/accounts", "", nil); w.Body.String() != "GET /v1/accounts Bearer gh_k-good_secret" {
		t.Fatalf("forwarded read: %q", w.Body)
	}
	// Writes with the cookie need the CSRF header.
	if w := c.do("PATCH", "/v1/accounts/a", "{}", nil); w.Code != 403 {
		t.Fatalf("cookie write without csrf: %d %s", w.Code, w.Body)
	}
	if w := c.do("PATCH", "/v1/accounts/a", "{}", map[string]string{CSRFHeader: "wrong-value-wrong-value"}); w.Code != 403 {
		t.Fatalf("cookie write with wrong csrf: %d", w.Code)
	}
	if w := c.do("PATCH", "/v1/accounts/a", "{}", csrf); w.Body.String() != "PATCH /v1/accounts/a Bearer gh_k-good_secret" {
		t.Fatalf("cookie write with csrf: %d %q", w.Code, w.Body)
	}
	// Sign-out clears the cookie.
	c.do("POST", "/console/signout", "", csrf)
	if _, ok := c.cookies[TokenCookie]; ok {
		t.Fatal("sign-out kept the token cookie")
	}
}

func TestCSRF_BrowserWritesWithoutCookie(t *testing.T) {
	c := newClient(t, Options{})
	// curl and other non-browser clients (no cookie, no Origin, no
	// Sec-Fetch-Site) are not affected.
	if w := c.do("POST", "/v1/accounts", "{}", map[string]string{"Authorization": "Bearer gh_k-good_secret"}); w.Code != 200 {
		t.Fatalf("curl write: %d %s", w.Code, w.Body)
	}
	// A cross-site form post to an unauthenticated daemon is refused
	// twice over: cross-origin, and no CSRF value.
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-origin"}, // same origin but no CSRF value
	} {
		if w := c.do("POST", "/v1/accounts", "{}", hdr); w.Code != 403 || !strings.Contains(w.Body.String(), `"code":7`) {
			t.Errorf("%v: %d %s", hdr, w.Code, w.Body)
		}
	}
	// Reads are not state-changing.
	if w := c.do("GET", "/v1/accounts", "", map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != 200 {
		t.Errorf("cross-site read: %d", w.Code)
	}
}

// Every refusal is counted by reason.
func TestRefusalsCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := &client{t: t, h: Handler(fakeAPI(), Options{Loopback: true, Registerer: reg}), cookies: map[string]string{}}
	c.do("GET", "/", "", nil)
	c.do("POST", "/v1/accounts", "{}", map[string]string{"Sec-Fetch-Site": "cross-site"})
	c.do("POST", "/v1/accounts", "{}", map[string]string{"Sec-Fetch-Site": "same-origin"})
	c.do("GET", "/", "", map[string]string{"Host": "evil.example"})
	csrf := map[string]string{CSRFHeader: c.cookies[CSRFCookie]}
	c.do("POST", "/console/signin", strings.Repeat(" ", MaxSignInBody)+`{"token":"gh_k-good_secret"}`, csrf)
	c.do("POST", "/console/signin", `{"token":"gh_k-bad_x"}`, csrf)
	c.do("POST", "/console/signin", `{"token":"gh_k-a;b"}`, csrf)
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gatehouse_console_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{ReasonCrossOrigin: 1, ReasonCSRF: 1, ReasonHost: 1, ReasonSignIn: 1, ReasonToken: 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("refusals %s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// Every metric of the console is documented in docs/operations.md.
func TestMetricsDocumented(t *testing.T) {
	reg := prometheus.NewRegistry()
	Handler(fakeAPI(), Options{Registerer: reg})
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("no metric registered")
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"{") && !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("docs/operations.md does not document %s", mf.GetName())
		}
	}
}

func TestLoopbackHosts(t *testing.T) {
	c := newClient(t, Options{Loopback: true})
	for host, want := range map[string]int{
		"127.0.0.1:8471": 200, "localhost:8471": 200, "[::1]:8471": 200, "127.0.0.2": 200, "app.localhost:1": 200,
		"evil.example:8471": 421, "127.0.0.1.evil.example": 421, "10.0.0.1:8471": 421, "": 421,
	} {
		if w := c.do("GET", "/v1/accounts", "", map[string]string{"Host": host}); w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
	// Off a loopback address any host name is served (authentication is
	// required there).
	c = newClient(t, Options{})
	if w := c.do("GET", "/", "", map[string]string{"Host": "gatehouse.example:8471"}); w.Code != 200 {
		t.Errorf("non-loopback: %d", w.Code)
	}
}
