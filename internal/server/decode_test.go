package server

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// rawCodec sends the bytes it is given as the request, unchecked, and
// discards the response: a client that can put anything on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

// badPayloads returns request bodies that do not decode as a message of
// type md: malformed wire format, and invalid UTF-8 in each of its string
// fields.
func badPayloads(md protoreflect.MessageDescriptor) map[string][]byte {
	out := map[string][]byte{
		"truncated length":   {0x0a, 0xff},
		"truncated varint":   {0x08, 0xff},
		"field number zero":  {0x00, 0x01},
		"bad wire type":      {0x0f},
		"length past end":    {0x0a, 0x05, 'a'},
		"end group unopened": {0x0c},
	}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.StringKind || fd.IsMap() {
			continue
		}
		b := protowire.AppendTag(nil, fd.Number(), protowire.BytesType)
		out["invalid UTF-8 in "+string(fd.Name())] = protowire.AppendBytes(b, []byte("ok\xff\xfe"))
	}
	return out
}

// TestUndecodableRequestsAreInvalidArgument sends, over a real connection,
// bytes that do not decode to every RPC of every service: each answer is
// INVALID_ARGUMENT (grpc-go would say INTERNAL), and the calls are logged
// and counted like any other. The call log is unbounded here, so that
// every call has its line; within --call-log-rate they are suppressed and
// counted like any other failure (TestCallLog_FloodBoundedPerCode).
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	var logs syncBuffer
	m := NewMetrics()
	e := MustStart(t, "", func(o *Options) {
		o.Metrics = m
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		o.CallLogRate = -1
	})
	e.MustCreateAccount("acme")
	files := []protoreflect.FileDescriptor{
		gatehousev1.File_gatehouse_v1_admin_service_proto,
		gatehousev1.File_gatehouse_v1_session_service_proto,
		gatehousev1.File_gatehouse_v1_decision_service_proto,
	}
	ctx := ctxT(t)
	calls := map[string]int{}
	for _, fd := range files {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				method := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
				for name, body := range badPayloads(md.Input()) {
					var err error
					if md.IsStreamingServer() {
						var cs grpc.ClientStream
						cs, err = e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, grpc.ForceCodec(rawCodec{}))
						if err == nil {
							if err = cs.SendMsg(&body); err == nil {
								_ = cs.CloseSend()
								var out []byte
								err = cs.RecvMsg(&out)
							}
						}
					} else {
						var out []byte
						err = e.conn.Invoke(ctx, method, &body, &out, grpc.ForceCodec(rawCodec{}))
					}
					if status.Code(err) != codes.InvalidArgument {
						t.Errorf("%s, %s: got %v (%v), want INVALID_ARGUMENT", method, name, status.Code(err), err)
					}
					calls[string(md.Name())]++
				}
			}
		}
	}
	// Logged: one line per call with its method and code.
	for _, method := range []string{"GetAccount", "CheckFeature", "CheckFeatures", "WatchSessionPolicy", "CreateCallerToken"} {
		n := 0
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"grpc.method":"`+method+`"`) && strings.Contains(line, `"grpc.code":"InvalidArgument"`) {
				n++
			}
		}
		if n != calls[method] {
			t.Errorf("%s: %d log lines with InvalidArgument, want %d", method, n, calls[method])
		}
	}
	// Counted: grpc_server_handled_total by method and code.
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_code"] == "InvalidArgument" {
				counted[labels["grpc_method"]] += mt.GetCounter().GetValue()
			}
		}
	}
	for method, n := range calls {
		if counted[method] != float64(n) {
			t.Errorf("grpc_server_handled_total{grpc_method=%q,grpc_code=InvalidArgument} = %v, want %d", method, counted[method], n)
		}
	}
	// Still serving, and a good request after bad ones is answered.
	if _, err := e.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: "acme"}); err != nil {
		t.Fatalf("GetAccount after bad requests: %v", err)
	}
	if n := len(requestErrorsLeft()); n != 0 {
		t.Fatalf("%d decode errors were never answered", n)
	}
}

func requestErrorsLeft() []any {
	var left []any
	requestErrors.Range(func(k, _ any) bool { left = append(left, k); return true })
	return left
}

// TestRequestErrors_Swept: errors filed for calls that never reached the
// interceptor that answers them (refused earlier in the chain) do not
// pile up: old ones are dropped once many are held, recent ones kept.
func TestRequestErrors_Swept(t *testing.T) {
	old := requestErrorsSweep
	requestErrorsSweep = 10
	t.Cleanup(func() { requestErrorsSweep = old })
	var msgs []*gatehousev1.GetAccountRequest
	for range 10 {
		m := &gatehousev1.GetAccountRequest{}
		msgs = append(msgs, m)
		fileRequestError(m, status.Error(codes.InvalidArgument, "x"))
	}
	// Age them past the minute.
	requestErrors.Range(func(k, v any) bool {
		v.(*filedError).at = v.(*filedError).at.Add(-2 * time.Minute)
		return true
	})
	fresh := &gatehousev1.GetAccountRequest{}
	fileRequestError(fresh, status.Error(codes.InvalidArgument, "fresh"))
	if n := len(requestErrorsLeft()); n != 1 {
		t.Fatalf("%d entries held after the sweep, want 1 (the fresh one)", n)
	}
	if err := takeRequestError(fresh); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("fresh entry: %v", err)
	}
	if err := takeRequestError(msgs[0]); err != nil {
		t.Fatalf("swept entry still answered: %v", err)
	}
	if n := requestErrorsHeld.Load(); n != 0 {
		t.Fatalf("held count %d, want 0", n)
	}
}
