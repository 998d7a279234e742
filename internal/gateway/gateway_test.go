package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/gen"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/schema"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// call is what the gateway sent to the gRPC side.
type call struct {
	method string
	req    proto.Message
	md     metadata.MD
}

// recorder is the gRPC side of the routing tests: it records each call
// and answers it with errRecorded (the daemon's real server is exercised
// by the end-to-end tests of cmd/gatehoused).
type recorder struct {
	mu    sync.Mutex
	calls []call
}

var errRecorded = status.Error(codes.FailedPrecondition, "recorded")

func (r *recorder) Invoke(ctx context.Context, method string, args, _ any, _ ...grpc.CallOption) error {
	md, _ := metadata.FromOutgoingContext(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, call{method: method, req: proto.Clone(args.(proto.Message)), md: md})
	r.mu.Unlock()
	return errRecorded
}

func (r *recorder) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, call{method: method, md: md})
	r.mu.Unlock()
	return nil, errRecorded
}

func (r *recorder) last(t *testing.T) call {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		t.Fatal("the gateway made no gRPC call")
	}
	return r.calls[len(r.calls)-1]
}

func newTestGateway(t *testing.T, o Options) (*Gateway, *recorder) {
	t.Helper()
	rec := &recorder{}
	if o.Conn == nil {
		o.Conn = rec
	}
	g, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return g, rec
}

// openAPI is the part of the OpenAPI document the tests read.
type openAPI struct {
	Swagger     string                                `json:"swagger"`
	Paths       map[string]map[string]openAPIOp       `json:"paths"`
	Definitions map[string]json.RawMessage            `json:"definitions"`
	Security    []map[string][]string                 `json:"security"`
	SecDefs     map[string]map[string]json.RawMessage `json:"securityDefinitions"`
}

type openAPIOp struct {
	OperationID string `json:"operationId"`
	Parameters  []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	Responses map[string]struct {
		Schema struct {
			Title string `json:"title"`
		} `json:"schema"`
	} `json:"responses"`
}

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(gen.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

// services are the API's service descriptors.
func services() []protoreflect.ServiceDescriptor {
	files := []protoreflect.FileDescriptor{
		gatehousev1.File_gatehouse_v1_admin_service_proto,
		gatehousev1.File_gatehouse_v1_session_service_proto,
		gatehousev1.File_gatehouse_v1_decision_service_proto,
	}
	var out []protoreflect.ServiceDescriptor
	for _, f := range files {
		for i := range f.Services().Len() {
			out = append(out, f.Services().Get(i))
		}
	}
	return out
}

var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

// concrete fills a path template's parameters with slugs.
func concrete(path string) string {
	return templateParam.ReplaceAllStringFunc(path, func(m string) string {
		name := strings.Trim(m, "{}")
		return "p-" + strings.NewReplacer(".", "-", "_", "-").Replace(name)
	})
}

// TestOpenAPI_Lint checks the OpenAPI document the way a linter would:
// it parses, every $ref resolves, every path parameter of a template is
// declared (and no other), operation ids are unique, a security scheme is
// declared; and it covers every RPC of every service.
func TestOpenAPI_Lint(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.Swagger != "2.0" {
		t.Errorf("swagger = %q, want 2.0", doc.Swagger)
	}
	if _, ok := doc.SecDefs["bearer"]; !ok || len(doc.Security) == 0 {
		t.Errorf("no bearer security scheme required: %v %v", doc.SecDefs, doc.Security)
	}
	refs := regexp.MustCompile(`"\$ref":\s*"#/definitions/([^"]+)"`).FindAllStringSubmatch(string(gen.OpenAPI), -1)
	if len(refs) == 0 {
		t.Fatal("no $ref in the document")
	}
	for _, r := range refs {
		if _, ok := doc.Definitions[r[1]]; !ok {
			t.Errorf("$ref %q does not resolve", r[1])
		}
	}
	ops := map[string]string{}
	for path, methods := range doc.Paths {
		inTemplate := map[string]bool{}
		for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
			inTemplate[m[1]] = true
		}
		for verb, op := range methods {
			if prev, dup := ops[op.OperationID]; dup {
				t.Errorf("operation id %q on %s %s and %s", op.OperationID, verb, path, prev)
			}
			ops[op.OperationID] = verb + " " + path
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.In == "path" {
					declared[p.Name] = true
					if !p.Required {
						t.Errorf("%s %s: path parameter %q not required", verb, path, p.Name)
					}
				}
			}
			for name := range inTemplate {
				if !declared[name] {
					t.Errorf("%s %s: template parameter %q not declared", verb, path, name)
				}
			}
			for name := range declared {
				if !inTemplate[name] {
					t.Errorf("%s %s: declared path parameter %q not in the template", verb, path, name)
				}
			}
			if _, ok := op.Responses["200"]; !ok {
				t.Errorf("%s %s: no 200 response", verb, path)
			}
			if _, ok := op.Responses["default"]; !ok {
				t.Errorf("%s %s: no default (google.rpc.Status) response", verb, path)
			}
		}
	}
	for _, svc := range services() {
		for i := range svc.Methods().Len() {
			id := string(svc.Name()) + "_" + string(svc.Methods().Get(i).Name())
			if _, ok := ops[id]; !ok {
				t.Errorf("RPC %s has no HTTP route (add it to proto/gatehouse/v1/gatehouse_http.yaml and run make generate)", id)
			}
		}
	}
}

