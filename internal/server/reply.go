package server

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The handlers of the account-owned resources (allowlist entries, privacy
// rules, portals, teams, representatives, business hours) each call one
// collection method and wrap its result in the RPC's response. reply,
// replyPage and replyRevision are that wrapping, written once: the
// response's field of the result's type, its list and next page token, or
// its revision. A response without such a field is a programming error
// that every handler's test meets at once.

// reply returns a new R whose field of v's type holds v, or err.
func reply[R, T proto.Message](v T, err error) (R, error) {
	var r R
	if err != nil {
		return r, err
	}
	m := r.ProtoReflect().Type().New()
	m.Set(fieldFor(m.Descriptor(), v.ProtoReflect().Descriptor(), false), protoreflect.ValueOfMessage(v.ProtoReflect()))
	return m.Interface().(R), nil
}

// replyPage returns a new R whose list of T holds items and whose
// next_page_token is next, or err.
func replyPage[R, T proto.Message](items []T, next string, err error) (R, error) {
	var r R
	if err != nil {
		return r, err
	}
	m := r.ProtoReflect().Type().New()
	var zero T
	list := m.Mutable(fieldFor(m.Descriptor(), zero.ProtoReflect().Descriptor(), true)).List()
	for _, it := range items {
		list.Append(protoreflect.ValueOfMessage(it.ProtoReflect()))
	}
	m.Set(namedField(m.Descriptor(), "next_page_token"), protoreflect.ValueOfString(next))
	return m.Interface().(R), nil
}

// replyRevision returns a new R whose revision is rev, or err.
func replyRevision[R proto.Message](rev uint64, err error) (R, error) {
	var r R
	if err != nil {
		return r, err
	}
	m := r.ProtoReflect().Type().New()
	m.Set(namedField(m.Descriptor(), "revision"), protoreflect.ValueOfUint64(rev))
	return m.Interface().(R), nil
}

// fieldFor returns the field of m of message type d: the single one
// (list: the repeated one).
func fieldFor(m, d protoreflect.MessageDescriptor, list bool) protoreflect.FieldDescriptor {
	fields := m.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() != nil && fd.Message().FullName() == d.FullName() && fd.IsList() == list && !fd.IsMap() {
			return fd
		}
	}
	panic(fmt.Sprintf("%s has no field of type %s (list %v)", m.FullName(), d.FullName(), list))
}

// namedField returns the field name of m.
func namedField(m protoreflect.MessageDescriptor, name protoreflect.Name) protoreflect.FieldDescriptor {
	fd := m.Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("%s has no field %s", m.FullName(), name))
	}
	return fd
}
