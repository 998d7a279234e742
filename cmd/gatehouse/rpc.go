package main

import (
	"context"
	"fmt"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// A family's five calls are the same for every resource: the AdminService
// methods Get<one>, List<many>, Create<one>, Update<one> and Delete<one>,
// whose requests name their fields alike (account_id, id, etag, page_size,
// page_token, update_mask, and one field of the resource's type). They are
// built from the service descriptor rather than spelled out per family;
// TestFamilies_MethodsResolve checks every family against it.

var adminService = gatehousev1.File_gatehouse_v1_admin_service_proto.Services().ByName("AdminService")

// request is what a family's call sets in its request; a zero field is
// left unset.
type request struct {
	account, id, etag, pageToken string
	pageSize                     int32
	item                         proto.Message // the field of the resource's type
	mask                         *fieldmaskpb.FieldMask
}

func (f *family) get(ctx context.Context, c *clients, acct, id string) (proto.Message, error) {
	return f.itemCall(ctx, c, "Get"+f.one, request{account: acct, id: id})
}

func (f *family) list(ctx context.Context, c *clients, acct string, size int32, token string) (proto.Message, error) {
	return adminCall(ctx, c, "List"+f.many, request{account: acct, pageSize: size, pageToken: token})
}

func (f *family) create(ctx context.Context, c *clients, acct string, item proto.Message) (proto.Message, error) {
	return f.itemCall(ctx, c, "Create"+f.one, request{account: acct, item: item})
}

func (f *family) update(ctx context.Context, c *clients, acct string, item proto.Message, mask *fieldmaskpb.FieldMask) (proto.Message, error) {
	return f.itemCall(ctx, c, "Update"+f.one, request{account: acct, item: item, mask: mask})
}

func (f *family) del(ctx context.Context, c *clients, acct, id, etag string) (proto.Message, error) {
	return adminCall(ctx, c, "Delete"+f.one, request{account: acct, id: id, etag: etag})
}

// itemCall calls method and returns the resource in its response.
func (f *family) itemCall(ctx context.Context, c *clients, method string, r request) (proto.Message, error) {
	resp, err := adminCall(ctx, c, method, r)
	if err != nil {
		return nil, err
	}
	m := resp.ProtoReflect()
	fd := fieldOfType(m.Descriptor(), f.newItem().ProtoReflect().Descriptor())
	if fd == nil {
		return nil, fmt.Errorf("%s: the response has no %s field", method, f.kind)
	}
	return m.Get(fd).Message().Interface(), nil
}

// adminCall calls the AdminService method with a request set from r.
func adminCall(ctx context.Context, c *clients, method string, r request) (proto.Message, error) {
	md := adminService.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil, fmt.Errorf("AdminService has no method %s", method)
	}
	req, err := newMessage(md.Input())
	if err != nil {
		return nil, err
	}
	resp, err := newMessage(md.Output())
	if err != nil {
		return nil, err
	}
	if err := r.setIn(req.ProtoReflect()); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if err := c.conn.Invoke(ctx, fmt.Sprintf("/%s/%s", adminService.FullName(), md.Name()), req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// newMessage returns a new message of the generated type of d.
func newMessage(d protoreflect.MessageDescriptor) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		return nil, err
	}
	return mt.New().Interface(), nil
}

// setIn sets r's non-zero fields in m; a request without one of them is an
// error.
func (r request) setIn(m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	set := func(fd protoreflect.FieldDescriptor, name string, v protoreflect.Value) error {
		if fd == nil {
			return fmt.Errorf("%s has no field %s", m.Descriptor().FullName(), name)
		}
		m.Set(fd, v)
		return nil
	}
	for _, s := range []struct{ name, v string }{{"account_id", r.account}, {"id", r.id}, {"etag", r.etag}, {"page_token", r.pageToken}} {
		if s.v != "" {
			if err := set(fields.ByName(protoreflect.Name(s.name)), s.name, protoreflect.ValueOfString(s.v)); err != nil {
				return err
			}
		}
	}
	if r.pageSize != 0 {
		if err := set(fields.ByName("page_size"), "page_size", protoreflect.ValueOfInt32(r.pageSize)); err != nil {
			return err
		}
	}
	if r.mask != nil {
		if err := set(fields.ByName("update_mask"), "update_mask", protoreflect.ValueOfMessage(r.mask.ProtoReflect())); err != nil {
			return err
		}
	}
	if r.item != nil {
		item := r.item.ProtoReflect()
		if err := set(fieldOfType(m.Descriptor(), item.Descriptor()), string(item.Descriptor().Name()), protoreflect.ValueOfMessage(item)); err != nil {
			return err
		}
	}
	return nil
}

// fieldOfType returns the field of m whose type is the message d, or nil.
func fieldOfType(m, d protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fields := m.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message() != nil && fd.Message().FullName() == d.FullName() && !fd.IsList() && !fd.IsMap() {
			return fd
		}
	}
	return nil
}
