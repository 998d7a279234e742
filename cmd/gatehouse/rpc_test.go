package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestFamilies_MethodsResolve checks every family's five calls against the
// AdminService descriptor: each method exists, its request takes every
// field the family sets (account_id exactly when the family is owned by an
// account), and Get, Create and Update answer with the resource.
func TestFamilies_MethodsResolve(t *testing.T) {
	for _, f := range families() {
		item := f.newItem()
		acct := ""
		if f.account {
			acct = "acme"
		}
		calls := []struct {
			method   string
			r        request
			withItem bool
		}{
			{"Get" + f.one, request{account: acct, id: "x"}, true},
			{"List" + f.many, request{account: acct, pageSize: 10, pageToken: "t"}, false},
			{"Create" + f.one, request{account: acct, item: item}, true},
			{"Update" + f.one, request{account: acct, item: item, mask: &fieldmaskpb.FieldMask{Paths: []string{"id"}}}, true},
			{"Delete" + f.one, request{account: acct, id: "x", etag: "e"}, false},
		}
		for _, c := range calls {
			md := adminService.Methods().ByName(protoreflect.Name(c.method))
			if md == nil {
				t.Errorf("%s: AdminService has no method %s", f.use, c.method)
				continue
			}
			if has := md.Input().Fields().ByName("account_id") != nil; has != f.account {
				t.Errorf("%s: %s has account_id %v, family owned by an account %v", f.use, c.method, has, f.account)
			}
			req, err := newMessage(md.Input())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.r.setIn(req.ProtoReflect()); err != nil {
				t.Errorf("%s: %s: %v", f.use, c.method, err)
			}
			if c.withItem && fieldOfType(md.Output(), item.ProtoReflect().Descriptor()) == nil {
				t.Errorf("%s: %s response has no %s field", f.use, c.method, item.ProtoReflect().Descriptor().Name())
			}
		}
		list := adminService.Methods().ByName(protoreflect.Name("List" + f.many))
		if list != nil && len(messageLists(list.Output(), item.ProtoReflect().Descriptor())) != 1 {
			t.Errorf("%s: List%s response has no single list of %s", f.use, f.many, item.ProtoReflect().Descriptor().Name())
		}
	}
}

// messageLists returns the repeated fields of m of type d.
func messageLists(m, d protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	for i := range m.Fields().Len() {
		if fd := m.Fields().Get(i); fd.IsList() && fd.Message() != nil && fd.Message().FullName() == d.FullName() {
			out = append(out, fd)
		}
	}
	return out
}

// TestRequest_RefusesAFieldTheRequestLacks: a call that sets a field its
// request does not have fails before anything is sent, instead of
// dropping the value.
func TestRequest_RefusesAFieldTheRequestLacks(t *testing.T) {
	for _, tc := range []struct {
		method string
		r      request
		field  string
	}{
		{"ListAccounts", request{id: "x"}, "id"},
		{"GetAccount", request{account: "acme", id: "x"}, "account_id"},
		{"DeletePortal", request{account: "acme", id: "x", pageSize: 3}, "page_size"},
		{"GetTeam", request{account: "acme", item: accountsFamily().newItem()}, "Account"},
	} {
		req, err := newMessage(adminService.Methods().ByName(protoreflect.Name(tc.method)).Input())
		if err != nil {
			t.Fatal(err)
		}
		err = tc.r.setIn(req.ProtoReflect())
		if err == nil || !strings.Contains(err.Error(), "no field "+tc.field) {
			t.Errorf("%s with %+v: got %v, want an error naming field %s", tc.method, tc.r, err, tc.field)
		}
	}
}
