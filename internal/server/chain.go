package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DefaultSlowCall is the default Options.SlowCall.
const DefaultSlowCall = 100 * time.Millisecond

// The server's own interceptor is one function per call kind, not a chain
// of one closure per concern: request id, call log, panic recovery and
// authorization run in it in that order (metrics, when configured, wrap it;
// the load limits of overload.go follow it). Per successful call it costs a
// clock read, a metadata lookup and a level check; everything a log line
// needs is built only when the line is written.
//
// Call log policy: a call that failed is logged at the level of its code
// (callLevel); a successful call is logged at DEBUG, or at INFO when it
// took at least Options.SlowCall. The lines of failed calls with a code a
// caller can cause are bounded per code (Options.CallLogRate, see
// callLogBudget); a line over the budget costs no formatting either, and
// the next one written says how many were suppressed. A request id is the caller's
// x-request-id when it sent a valid one, echoed in the response header;
// otherwise one is generated only when the call is logged or failed. A
// failed call returns its request id in the x-request-id trailer, so that
// a caller can quote it to an operator who finds the log line.

// unaryChain is the server's unary interceptor.
func (s *Server) unaryChain(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	id := callerRequestID(ctx)
	if id != "" {
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	}
	resp, err := s.unaryGuarded(ctx, req, info, handler)
	if err != nil {
		err = s.toStatus(ctx, err)
		id = s.failedCall(ctx, id, func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) })
	}
	s.logCall(ctx, info.FullMethod, "unary", start, id, err)
	return resp, err
}

// unaryGuarded authorizes the call and runs the handler, turning a panic
// anywhere in them into INTERNAL.
func (s *Server) unaryGuarded(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, s.recovered(ctx, p)
		}
	}()
	// A request the codec could not decode, or whose enums it refused,
	// is answered here, after metrics and the call log have seen it.
	if err := takeRequestError(req); err != nil {
		s.metrics.countRequestSize(err)
		return nil, err
	}
	if d := takeDecodeCost(req); d > 0 {
		addDecodeCost(ctx, d)
	}
	ctx, err = s.authorize(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// streamChain is the server's stream interceptor; see unaryChain.
func (s *Server) streamChain(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	ctx := ss.Context()
	id := callerRequestID(ctx)
	if id != "" {
		_ = ss.SetHeader(metadata.Pairs(requestIDHeader, id))
	}
	err := s.streamGuarded(srv, ss, info, handler)
	s.metrics.countRequestSize(err)
	if err != nil {
		err = s.toStatus(ctx, err)
		id = s.failedCall(ctx, id, ss.SetTrailer)
	}
	s.logCall(ctx, info.FullMethod, streamType(info), start, id, err)
	return err
}

// streamType is the grpc.method_type of a stream.
func streamType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsServerStream && !info.IsClientStream:
		return "server_stream"
	case info.IsClientStream && !info.IsServerStream:
		return "client_stream"
	default:
		return "bidi_stream"
	}
}

func (s *Server) streamGuarded(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.recovered(ss.Context(), p)
		}
	}()
	ctx, err := s.authorize(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	return handler(srv, &callerStream{ServerStream: ss, ctx: ctx})
}

// recovered logs a handler's panic with its stack and returns INTERNAL;
// the process keeps serving.
func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return errs.New(errs.Internal, "internal error")
}

// failedCall returns the request id of a failed call, generating one when
// the caller sent none, and sets it as the x-request-id trailer.
func (s *Server) failedCall(_ context.Context, id string, setTrailer func(metadata.MD)) string {
	if id == "" {
		id = newRequestID()
	}
	setTrailer(metadata.Pairs(requestIDHeader, id))
	return id
}

// callLevel is the log level of a call that ended with code: refusals a
// caller may cause routinely at INFO, conditions an operator may have to
// act on at WARN, the server's own failures at ERROR. A successful call is
// DEBUG (INFO when slow; see logCall).
func callLevel(code codes.Code) slog.Level {
	switch code {
	case codes.OK:
		return slog.LevelDebug
	case codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition,
		codes.Aborted, codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default: // Unknown, Unimplemented, Internal, DataLoss
		return slog.LevelError
	}
}

// logCall writes the "finished call" line of a call when its level is
// enabled and, for a failed call, its code's budget allows; otherwise it
// allocates nothing.
func (s *Server) logCall(ctx context.Context, fullMethod, kind string, start time.Time, id string, err error) {
	code := codes.OK
	if err != nil {
		code = status.Code(err)
	}
	lvl := callLevel(code)
	now := time.Now()
	took := now.Sub(start)
	if code == codes.OK && s.slowCall > 0 && took >= s.slowCall {
		lvl = slog.LevelInfo
	}
	if !s.log.Enabled(ctx, lvl) {
		return
	}
	var suppressed int64
	if code != codes.OK {
		var ok bool
		if suppressed, ok = s.callLog.take(code, now); !ok {
			return
		}
	}
	if id == "" {
		id = newRequestID()
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	attrs := make([]slog.Attr, 0, 14)
	protocol, addr := callPeer(ctx)
	attrs = append(attrs,
		slog.String("protocol", protocol), slog.String("grpc.component", "server"),
		slog.String("grpc.service", service), slog.String("grpc.method", method), slog.String("grpc.method_type", kind))
	if addr != "" {
		attrs = append(attrs, slog.String("peer.address", addr))
	}
	attrs = append(attrs, slog.String("request_id", id))
	if s.tracing {
		if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
	}
	attrs = append(attrs, slog.String("grpc.start_time", start.Format(time.RFC3339)))
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	// Milliseconds with microsecond precision, as a string: the format of
	// the call logs so far.
	attrs = append(attrs, slog.String("grpc.time_ms", fmt.Sprint(float32(took.Microseconds())/1000)))
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	s.log.LogAttrs(ctx, lvl, "finished call", attrs...)
}