// TestRoutes_EveryOperationReachesItsRPC sends a request to every route
// of the OpenAPI document and checks that the gateway calls the RPC the
// document names, and that the routes it serves as streams are exactly
// the server-streaming ones.
func TestRoutes_EveryOperationReachesItsRPC(t *testing.T) {
	doc := loadOpenAPI(t)
	g, rec := newTestGateway(t, Options{})
	methods := map[string]protoreflect.MethodDescriptor{}
	for _, svc := range services() {
		for i := range svc.Methods().Len() {
			m := svc.Methods().Get(i)
			methods[string(svc.Name())+"_"+string(m.Name())] = m
		}
	}
	n := 0
	for path, ops := range doc.Paths {
		for verb, op := range ops {
			n++
			md := methods[op.OperationID]
			if md == nil {
				// additional_bindings: the same RPC, id suffixed 2, 3, …
				md = methods[strings.TrimRight(op.OperationID, "0123456789")]
			}
			if md == nil {
				t.Errorf("%s %s: operation %q is no RPC", verb, path, op.OperationID)
				continue
			}
			url := concrete(path)
			body := io.Reader(nil)
			if verb == "post" || verb == "patch" {
				// "etag" is in every resource, and in no request with
				// body "*" that is not also valid: a field every body
				// decodes is not guaranteed, so send an empty object and
				// (for PATCH) an explicit mask.
				body = strings.NewReader("{}")
				if verb == "patch" {
					url += "?update_mask=name"
				}
			}
			req := httptest.NewRequest(strings.ToUpper(verb), url, body)
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req)
			c := rec.last(t)
			want := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
			if c.method != want {
				t.Errorf("%s %s called %s, want %s (status %d %s)", verb, url, c.method, want, w.Code, w.Body)
			}
			if w.Code != http.StatusBadRequest { // FAILED_PRECONDITION
				t.Errorf("%s %s: HTTP %d, want 400 from the recorded FAILED_PRECONDITION: %s", verb, url, w.Code, w.Body)
			}
			stream := strings.HasPrefix(op.Responses["200"].Schema.Title, "Stream result of")
			if stream != md.IsStreamingServer() {
				t.Errorf("%s %s: the document says stream=%v, the RPC %v", verb, path, stream, md.IsStreamingServer())
			}
			if got := streamingRoute(httptest.NewRequest(strings.ToUpper(verb), url, nil)); got != md.IsStreamingServer() {
				t.Errorf("streamingRoute(%s %s) = %v, want %v", verb, url, got, md.IsStreamingServer())
			}
			// A path parameter reaches its field.
			if c.req != nil {
				for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
					if got := fieldString(c.req.ProtoReflect(), m[1]); got != concrete("{"+m[1]+"}") {
						t.Errorf("%s %s: %s = %q, want %q", verb, url, m[1], got, concrete("{"+m[1]+"}"))
					}
				}
			}
		}
	}
	if n < len(methods) {
		t.Errorf("%d operations for %d RPCs", n, len(methods))
	}
}

