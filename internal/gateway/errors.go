package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons of gatehouse_http_refused_total.
const (
	reasonBodyTooLarge   = "body_too_large"
	reasonNoUpdateFields = "no_update_fields"
	reasonCrossOrigin    = "cross_origin"
)

// countingBody counts the bytes of a request body in the request's
// bodyState, and notes there when the body ran over the limit of the
// http.MaxBytesReader it wraps.
type countingBody struct {
	io.ReadCloser
	st *bodyState
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.st.read += int64(n)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.st.tooLarge = true
	}
	return n, err
}

// bodyTooLarge is the error of a request body over limit bytes.
func bodyTooLarge(limit int64) error {
	st, _ := status.New(codes.ResourceExhausted,
		fmt.Sprintf("request body over %d bytes (--http-max-body-bytes)", limit)).WithDetails(
		&errdetails.ErrorInfo{Reason: "HTTP_BODY_TOO_LARGE", Domain: "gatehouse.dev",
			Metadata: map[string]string{"limit_bytes": fmt.Sprint(limit)}})
	return &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge, Err: st.Err()}
}

// errorHandler writes err as a google.rpc.Status JSON object with its
// details (grpc-gateway's default), after turning the decoding error of an
// oversized body into RESOURCE_EXHAUSTED (HTTP 413).
func (g *Gateway) errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := ctx.Value(bodyStateKey).(*bodyState); ok && st.tooLarge {
		g.refused.WithLabelValues(reasonBodyTooLarge).Inc()
		err = bodyTooLarge(g.maxBody)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// writeStatus answers a request outside grpc-gateway's routes with st.
func (g *Gateway) writeStatus(w http.ResponseWriter, r *http.Request, code int, st *status.Status) {
	runtime.DefaultHTTPErrorHandler(r.Context(), g.api, marshaler, w, r, &runtime.HTTPStatusError{HTTPStatus: code, Err: st.Err()})
}

// routingError answers a request no route takes: NOT_FOUND (404) for an
// unknown path, UNIMPLEMENTED with HTTP 405 for a known path with another
// method, INVALID_ARGUMENT (400) for a malformed one.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var st *status.Status
	switch httpStatus {
	case http.StatusNotFound:
		st = status.Newf(codes.NotFound, "no route %s %s; the routes are in /openapi.json", r.Method, r.URL.Path)
	case http.StatusMethodNotAllowed:
		st = status.Newf(codes.Unimplemented, "%s is not a method of %s; the routes are in /openapi.json", r.Method, r.URL.Path)
	default:
		st = status.Newf(codes.InvalidArgument, "malformed request %s %s: %s", r.Method, r.URL.Path, http.StatusText(httpStatus))
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: st.Err()})
}
