package server

import (
	"context"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkCheckFeature_Tracing is one CheckFeature over loopback, client
// and server in this process, with tracing off, on but not sampled (ratio
// 0, no trace context), and on and sampled (ratio 1; the spans are batched
// to an exporter that discards them). The differences are what tracing
// costs a call.
func BenchmarkCheckFeature_Tracing(b *testing.B) {
	provider := func(ratio float64) func(*Options) {
		return func(o *Options) {
			o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()),
				sdktrace.WithSampler(tracing.Sampler(ratio)))
		}
	}
	for _, bb := range []struct {
		name string
		opts []func(*Options)
	}{
		{"off", nil},
		{"unsampled", []func(*Options){provider(0)}},
		{"sampled", []func(*Options){provider(1)}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			e := MustStart(b, "", bb.opts...)
			e.MustCreateAccount("acme")
			sess := e.MustStartSession("acme")
			req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK, Url: "https://a.example/"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.decide.CheckFeature(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
