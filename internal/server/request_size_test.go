package server

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// padded returns a request of type md whose encoding is exactly n bytes:
// one unknown field of that length, followed by tail (appended raw: it
// may be malformed on purpose).
func padded(t *testing.T, md protoreflect.MessageDescriptor, n int, tail []byte) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		t.Fatal(err)
	}
	const num = protowire.MaxValidNumber
	body := n - len(tail) - protowire.SizeTag(num)
	// The length prefix takes some of the n bytes too.
	l := body - protowire.SizeVarint(uint64(body))
	for protowire.SizeVarint(uint64(l))+l != body {
		l--
	}
	raw := protowire.AppendTag(nil, num, protowire.BytesType)
	raw = protowire.AppendBytes(raw, make([]byte, l))
	raw = append(raw, tail...)
	m := mt.New()
	m.SetUnknown(raw)
	msg := m.Interface()
	if got := proto.Size(msg); got != n {
		t.Fatalf("%s: padded to %d bytes, want %d", md.FullName(), got, n)
	}
	return msg
}

// call sends req to method (unary or server-streaming) and returns the
// error of the call, or of its first message for a stream.
func call(ctx context.Context, cc *grpc.ClientConn, md protoreflect.MethodDescriptor, req proto.Message) error {
	method := fmt.Sprintf("/%s/%s", md.Parent().FullName(), md.Name())
	if !md.IsStreamingServer() {
		resp, _ := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		return cc.Invoke(ctx, method, req, resp.New().Interface())
	}
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return err
	}
	if err := s.SendMsg(req); err != nil && err != io.EOF {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	resp, _ := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	return s.RecvMsg(resp.New().Interface())
}

// TestRequestSize_EveryMethodRefusesOversizedBeforeDecoding: for every
// RPC of the three services, a request one byte over its type's limit is
// INVALID_ARGUMENT "request too large" with a field violation, counted in
// gatehouse_limit_refusals_total{limit="request_size"}, and never decoded:
// its last bytes are malformed, which decoding would report instead. A
// request of exactly the limit is not refused for its size.
func TestRequestSize_EveryMethodRefusesOversizedBeforeDecoding(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) { o.Metrics = m })
	// About a hundred methods, two calls of up to 1 MiB each: longer than
	// ctxT allows under the race detector on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	malformed := []byte{0x0a, 0xff} // field 1, length-delimited, truncated length
	refused := 0
	for _, sd := range []protoreflect.ServiceDescriptor{
		gatehousev1.File_gatehouse_v1_decision_service_proto.Services().ByName("DecisionService"),
		gatehousev1.File_gatehouse_v1_session_service_proto.Services().ByName("SessionService"),
		gatehousev1.File_gatehouse_v1_admin_service_proto.Services().ByName("AdminService"),
	} {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			rule := sizeRuleFor(md.Input())
			if rule == nil {
				t.Errorf("%s: no size limit for %s", md.FullName(), md.Input().FullName())
				continue
			}
			// Below the transport's bound, so that a request one byte over
			// the limit reaches the codec and gets its field violation.
			if rule.max >= DefaultMaxRecvMsgSize-1024 {
				t.Errorf("%s: limit %d is not below the transport's %d", md.FullName(), rule.max, DefaultMaxRecvMsgSize)
			}
			err := call(ctx, e.conn, md, padded(t, md.Input(), rule.max+1, malformed))
			st := wantCode(t, err, codes.InvalidArgument)
			if !strings.HasPrefix(st.Message(), "request too large") || len(fieldViolations(st)) == 0 {
				t.Errorf("%s, %d bytes: %q, violations %q; want a size refusal naming a field", md.FullName(), rule.max+1, st.Message(), fieldViolations(st))
			}
			refused++
			err = call(ctx, e.conn, md, padded(t, md.Input(), rule.max, nil))
			if st, _ := status.FromError(err); strings.Contains(st.Message(), "too large") {
				t.Errorf("%s, %d bytes (the limit): refused for its size: %v", md.FullName(), rule.max, err)
			}
		}
	}
	if got := metricValue(t, m, "gatehouse_limit_refusals_total", "limit=request_size"); got != float64(refused) {
		t.Errorf("request_size refusals counted %v, want %d", got, refused)
	}
}

// attrName is the name of an element's k-th attribute: data-x and data-y,
// which the hostile privacy rules read, then data-2, data-3, ….
func attrName(k int) string {
	switch k {
	case 0:
		return "data-x"
	case 1:
		return "data-y"
	}
	return fmt.Sprintf("data-%d", k)
}

