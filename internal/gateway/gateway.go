// Package gateway serves the Gatehouse gRPC API as HTTP/JSON through
// grpc-gateway, and its OpenAPI document at /openapi.json.
//
// The gateway is a gRPC client of the daemon's own server over an
// in-process connection (server.DialInProcess): every HTTP request becomes
// a gRPC call that passes the same interceptors as a network call —
// authentication (the Authorization header; a client certificate verified
// by the HTTP server's TLS handshake, forwarded under a metadata key no
// HTTP header can set), permissions, limits and audit. The routes are
// those of proto/gatehouse/v1/gatehouse_http.yaml.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/schema"

	"github.com/gatehouse-dev/gatehouse/gen"
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	gatewayv1 "github.com/gatehouse-dev/gatehouse/gen/gateway/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// Limits of the HTTP server (see docs/http.md). The request body limit is
// a flag (--http-max-body-bytes); the gRPC limits (--max-recv-msg-size,
// --max-inflight, streams) apply to every call behind it as well.
const (
	// DefaultMaxBodyBytes is the default of Options.MaxBodyBytes: JSON is
	// about twice the size of the protobuf encoding --max-recv-msg-size
	// bounds (4 MiB by default).
	DefaultMaxBodyBytes = 8 << 20
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 64 << 10
	// ReadHeaderTimeout bounds reading the request headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request, body included (not on
	// streaming routes, whose connection stays open).
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds writing a unary response, from the end of the
	// request headers on (not on streaming routes).
	WriteTimeout = 60 * time.Second
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout = 120 * time.Second
)

// Options configure the gateway.
type Options struct {
	// Conn reaches the daemon's gRPC server; required
	// (server.Server.DialInProcess).
	Conn grpc.ClientConnInterface
	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes);
	// a larger one is refused with RESOURCE_EXHAUSTED (HTTP 413).
	MaxBodyBytes int64
	// Root, when set, serves every path outside /v1/ and /openapi.json
	// (the web console); without it they answer NOT_FOUND.
	Root http.Handler
	// Refused counts refused requests by reason (server.Metrics.HTTPRefused);
	// when nil, an unregistered counter.
	Refused *prometheus.CounterVec
	// Logger receives the gateway's own errors; slog.Default when nil.
	Logger *slog.Logger
	// ReadTimeout and WriteTimeout override the package's defaults
	// (ReadTimeout, WriteTimeout) when positive.
	ReadTimeout, WriteTimeout time.Duration
}

// Gateway is the HTTP handler of the API.
type Gateway struct {
	readTimeout, writeTimeout time.Duration

	handler http.Handler
	mux     *http.ServeMux
	api     *runtime.ServeMux
	maxBody int64
	refused *prometheus.CounterVec
	log     *slog.Logger
}

// Marshaling: field names as in the .proto files (account_id, as the
// routes, update_mask paths and docs spell them; lowerCamelCase is
// accepted on input too), every field present in responses (a switch that
// is off reads false rather than being absent), enums by name.
var marshaler = &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
	UnmarshalOptions: protojson.UnmarshalOptions{},
}

// forwardedHeaders are the only HTTP request headers passed on to the gRPC
// server as metadata (besides Authorization, which grpc-gateway always
// forwards, and the X-Forwarded-For/-Host it derives): an HTTP caller can
// set no other metadata, so it cannot pose as the gateway's forwarded
// client certificate.
var forwardedHeaders = map[string]string{
	"X-Request-Id": "x-request-id",
	"Traceparent":  "traceparent",
	"Tracestate":   "tracestate",
}

