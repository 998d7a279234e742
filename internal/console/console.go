// Package console serves the web admin console and guards the HTTP
// address it shares with the HTTP/JSON API.
//
// The console is static files embedded in the binary (no build step): an
// HTML page, a stylesheet and one script that talks to the HTTP/JSON API
// like any other client. Handler puts the console at "/" and, in front of
// the API, adds what a browser client needs and a non-browser client does
// not notice:
//
//   - sign-in: POST /console/signin checks a caller token against the API
//     and keeps it in an HttpOnly, SameSite=Strict cookie (Secure under
//     TLS); a request that carries the cookie and no Authorization header
//     is sent on to the API with "Authorization: Bearer <token>". The token
//     never reaches the page's script after sign-in.
//   - CSRF: every state-changing request from a browser (one carrying the
//     sign-in cookie, an Origin or a Sec-Fetch-Site header) must echo the
//     value of the csrf cookie in the X-Gatehouse-CSRF header (double
//     submit), and cross-origin state-changing requests are refused
//     outright (net/http's CrossOriginProtection).
//   - DNS rebinding: on a loopback address only loopback host names
//     (localhost, 127.0.0.0/8, ::1) are served, so a page of another site
//     whose name resolves to 127.0.0.1 cannot reach an unauthenticated
//     daemon.
//   - a strict Content-Security-Policy (no inline script or style, nothing
//     from another origin), nosniff, no framing, no referrer.
package console

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

//go:embed static
var staticFS embed.FS

// Cookie and header names.
const (
	// TokenCookie holds the caller token after sign-in (HttpOnly).
	TokenCookie = "gatehouse_token"
	// CSRFCookie holds the double-submit CSRF value the page's script
	// echoes in CSRFHeader (readable by the script, SameSite=Strict).
	CSRFCookie = "gatehouse_csrf"
	// CSRFHeader carries the CSRF value on state-changing requests.
	CSRFHeader = "X-Gatehouse-CSRF"
)

// MaxSignInBody bounds the body of a sign-in request.
const MaxSignInBody = 4096

// ContentSecurityPolicy is sent with every response: scripts, styles,
// images and API calls from this origin only, nothing inline, no plugins,
// no framing, forms post nowhere else.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Options configure Handler.
type Options struct {
	// TLS marks the cookies Secure: the address serves HTTPS.
	TLS bool
	// Loopback restricts the Host header to loopback names: the address
	// is a loopback address (see package comment, DNS rebinding).
	Loopback bool
	// Registerer, when set, receives gatehouse_console_refused_total.
	Registerer prometheus.Registerer
	// SignInCheckPath is the API path the sign-in asks, with the token,
	// to check it: any answer but 401 accepts the token. Default
	// /v1/accounts?page_size=1.
	SignInCheckPath string
}

// Refusal reasons, the label of gatehouse_console_refused_total.
const (
	ReasonCrossOrigin = "cross_origin" // a cross-origin state-changing request
	ReasonCSRF        = "csrf"         // no or a wrong X-Gatehouse-CSRF value
	ReasonHost        = "host"         // a foreign Host on a loopback address
	ReasonSignIn      = "sign_in"      // a sign-in with a malformed body (over MaxSignInBody, no token)
	ReasonToken       = "token"        // a sign-in with a token the API does not accept
)

// Handler serves the console at "/" and api behind the console's guards.
// It panics when opts.Registerer refuses its metric (registered twice).
func Handler(api http.Handler, opts Options) http.Handler {
	if opts.SignInCheckPath == "" {
		opts.SignInCheckPath = "/v1/accounts?page_size=1"
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_console_refused_total",
		Help: "Requests the console's guards refused, by reason (cross_origin, csrf, host, sign_in, token).",
	}, []string{"reason"})
	for _, r := range []string{ReasonCrossOrigin, ReasonCSRF, ReasonHost, ReasonSignIn, ReasonToken} {
		refused.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(refused)
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	h := &handler{api: api, opts: opts, files: http.FileServerFS(static), refused: refused}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", h.index)
	mux.HandleFunc("GET /index.html", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusMovedPermanently) })
	mux.Handle("GET /console/", http.StripPrefix("/console", h.assets()))
	mux.HandleFunc("POST /console/signin", h.signIn)
	mux.HandleFunc("POST /console/signout", h.signOut)
	mux.HandleFunc("/", h.forward)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		refused.WithLabelValues(ReasonCrossOrigin).Inc()
		writeStatus(w, http.StatusForbidden, 7, "cross-origin request refused")
	}))
	return h.headers(cop.Handler(mux))
}

type handler struct {
	api     http.Handler
	opts    Options
	files   http.Handler
	refused *prometheus.CounterVec
}

