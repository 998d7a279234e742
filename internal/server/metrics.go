package server

import (
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/observe"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the daemon's Prometheus metrics: those of internal/observe
// (decisions, limits, snapshot and store) and the standard grpc_server_*
// metrics of go-grpc-middleware, in one Registry.
type Metrics struct {
	*observe.Metrics
	// HTTPRefused counts the HTTP requests the gateway (internal/gateway)
	// refused before they became a call, by reason.
	HTTPRefused *prometheus.CounterVec
	// HTTPLogSuppressed counts the lines of the HTTP server's own error
	// log (a failed TLS handshake, …) not written for their budget
	// (NewLimitedHandler).
	HTTPLogSuppressed prometheus.Counter
	grpc              *grpcprom.ServerMetrics
	// callLogSuppressed counts the call log lines not written for their
	// code's budget (calllog.go).
	callLogSuppressed *prometheus.CounterVec
	// retention: the audit retention job (retention.go).
	retention *retentionMetrics
}

// NewMetrics creates the metrics, including Go runtime and process
// collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Metrics: observe.NewMetrics(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}))),
	}
	m.HTTPRefused = NewHTTPRefused()
	m.callLogSuppressed = newCallLogSuppressed()
	m.HTTPLogSuppressed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gatehouse_http_log_suppressed_total",
		Help: "Lines of the HTTP server's own error log (failed TLS handshakes and other connection errors) not written because --call-log-rate lines a second were written; the next line says how many in its suppressed attribute.",
	})
	m.Registry.MustRegister(m.grpc, m.HTTPRefused, m.callLogSuppressed, m.HTTPLogSuppressed)
	m.retention = newRetentionMetrics(m.Registry)
	return m
}

// observed returns the metrics of internal/observe; nil when m is.
func (m *Metrics) observed() *observe.Metrics {
	if m == nil {
		return nil
	}
	return m.Metrics
}

// countRequestSize counts a request the codec refused for its size (err
// a *requestSizeError; anything else is not counted here); m may be nil.
func (m *Metrics) countRequestSize(err error) {
	var rs *requestSizeError
	if err != nil && errors.As(err, &rs) {
		m.observed().CountRequestSize()
	}
}

// NewHTTPRefused returns the counter of Metrics.HTTPRefused, unregistered.
func NewHTTPRefused() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_http_refused_total",
		Help: "HTTP requests the gateway refused before they became a call, by reason (body_too_large, no_update_fields, cross_origin).",
	}, []string{"reason"})
	for _, r := range []string{"body_too_large", "no_update_fields", "cross_origin"} {
		c.WithLabelValues(r)
	}
	return c
}