// fieldString returns the string field at a dotted path of m.
func fieldString(m protoreflect.Message, path string) string {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		m = m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(p))).Message()
	}
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(parts[len(parts)-1]))).String()
}

func TestServesOpenAPI(t *testing.T) {
	g, _ := newTestGateway(t, Options{})
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || !slices.Equal(w.Body.Bytes(), gen.OpenAPI) {
		t.Errorf("GET /openapi.json: %d %q, %d bytes", w.Code, w.Header().Get("Content-Type"), w.Body.Len())
	}
}

// TestServesAccountSchema: the account document's JSON Schema is served at
// the path its $id names.
func TestServesAccountSchema(t *testing.T) {
	g, _ := newTestGateway(t, Options{})
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest(http.MethodGet, schema.AccountV1Path, nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/schema+json" || !slices.Equal(w.Body.Bytes(), schema.AccountV1) {
		t.Fatalf("GET %s: %d %q, %d bytes", schema.AccountV1Path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
	}
	var doc struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || !strings.HasSuffix(doc.ID, schema.AccountV1Path) {
		t.Fatalf("served schema: $id %q (%v), want one ending in %s", doc.ID, err, schema.AccountV1Path)
	}
}

// TestHeaders_OnlyAllowedOnesBecomeMetadata: an HTTP caller cannot set
// metadata beyond Authorization, X-Request-Id and trace context — in
// particular not the key under which the gateway forwards a verified
// client certificate, whichever spelling it tries.
func TestHeaders_OnlyAllowedOnesBecomeMetadata(t *testing.T) {
	g, rec := newTestGateway(t, Options{})
	req := httptest.NewRequest(http.MethodGet, "/v1/accounts/a1", nil)
	req.Header.Set("Authorization", "Bearer gh_k-x_y")
	req.Header.Set("X-Request-Id", "req-1")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	req.Header.Set("Grpc-Metadata-"+server.GatewayClientCertKey, "AAAA")
	req.Header.Set(server.GatewayClientCertKey, "AAAA")
	req.Header.Set("Grpc-Metadata-X-Gatehouse-Caller", "operator")
	req.Header.Set("Cookie", "a=b")
	g.ServeHTTP(httptest.NewRecorder(), req)
	md := rec.last(t).md
	for _, k := range []string{"authorization", "x-request-id", "traceparent"} {
		if len(md.Get(k)) != 1 {
			t.Errorf("metadata %q = %q, want one value", k, md.Get(k))
		}
	}
	for k := range md {
		switch k {
		case "authorization", "x-request-id", "traceparent", "x-forwarded-for", "x-forwarded-host":
		default:
			t.Errorf("HTTP request set metadata %q = %q", k, md.Get(k))
		}
	}
}

func TestBody_OverLimitIsResourceExhausted(t *testing.T) {
	refused := server.NewHTTPRefused()
	g, rec := newTestGateway(t, Options{MaxBodyBytes: 100, Refused: refused})
	big := `{"display_name":"` + strings.Repeat("x", 200) + `"}`
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			rec.calls = nil
			req := httptest.NewRequest(http.MethodPost, "/v1/accounts", strings.NewReader(big))
			if chunked {
				req.ContentLength = -1
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("HTTP %d, want 413: %s", w.Code, w.Body)
			}
			var st struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Details []struct {
					Reason string `json:"reason"`
				} `json:"details"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
			if codes.Code(st.Code) != codes.ResourceExhausted || !strings.Contains(st.Message, "--http-max-body-bytes") ||
				len(st.Details) != 1 || st.Details[0].Reason != "HTTP_BODY_TOO_LARGE" {
				t.Errorf("status %+v", st)
			}
			if len(rec.calls) != 0 {
				t.Errorf("an oversized body reached the server: %v", rec.calls)
			}
		})
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("body_too_large")); n != 2 {
		t.Errorf("gatehouse_http_refused_total{reason=body_too_large} = %v, want 2", n)
	}
	// Under the limit it passes.
	req := httptest.NewRequest(http.MethodPost, "/v1/accounts", strings.NewReader(`{"id":"a"}`))
	g.ServeHTTP(httptest.NewRecorder(), req)
	if got := rec.last(t).req.(*gatehousev1.CreateAccountRequest).GetAccount().GetId(); got != "a" {
		t.Errorf("account id %q", got)
	}
}

// TestPatch_DerivedMask: without update_mask a PATCH updates the fields
// its body holds, except those that identify or version the resource;
// with one the caller's mask is sent as given; a body with nothing to
// change is refused before any call.
func TestPatch_DerivedMask(t *testing.T) {
	refused := server.NewHTTPRefused()
	g, rec := newTestGateway(t, Options{Refused: refused})
	cases := []struct {
		url, body string
		want      []string // nil: refused with INVALID_ARGUMENT
	}{
		{"/v1/accounts/acme/liveGuideSettings", `{"chat":true,"etag":"7","account_id":"acme","revision":"7"}`, []string{"chat"}},
		{"/v1/accounts/acme/liveGuideSettings", `{"agentClickRestricted":true,"etag":"7"}`, []string{"agent_click_restricted"}},
		{"/v1/accounts/acme/portals/p1", `{"id":"p1","etag":"3","functions":{"send_files":true}}`, []string{"functions.send_files"}},
		{"/v1/accounts/acme/customizations/fr", `{"language":"fr","account_id":"acme","agent_alias":"Agent"}`, []string{"agent_alias"}},
		{"/v1/accounts/acme/allowlist/e1", `{"id":"e1","description":"d","pattern":"example.com"}`, []string{"description", "pattern"}},
		{"/v1/accounts/acme", `{"display_name":"Acme","etag":"1"}`, []string{"display_name"}},
		// Output-only fields sent back as read are ignored (aip.dev/203).
		{"/v1/accounts/acme", `{"id":"acme","display_name":"Acme","create_time":"2026-01-02T03:04:05Z","etag":"1","revision":"1"}`, []string{"display_name"}},
		{"/v1/accounts/acme", `{"id":"acme","create_time":"2026-01-02T03:04:05Z","etag":"1"}`, nil},
		{"/v1/accounts/acme/liveGuideSettings?update_mask=chat,etag", `{"chat":true,"etag":"7"}`, []string{"chat", "etag"}},
		{"/v1/accounts/acme/liveGuideSettings", `{"etag":"7"}`, nil},
		{"/v1/accounts/acme/liveGuideSettings", `{}`, nil},
		{"/v1/accounts/acme/liveGuideSettings", ``, nil},
		{"/v1/accounts/acme/representatives/r1", `{"id":"r1","etag":"2"}`, nil},
	}
	refusals := 0
	for _, c := range cases {
		rec.calls = nil
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(http.MethodPatch, c.url, strings.NewReader(c.body)))
		if c.want == nil {
			refusals++
		}
		if c.want == nil {
			if len(rec.calls) != 0 || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"update_mask"`) {
				t.Errorf("PATCH %s %s: HTTP %d %s, calls %d; want 400 naming update_mask and no call", c.url, c.body, w.Code, w.Body, len(rec.calls))
			}
			continue
		}
		req := rec.last(t).req.ProtoReflect()
		mask := req.Get(req.Descriptor().Fields().ByName("update_mask")).Message().Interface().(*fieldmaskpb.FieldMask)
		got := slices.Sorted(slices.Values(mask.GetPaths()))
		if !slices.Equal(got, c.want) {
			t.Errorf("PATCH %s %s: mask %q, want %q", c.url, c.body, got, c.want)
		}
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("no_update_fields")); n != float64(refusals) {
		t.Errorf("gatehouse_http_refused_total{reason=no_update_fields} = %v, want %d", n, refusals)
	}
}

