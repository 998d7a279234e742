package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/gen"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // resolves the details of HTTP errors
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// httpAddr returns the address of d's HTTP server, from its "serving
// http" log line (written before "serving").
func (d *daemon) httpAddr() string {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, line := range d.lines {
		if e, ok := parseLog(line); ok && e["msg"] == "serving http" {
			if a, _ := e["http_addr"].(string); a != "" {
				return a
			}
		}
	}
	d.t.Fatal(`no "serving http" log line with an http_addr`)
	return ""
}

// httpRoute is one RPC's HTTP binding, from the OpenAPI document.
type httpRoute struct {
	verb, path string
	// body is the request field sent as the body, "*" for the whole
	// request but the path parameters, "" for none.
	body string
}

// httpRoutes maps a full method name to its first binding.
func httpRoutes(t *testing.T) map[string]httpRoute {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(gen.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]httpRoute{}
	for path, ops := range doc.Paths {
		for verb, op := range ops {
			svc, method, ok := strings.Cut(op.OperationID, "_")
			if !ok || strings.TrimRight(method, "0123456789") != method {
				continue // an additional binding
			}
			r := httpRoute{verb: strings.ToUpper(verb), path: path}
			for _, p := range op.Parameters {
				if p.In == "body" {
					r.body = p.Name
					if p.Name == "body" {
						r.body = "*"
					}
				}
			}
			out["/gatehouse.v1."+svc+"/"+method] = r
		}
	}
	return out
}

var pathParamRE = regexp.MustCompile(`\{([^}]+)\}`)

// parity calls the same daemon over gRPC and over HTTP.
type parity struct {
	t      *testing.T
	conn   *grpc.ClientConn
	base   string
	routes map[string]httpRoute
	hc     *http.Client
}

// callResult is a call's result in a comparable form: the response, or the
// error's google.rpc.Status, as JSON; stream responses as a list.
type callResult map[string]any

func protoJSON(t *testing.T, m proto.Message) any {
	t.Helper()
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func methodDesc(t *testing.T, full string) protoreflect.MethodDescriptor {
	t.Helper()
	svc, name, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(name))
}

func newOutput(t *testing.T, md protoreflect.MethodDescriptor) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	return mt.New().Interface()
}

// grpcCall calls method with req over gRPC; of a stream it reads at most
// maxMsgs messages.
func (p *parity) grpcCall(method string, req proto.Message, maxMsgs int) callResult {
	t := p.t
	t.Helper()
	md := methodDesc(t, method)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if !md.IsStreamingServer() {
		resp := newOutput(t, md)
		if err := p.conn.Invoke(ctx, method, req, resp); err != nil {
			return callResult{"error": protoJSON(t, status.Convert(err).Proto())}
		}
		return callResult{"response": protoJSON(t, resp)}
	}
	st, err := p.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err == nil {
		err = st.SendMsg(req)
	}
	if err == nil {
		err = st.CloseSend()
	}
	var msgs []any
	for err == nil && len(msgs) < maxMsgs {
		resp := newOutput(t, md)
		if err = st.RecvMsg(resp); err == nil {
			msgs = append(msgs, protoJSON(t, resp))
		}
	}
	o := callResult{"stream": msgs}
	if err != nil && err != io.EOF {
		o["error"] = protoJSON(t, status.Convert(err).Proto())
	}
	return o
}

// httpRequest encodes req for route r the way a client of the OpenAPI
// document would: path parameters in the path, the body field as JSON,
// every other field as a query parameter.
func (p *parity) httpRequest(r httpRoute, req proto.Message) (*http.Request, error) {
	t := p.t
	fields, _ := protoJSON(t, req).(map[string]any)
	if fields == nil {
		fields = map[string]any{}
	}
	// update_mask is a comma-separated list of field paths in a query,
	// sent even when empty: without it, a PATCH derives the mask from the
	// body instead.
	if fd := req.ProtoReflect().Descriptor().Fields().ByName("update_mask"); fd != nil {
		fields["update_mask"] = strings.Join(req.ProtoReflect().Get(fd).Message().Interface().(*fieldmaskpb.FieldMask).GetPaths(), ",")
	}
	path := pathParamRE.ReplaceAllStringFunc(r.path, func(m string) string {
		name := strings.Trim(m, "{}")
		v := take(fields, strings.Split(name, "."))
		s, _ := v.(string)
		return url.PathEscape(s)
	})
	var body io.Reader
	switch r.body {
	case "":
	case "*":
		b, _ := json.Marshal(fields)
		body, fields = bytes.NewReader(b), nil
	default:
		// An unset body field is no body at all (an empty object would
		// set it).
		if v, ok := fields[r.body]; ok {
			delete(fields, r.body)
			b, _ := json.Marshal(v)
			body = bytes.NewReader(b)
		}
	}
	q := url.Values{}
	flatten(q, "", fields)
	u := p.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return http.NewRequestWithContext(t.Context(), r.verb, u, body)
}

