package server

import (
	"fmt"
	"sync"

	"github.com/gatehouse-dev/gatehouse/internal/errs"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Request size limits. Decoding a request costs CPU in proportion to its
// size, and it happens before any handler can look at the request, so
// every request type has a maximum encoded size far below the transport's
// --max-recv-msg-size (4 MiB), and the parts of a decision request that
// may be large (the element, each check of a batch) have maxima of their
// own. The codec checks them from the message's length and, for a request
// over a part's limit, from the lengths of its fields, before it decodes
// anything (requestSizeError); the handlers check the element again, for
// callers that do not go through the codec.
const (
	// MaxElementBytes is the largest encoded size of one decision's
	// element: the Element message with all its ancestors, as sent on the
	// wire. Real pages describe a target in a few hundred bytes to a few
	// KiB; 64 KiB leaves room for long class lists and attributes, and
	// bounds the decoding and the privacy matching of one decision.
	MaxElementBytes = 64 << 10
	// MaxCheckBytes is the largest encoded CheckFeatureRequest, alone or
	// as one check of a batch: the element plus its URL (maxURLLength)
	// and identifiers.
	MaxCheckBytes = MaxElementBytes + 16<<10
	// MaxBatchBytes is the largest encoded CheckFeaturesRequest: 1 000
	// checks of about 1 KiB each.
	MaxBatchBytes = 1 << 20
	// MaxSmallRequestBytes is the largest encoded request of every other
	// DecisionService and SessionService RPC (identifiers, a URL, an
	// actor).
	MaxSmallRequestBytes = 64 << 10
	// MaxAdminRequestBytes is the largest encoded AdminService request:
	// the largest is a business-hours set with its 1 000 holidays.
	MaxAdminRequestBytes = 1 << 20
	// MaxDocumentBytes is the largest encoded ApplyAccount request: an
	// account document at the collection limits (10 000 allowlist entries,
	// 1 000 privacy rules) fits. --max-recv-msg-size (4 MiB by default)
	// bounds every request too.
	MaxDocumentBytes = 3 << 20
)

// sizeRule bounds the encoded size of one message type and of some of its
// fields.
type sizeRule struct {
	// name is the message's full name, for the error message.
	name protoreflect.FullName
	max  int
	// fields bound single fields (each value of a repeated one); a
	// message field's own fields may be bounded too (sub).
	fields []fieldSizeRule
	// scanAbove is the smallest limit of any field at any depth: a
	// message no longer than it cannot hold a field over its limit, so it
	// is not scanned.
	scanAbove int
}

type fieldSizeRule struct {
	num      protowire.Number
	name     string
	what     string // "element", "check": how the message names a value
	max      int
	repeated bool
	sub      *sizeRule
}

// requestSizeRules maps a request type's full name to its rule; request
// types of other services (health, reflection) have none and are bounded
// by --max-recv-msg-size only.
var requestSizeRules = sync.OnceValue(func() map[protoreflect.FullName]*sizeRule {
	rules := map[protoreflect.FullName]*sizeRule{}
	services := []struct {
		sd  protoreflect.ServiceDescriptor
		max int
	}{
		{gatehousev1.File_gatehouse_v1_decision_service_proto.Services().ByName("DecisionService"), MaxSmallRequestBytes},
		{gatehousev1.File_gatehouse_v1_session_service_proto.Services().ByName("SessionService"), MaxSmallRequestBytes},
		{gatehousev1.File_gatehouse_v1_admin_service_proto.Services().ByName("AdminService"), MaxAdminRequestBytes},
	}
	for _, s := range services {
		for i := 0; i < s.sd.Methods().Len(); i++ {
			in := s.sd.Methods().Get(i).Input()
			rules[in.FullName()] = &sizeRule{name: in.FullName(), max: s.max}
		}
	}
	checkMD := (&gatehousev1.CheckFeatureRequest{}).ProtoReflect().Descriptor()
	batchMD := (&gatehousev1.CheckFeaturesRequest{}).ProtoReflect().Descriptor()
	check := &sizeRule{name: checkMD.FullName(), max: MaxCheckBytes, fields: []fieldSizeRule{
		{num: checkMD.Fields().ByName("element").Number(), name: "element", what: "element", max: MaxElementBytes},
	}, scanAbove: MaxElementBytes}
	rules[check.name] = check
	rules[batchMD.FullName()] = &sizeRule{name: batchMD.FullName(), max: MaxBatchBytes, fields: []fieldSizeRule{
		{num: batchMD.Fields().ByName("checks").Number(), name: "checks", what: "check", max: MaxCheckBytes, repeated: true, sub: check},
	}, scanAbove: MaxElementBytes}
	// CheckHypothetical is a batch of checks as CheckFeatures is.
	hypMD := (&gatehousev1.CheckHypotheticalRequest{}).ProtoReflect().Descriptor()
	hcMD := (&gatehousev1.HypotheticalCheck{}).ProtoReflect().Descriptor()
	hcheck := &sizeRule{name: hcMD.FullName(), max: MaxCheckBytes, fields: []fieldSizeRule{
		{num: hcMD.Fields().ByName("element").Number(), name: "element", what: "element", max: MaxElementBytes},
	}, scanAbove: MaxElementBytes}
	rules[hypMD.FullName()] = &sizeRule{name: hypMD.FullName(), max: MaxBatchBytes, fields: []fieldSizeRule{
		{num: hypMD.Fields().ByName("checks").Number(), name: "checks", what: "check", max: MaxCheckBytes, repeated: true, sub: hcheck},
	}, scanAbove: MaxElementBytes}
	applyMD := (&gatehousev1.ApplyAccountRequest{}).ProtoReflect().Descriptor()
	rules[applyMD.FullName()] = &sizeRule{name: applyMD.FullName(), max: MaxDocumentBytes}
	return rules
})

// sizeRuleFor returns the size rule of a request type (nil: none).
func sizeRuleFor(md protoreflect.MessageDescriptor) *sizeRule {
	return requestSizeRules()[md.FullName()]
}

// needsCheck reports whether a message of n bytes may break r.
func (r *sizeRule) needsCheck(n int) bool {
	return n > r.max || (len(r.fields) > 0 && n > r.scanAbove)
}

// check returns INVALID_ARGUMENT naming the parts of b (an encoded
// message of r's type) over their limits, or nil. It reads only tags and
// lengths: nothing is decoded.
func (r *sizeRule) check(b []byte) error {
	var v violations
	r.scan(b, "", &v)
	if len(v) == 0 && len(b) > r.max {
		v.add(largestField(b, r), "the request is %d bytes encoded; a %s may be at most %d bytes", len(b), r.name.Name(), r.max)
	}
	if len(v) == 0 {
		return nil
	}
	return &requestSizeError{err: &errs.Error{Kind: errs.Invalid, Fields: v,
		Message: fmt.Sprintf("request too large: %s: %s", v[0].Field, v[0].Description)}}
}

// scan adds a violation for every bounded field of b over its limit (up
// to maxEnumViolations), naming it under prefix.
func (r *sizeRule) scan(b []byte, prefix string, v *violations) {
	if len(r.fields) == 0 {
		return
	}
	index := map[protowire.Number]int{}
	for len(b) > 0 && len(*v) < maxEnumViolations {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return // malformed: left to the decoder, which says so
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return
		}
		val := b[:m]
		b = b[m:]
		for i := range r.fields {
			f := &r.fields[i]
			if f.num != num || typ != protowire.BytesType {
				continue
			}
			body, _ := protowire.ConsumeBytes(val)
			name := prefix + f.name
			if f.repeated {
				name = fmt.Sprintf("%s%s[%d]", prefix, f.name, index[num])
				index[num]++
			}
			if len(body) > f.max {
				v.add(name, "the %s is %d bytes encoded; it may be at most %d bytes", f.what, len(body), f.max)
				continue
			}
			if f.sub != nil && f.sub.needsCheck(len(body)) {
				f.sub.scan(body, name+".", v)
			}
		}
	}
}