// maxElement returns an element whose ancestors (n of them, each with
// attrs attributes) carry values as long as they can be while the
// element's encoded size stays within MaxElementBytes, and the size.
func maxElement(t testing.TB, n, attrs int) (*gatehousev1.Element, int) {
	t.Helper()
	build := func(l int) *gatehousev1.Element {
		v := strings.Repeat("A", l)
		anc := make([]*gatehousev1.ElementNode, n)
		for i := range anc {
			a := map[string]string{}
			for k := range attrs {
				a[attrName(k)] = v
			}
			anc[i] = &gatehousev1.ElementNode{Tag: "div", Attributes: a}
		}
		return &gatehousev1.Element{Tag: "button", Ancestors: anc}
	}
	lo, hi := 0, maxValueLen // the longest value that fits is in [lo, hi]
	if proto.Size(build(lo)) > MaxElementBytes {
		t.Fatalf("no element of %d ancestors with %d attributes fits in %d bytes", n, attrs, MaxElementBytes)
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if proto.Size(build(mid)) <= MaxElementBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	el := build(lo)
	return el, proto.Size(el)
}

// TestElementSize_LimitOnTheWireAndInProcess: an element of at most
// MaxElementBytes encoded is decided; one a few bytes larger is refused
// with a field violation on "element", alone and as a check of a batch
// ("checks[2].element"), over gRPC (by the codec) and in process (by
// validation). The shapes differ in where the bytes are: a few long
// values, many short attributes (whose encoding costs more than their
// text), many ancestors.
func TestElementSize_LimitOnTheWireAndInProcess(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "shop", "shop.example.com")
	sess := e.MustStartSession("acme").GetId()
	ds := &decisionService{s: e.srv}
	local := auth.NewContext(ctx, auth.Local)
	click := func(el *gatehousev1.Element) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK,
			Url: "https://shop.example.com/checkout", Element: el}
	}
	for _, shape := range []struct{ ancestors, attrs int }{{16, 1}, {256, 1}, {256, 2}, {256, 8}, {40, 64}} {
		el, size := maxElement(t, shape.ancestors, shape.attrs)
		name := fmt.Sprintf("%dx%d", shape.ancestors, shape.attrs)
		if size < MaxElementBytes-4*shape.ancestors*shape.attrs-64 {
			t.Fatalf("%s: the largest element is only %d bytes", name, size)
		}
		if _, err := e.decide.CheckFeature(ctx, click(el)); err != nil {
			t.Errorf("%s, %d bytes: %v", name, size, err)
		}
		if _, err := ds.CheckFeature(local, click(el)); err != nil {
			t.Errorf("%s, %d bytes, in process: %v", name, size, err)
		}
		// A few bytes more.
		big := proto.Clone(el).(*gatehousev1.Element)
		big.Id = strings.Repeat("x", MaxElementBytes-size+1)
		if proto.Size(big) <= MaxElementBytes {
			t.Fatalf("%s: the larger element is %d bytes", name, proto.Size(big))
		}
		for _, via := range []struct {
			name string
			one  func(*gatehousev1.CheckFeatureRequest) error
			many func(*gatehousev1.CheckFeaturesRequest) error
		}{
			{"grpc", func(r *gatehousev1.CheckFeatureRequest) error { _, err := e.decide.CheckFeature(ctx, r); return err },
				func(r *gatehousev1.CheckFeaturesRequest) error { _, err := e.decide.CheckFeatures(ctx, r); return err }},
			{"in process", func(r *gatehousev1.CheckFeatureRequest) error { _, err := ds.CheckFeature(local, r); return err },
				func(r *gatehousev1.CheckFeaturesRequest) error { _, err := ds.CheckFeatures(local, r); return err }},
		} {
			st := wantCode(t, via.one(click(big)), codes.InvalidArgument)
			if f := fieldViolations(st); len(f) != 1 || f[0] != "element" {
				t.Errorf("%s, %s, %d bytes: violations %q (%s), want [element]", name, via.name, proto.Size(big), f, st.Message())
			}
			small := click(&gatehousev1.Element{Tag: "a"})
			st = wantCode(t, via.many(&gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{small, small, click(big), small}}),
				codes.InvalidArgument)
			if f := fieldViolations(st); len(f) != 1 || f[0] != "checks[2].element" {
				t.Errorf("%s, %s batch: violations %q (%s), want [checks[2].element]", name, via.name, f, st.Message())
			}
		}
	}
}

// TestBatchSize_Limit: a CheckFeatures batch of MaxBatchBytes is decided;
// a larger one, each of whose checks is within its own limits, is refused
// with a violation on "checks" before it is decoded.
func TestBatchSize_Limit(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	e.MustAllow("acme", "shop", "shop.example.com")
	sess := e.MustStartSession("acme").GetId()
	check := func(n int) *gatehousev1.CheckFeatureRequest {
		return &gatehousev1.CheckFeatureRequest{SessionId: sess, Actor: agent("alice"), Feature: gatehousev1.Feature_FEATURE_CLICK,
			Url: "https://shop.example.com/checkout", Element: &gatehousev1.Element{Tag: "a", Id: strings.Repeat("i", n)}}
	}
	batch := &gatehousev1.CheckFeaturesRequest{}
	for range maxChecks {
		batch.Checks = append(batch.Checks, check(900))
	}
	// Grow checks by a byte each until the batch is exactly at the
	// limit (no length prefix changes its size on the way).
	for i := range MaxBatchBytes - proto.Size(batch) {
		batch.Checks[i%maxChecks].Element.Id += "i"
	}
	if n := proto.Size(batch); n != MaxBatchBytes {
		t.Fatalf("batch of %d bytes, want %d", n, MaxBatchBytes)
	}
	if resp, err := e.decide.CheckFeatures(ctx, batch); err != nil || len(resp.GetResults()) != maxChecks {
		t.Fatalf("batch at the limit: %d results, %v", len(resp.GetResults()), err)
	}
	batch.Checks[maxChecks-1].Element.Id += "i"
	st := wantCode(t, func() error { _, err := e.decide.CheckFeatures(ctx, batch); return err }(), codes.InvalidArgument)
	if f := fieldViolations(st); len(f) != 1 || f[0] != "checks" || !strings.HasPrefix(st.Message(), "request too large") {
		t.Errorf("batch over the limit: violations %q (%s), want [checks]", f, st.Message())
	}
}