// TestErrors_AreStatusJSON: routing errors too are google.rpc.Status.
func TestErrors_AreStatusJSON(t *testing.T) {
	g, _ := newTestGateway(t, Options{})
	for _, c := range []struct {
		method, url string
		code        int
	}{
		{"GET", "/v1/nope", http.StatusNotFound},
		{"GET", "/elsewhere", http.StatusNotFound},
		{"PUT", "/v1/accounts/a", http.StatusMethodNotAllowed},
		{"POST", "/v1/accounts?bad_param=1", http.StatusBadRequest},
	} {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, httptest.NewRequest(c.method, c.url, strings.NewReader("{}")))
		var st struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || st.Code == nil || st.Message == "" {
			t.Errorf("%s %s: %d %q is no Status (%v)", c.method, c.url, w.Code, w.Body, err)
		}
		if w.Code != c.code {
			t.Errorf("%s %s: HTTP %d, want %d", c.method, c.url, w.Code, c.code)
		}
	}
}

// TestCrossOrigin_BrowserWritesFromOtherSitesRefused: a state-changing
// request a browser makes from another site is refused before any call;
// reads, same-origin requests and non-browser clients pass.
func TestCrossOrigin_BrowserWritesFromOtherSitesRefused(t *testing.T) {
	refused := server.NewHTTPRefused()
	g, rec := newTestGateway(t, Options{Refused: refused})
	for _, c := range []struct {
		method string
		header []string
		pass   bool
	}{
		{"POST", nil, true}, // curl
		{"POST", []string{"Sec-Fetch-Site", "same-origin"}, true},
		{"POST", []string{"Sec-Fetch-Site", "cross-site"}, false},
		{"DELETE", []string{"Sec-Fetch-Site", "same-site"}, false},
		{"POST", []string{"Origin", "https://evil.example"}, false},
		{"GET", []string{"Sec-Fetch-Site", "cross-site"}, true},
	} {
		rec.calls = nil
		req := httptest.NewRequest(c.method, "http://gatehouse.test/v1/accounts/a1", strings.NewReader(`{}`))
		if c.method == "POST" {
			req.URL.Path = "/v1/accounts"
		}
		if c.header != nil {
			req.Header.Set(c.header[0], c.header[1])
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if got := len(rec.calls) > 0; got != c.pass {
			t.Errorf("%s %v: passed=%v (HTTP %d %s), want %v", c.method, c.header, got, w.Code, w.Body, c.pass)
		}
		if !c.pass && (w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CROSS_ORIGIN")) {
			t.Errorf("%s %v: HTTP %d %s, want 403 with ErrorInfo CROSS_ORIGIN", c.method, c.header, w.Code, w.Body)
		}
	}
	if n := testutil.ToFloat64(refused.WithLabelValues("cross_origin")); n != 3 {
		t.Errorf("gatehouse_http_refused_total{reason=cross_origin} = %v, want 3", n)
	}
}

// TestUpdatableFields_EveryUpdateRPC: every RPC with an update_mask has its
// updatable fields known to the gateway, each a field of the resource it
// updates, so that a mask derived from a PATCH body is trimmed to them.
func TestUpdatableFields_EveryUpdateRPC(t *testing.T) {
	n := 0
	for _, svc := range services() {
		for i := range svc.Methods().Len() {
			m := svc.Methods().Get(i)
			in := m.Input()
			if in.Fields().ByName("update_mask") == nil {
				continue
			}
			n++
			full := fmt.Sprintf("/%s/%s", svc.FullName(), m.Name())
			fields := server.UpdatableFields(full)
			if len(fields) == 0 {
				t.Errorf("%s: no updatable fields known", full)
				continue
			}
			var resource protoreflect.MessageDescriptor
			for j := range in.Fields().Len() {
				if fd := in.Fields().Get(j); fd.Name() != "update_mask" && fd.Message() != nil {
					resource = fd.Message()
				}
			}
			for _, f := range fields {
				if resource == nil || resource.Fields().ByName(protoreflect.Name(f)) == nil {
					t.Errorf("%s: updatable field %q is not a field of %v", full, f, resource)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no RPC with an update_mask")
	}
}
