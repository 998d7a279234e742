package server

import (
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// fillEmpty sets account_id to acct and every message field (but times
// and masks) to an empty message, recursively to depth 2: a request whose
// every other field is missing.
func fillEmpty(m protoreflect.Message, acct string, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.Name() == "account_id" && fd.Kind() == protoreflect.StringKind && !fd.IsList():
			m.Set(fd, protoreflect.ValueOfString(acct))
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && depth > 0 &&
			fd.Message().ParentFile().Package() == "gatehouse.v1":
			fillEmpty(m.Mutable(fd).Message(), acct, depth-1)
		case fd.Kind() == protoreflect.MessageKind && fd.IsList() && depth > 0 &&
			fd.Message().ParentFile().Package() == "gatehouse.v1":
			l := m.Mutable(fd).List()
			el := l.NewElement()
			fillEmpty(el.Message(), acct, depth-1)
			l.Append(el)
		}
	}
}

// Every RPC called with its fields missing names each missing field with
// the same phrase, "is required", whatever the field's type (a string, a
// message, an enum left at its UNSPECIFIED value).
func TestViolations_MissingFieldsAreRequired(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	seen := map[string]string{}
	for _, sd := range []protoreflect.ServiceDescriptor{
		gatehousev1.File_gatehouse_v1_admin_service_proto.Services().ByName("AdminService"),
		gatehousev1.File_gatehouse_v1_session_service_proto.Services().ByName("SessionService"),
		gatehousev1.File_gatehouse_v1_decision_service_proto.Services().ByName("DecisionService"),
	} {
		for i := 0; i < sd.Methods().Len(); i++ {
			md := sd.Methods().Get(i)
			if md.IsStreamingClient() || md.IsStreamingServer() {
				continue
			}
			req := dynamicpb.NewMessage(md.Input())
			fillEmpty(req, "acme", 2)
			resp := dynamicpb.NewMessage(md.Output())
			err := e.conn.Invoke(ctxT(t), "/"+string(sd.FullName())+"/"+string(md.Name()), req, resp)
			st, _ := status.FromError(err)
			for _, d := range st.Details() {
				br, ok := d.(*errdetails.BadRequest)
				if !ok {
					continue
				}
				for _, v := range br.GetFieldViolations() {
					seen[string(md.Name())+" "+v.GetField()] = v.GetDescription()
				}
			}
		}
	}
	for k, desc := range seen {
		t.Logf("%s: %s", k, desc)
		if !strings.HasPrefix(desc, "is required") {
			t.Errorf("%s: %q, want \"is required…\" for a missing field", k, desc)
		}
	}
	for _, want := range []string{"CheckFeature feature", "CheckFeature actor.role", "StartSession kind", "CreatePrivacyRule rule.kind", "CreateCallerToken token.role"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no violation for %s", want)
		}
	}
}
