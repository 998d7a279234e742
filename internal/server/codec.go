package server

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec wrapped here
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec is the server's wire codec: grpc-go's proto codec, plus
// three checks on every request it decodes.
//
//   - A request over its type's size limit, or with an element or a check
//     over theirs, is refused from the lengths on the wire before anything
//     is decoded (request_size.go): INVALID_ARGUMENT with a field
//     violation naming the part, answered like an undecodable request.
//   - Bytes that do not decode (malformed wire format, invalid UTF-8 in a
//     string field) are the caller's mistake, INVALID_ARGUMENT. grpc-go
//     turns any codec error into INTERNAL and answers it before the
//     interceptor chain runs, so the call would be neither logged nor
//     counted. The codec therefore reports success with an empty message
//     and files the error under the message; the server's
//     interceptor (unaryGuarded, callerStream.RecvMsg), which runs after
//     metrics and the call log, answers it (takeRequestError).
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

// Marshal encodes a response; an encodedMessage is sent as it is.
func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	if e, ok := v.(*encodedMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(e.b)}, nil
	}
	return c.inner.Marshal(v)
}

// encodedMessage is a response marshaled once and sent on many streams
// (stream.SendMsg): a policy that many watchers of one session share is
// encoded once, not once per watcher, and its bytes are held once however
// many streams are still sending them. The bytes are never modified.
type encodedMessage struct{ b []byte }

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.inner.Unmarshal(data, v)
	}
	if r := sizeRuleFor(m.ProtoReflect().Descriptor()); r != nil && r.needsCheck(data.Len()) {
		// Large enough to break a size limit: look at the lengths
		// before decoding anything (request_size.go).
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		err := r.check(buf.ReadOnlyData())
		if err == nil {
			start := time.Now()
			err = proto.Unmarshal(buf.ReadOnlyData(), m)
			if err != nil {
				err = errs.New(errs.Invalid, "the request cannot be decoded: %v", err)
			} else {
				fileDecodeCost(v, time.Since(start))
			}
		}
		buf.Free()
		if err != nil {
			proto.Reset(m)
			fileRequestError(v, err)
			return nil
		}
	} else {
		var start time.Time
		timed := data.Len() > decodeTimedAbove
		if timed {
			start = time.Now()
		}
		if err := c.inner.Unmarshal(data, v); err != nil {
			proto.Reset(m)
			fileRequestError(v, errs.New(errs.Invalid, "the request cannot be decoded: %v", err))
			return nil
		}
		if timed {
			fileDecodeCost(v, time.Since(start))
		}
	}
	if err := checkEnums(m); err != nil {
		fileRequestError(v, err)
	}
	return nil
}

// requestErrors holds, by decoded message, why a request was refused
// while decoding (a *filedError); entries live from Unmarshal to the
// interceptor that takes them, microseconds. A call that an interceptor
// before that one refuses leaves its entry behind: such entries are
// dropped once they are a minute old, checked whenever more than
// requestErrorsSweep are held.
var (
	requestErrors      sync.Map
	requestErrorsHeld  atomic.Int64
	requestErrorsSweep = int64(1024)
)

type filedError struct {
	err error
	at  time.Time
}

// requestErrorsHeld counts an entry before it is stored and after it is
// removed, so it is never below the number of entries held: a call whose
// decoding filed nothing finds it at zero, the common case, and skips the
// map (takeRequestError).
func fileRequestError(msg any, err error) {
	held := requestErrorsHeld.Add(1)
	if _, loaded := requestErrors.Swap(msg, &filedError{err: err, at: time.Now()}); loaded {
		requestErrorsHeld.Add(-1)
		return
	}
	if held > requestErrorsSweep {
		sweepRequestErrors(time.Now().Add(-time.Minute))
	}
}

func sweepRequestErrors(before time.Time) {
	requestErrors.Range(func(k, v any) bool {
		if v.(*filedError).at.Before(before) && requestErrors.CompareAndDelete(k, v) {
			requestErrorsHeld.Add(-1)
		}
		return true
	})
}

// takeRequestError returns, and forgets, the error filed for msg while it
// was decoded; nil when it decoded cleanly.
func takeRequestError(msg any) error {
	if msg == nil || requestErrorsHeld.Load() == 0 {
		return nil
	}
	if fe, ok := requestErrors.LoadAndDelete(msg); ok {
		requestErrorsHeld.Add(-1)
		return fe.(*filedError).err
	}
	return nil
}

// maxEnumViolations bounds the field violations of one refusal.
const maxEnumViolations = 10

// checkEnums returns INVALID_ARGUMENT when m holds, at any depth, an enum
// value its enum type does not declare. A clean request, the common case,
// costs a walk over its enum and message fields without allocating; field
// paths are built only for a refusal.
func checkEnums(m proto.Message) error {
	r := m.ProtoReflect()
	p := planFor(r.Descriptor())
	if p.empty() || p.valid(r) {
		return nil
	}
	var v violations
	p.check(r, "", &v)
	if len(v) == 0 {
		return nil
	}
	return v.err()
}

// enumPlan lists, for one message type, the fields that are enums and the
// message fields whose types may hold enums (with their plans), so that
// checking a request skips everything else.
type enumPlan struct {
	enums []enumField
	msgs  []msgField
}

// enumField is an enum field with the set of its type's declared numbers.
type enumField struct {
	fd  protoreflect.FieldDescriptor
	ed  protoreflect.EnumDescriptor
	set enumSet
}

