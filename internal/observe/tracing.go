package observe

import (
	"context"
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of a CheckFeature span.
const (
	attrFeature  = attribute.Key("gatehouse.feature")
	attrAllowed  = attribute.Key("gatehouse.decision.allowed")
	attrReason   = attribute.Key("gatehouse.decision.reason")
	attrRule     = attribute.Key("gatehouse.decision.rule")
	attrRevision = attribute.Key("gatehouse.revision")
	attrChecks   = attribute.Key("gatehouse.checks")
)

// TraceDecision records a CheckFeature answer on the call's span when that
// span is sampled. Callers check that tracing is on first.
func TraceDecision(ctx context.Context, f policy.Feature, d policy.Decision, rev uint64) {
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

// TraceChecks records the size and revision of a CheckFeatures call on its
// span when that span is sampled. Callers check that tracing is on first.
func TraceChecks(ctx context.Context, n int, rev uint64) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrChecks.Int(n), attrRevision.Int64(int64(rev)))
}

// TracerName names the spans the server starts inside a call (the name
// is the one the spans had before this package held them).
const TracerName = "github.com/gatehouse-dev/gatehouse/internal/server"

// InnerSpan starts a span of tracer (nil: tracing off) named name under
// the call's span when that span is recorded (the call sampled);
// otherwise it returns ctx and a span that records nothing. End it with
// EndInner.
func InnerSpan(tracer trace.Tracer, ctx context.Context, name string) (context.Context, trace.Span) {
	if tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, trace.SpanFromContext(context.Background()) // records nothing
	}
	return tracer.Start(ctx, name)
}

// AttrRevision is the attribute of a span that names a store revision.
const AttrRevision = attrRevision

// EndInner ends an inner span, marking it failed when err is the server's
// failure (a context that ended counts too: the wait was cut short); a
// refusal of the request (invalid, not found, in use, …) is not.
func EndInner(span trace.Span, err error) {
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
