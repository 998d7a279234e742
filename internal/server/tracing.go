package server

import (
	"context"

	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
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

// innerSpan starts a span inside the call; see observe.InnerSpan.
func (s *Server) innerSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	return observe.InnerSpan(s.tracer, ctx, name)
}