// enumSet answers "is n declared?" from a table over the declared range
// when that range is small (every enum of this API), else from the
// descriptor.
type enumSet struct {
	ed       protoreflect.EnumDescriptor
	lo       protoreflect.EnumNumber
	declared []bool // nil: ask ed
}

// maxEnumTable bounds the table of one enumSet.
const maxEnumTable = 4096

func newEnumSet(ed protoreflect.EnumDescriptor) enumSet {
	s := enumSet{ed: ed}
	vals := ed.Values()
	if vals.Len() == 0 {
		return s
	}
	lo, hi := vals.Get(0).Number(), vals.Get(0).Number()
	for i := 1; i < vals.Len(); i++ {
		lo, hi = min(lo, vals.Get(i).Number()), max(hi, vals.Get(i).Number())
	}
	if int64(hi)-int64(lo) >= maxEnumTable {
		return s
	}
	s.lo, s.declared = lo, make([]bool, int(hi-lo)+1)
	for i := 0; i < vals.Len(); i++ {
		s.declared[vals.Get(i).Number()-lo] = true
	}
	return s
}

func (s *enumSet) has(n protoreflect.EnumNumber) bool {
	if s.declared == nil {
		return s.ed.Values().ByNumber(n) != nil
	}
	i := int64(n) - int64(s.lo)
	return i >= 0 && i < int64(len(s.declared)) && s.declared[i]
}

type msgField struct {
	fd   protoreflect.FieldDescriptor
	plan *enumPlan
}

func (p *enumPlan) empty() bool { return len(p.enums) == 0 && len(p.msgs) == 0 }

var plans sync.Map // protoreflect.MessageDescriptor → *enumPlan

func planFor(md protoreflect.MessageDescriptor) *enumPlan {
	if p, ok := plans.Load(md); ok {
		return p.(*enumPlan)
	}
	p := buildPlan(md, map[protoreflect.FullName]*enumPlan{})
	plans.Store(md, p)
	return p
}

// buildPlan computes md's plan. A message type met again while its plan is
// being built (a recursive type) is assumed to hold enums and shares the
// plan under construction.
func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.FullName]*enumPlan) *enumPlan {
	p := &enumPlan{}
	building[md.FullName()] = p
	defer delete(building, md.FullName())
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		switch vd.Kind() {
		case protoreflect.EnumKind:
			p.enums = append(p.enums, enumField{fd: fd, ed: vd.Enum(), set: newEnumSet(vd.Enum())})
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if sub, ok := building[vd.Message().FullName()]; ok {
				p.msgs = append(p.msgs, msgField{fd, sub})
				continue
			}
			if sub := buildPlan(vd.Message(), building); !sub.empty() {
				p.msgs = append(p.msgs, msgField{fd, sub})
			}
		}
	}
	return p
}

// valid reports whether every enum in r is declared.
func (p *enumPlan) valid(r protoreflect.Message) bool {
	for i := range p.enums {
		ef := &p.enums[i]
		fd := ef.fd
		if !r.Has(fd) {
			continue
		}
		switch val := r.Get(fd); {
		case fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				if !ef.set.has(l.Get(i).Enum()) {
					return false
				}
			}
		case fd.IsMap():
			ok := true
			val.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				ok = ef.set.has(e.Enum())
				return ok
			})
			if !ok {
				return false
			}
		default:
			if !ef.set.has(val.Enum()) {
				return false
			}
		}
	}
	for _, mf := range p.msgs {
		if !r.Has(mf.fd) {
			continue
		}
		switch val := r.Get(mf.fd); {
		case mf.fd.IsList():
			l := val.List()
			for i := 0; i < l.Len(); i++ {
				if !mf.plan.valid(l.Get(i).Message()) {
					return false
				}
			}
		case mf.fd.IsMap():
			ok := true
			val.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				ok = mf.plan.valid(e.Message())
				return ok
			})
			if !ok {
				return false
			}
		default:
			if !mf.plan.valid(val.Message()) {
				return false
			}
		}
	}
	return true
}

// check adds a violation for every undeclared enum value in r (up to
// maxEnumViolations), naming its field path under prefix.
func (p *enumPlan) check(r protoreflect.Message, prefix string, v *violations) {
	for i := range p.enums {
		ef := &p.enums[i]
		fd := ef.fd
		if !r.Has(fd) {
			continue
		}
		bad := func(field string, n protoreflect.EnumNumber) {
			if len(*v) < maxEnumViolations && !ef.set.has(n) {
				v.add(field, "%d is not a value of %s", n, ef.ed.FullName())
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
	for _, mf := range p.msgs {
		if !r.Has(mf.fd) || len(*v) >= maxEnumViolations {
			continue
		}
		name := prefix + string(mf.fd.Name())
		switch val := r.Get(mf.fd); {
		case mf.fd.IsList():
			l := val.List()
			for i := 0; i < l.Len() && len(*v) < maxEnumViolations; i++ {
				mf.plan.check(l.Get(i).Message(), name+"["+strconv.Itoa(i)+"].", v)
			}
		case mf.fd.IsMap():
			val.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				mf.plan.check(e.Message(), name+"["+strconv.Quote(k.String())+"].", v)
				return len(*v) < maxEnumViolations
			})
		default:
			mf.plan.check(val.Message(), name+".", v)
		}
	}
}