// take removes and returns the value at path in m.
func take(m map[string]any, path []string) any {
	for _, k := range path[:len(path)-1] {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return nil
		}
		m = next
	}
	v := m[path[len(path)-1]]
	delete(m, path[len(path)-1])
	return v
}

func flatten(q url.Values, prefix string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(q, name, x)
		}
	case []any:
		for _, x := range v {
			flatten(q, prefix, x)
		}
	case nil:
	default:
		q.Add(prefix, fmt.Sprint(v))
	}
}

// httpCall calls method with req over HTTP; of a stream it reads at most
// maxMsgs lines.
func (p *parity) httpCall(method string, req proto.Message, maxMsgs int) callResult {
	t := p.t
	t.Helper()
	md := methodDesc(t, method)
	r, ok := p.routes[method]
	if !ok {
		t.Fatalf("%s has no HTTP route", method)
	}
	hreq, err := p.httpRequest(r, req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.hc.Do(hreq)
	if err != nil {
		t.Fatalf("%s %s: %v", hreq.Method, hreq.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	statusOf := func(b []byte) any {
		st := &spb.Status{}
		if err := protojson.Unmarshal(b, st); err != nil {
			t.Fatalf("%s %s: HTTP %d body %q is no google.rpc.Status: %v", hreq.Method, hreq.URL, resp.StatusCode, b, err)
		}
		if want := runtime.HTTPStatusFromCode(status.FromProto(st).Code()); want != resp.StatusCode && resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: HTTP %d for %v, want %d", hreq.Method, hreq.URL, resp.StatusCode, status.FromProto(st).Code(), want)
		}
		return protoJSON(t, st)
	}
	if !md.IsStreamingServer() {
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return callResult{"error": statusOf(b)}
		}
		out := newOutput(t, md)
		if err := protojson.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: response %q: %v", hreq.Method, hreq.URL, b, err)
		}
		return callResult{"response": protoJSON(t, out)}
	}
	if resp.StatusCode != http.StatusOK {
		// A stream that fails before its first message answers one line,
		// {"error": <status>}, with the error's HTTP status.
		var line struct {
			Error json.RawMessage `json:"error"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &line); err != nil || line.Error == nil {
			t.Fatalf("%s %s: HTTP %d body %q is no {\"error\": …} line", hreq.Method, hreq.URL, resp.StatusCode, b)
		}
		return callResult{"stream": []any(nil), "error": statusOf(line.Error)}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("%s %s: Content-Type %q, want application/x-ndjson", hreq.Method, hreq.URL, ct)
	}
	var msgs []any
	o := callResult{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for len(msgs) < maxMsgs && sc.Scan() {
		var line struct {
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("stream line %q: %v", sc.Bytes(), err)
		}
		if line.Error != nil {
			o["error"] = statusOf(line.Error)
			break
		}
		out := newOutput(t, md)
		if err := protojson.Unmarshal(line.Result, out); err != nil {
			t.Fatalf("stream result %q: %v", line.Result, err)
		}
		msgs = append(msgs, protoJSON(t, out))
	}
	o["stream"] = msgs
	return o
}

// side is the state of one of the two accounts the scenario runs on in
// lock-step: one written over gRPC, the other over HTTP.
type side struct {
	acct string
	ids  map[string]string
}

// normalize makes a twin callResult comparable: the other account's id and
// generated ids become this one's; etags, revisions, times and the
// fields named in ignore are dropped.
func normalize(v any, repl *strings.Replacer, ignore []string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k == "etag" || k == "revision" || k == "heartbeat_revision" || strings.HasSuffix(k, "_time") || slices.Contains(ignore, k) {
				continue
			}
			out[k] = normalize(x, repl, ignore)
		}
		return out
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalize(x, repl, ignore)
		}
		return out
	case string:
		// Etags and revisions quoted in messages differ too.
		return digits.ReplaceAllString(repl.Replace(v), "N")
	}
	return v
}

var digits = regexp.MustCompile(`[0-9]+`)

func canonical(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// pcase is one step of the parity scenario.
type pcase struct {
	method string
	// same: one request, sent over both transports; the callResults must be
	// equal as they are.
	same func(a *side) proto.Message
	// twin: a request per account, account a over gRPC and b over HTTP;
	// the callResults must be equal once normalized.
	twin func(s *side) proto.Message
	// after records what a twin step created.
	after  func(s *side, o callResult)
	ignore []string
	// wantErr: the step must fail (both ways alike).
	wantErr bool
	// msgs is how many messages of a stream are compared (default 1).
	msgs int
	// then runs after the step, before the next one.
	then func(p *parity, a, b *side)
}

func (c pcase) run(p *parity, a, b *side) {
	t := p.t
	t.Helper()
	n := c.msgs
	if n == 0 {
		n = 1
	}
	var g, h callResult
	var repl *strings.Replacer
	if c.same != nil {
		req := c.same(a)
		g, h = p.grpcCall(c.method, req, n), p.httpCall(c.method, req, n)
	} else {
		g, h = p.grpcCall(c.method, c.twin(a), n), p.httpCall(c.method, c.twin(b), n)
		if c.after != nil {
			c.after(a, g)
			c.after(b, h)
		}
		pairs := []string{b.acct, a.acct}
		for k, v := range b.ids {
			pairs = append(pairs, v, a.ids[k])
		}
		repl = strings.NewReplacer(pairs...)
	}
	if _, failed := g["error"]; failed != c.wantErr {
		t.Errorf("%s over gRPC: %s, want error=%v", c.method, canonical(g), c.wantErr)
	}
	gs, hs := canonical(g), canonical(h)
	if c.same == nil {
		gs = canonical(normalize(map[string]any(g), strings.NewReplacer(), c.ignore))
		hs = canonical(normalize(map[string]any(h), repl, c.ignore))
	}
	if gs != hs {
		t.Errorf("%s: gRPC and HTTP differ\ngRPC: %s\nHTTP: %s", c.method, gs, hs)
	}
	if c.then != nil {
		c.then(p, a, b)
	}
}

// awaitOutboxEmpty waits until the notification sender has delivered the
// notifications of both accounts: it writes to the store at its own pace,
// and a write between the two calls of a read step would make them differ.
func awaitOutboxEmpty(p *parity, a, b *side) {
	t := p.t
	t.Helper()
	adminc := gatehousev1.NewAdminServiceClient(p.conn)
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range []*side{a, b} {
		for {
			resp, err := adminc.ListNotifications(t.Context(), &gatehousev1.ListNotificationsRequest{AccountId: s.acct})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetNotifications()) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("notifications of %s not delivered: %v", s.acct, resp.GetNotifications())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// field returns the string at a dotted path of an callResult's response.
func (o callResult) field(path ...string) string {
	var v any = o["response"]
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// TestHTTP_EveryRPCAnswersAsOverGRPC walks the service descriptors and
// calls every method of every service over gRPC and over HTTP against one
// daemon: first with a request naming nothing that exists (the same error
// both ways, code and details), then in a scenario that exercises each
// one's success (and some refusals), reads sent identically both ways and
// writes applied to two accounts in lock-step, one per transport.
func TestHTTP_EveryRPCAnswersAsOverGRPC(t *testing.T) {
	t.Parallel()
	d := start(t, nil, loopbackArgs(t.TempDir(), "--http-addr", "127.0.0.1:0")...)
	c := dial(t, d.addr)
	p := &parity{t: t, conn: c.conn, base: "http://" + d.httpAddr(), routes: httpRoutes(t), hc: &http.Client{Timeout: 30 * time.Second}}

	var methods []string
	for _, fd := range []protoreflect.FileDescriptor{gatehousev1.File_gatehouse_v1_admin_service_proto,
		gatehousev1.File_gatehouse_v1_session_service_proto, gatehousev1.File_gatehouse_v1_decision_service_proto} {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				methods = append(methods, fmt.Sprintf("/%s/%s", svc.FullName(), svc.Methods().Get(j).Name()))
			}
		}
	}

	// 1. Nothing exists: every method with its path parameters naming
	// nothing, both ways.
	t.Run("unknown", func(t *testing.T) {
		p := *p
		p.t = t
		for _, m := range methods {
			md := methodDesc(t, m)
			mt, _ := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			req := mt.New()
			for _, pm := range pathParamRE.FindAllStringSubmatch(p.routes[m].path, -1) {
				setString(req, pm[1], "nope")
			}
			r := req.Interface()
			pcase{method: m, same: func(*side) proto.Message { return r }, wantErr: !okWhenEmpty[m]}.run(&p, nil, nil)
		}
	})

	// 2. The scenario.
	a := &side{acct: "par-grpc", ids: map[string]string{}}
	b := &side{acct: "par-http", ids: map[string]string{}}
	covered := map[string]bool{}
	t.Run("scenario", func(t *testing.T) {
		p := *p
		p.t = t
		for _, sc := range parityScenario() {
			covered[sc.method] = true
			sc.run(&p, a, b)
			if t.Failed() {
				t.Fatalf("stopped after %s", sc.method)
			}
		}
	})
	for _, m := range methods {
		if !covered[m] {
			t.Errorf("%s is in no parity scenario step", m)
		}
	}
}

// okWhenEmpty are the methods that succeed with a request naming nothing.
var okWhenEmpty = map[string]bool{
	"/gatehouse.v1.AdminService/ListAccounts":      true,
	"/gatehouse.v1.AdminService/ListCallerTokens":  true,
	"/gatehouse.v1.AdminService/BackupStore":       true,
	"/gatehouse.v1.AdminService/ListAuditEvents":   true,
	"/gatehouse.v1.AdminService/ListNotifications": true,
}

// setString sets the string field at a dotted path of m.
func setString(m protoreflect.Message, path, v string) {
	parts := strings.Split(path, ".")
	for _, k := range parts[:len(parts)-1] {
		m = m.Mutable(m.Descriptor().Fields().ByName(protoreflect.Name(k))).Message()
	}
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1])), protoreflect.ValueOfString(v))
}

const (
	admin    = "/gatehouse.v1.AdminService/"
	sessions = "/gatehouse.v1.SessionService/"
	decide   = "/gatehouse.v1.DecisionService/"
)

func allFunctions() *gatehousev1.SupportFunctions {
	f := &gatehousev1.SupportFunctions{}
	m := f.ProtoReflect()
	for i := range m.Descriptor().Fields().Len() {
		m.Set(m.Descriptor().Fields().Get(i), protoreflect.ValueOfBool(true))
	}
	return f
}

// parityScenario is the scenario's steps, in order.
func parityScenario() []pcase {
	save := func(key string, path ...string) func(s *side, o callResult) {
		return func(s *side, o callResult) { s.ids[key] = o.field(path...) }
	}
	agentOf := &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: "alice"}
	check := func(s *side, feature gatehousev1.Feature, u string) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: s.ids["lg"], Actor: agentOf, Feature: feature, Url: u}
	}
	return []pcase{
		{method: admin + "CreateAccount", twin: func(s *side) proto.Message {
			return &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: s.acct, DisplayName: "Parity"}}
		}},
		{method: admin + "CreateAccount", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: s.acct, DisplayName: "Again"}}
		}},
		{method: admin + "GetAccount", same: func(a *side) proto.Message { return &gatehousev1.GetAccountRequest{Id: a.acct} }},
		{method: admin + "ListAccounts", same: func(*side) proto.Message { return &gatehousev1.ListAccountsRequest{PageSize: 1} }},
		{method: admin + "UpdateAccount", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: s.acct, DisplayName: "Parity 2"}, UpdateMask: mask("display_name")}
		}},
		{method: admin + "UpdateAccount", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateAccountRequest{Account: &gatehousev1.Account{Id: s.acct, Etag: "999"}, UpdateMask: mask("display_name")}
		}},
		{method: admin + "GetLiveGuideSettings", same: func(a *side) proto.Message {
			return &gatehousev1.GetLiveGuideSettingsRequest{AccountId: a.acct}
		}},
		{method: admin + "UpdateLiveGuideSettings", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: s.acct, Chat: true, AgentClickRestricted: true},
				UpdateMask: mask("chat", "agent_click_restricted")}
		}},
		{method: admin + "UpdateLiveGuideSettings", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: &gatehousev1.LiveGuideSettings{AccountId: s.acct}, UpdateMask: mask("no_such_field")}
		}},
		{method: admin + "GetCustomization", same: func(a *side) proto.Message {
			return &gatehousev1.GetCustomizationRequest{AccountId: a.acct, Language: "fr-CA"}
		}},
		{method: admin + "UpdateCustomization", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateCustomizationRequest{Customization: &gatehousev1.Customization{AccountId: s.acct, Language: "fr", AgentAlias: "Conseiller"},
				UpdateMask: mask("agent_alias")}
		}},
		{method: admin + "GenerateCobrowseUrl", ignore: []string{"url", "cobrowse_url"}, twin: func(s *side) proto.Message {
			return &gatehousev1.GenerateCobrowseUrlRequest{AccountId: s.acct}
		}},
		{method: admin + "GenerateCobrowseUrl", wantErr: true, ignore: []string{"message", "metadata"}, twin: func(s *side) proto.Message {
			return &gatehousev1.GenerateCobrowseUrlRequest{AccountId: s.acct}
		}},
		{method: admin + "SetCobrowseUrl", twin: func(s *side) proto.Message {
			return &gatehousev1.SetCobrowseUrlRequest{AccountId: s.acct, Url: "https://" + s.acct + "-x.support.me"}
		}},
		{method: admin + "CreateAllowlistEntry", twin: func(s *side) proto.Message {
			return &gatehousev1.CreateAllowlistEntryRequest{AccountId: s.acct, Entry: &gatehousev1.AllowlistEntry{Id: "help", Pattern: "Example.COM/help/", Description: "help pages"}}
		}},
		{method: admin + "CreateAllowlistEntry", twin: func(s *side) proto.Message {
			return &gatehousev1.CreateAllowlistEntryRequest{AccountId: s.acct, Entry: &gatehousev1.AllowlistEntry{Id: "del", Pattern: "example.org"}}
		}},
		{method: admin + "CreateAllowlistEntry", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.CreateAllowlistEntryRequest{AccountId: s.acct, Entry: &gatehousev1.AllowlistEntry{Id: "tld", Pattern: "co.uk"}}
		}},
		{method: admin + "GetAllowlistEntry", same: func(a *side) proto.Message {
			return &gatehousev1.GetAllowlistEntryRequest{AccountId: a.acct, Id: "help"}
		}},
		{method: admin + "ListAllowlistEntries", same: func(a *side) proto.Message {
			return &gatehousev1.ListAllowlistEntriesRequest{AccountId: a.acct, PageSize: 1}
		}},
		{method: admin + "TestAllowlistUrl", same: func(a *side) proto.Message {
			return &gatehousev1.TestAllowlistUrlRequest{AccountId: a.acct, Url: "https://WWW.example.com/help/faq"}
		}},
		{method: admin + "TestAllowlistUrl", same: func(a *side) proto.Message {
			return &gatehousev1.TestAllowlistUrlRequest{AccountId: a.acct, Url: "https://example.com.evil.net/help/"}
		}},
		{method: admin + "UpdateAllowlistEntry", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateAllowlistEntryRequest{AccountId: s.acct, Entry: &gatehousev1.AllowlistEntry{Id: "help", Description: "help (v2)"}, UpdateMask: mask("description")}
		}},
		{method: admin + "CreatePrivacyRule", twin: func(s *side) proto.Message {
			return &gatehousev1.CreatePrivacyRuleRequest{AccountId: s.acct, Rule: &gatehousev1.PrivacyRule{Id: "pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "button.pay"}}
		}},
		{method: admin + "CreatePrivacyRule", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.CreatePrivacyRuleRequest{AccountId: s.acct, Rule: &gatehousev1.PrivacyRule{Id: "hover", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK, Selector: "a:hover"}}
		}},
		{method: admin + "GetPrivacyRule", same: func(a *side) proto.Message { return &gatehousev1.GetPrivacyRuleRequest{AccountId: a.acct, Id: "pay"} }},
		{method: admin + "ListPrivacyRules", same: func(a *side) proto.Message { return &gatehousev1.ListPrivacyRulesRequest{AccountId: a.acct} }},
		{method: admin + "UpdatePrivacyRule", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdatePrivacyRuleRequest{AccountId: s.acct, Rule: &gatehousev1.PrivacyRule{Id: "pay", Selector: "button.pay, button.buy"}, UpdateMask: mask("selector")}
		}},
		{method: admin + "CreateBusinessHours", twin: func(s *side) proto.Message {
			bh := &gatehousev1.BusinessHours{Id: "always", Name: "Always", TimeZone: "Europe/Paris"}
			for d := gatehousev1.Weekday_WEEKDAY_MONDAY; d <= gatehousev1.Weekday_WEEKDAY_SUNDAY; d++ {
				bh.Weekly = append(bh.Weekly, &gatehousev1.WeeklyWindow{Day: d, Start: "00:00", End: "24:00"})
			}
			return &gatehousev1.CreateBusinessHoursRequest{AccountId: s.acct, BusinessHours: bh}
		}},
		{method: admin + "GetBusinessHours", same: func(a *side) proto.Message {
			return &gatehousev1.GetBusinessHoursRequest{AccountId: a.acct, Id: "always"}
		}},
		{method: admin + "ListBusinessHours", same: func(a *side) proto.Message { return &gatehousev1.ListBusinessHoursRequest{AccountId: a.acct} }},
		{method: admin + "GetBusinessHoursStatus", same: func(a *side) proto.Message {
			return &gatehousev1.GetBusinessHoursStatusRequest{AccountId: a.acct, Id: "always", Time: timestamppb.New(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC))}
		}},
		{method: admin + "UpdateBusinessHours", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateBusinessHoursRequest{AccountId: s.acct, BusinessHours: &gatehousev1.BusinessHours{Id: "always", Name: "Around the clock"}, UpdateMask: mask("name")}
		}},
		{method: admin + "CreatePortal", twin: func(s *side) proto.Message {
			return &gatehousev1.CreatePortalRequest{AccountId: s.acct, Portal: &gatehousev1.Portal{Id: "top", Name: "Top", Functions: allFunctions(),
				NotificationEmail: "ops@example.com", BusinessHoursId: "always"}}
		}},
		{method: admin + "CreatePortal", twin: func(s *side) proto.Message {
			return &gatehousev1.CreatePortalRequest{AccountId: s.acct, Portal: &gatehousev1.Portal{Id: "sub", ParentId: "top", Name: "Sub", Functions: allFunctions()}}
		}},
		{method: admin + "GetPortal", same: func(a *side) proto.Message { return &gatehousev1.GetPortalRequest{AccountId: a.acct, Id: "sub"} }},
		{method: admin + "ListPortals", same: func(a *side) proto.Message { return &gatehousev1.ListPortalsRequest{AccountId: a.acct} }},
		{method: admin + "UpdatePortal", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdatePortalRequest{AccountId: s.acct, Portal: &gatehousev1.Portal{Id: "top", Functions: &gatehousev1.SupportFunctions{}}, UpdateMask: mask("functions.annotations")}
		}},
		{method: admin + "CreateTeam", twin: func(s *side) proto.Message {
			return &gatehousev1.CreateTeamRequest{AccountId: s.acct, Team: &gatehousev1.Team{Id: "t1", Name: "Team 1", PortalId: "sub"}}
		}},
		{method: admin + "GetTeam", same: func(a *side) proto.Message { return &gatehousev1.GetTeamRequest{AccountId: a.acct, Id: "t1"} }},
		{method: admin + "ListTeams", same: func(a *side) proto.Message { return &gatehousev1.ListTeamsRequest{AccountId: a.acct} }},
		{method: admin + "UpdateTeam", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateTeamRequest{AccountId: s.acct, Team: &gatehousev1.Team{Id: "t1", Name: "Team One"}, UpdateMask: mask("name")}
		}},
		{method: admin + "CreateRepresentative", twin: func(s *side) proto.Message {
			return &gatehousev1.CreateRepresentativeRequest{AccountId: s.acct, Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice",
				TeamId: "t1", Functions: allFunctions(), LiveGuideEnabled: true}}
		}},
		{method: admin + "GetRepresentative", same: func(a *side) proto.Message {
			return &gatehousev1.GetRepresentativeRequest{AccountId: a.acct, Id: "alice"}
		}},
		{method: admin + "ListRepresentatives", same: func(a *side) proto.Message {
			return &gatehousev1.ListRepresentativesRequest{AccountId: a.acct}
		}},
		{method: admin + "UpdateRepresentative", twin: func(s *side) proto.Message {
			return &gatehousev1.UpdateRepresentativeRequest{AccountId: s.acct, Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice A."},
				UpdateMask: mask("display_name")}
		}},
		{method: sessions + "StartSession", after: save("lg", "session", "id"), twin: func(s *side) proto.Message {
			return &gatehousev1.StartSessionRequest{AccountId: s.acct, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "c1"}
		}},
		{method: sessions + "StartSession", after: save("sup", "session", "id"), twin: func(s *side) proto.Message {
			return &gatehousev1.StartSessionRequest{AccountId: s.acct, Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "alice", CustomerId: "c2", PortalId: "sub"}
		}},
		{method: sessions + "StartSession", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.StartSessionRequest{AccountId: s.acct, Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "nobody", CustomerId: "c3", PortalId: "sub"}
		}},
		{method: sessions + "GetSession", same: func(a *side) proto.Message { return &gatehousev1.GetSessionRequest{SessionId: a.ids["lg"]} }},
		{method: sessions + "ListSessions", same: func(a *side) proto.Message {
			return &gatehousev1.ListSessionsRequest{AccountId: a.acct, Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE}
		}},
		{method: decide + "CheckFeature", same: func(a *side) proto.Message {
			return check(a, gatehousev1.Feature_FEATURE_CLICK, "https://www.example.com/help/faq")
		}},
		{method: decide + "CheckFeature", same: func(a *side) proto.Message {
			return check(a, gatehousev1.Feature_FEATURE_NAVIGATE, "https://example.com.evil.net/")
		}},
		{method: decide + "CheckFeature", wantErr: true, same: func(a *side) proto.Message {
			return check(a, gatehousev1.Feature_FEATURE_UNSPECIFIED, "")
		}},
		{method: decide + "CheckFeatures", same: func(a *side) proto.Message {
			return &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{
				check(a, gatehousev1.Feature_FEATURE_TYPE, "https://example.com/help/"),
				{SessionId: a.ids["sup"], Actor: agentOf, Feature: gatehousev1.Feature_FEATURE_ANNOTATIONS},
				{SessionId: a.ids["sup"], Actor: agentOf, Feature: gatehousev1.Feature_FEATURE_SEND_FILES},
			}}
		}},
		{method: decide + "CheckHypothetical", same: func(a *side) proto.Message {
			return &gatehousev1.CheckHypotheticalRequest{AccountId: a.acct,
				Session: &gatehousev1.HypotheticalSession{Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice"},
				Checks:  []*gatehousev1.HypotheticalCheck{{Actor: agentOf, Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://www.example.com/help/faq"}}}
		}},
		{method: decide + "CheckHypothetical", wantErr: true, same: func(a *side) proto.Message {
			return &gatehousev1.CheckHypotheticalRequest{AccountId: a.acct}
		}},
		{method: admin + "ExportAccount", same: func(a *side) proto.Message { return &gatehousev1.ExportAccountRequest{AccountId: a.acct} }},
		{method: admin + "ApplyAccount", twin: func(s *side) proto.Message {
			return &gatehousev1.ApplyAccountRequest{DryRun: true, Document: &gatehousev1.AccountDocument{Format: "gatehouse.account/v1", Account: &gatehousev1.Account{Id: s.acct, DisplayName: "Parity 3"}}}
		}},
		{method: admin + "ApplyAccount", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.ApplyAccountRequest{Document: &gatehousev1.AccountDocument{}}
		}},
		{method: decide + "GetSessionPolicy", same: func(a *side) proto.Message {
			return &gatehousev1.GetSessionPolicyRequest{SessionId: a.ids["lg"], Actor: agentOf, Language: "fr-CA"}
		}},
		{method: decide + "WatchSessionPolicy", same: func(a *side) proto.Message {
			return &gatehousev1.WatchSessionPolicyRequest{SessionId: a.ids["sup"], Actor: agentOf, Language: "de"}
		}},
		{method: decide + "WatchSessionPolicy", wantErr: true, same: func(a *side) proto.Message {
			return &gatehousev1.WatchSessionPolicyRequest{SessionId: a.ids["sup"], Actor: &gatehousev1.Actor{Role: gatehousev1.Role_ROLE_AGENT, Id: "mallory"}}
		}},
		{method: sessions + "InviteExternalSpecialist", twin: func(s *side) proto.Message {
			return &gatehousev1.InviteExternalSpecialistRequest{SessionId: s.ids["sup"], SpecialistId: "spec-1", DisplayName: "Specialist"}
		}},
		{method: sessions + "RemoveExternalSpecialist", twin: func(s *side) proto.Message {
			return &gatehousev1.RemoveExternalSpecialistRequest{SessionId: s.ids["sup"], SpecialistId: "spec-1"}
		}},
		{method: sessions + "EndSession", then: awaitOutboxEmpty, twin: func(s *side) proto.Message {
			return &gatehousev1.EndSessionRequest{SessionId: s.ids["sup"], CustomerRating: 5}
		}},
		{method: admin + "ListNotifications", same: func(a *side) proto.Message {
			return &gatehousev1.ListNotificationsRequest{AccountId: a.acct}
		}},
		{method: admin + "RetryNotification", wantErr: true, same: func(*side) proto.Message {
			return &gatehousev1.RetryNotificationRequest{Id: "nope", To: "x@example.com"}
		}},
		// The sender delivers (and so removes) notifications at its own
		// pace: which ones a listing holds is not the same for two
		// accounts a moment apart; deleting one that is gone is.
		{method: admin + "DeleteNotification", wantErr: true, same: func(*side) proto.Message {
			return &gatehousev1.DeleteNotificationRequest{Id: "nope"}
		}},
		{method: admin + "CreateCallerToken", after: save("token", "token", "id"), ignore: []string{"bearer"}, twin: func(s *side) proto.Message {
			return &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{Name: "parity", Role: gatehousev1.CallerRole_CALLER_ROLE_ADMIN, AccountId: s.acct}}
		}},
		{method: admin + "ListCallerTokens", same: func(*side) proto.Message { return &gatehousev1.ListCallerTokensRequest{} }},
		{method: admin + "RevokeCallerToken", twin: func(s *side) proto.Message { return &gatehousev1.RevokeCallerTokenRequest{Id: s.ids["token"]} }},
		{method: admin + "ListAuditEvents", same: func(a *side) proto.Message {
			return &gatehousev1.ListAuditEventsRequest{AccountId: a.acct, PageSize: 5}
		}},
		{method: admin + "BackupStore", msgs: 1 << 20, same: func(*side) proto.Message { return &gatehousev1.BackupStoreRequest{} }},
		{method: admin + "DeleteAllowlistEntry", twin: func(s *side) proto.Message {
			return &gatehousev1.DeleteAllowlistEntryRequest{AccountId: s.acct, Id: "del"}
		}},
		{method: admin + "DeletePrivacyRule", twin: func(s *side) proto.Message {
			return &gatehousev1.DeletePrivacyRuleRequest{AccountId: s.acct, Id: "pay", Etag: "1"}
		}, wantErr: true, ignore: []string{"message", "metadata"}},
		{method: admin + "DeletePrivacyRule", twin: func(s *side) proto.Message {
			return &gatehousev1.DeletePrivacyRuleRequest{AccountId: s.acct, Id: "pay"}
		}},
		{method: admin + "DeleteTeam", wantErr: true, twin: func(s *side) proto.Message {
			return &gatehousev1.DeleteTeamRequest{AccountId: s.acct, Id: "t1"}
		}},
		{method: sessions + "EndSession", twin: func(s *side) proto.Message { return &gatehousev1.EndSessionRequest{SessionId: s.ids["lg"]} }},
		{method: admin + "DeleteRepresentative", twin: func(s *side) proto.Message {
			return &gatehousev1.DeleteRepresentativeRequest{AccountId: s.acct, Id: "alice"}
		}},
		{method: admin + "DeleteTeam", twin: func(s *side) proto.Message { return &gatehousev1.DeleteTeamRequest{AccountId: s.acct, Id: "t1"} }},
		{method: admin + "DeletePortal", twin: func(s *side) proto.Message {
			return &gatehousev1.DeletePortalRequest{AccountId: s.acct, Id: "top"}
		}},
		{method: admin + "DeleteBusinessHours", twin: func(s *side) proto.Message {
			return &gatehousev1.DeleteBusinessHoursRequest{AccountId: s.acct, Id: "always"}
		}},
		{method: admin + "DeleteAccount", twin: func(s *side) proto.Message { return &gatehousev1.DeleteAccountRequest{Id: s.acct} }},
		{method: admin + "GetAccount", wantErr: true, same: func(a *side) proto.Message { return &gatehousev1.GetAccountRequest{Id: a.acct} }},
	}
}

// readmeCurl matches a curl call of the README's HTTP examples:
// curl -s[N] [-X METHOD] URL [-d 'BODY'].
var readmeCurl = regexp.MustCompile(`^curl -sN? (?:-X (\w+) )?"?(\$H[^" ]*)"?(?: -d '([^']*)')?$`)

// TestREADME_HTTPExamples replays the README's curl calls against a
// daemon with the demo data, as make run starts it: each must answer 200
// (a stream, its first line with a result); the session id the README
// writes as s-… is the one its StartSession call returned.
func TestREADME_HTTPExamples(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		m := readmeCurl.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("README curl call %q is not of the form this test replays", line)
		}
		calls = append(calls, m)
	}
	if len(calls) < 4 {
		t.Fatalf("%d curl calls in the README, want one of each kind", len(calls))
	}
	d := start(t, nil, loopbackArgs(t.TempDir(), "--demo", "--http-addr", "127.0.0.1:0")...)
	base := "http://" + d.httpAddr()
	session := ""
	kinds := map[string]bool{}
	for _, m := range calls {
		method, target, body := m[1], m[2], m[3]
		if method == "" {
			method = http.MethodGet
		}
		target = strings.Replace(target, "$H", base, 1)
		if strings.Contains(target, "s-…") {
			if session == "" {
				t.Fatalf("%s uses a session before the README starts one", target)
			}
			target = strings.ReplaceAll(target, "s-…", session)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var first []byte
		if resp.Header.Get("Content-Type") == "application/x-ndjson" {
			kinds["stream"] = true
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 16<<20)
			sc.Scan()
			first = sc.Bytes()
			if !bytes.HasPrefix(first, []byte(`{"result":`)) {
				t.Errorf("%s %s: first line %q", method, target, first)
			}
		} else {
			first, _ = io.ReadAll(resp.Body)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s %s: HTTP %d %s", method, target, body, resp.StatusCode, first)
		}
		var out struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
			Decision json.RawMessage `json:"decision"`
		}
		_ = json.Unmarshal(first, &out)
		switch {
		case out.Session.ID != "" && method == http.MethodPost:
			session = out.Session.ID
		case out.Decision != nil:
			kinds["decision"] = true
		case method == http.MethodPatch && strings.Contains(target, "update_mask=") && strings.Contains(body, `"etag"`):
			kinds["write"] = true
		case method == http.MethodGet:
			kinds["read"] = true
		}
	}
	for _, k := range []string{"read", "write", "decision", "stream"} {
		if !kinds[k] {
			t.Errorf("the README shows no %s over HTTP", k)
		}
	}
}