// largestField names the top-level field of b that takes the most bytes
// (the field a caller should look at first), or the message when none
// does.
func largestField(b []byte, r *sizeRule) string {
	sizes := map[protowire.Number]int{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		sizes[num] += n + m
		b = b[n+m:]
	}
	best, bestN := protowire.Number(0), 0
	for num, n := range sizes {
		if n > bestN || (n == bestN && num < best) {
			best, bestN = num, n
		}
	}
	if md := requestDescriptor(r.name); md != nil {
		if fd := md.Fields().ByNumber(best); fd != nil {
			return string(fd.Name())
		}
	}
	return string(r.name.Name())
}

func requestDescriptor(name protoreflect.FullName) protoreflect.MessageDescriptor {
	for _, fd := range []protoreflect.FileDescriptor{gatehousev1.File_gatehouse_v1_decision_service_proto,
		gatehousev1.File_gatehouse_v1_session_service_proto, gatehousev1.File_gatehouse_v1_admin_service_proto} {
		if md := fd.Messages().ByName(name.Name()); md != nil && md.FullName() == name {
			return md
		}
	}
	return nil
}

// requestSizeError is a request refused for its size before it was
// decoded; the interceptors count it (gatehouse_limit_refusals_total,
// limit "request_size").
type requestSizeError struct{ err *errs.Error }

func (e *requestSizeError) Error() string { return e.err.Error() }
func (e *requestSizeError) Unwrap() error { return e.err }

// elementSizeBound returns an upper bound of the encoded size of an
// element node from the sizes validateNode already has at hand: each
// string costs at most its length and 4 bytes of tag and length (strings
// here are shorter than 2 MiB), each map entry 8 more.
func elementSizeBound(tag, id string, classes []string, attrs map[string]string) int {
	n := len(tag) + len(id) + 8 + 8 // + the node's own tag and length
	for _, c := range classes {
		n += len(c) + 4
	}
	for k, v := range attrs {
		n += len(k) + len(v) + 16
	}
	return n
}