// refuse answers with a google.rpc.Status and counts the refusal.
func (h *handler) refuse(w http.ResponseWriter, reason string, httpCode, grpcCode int, msg string) {
	h.refused.WithLabelValues(reason).Inc()
	writeStatus(w, httpCode, grpcCode, msg)
}

const csrfMessage = "missing or wrong " + CSRFHeader + " header (reload the console)"

// headers sets the security headers and refuses foreign host names on a
// loopback address.
func (h *handler) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if h.opts.Loopback && !LoopbackHost(r.Host) {
			h.refuse(w, ReasonHost, http.StatusMisdirectedRequest, 7,
				"this address serves loopback host names only (localhost, 127.0.0.1, [::1]); host "+quote(r.Host)+" refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// LoopbackHost reports whether the Host header names this machine:
// localhost (or a name under .localhost), an address in 127.0.0.0/8, or
// ::1, with or without a port.
func LoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *handler) assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || r.URL.Path == "/index.html" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.files.ServeHTTP(w, r)
	})
}

// index serves the page and gives the browser a CSRF value when it has
// none.
func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CSRFCookie); err != nil || len(c.Value) < 16 {
		http.SetCookie(w, h.cookie(CSRFCookie, newSecret(), false))
	}
	page, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}

func (h *handler) cookie(name, value string, httpOnly bool) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/",
		HttpOnly: httpOnly, Secure: h.opts.TLS, SameSite: http.SameSiteStrictMode,
	}
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// browser reports whether r comes from a browser: it carries the sign-in
// cookie or one of the headers every current browser sends with a
// state-changing fetch.
func browser(r *http.Request) bool {
	if _, err := r.Cookie(TokenCookie); err == nil {
		return true
	}
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfOK checks the double-submit value: the header must equal the cookie.
func csrfOK(r *http.Request) bool {
	c, err := r.Cookie(CSRFCookie)
	if err != nil || len(c.Value) < 16 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.Header.Get(CSRFHeader))) == 1
}

// forward sends a request to the API, with the sign-in cookie's token as
// its bearer when it has no Authorization header of its own.
func (h *handler) forward(w http.ResponseWriter, r *http.Request) {
	if !safeMethod(r.Method) && browser(r) && !csrfOK(r) {
		h.refuse(w, ReasonCSRF, http.StatusForbidden, 7, csrfMessage)
		return
	}
	if c, err := r.Cookie(TokenCookie); err == nil && c.Value != "" && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+c.Value)
	}
	h.api.ServeHTTP(w, r)
}

// signIn checks a token by asking the API with it, then keeps it in the
// HttpOnly cookie.
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	if !csrfOK(r) {
		h.refuse(w, ReasonCSRF, http.StatusForbidden, 7, csrfMessage)
		return
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, MaxSignInBody)).Decode(&in); err != nil || strings.TrimSpace(in.Token) == "" {
		h.refuse(w, ReasonSignIn, http.StatusBadRequest, 3, fmt.Sprintf("send {\"token\": \"gh_k-…\"} (at most %d bytes)", MaxSignInBody))
		return
	}
	token := strings.TrimSpace(in.Token)
	if !cookieSafe(token) {
		h.refuse(w, ReasonToken, http.StatusUnauthorized, 16, "the bearer token is not a Gatehouse token (those read gh_k-…_…)")
		return
	}
	check := httptest.NewRequestWithContext(r.Context(), http.MethodGet, h.opts.SignInCheckPath, nil)
	check.Host = r.Host
	check.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.api.ServeHTTP(rec, check)
	if rec.Code == http.StatusUnauthorized {
		msg := "the token was not accepted"
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &st) == nil && st.Message != "" {
			msg = st.Message
		}
		h.refuse(w, ReasonToken, http.StatusUnauthorized, 16, msg)
		return
	}
	http.SetCookie(w, h.cookie(TokenCookie, token, true))
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

func (h *handler) signOut(w http.ResponseWriter, r *http.Request) {
	if !csrfOK(r) {
		h.refuse(w, ReasonCSRF, http.StatusForbidden, 7, csrfMessage)
		return
	}
	c := h.cookie(TokenCookie, "", true)
	c.MaxAge = -1
	c.Expires = time.Unix(0, 0)
	http.SetCookie(w, c)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte("{}"))
}

// writeStatus answers with a google.rpc.Status body, as the API does.
func writeStatus(w http.ResponseWriter, httpCode, grpcCode int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpCode)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": grpcCode, "message": msg, "details": []any{}})
}

// cookieSafe reports whether s can be a cookie value unchanged (RFC 6265
// cookie-octets), so the cookie holds exactly the token that was checked.
func cookieSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
	}
	return s != ""
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
