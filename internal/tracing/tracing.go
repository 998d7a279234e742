// Package tracing sets up the daemon's optional OpenTelemetry tracing: a
// TracerProvider whose spans go through a batch span processor to an
// OTLP/gRPC collector, sampled parent-based. The gRPC server instruments
// itself with the provider (internal/server); without one nothing is
// instrumented.
package tracing

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc/credentials/insecure"
)

// ServiceName is the service.name resource attribute of the daemon's
// spans, unless OTEL_SERVICE_NAME says otherwise.
const ServiceName = "gatehoused"

// Settings configure NewProvider.
type Settings struct {
	// Endpoint is the host:port of the OTLP/gRPC collector.
	Endpoint string
	// Plaintext sends spans without TLS; otherwise the collector's
	// certificate is verified against the system roots (or the CA in
	// OTEL_EXPORTER_OTLP_CERTIFICATE).
	Plaintext bool
	// SampleRatio is the share of root calls (without a caller's trace
	// context) that are traced; see Sampler.
	SampleRatio float64
	// ServiceVersion is the service.version resource attribute; empty
	// leaves it out.
	ServiceVersion string
}

// NewProvider returns a TracerProvider exporting to s.Endpoint. It does
// not wait for the collector: an unreachable collector costs the spans
// (the exporter retries, then drops them and reports through
// otel.Handle), never a call. Shut the provider down to flush the spans
// still queued.
//
// Besides s, the standard OTEL_EXPORTER_OTLP_* variables for headers,
// compression, timeout and the TLS CA and client certificate,
// OTEL_BSP_* (batching) and OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
// apply; the endpoint, whether TLS is used, and the sampler come from s
// alone.
func NewProvider(ctx context.Context, s Settings) (*sdktrace.TracerProvider, error) {
	res, err := Resource(ctx, s.ServiceVersion)
	if err != nil {
		return nil, err
	}
	// The scheme sets the transport security explicitly, so that the
	// standard OTEL_EXPORTER_OTLP_ENDPOINT and _INSECURE variables cannot
	// change it.
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL((&url.URL{Scheme: "https", Host: s.Endpoint}).String())}
	if s.Plaintext {
		// Credentials, not only the scheme: they also win over a CA named
		// in OTEL_EXPORTER_OTLP_CERTIFICATE.
		opts = []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL((&url.URL{Scheme: "http", Host: s.Endpoint}).String()),
			otlptracegrpc.WithTLSCredentials(insecure.NewCredentials()),
		}
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(Sampler(s.SampleRatio)),
	), nil
}

// Sampler traces a call whose caller sent a sampled W3C trace context, and
// not one whose caller decided against it, so that a session server's trace
// continues through Gatehouse exactly when the session server records it.
// Of the calls without a trace context it traces the share ratio, by
// trace id.
func Sampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// Resource describes the daemon: service.name gatehoused, service.version
// when known, host.name and the SDK; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override and add to these.
func Resource(ctx context.Context, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{semconv.ServiceName(ServiceName)}
	if version != "" {
		attrs = append(attrs, semconv.ServiceVersion(version))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(attrs...),
		resource.WithHost(),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}