// New returns the gateway's handler.
func New(ctx context.Context, o Options) (*Gateway, error) {
	if o.Conn == nil {
		return nil, fmt.Errorf("gateway: no connection")
	}
	g := &Gateway{maxBody: o.MaxBodyBytes, log: o.Logger, readTimeout: ReadTimeout, writeTimeout: WriteTimeout}
	if o.ReadTimeout > 0 {
		g.readTimeout = o.ReadTimeout
	}
	if o.WriteTimeout > 0 {
		g.writeTimeout = o.WriteTimeout
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.refused = o.Refused
	if g.refused == nil {
		g.refused = server.NewHTTPRefused()
	}
	g.api = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			md, ok := forwardedHeaders[textproto.CanonicalMIMEHeaderKey(key)]
			return md, ok
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			switch key {
			case "x-request-id":
				return "X-Request-Id", true
			case "content-type": // gRPC's own, not the response's
				return "", false
			}
			return runtime.MetadataHeaderPrefix + key, true
		}),
		runtime.WithMetadata(clientCertMetadata),
		runtime.WithErrorHandler(g.errorHandler),
		runtime.WithRoutingErrorHandler(routingError),
		// No X-HTTP-Method-Override: a request's method is its own.
		runtime.WithDisablePathLengthFallback(),
	)
	conn := maskConn{o.Conn, g}
	if err := gatewayv1.RegisterAdminServiceHandlerClient(ctx, g.api, gatehousev1.NewAdminServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := gatewayv1.RegisterSessionServiceHandlerClient(ctx, g.api, gatehousev1.NewSessionServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := gatewayv1.RegisterDecisionServiceHandlerClient(ctx, g.api, gatehousev1.NewDecisionServiceClient(conn)); err != nil {
		return nil, err
	}
	g.mux = http.NewServeMux()
	g.mux.Handle("/v1/", http.HandlerFunc(g.serveAPI))
	g.mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	g.mux.HandleFunc("GET "+schema.AccountV1Path, serveAccountSchema)
	root := o.Root
	if root == nil {
		root = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.writeStatus(w, r, http.StatusNotFound, status.New(codes.NotFound, "no such route; the API is under /v1/ (see /openapi.json)"))
		})
	}
	g.mux.Handle("/", root)
	// A browser on another site must not be able to make a state-changing
	// request with the credentials it attaches by itself (a client
	// certificate, a cookie); curl and other non-browser clients send
	// neither Sec-Fetch-Site nor Origin and are not affected.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.refused.WithLabelValues(reasonCrossOrigin).Inc()
		st, _ := status.New(codes.PermissionDenied, "cross-origin request refused: a page of another site may not change Gatehouse").WithDetails(
			&errdetails.ErrorInfo{Reason: "CROSS_ORIGIN", Domain: "gatehouse.dev"})
		g.writeStatus(w, r, http.StatusForbidden, st)
	}))
	g.handler = cop.Handler(g.mux)
	return g, nil
}

// ServeHTTP serves the API, the OpenAPI document and Options.Root.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.handler.ServeHTTP(w, r) }

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(gen.OpenAPI)
}

// serveAccountSchema serves the JSON Schema of the account document
// (gatehouse export, ApplyAccount), so that editors can validate a
// document against the server it is meant for.
func serveAccountSchema(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	_, _ = w.Write(schema.AccountV1)
}

// Server returns an HTTP server of g with the limits of this package.
func (g *Gateway) Server() *http.Server {
	return &http.Server{
		Handler:           g,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: min(ReadHeaderTimeout, g.readTimeout),
		ReadTimeout:       g.readTimeout,
		// WriteTimeout is set per request in serveAPI: streaming routes
		// have none.
		IdleTimeout: IdleTimeout,
	}
}

// streamingRoute reports whether r is for a server-streaming RPC
// (WatchSessionPolicy, BackupStore): such a response stays open, so the
// server's read and write timeouts do not apply to it. A test checks this
// against the OpenAPI document's streaming operations.
func streamingRoute(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	p := r.URL.Path
	return p == "/v1/store:backup" || strings.HasPrefix(p, "/v1/sessions/") && strings.HasSuffix(p, "/policy:watch")
}

type ctxKey int

const (
	autoMaskKey ctxKey = iota
	bodyStateKey
)

// bodyState records how much of a request body was read, and that it ran
// over the limit, so that the error it causes is answered as
// RESOURCE_EXHAUSTED.
type bodyState struct {
	read     int64
	tooLarge bool
}

func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if streamingRoute(r) {
		// Errors are ignored: a ResponseWriter without deadlines has
		// none to lift.
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
		w = &ndjsonWriter{ResponseWriter: w}
	} else {
		_ = rc.SetWriteDeadline(time.Now().Add(g.writeTimeout))
	}
	ctx := r.Context()
	st := &bodyState{}
	ctx = context.WithValue(ctx, bodyStateKey, st)
	if r.ContentLength > g.maxBody {
		st.tooLarge = true
		g.errorHandler(ctx, g.api, marshaler, w, r, bodyTooLarge(g.maxBody))
		return
	}
	if r.Body != nil {
		r.Body = &countingBody{ReadCloser: http.MaxBytesReader(w, r.Body, g.maxBody), st: st}
	}
	if r.Method == http.MethodPatch && !r.URL.Query().Has("update_mask") && !r.URL.Query().Has("updateMask") {
		ctx = context.WithValue(ctx, autoMaskKey, true)
	}
	g.api.ServeHTTP(w, r.WithContext(ctx))
}

// clientCertMetadata forwards the client certificate the HTTP server's
// TLS handshake verified (against the same client CA as gRPC), under a key
// the server believes only on its in-process connection.
func clientCertMetadata(_ context.Context, r *http.Request) metadata.MD {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return metadata.Pairs(server.GatewayClientCertKey, string(r.TLS.VerifiedChains[0][0].Raw))
}

// ndjsonWriter labels a successful stream's body as newline-delimited
// JSON (grpc-gateway writes one JSON object per line, {"result": …} or
// {"error": …}).
type ndjsonWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *ndjsonWriter) WriteHeader(code int) {
	if !w.wrote && code == http.StatusOK {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *ndjsonWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *ndjsonWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *ndjsonWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
