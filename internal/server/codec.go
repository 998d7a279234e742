package server

import (
	"fmt"
	"strconv"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec is the server's wire codec: grpc-go's proto codec, plus two
// checks on every request it decodes.
//
//   - Bytes that do not decode (malformed wire format, invalid UTF-8 in a
//     string field) are the caller's mistake, INVALID_ARGUMENT. grpc-go
//     turns any codec error into INTERNAL and answers it before the
//     interceptor chain runs, so the call would be neither logged nor
//     counted. The codec therefore reports success with an empty message
//     and files the error under the message; the authentication
//     interceptor, which runs after metrics and logging, answers it
//     (takeRequestError).
//   - Every enum value in the request, at any depth, must be one the proto
//     declares. Open proto3 enums carry undeclared numbers through
//     decoding; handlers convert enums to internal types, and an undeclared
//     number must never reach such a conversion. It is INVALID_ARGUMENT
//     with a field violation naming the field (e.g. "checks[3].feature").
type requestCodec struct{ inner encoding.CodecV2 }

func newRequestCodec() encoding.CodecV2 {
	return requestCodec{inner: encoding.GetCodecV2("proto")}
}

// Name is the codec's content subtype; it replaces grpc-go's "proto".
func (requestCodec) Name() string { return "proto" }

func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.inner.Unmarshal(data, v)
	}
	if err := c.inner.Unmarshal(data, v); err != nil {
		proto.Reset(m)
		requestErrors.Store(v, status.Errorf(codes.InvalidArgument, "the request cannot be decoded: %v", err))
		return nil
	}
	if err := checkEnums(m); err != nil {
		requestErrors.Store(v, err)
	}
	return nil
}

// requestErrors holds, by decoded message, why a request was refused
// while decoding; entries live from Unmarshal to the interceptor that
// takes them (microseconds).
var requestErrors sync.Map

// takeRequestError returns, and forgets, the error filed for msg while it
// was decoded; nil when it decoded cleanly.
func takeRequestError(msg any) error {
	if msg == nil {
		return nil
	}
	if err, ok := requestErrors.LoadAndDelete(msg); ok {
		return err.(error)
	}
	return nil
}

// maxEnumViolations bounds the field violations of one refusal.
const maxEnumViolations = 10

// checkEnums returns INVALID_ARGUMENT when m holds, at any depth, an enum
// value its enum type does not declare.
func checkEnums(m proto.Message) error {
	r := m.ProtoReflect()
	p := planFor(r.Descriptor())
	if p.empty() {
		return nil
	}
	var v violations
	p.check(r, "", &v)
	if len(v) == 0 {
		return nil
	}
	st, _ := status.New(codes.InvalidArgument, fmt.Sprintf("invalid request: %s: %s", v[0].Field, v[0].Description)).
		WithDetails(&errdetails.BadRequest{FieldViolations: v})
	return st.Err()
}

// enumPlan lists, for one message type, the fields that are enums and the
// message fields whose types may hold enums, so that checking a request
// skips everything else.
type enumPlan struct {
	enums []protoreflect.FieldDescriptor
	msgs  []protoreflect.FieldDescriptor
}

func (p *enumPlan) empty() bool { return len(p.enums) == 0 && len(p.msgs) == 0 }

var plans sync.Map // protoreflect.FullName → *enumPlan

func planFor(md protoreflect.MessageDescriptor) *enumPlan {
	if p, ok := plans.Load(md.FullName()); ok {
		return p.(*enumPlan)
	}
	p := buildPlan(md, map[protoreflect.FullName]bool{})
	plans.Store(md.FullName(), p)
	return p
}

// buildPlan computes md's plan. A message type met again while its plan is
// being built (a recursive type) is assumed to hold enums.
func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]bool) *enumPlan {
	building[md.FullName()] = true
	defer delete(building, md.FullName())
	p := &enumPlan{}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		switch vd.Kind() {
		case protoreflect.EnumKind:
			p.enums = append(p.enums, fd)
		case protoreflect.MessageKind, protoreflect.GroupKind:
			sub := vd.Message()
			if building[sub.FullName()] {
				p.msgs = append(p.msgs, fd)
				continue
			}
			if sp, ok := plans.Load(sub.FullName()); ok {
				if !sp.(*enumPlan).empty() {
					p.msgs = append(p.msgs, fd)
				}
				continue
			}
			if !buildPlan(sub, building).empty() {
				p.msgs = append(p.msgs, fd)
			}
		}
	}
	return p
}

func (p *enumPlan) check(r protoreflect.Message, prefix string, v *violations) {
	for _, fd := range p.enums {
		if !r.Has(fd) {
			continue
		}
		ed := fd.Enum()
		if fd.IsMap() {
			ed = fd.MapValue().Enum()
		}
		bad := func(field string, n protoreflect.EnumNumber) {
			if len(*v) < maxEnumViolations && ed.Values().ByNumber(n) == nil {
				v.add(field, "%d is not a value of %s", n, ed.FullName())
			}
		}
		name := prefix + string(fd.Name())
		switch val := r.Get(fd); {
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				bad(name+"["+strconv.Itoa(i)+"]", l.Get(i).Enum())
			}
		case fd.IsMap():
			val.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				bad(name+"["+strconv.Quote(k.String())+"]", e.Enum())
				return true
			})
		default:
			bad(name, val.Enum())
		}
	}
	for _, fd := range p.msgs {
		if !r.Has(fd) || len(*v) >= maxEnumViolations {
			continue
		}
		name := prefix + string(fd.Name())
		sub := func(field string, m protoreflect.Message) {
			planFor(m.Descriptor()).check(m, field+".", v)
		}
		switch val := r.Get(fd); {
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len() && len(*v) < maxEnumViolations; i++ {
				sub(name+"["+strconv.Itoa(i)+"]", l.Get(i).Message())
			}
		case fd.IsMap():
			val.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				sub(name+"["+strconv.Quote(k.String())+"]", e.Message())
				return len(*v) < maxEnumViolations
			})
		default:
			sub(name, val.Message())
		}
	}
}
