package server

import (
	"context"
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// tracingOption instruments every call but health checks with a server
// span from tp (named after the method, e.g.
// "gatehouse.v1.DecisionService/CheckFeature"), continuing the caller's
// W3C trace context (traceparent, tracestate). Without tp there is no
// stats handler at all, so a daemon without tracing pays nothing for it.
//
// Health checks are left out: load balancers and orchestrators probe every
// few seconds, and their spans would outnumber the interesting ones without
// telling anything the health status does not. The handler's own metrics
// are off; the Prometheus metrics cover calls.
func tracingOption(tp trace.TracerProvider) []grpc.ServerOption {
	if tp == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(propagation.TraceContext{}),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
	))}
}

// Attributes of a CheckFeature span.
const (
	attrFeature  = attribute.Key("gatehouse.feature")
	attrAllowed  = attribute.Key("gatehouse.decision.allowed")
	attrReason   = attribute.Key("gatehouse.decision.reason")
	attrRule     = attribute.Key("gatehouse.decision.rule")
	attrRevision = attribute.Key("gatehouse.revision")
	attrChecks   = attribute.Key("gatehouse.checks")
)

// traceDecision records a CheckFeature answer on the call's span when that
// span is sampled. Callers check Server.tracing first.
func traceDecision(ctx context.Context, f policy.Feature, d policy.Decision, rev uint64) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		attrFeature.String(f.String()),
		attrAllowed.Bool(d.Allowed),
		attrReason.String(d.Reason.String()),
		attrRule.String(d.Rule),
		attrRevision.Int64(int64(rev)),
	)
}

// traceChecks records the size and revision of a CheckFeatures call on its
// span when that span is sampled. Callers check Server.tracing first.
func traceChecks(ctx context.Context, n int, rev uint64) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrChecks.Int(n), attrRevision.Int64(int64(rev)))
}

// tracerName names the spans the server starts inside a call.
const tracerName = "github.com/gatehouse-dev/gatehouse/internal/server"

// innerSpan starts a span named name under the call's span when that span
// is recorded (tracing on and the call sampled); otherwise it returns ctx
// and a span that records nothing. End it with endInner.
func (s *Server) innerSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, trace.SpanFromContext(context.Background()) // records nothing
	}
	return s.tracer.Start(ctx, name)
}

// endInner ends an inner span, marking it failed when err is the server's
// failure (a context that ended counts too: the wait was cut short); a
// refusal of the request (invalid, not found, in use, …) is not.
func endInner(span trace.Span, err error) {
	if err != nil && span.IsRecording() && !refusal(err) {
		span.RecordError(err)
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "deadline exceeded"
		}
		span.SetStatus(otelcodes.Error, msg)
	}
	span.End()
}

// refusal reports whether err refuses the request rather than failing it.
func refusal(err error) bool {
	switch errs.KindOf(err) {
	case errs.Internal, errs.Unavailable, errs.DataLoss:
		return false
	}
	return true
}
