package tracing_test

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/tlsconfig/tlstest"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	"github.com/gatehouse-dev/gatehouse/internal/tracing/tracingtest"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// remote returns a context carrying a caller's span context, as the gRPC
// stats handler makes it from a traceparent header.
func remote(sampled bool) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		Remote:  true,
	})
	if sampled {
		sc = sc.WithTraceFlags(trace.FlagsSampled)
	}
	return trace.ContextWithRemoteSpanContext(context.Background(), sc)
}

func TestSampler(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		ratio  float64
		parent context.Context
		want   bool
	}{
		{"root, ratio 0", 0, context.Background(), false},
		{"root, ratio 1", 1, context.Background(), true},
		{"sampled caller, ratio 0", 0, remote(true), true},
		{"unsampled caller, ratio 1", 1, remote(false), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(tracing.Sampler(tt.ratio)))
			_, span := tp.Tracer("test").Start(tt.parent, "call")
			span.End()
			ended := rec.Ended()
			if got := len(ended) == 1; got != tt.want {
				t.Fatalf("recorded %d spans, want recorded=%v", len(ended), tt.want)
			}
			if !tt.want {
				return
			}
			if parent := trace.SpanContextFromContext(tt.parent); parent.IsValid() {
				if ended[0].SpanContext().TraceID() != parent.TraceID() || ended[0].Parent().SpanID() != parent.SpanID() {
					t.Errorf("span trace %s parent %s, want the caller's trace %s and span %s",
						ended[0].SpanContext().TraceID(), ended[0].Parent().SpanID(), parent.TraceID(), parent.SpanID())
				}
			}
		})
	}
}

// TestSampler_Ratio checks that a ratio between 0 and 1 traces about that
// share of root calls.
func TestSampler_Ratio(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(tracing.Sampler(0.1)))
	const calls = 20000
	for range calls {
		_, span := tp.Tracer("test").Start(context.Background(), "call")
		span.End()
	}
	// 2000 expected; the bounds are more than 10 standard deviations wide.
	if n := len(rec.Ended()); n < 1600 || n > 2400 {
		t.Errorf("ratio 0.1 traced %d of %d root calls, want about 2000", n, calls)
	}
}

func resourceAttrs(t *testing.T, version string) map[attribute.Key]string {
	t.Helper()
	res, err := tracing.Resource(context.Background(), version)
	if err != nil {
		t.Fatal(err)
	}
	m := map[attribute.Key]string{}
	for _, kv := range res.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

func TestResource(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	got := resourceAttrs(t, "v1.4.0")
	if got["service.name"] != "gatehoused" || got["service.version"] != "v1.4.0" || got["host.name"] == "" || got["telemetry.sdk.name"] != "opentelemetry" {
		t.Errorf("resource = %v, want service.name gatehoused, service.version v1.4.0, host.name and the SDK", got)
	}
	if v, ok := resourceAttrs(t, "")["service.version"]; ok {
		t.Errorf("resource without a version has service.version %q", v)
	}

	t.Setenv("OTEL_SERVICE_NAME", "gatehoused-eu")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
	got = resourceAttrs(t, "")
	if got["service.name"] != "gatehoused-eu" || got["deployment.environment.name"] != "staging" {
		t.Errorf("resource with OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES = %v, want them applied", got)
	}
}

// export sends one span named name through a provider for s and shuts the
// provider down within flush, returning the shutdown's error.
func export(t *testing.T, s tracing.Settings, name string, flush time.Duration) error {
	t.Helper()
	tp, err := tracing.NewProvider(testContext(t), s)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), name)
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), flush)
	defer cancel()
	return tp.Shutdown(ctx)
}

// TestNewProvider_Plaintext: spans reach a plaintext collector and carry
// the resource; plaintext wins over a CA in the standard environment.
func TestNewProvider_Plaintext(t *testing.T) {
	certFile, _ := tlstest.WriteSelfSigned(t, t.TempDir(), "collector")
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", certFile)
	col := tracingtest.Start(t)
	if err := export(t, tracing.Settings{Endpoint: col.Addr, Plaintext: true, SampleRatio: 1, ServiceVersion: "v9.9.9"}, "op", 10*time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	spans := col.Named("op")
	if len(spans) != 1 {
		t.Fatalf("collector received %d spans named op (all: %d), want 1", len(spans), len(col.Spans()))
	}
	if n := tracingtest.Attr(spans[0].Resource, "service.name").GetStringValue(); n != "gatehoused" {
		t.Errorf("service.name = %q, want gatehoused", n)
	}
	if v := tracingtest.Attr(spans[0].Resource, "service.version").GetStringValue(); v != "v9.9.9" {
		t.Errorf("service.version = %q, want v9.9.9", v)
	}
}

// TestNewProvider_TLS: without Plaintext the collector's certificate is
// verified (here against the CA in OTEL_EXPORTER_OTLP_CERTIFICATE), and
// the standard variables that would turn TLS off or move the endpoint do
// not.
func TestNewProvider_TLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := tlstest.WriteSelfSigned(t, dir, "collector")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", certFile)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")

	col := tracingtest.Start(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	if err := export(t, tracing.Settings{Endpoint: col.Addr, SampleRatio: 1}, "over-tls", 10*time.Second); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if n := len(col.Named("over-tls")); n != 1 {
		t.Fatalf("TLS collector received %d spans, want 1", n)
	}

	// The same settings against a plaintext collector: the TLS handshake
	// fails, nothing arrives, and the bounded shutdown says so.
	plain := tracingtest.Start(t)
	err = export(t, tracing.Settings{Endpoint: plain.Addr, SampleRatio: 1}, "lost", time.Second)
	if err == nil {
		t.Error("shutdown after exporting to a plaintext collector over TLS = nil, want an error")
	}
	if n, _ := plain.Exports(); n != 0 {
		t.Errorf("plaintext collector received %d exports from a TLS exporter, want 0", n)
	}
}
