package main

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/client"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	// maxBody bounds the JSON body of one request.
	maxBody = 64 << 10
	// maxDenied is how many denied events a session keeps for its page;
	// older ones are dropped (and counted).
	maxDenied = 200
)

// server is the session server: it starts co-browse (Live Guide) sessions
// and enforces the events of their participants with decisions made
// locally from each session's watched policy.
type server struct {
	c       *client.Client
	account string
	rep     string
	opts    []client.SessionOption

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one co-browse session and what was denied in it.
type session struct {
	local    *client.LocalSession
	agent    client.Actor
	customer client.Actor

	mu      sync.Mutex
	denied  []deniedEvent
	dropped int
}

// event is an incoming co-browse event.
type event struct {
	// Actor is "agent" or "customer".
	Actor string `json:"actor"`
	// Type is "click", "type" or "navigate".
	Type string `json:"type"`
	URL  string `json:"url"`
	// Frame is "top" (default) or "iframe".
	Frame string `json:"frame,omitempty"`
	// Element is the element clicked or typed into, as the Element message
	// in JSON: {"tag":"button","id":"…","classes":[…],"attributes":{…},
	// "ancestors":[{"tag":"form",…},…]}.
	Element json.RawMessage `json:"element,omitempty"`
}

// verdict is the answer to an event.
type verdict struct {
	Allowed  bool   `json:"allowed"`
	Reason   string `json:"reason"`
	Rule     string `json:"rule,omitempty"`
	Message  string `json:"message"`
	Revision uint64 `json:"revision"`
}

// deniedEvent is one refused event as the session's page lists it.
type deniedEvent struct {
	Time    time.Time `json:"time"`
	Event   event     `json:"event"`
	Verdict verdict   `json:"verdict"`
}

var features = map[string]gatehousev1.Feature{
	"click":    gatehousev1.Feature_FEATURE_CLICK,
	"type":     gatehousev1.Feature_FEATURE_TYPE,
	"navigate": gatehousev1.Feature_FEATURE_NAVIGATE,
}

func newServer(c *client.Client, account, rep string, opts ...client.SessionOption) *server {
	return &server{c: c, account: account, rep: rep, opts: opts, sessions: map[string]*session{}}
}

// handler routes:
//
//	POST /sessions                   start a session {"customer_id":"…"} → {"id":"…"}
//	POST /sessions/{id}/events       enforce an event → 200 allowed, 403 denied
//	POST /sessions/{id}/end          end the session
//	GET  /sessions/{id}/denied       what was denied, and how checks were answered (JSON)
//	GET  /sessions/{id}              the same as a page
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sessions", s.start)
	mux.HandleFunc("POST /sessions/{id}/events", s.withSession(s.event))
	mux.HandleFunc("POST /sessions/{id}/end", s.withSession(s.end))
	mux.HandleFunc("GET /sessions/{id}/denied", s.withSession(s.deniedJSON))
	mux.HandleFunc("GET /sessions/{id}", s.withSession(s.page))
	return mux
}

// Close stops the policy watches.
func (s *server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ss := range s.sessions {
		ss.local.Close()
		delete(s.sessions, id)
	}
}

