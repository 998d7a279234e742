// Package tracingtest is a real OTLP/gRPC trace collector on 127.0.0.1 for
// tests: it keeps every span it is sent.
package tracingtest

import (
	"context"
	"net"
	"sync"
	"testing"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// Collector is an OTLP/gRPC trace service on a loopback port.
type Collector struct {
	collectortracepb.UnimplementedTraceServiceServer

	// Addr is the collector's host:port.
	Addr string

	mu      sync.Mutex
	hold    bool
	exports int
	spans   []Span
	// arrived is closed and replaced on every export.
	arrived chan struct{}
}

// Span is one received span with the attributes of its resource.
type Span struct {
	*tracepb.Span
	Resource []*commonpb.KeyValue
}

// Start serves a collector until the test ends; opts are passed to the
// gRPC server (grpc.Creds for TLS).
func Start(t testing.TB, opts ...grpc.ServerOption) *Collector {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{Addr: lis.Addr().String(), arrived: make(chan struct{})}
	srv := grpc.NewServer(opts...)
	collectortracepb.RegisterTraceServiceServer(srv, c)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return c
}

// Export implements the OTLP trace service.
func (c *Collector) Export(ctx context.Context, req *collectortracepb.ExportTraceServiceRequest) (*collectortracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	c.exports++
	hold := c.hold
	if !hold {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					c.spans = append(c.spans, Span{Span: s, Resource: rs.GetResource().GetAttributes()})
				}
			}
		}
	}
	close(c.arrived)
	c.arrived = make(chan struct{})
	c.mu.Unlock()
	if hold {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &collectortracepb.ExportTraceServiceResponse{}, nil
}

// Hold makes every later Export wait until its caller gives up, like a
// collector that never answers; such an export is counted, its spans are
// not kept.
func (c *Collector) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = true
}

// Exports returns how many Export calls arrived, and a channel closed at
// the next one.
func (c *Collector) Exports() (int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exports, c.arrived
}

// Spans returns the spans received so far, in order of arrival.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Named returns the received spans with the given name.
func (c *Collector) Named(name string) []Span {
	var out []Span
	for _, s := range c.Spans() {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of key among kvs, or nil.
func Attr(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return nil
}