func (s *server) start(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CustomerID string `json:"customer_id"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.CustomerID == "" {
		httpError(w, http.StatusBadRequest, "customer_id is required")
		return
	}
	ctx := r.Context()
	sess, err := s.c.StartSession(ctx, client.StartRequest{AccountID: s.account, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE,
		RepresentativeID: s.rep, CustomerID: req.CustomerID})
	if err != nil {
		gatehouseError(w, err)
		return
	}
	agent := client.Actor{Role: gatehousev1.Role_ROLE_AGENT, ID: sess.GetRepresentativeId()}
	// The watch outlives this request: only its opening is bounded by it.
	local, err := s.c.Session(ctx, sess.GetId(), agent, s.opts...)
	if err != nil {
		gatehouseError(w, err)
		return
	}
	s.mu.Lock()
	s.sessions[sess.GetId()] = &session{local: local, agent: agent,
		customer: client.Actor{Role: gatehousev1.Role_ROLE_CUSTOMER, ID: sess.GetCustomerId()}}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": sess.GetId(), "revision": local.Revision()})
}

func (s *server) withSession(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		ss := s.sessions[r.PathValue("id")]
		s.mu.Unlock()
		if ss == nil {
			httpError(w, http.StatusNotFound, "no such session")
			return
		}
		h(w, r, ss)
	}
}

func (s *server) event(w http.ResponseWriter, r *http.Request, ss *session) {
	var ev event
	if !decode(w, r, &ev) {
		return
	}
	req := client.CheckRequest{URL: ev.URL}
	switch ev.Actor {
	case "agent":
		req.Actor = ss.agent
	case "customer":
		req.Actor = ss.customer
	default:
		httpError(w, http.StatusBadRequest, `actor must be "agent" or "customer"`)
		return
	}
	f, ok := features[ev.Type]
	if !ok {
		httpError(w, http.StatusBadRequest, `type must be "click", "type" or "navigate"`)
		return
	}
	req.Feature = f
	switch ev.Frame {
	case "", "top":
		req.Frame = gatehousev1.Frame_FRAME_TOP_LEVEL
	case "iframe":
		req.Frame = gatehousev1.Frame_FRAME_IFRAME
	default:
		httpError(w, http.StatusBadRequest, `frame must be "top" or "iframe"`)
		return
	}
	if len(ev.Element) > 0 && string(ev.Element) != "null" {
		req.Element = &gatehousev1.Element{}
		if err := protojson.Unmarshal(ev.Element, req.Element); err != nil {
			httpError(w, http.StatusBadRequest, "element: "+err.Error())
			return
		}
	}
	d, err := ss.local.Check(r.Context(), req)
	switch {
	case errors.Is(err, client.ErrInvalidArgument):
		httpError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil && !errors.Is(err, client.ErrPolicyUnavailable):
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// Without a policy to decide with, Check denies: so does the server.
	v := verdict{Allowed: d.Allowed, Reason: d.Reason.String(), Rule: d.Rule, Message: d.Message, Revision: d.Revision}
	if d.Allowed {
		writeJSON(w, http.StatusOK, v)
		return
	}
	ss.mu.Lock()
	if len(ss.denied) == maxDenied {
		ss.denied = append(ss.denied[:0], ss.denied[1:]...)
		ss.dropped++
	}
	ss.denied = append(ss.denied, deniedEvent{Time: time.Now().UTC(), Event: ev, Verdict: v})
	ss.mu.Unlock()
	status := http.StatusForbidden
	if err != nil {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, v)
}

func (s *server) end(w http.ResponseWriter, r *http.Request, ss *session) {
	if _, err := s.c.EndSession(r.Context(), ss.local.ID(), client.Ratings{}); err != nil && !errors.Is(err, client.ErrSessionEnded) {
		gatehouseError(w, err)
		return
	}
	// The watch delivers the end; from then on every event is denied.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := ss.local.WaitClosed(ctx); err != nil {
		httpError(w, http.StatusGatewayTimeout, "the end has not reached the policy watch yet")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": ss.local.ID(), "ended": true})
}

// listing is what GET /sessions/{id}/denied returns and the page shows.
type listing struct {
	ID       string        `json:"id"`
	Revision uint64        `json:"revision"`
	Ended    bool          `json:"ended"`
	Denied   []deniedEvent `json:"denied"`
	Dropped  int           `json:"dropped"`
	// Checks says how the checks were answered: locally, by the server
	// (stale policy or a request outside what is decided locally), or
	// denied without any policy.
	Checks checkCounts `json:"checks"`
}

// checkCounts are client.SessionStats in JSON.
type checkCounts struct {
	Local  uint64 `json:"local"`
	Remote uint64 `json:"remote"`
	Failed uint64 `json:"failed"`
}

func (ss *session) listing() listing {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return listing{ID: ss.local.ID(), Revision: ss.local.Revision(), Ended: ss.local.Ended(),
		Denied: append([]deniedEvent{}, ss.denied...), Dropped: ss.dropped, Checks: checkCounts(ss.local.Stats())}
}

func (s *server) deniedJSON(w http.ResponseWriter, _ *http.Request, ss *session) {
	writeJSON(w, http.StatusOK, ss.listing())
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{"element": elementText}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Session {{.ID}}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}</style>
</head><body>
<h1>Session {{.ID}}</h1>
<p>Policy revision {{.Revision}}{{if .Ended}}, <strong>ended</strong>{{end}}.
Checks decided locally: {{.Checks.Local}}, by the server: {{.Checks.Remote}}, denied without a policy: {{.Checks.Failed}}.</p>
<h2>Denied events{{if .Dropped}} (the last {{len .Denied}}; {{.Dropped}} older ones dropped){{end}}</h2>
{{if .Denied}}<table><tr><th>time</th><th>actor</th><th>event</th><th>URL</th><th>element</th><th>reason</th><th>rule</th></tr>
{{range .Denied}}<tr><td>{{.Time.Format "15:04:05"}}</td><td>{{.Event.Actor}}</td><td>{{.Event.Type}}{{if eq .Event.Frame "iframe"}} (iframe){{end}}</td><td>{{.Event.URL}}</td><td>{{element .Event.Element}}</td><td title="{{.Verdict.Message}}">{{.Verdict.Reason}}</td><td>{{.Verdict.Rule}}</td></tr>
{{end}}</table>{{else}}<p>Nothing denied.</p>{{end}}
</body></html>
`))

// elementText shows an element as a short CSS-like description.
func elementText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var e gatehousev1.Element
	if protojson.Unmarshal(raw, &e) != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(e.GetTag())
	if e.GetId() != "" {
		b.WriteString("#" + e.GetId())
	}
	for _, c := range e.GetClasses() {
		b.WriteString("." + c)
	}
	return b.String()
}

func (s *server) page(w http.ResponseWriter, _ *http.Request, ss *session) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTmpl.Execute(w, ss.listing())
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		httpError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

// gatehouseError answers a failed Gatehouse call.
func gatehouseError(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	switch {
	case errors.Is(err, client.ErrInvalidArgument):
		code = http.StatusBadRequest
	case errors.Is(err, client.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, client.ErrFailedPrecondition), errors.Is(err, client.ErrPermissionDenied):
		code = http.StatusConflict
	case errors.Is(err, client.ErrUnavailable), errors.Is(err, client.ErrOverloaded):
		code = http.StatusServiceUnavailable
	}
	httpError(w, code, err.Error())
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
