package server

import (
	"fmt"
	"math"
	"slices"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// enumSite is one place an enum can arrive in a request: the fields from
// the request message down to the enum field (a repeated field is entered
// at index 0), and the field path the server must name.
type enumSite struct {
	fields []protoreflect.FieldDescriptor
	path   string
}

// enumSites lists every enum field reachable from md, through nested
// messages and repeated fields; a message type already on the way down
// is not entered again.
func enumSites(md protoreflect.MessageDescriptor, prefix []protoreflect.FieldDescriptor, path string, seen []protoreflect.FullName) []enumSite {
	var out []enumSite
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.IsMap() {
			continue // no map in the API holds enums or messages; checked below
		}
		name := path + string(fd.Name())
		if fd.IsList() {
			name += "[0]"
		}
		chain := append(slices.Clone(prefix), fd)
		switch fd.Kind() {
		case protoreflect.EnumKind:
			out = append(out, enumSite{fields: chain, path: name})
		case protoreflect.MessageKind:
			if slices.Contains(seen, fd.Message().FullName()) {
				continue
			}
			out = append(out, enumSites(fd.Message(), chain, name+".", append(slices.Clone(seen), fd.Message().FullName()))...)
		}
	}
	return out
}

// requestWith builds an otherwise empty request of type md whose enum at
// site holds n.
func requestWith(md protoreflect.MessageDescriptor, site enumSite, n protoreflect.EnumNumber) *dynamicpb.Message {
	req := dynamicpb.NewMessage(md)
	var m protoreflect.Message = req
	for i, fd := range site.fields {
		last := i == len(site.fields)-1
		switch {
		case last && fd.IsList():
			m.Mutable(fd).List().Append(protoreflect.ValueOfEnum(n))
		case last:
			m.Set(fd, protoreflect.ValueOfEnum(n))
		case fd.IsList():
			l := m.Mutable(fd).List()
			el := l.NewElement()
			l.Append(el)
			m = el.Message()
		default:
			m = m.Mutable(fd).Message()
		}
	}
	return req
}

// undeclared returns numbers the enum ed does not declare: one past its
// largest value, every declared non-zero value plus 256 and plus 1<<16
// (which alias it once narrowed to 8 or 16 bits), and the extremes.
func undeclared(ed protoreflect.EnumDescriptor) []protoreflect.EnumNumber {
	var out []protoreflect.EnumNumber
	add := func(n int64) {
		if n < math.MinInt32 || n > math.MaxInt32 {
			return
		}
		e := protoreflect.EnumNumber(n)
		if ed.Values().ByNumber(e) == nil && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	vals := ed.Values()
	maxDeclared := int64(0)
	for i := 0; i < vals.Len(); i++ {
		n := int64(vals.Get(i).Number())
		maxDeclared = max(maxDeclared, n)
		if n != 0 {
			add(n + 256)
			add(n + 1<<16)
			add(n - 256)
		}
	}
	add(maxDeclared + 1)
	add(1 << 30)
	add(-1)
	add(math.MaxInt32)
	add(math.MinInt32)
	return out
}

// TestUndeclaredEnumValuesAreInvalid walks every request message of every
// RPC of every Gatehouse service and sends, against a real server, each
// enum field set to numbers its type does not declare: every one must be
// INVALID_ARGUMENT naming that field, never OK and never INTERNAL.
func TestUndeclaredEnumValuesAreInvalid(t *testing.T) {
	e := MustStart(t, "")
	e.MustCreateAccount("acme")
	files := []protoreflect.FileDescriptor{
		gatehousev1.File_gatehouse_v1_admin_service_proto,
		gatehousev1.File_gatehouse_v1_session_service_proto,
		gatehousev1.File_gatehouse_v1_decision_service_proto,
	}
	rpcs, sites, calls := 0, 0, 0
	seenEnums := map[protoreflect.FullName]bool{}
	for _, fd := range files {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				method := fmt.Sprintf("/%s/%s", sd.FullName(), md.Name())
				in := md.Input()
				for _, site := range enumSites(in, nil, "", []protoreflect.FullName{in.FullName()}) {
					ed := site.fields[len(site.fields)-1].Enum()
					seenEnums[ed.FullName()] = true
					sites++
					for _, n := range undeclared(ed) {
						calls++
						err := invokeRaw(t, e, method, md, requestWith(in, site, n))
						st, _ := status.FromError(err)
						if st.Code() != codes.InvalidArgument {
							t.Errorf("%s with %s = %d: got %v (%v), want INVALID_ARGUMENT", method, site.path, n, st.Code(), err)
							continue
						}
						if got := fieldViolations(st); !slices.Contains(got, site.path) {
							t.Errorf("%s with %s = %d: violations %v do not name %q", method, site.path, n, got, site.path)
						}
					}
				}
				rpcs++
			}
		}
	}
	// Every enum a caller can send must have been reached.
	for _, want := range []string{"Role", "Feature", "Frame", "PrivacyRuleKind", "Weekday", "SessionKind", "CallerRole"} {
		if !seenEnums[protoreflect.FullName("gatehouse.v1."+want)] {
			t.Errorf("no request field of type gatehouse.v1.%s was found", want)
		}
	}
	for _, must := range []string{"checks[0].feature", "checks[0].actor.role", "checks[0].frame"} {
		found := false
		for _, fd := range files {
			if m := fd.Services().ByName("DecisionService"); m != nil {
				in := m.Methods().ByName("CheckFeatures").Input()
				for _, s := range enumSites(in, nil, "", nil) {
					found = found || s.path == must
				}
			}
		}
		if !found {
			t.Errorf("CheckFeatures' nested %s was not walked", must)
		}
	}
	t.Logf("%d RPCs, %d enum sites, %d calls", rpcs, sites, calls)
}

// invokeRaw calls method with req, unary or server-streaming as md says,
// and returns the call's error (for a stream, the first receive's).
func invokeRaw(t *testing.T, e *testEnv, method string, md protoreflect.MethodDescriptor, req *dynamicpb.Message) error {
	t.Helper()
	ctx := ctxT(t)
	out := dynamicpb.NewMessage(md.Output())
	if !md.IsStreamingServer() && !md.IsStreamingClient() {
		return e.conn.Invoke(ctx, method, req, out)
	}
	cs, err := e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient()}, method)
	if err != nil {
		return err
	}
	if err := cs.SendMsg(req); err != nil {
		return err
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	return cs.RecvMsg(out)
}

// TestUndeclaredFeatureDoesNotAliasFunction is the case that used to be
// allowed: in a support session whose portal and representative have
// every function on, a customer asking about a feature number 256 above a
// support function (or any other undeclared number) gets INVALID_ARGUMENT
// rather than the function's answer, in CheckFeature and CheckFeatures.
func TestUndeclaredFeatureDoesNotAliasFunction(t *testing.T) {
	e := MustStart(t, "")
	sess := startSupportSession(t, e)
	ctx := ctxT(t)
	ok := e.MustCheck(&gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: customer(sess.GetCustomerId()),
		Feature: gatehousev1.Feature_FEATURE_SEND_FILES})
	if !ok.GetDecision().GetAllowed() {
		t.Fatalf("SEND_FILES in the support session: %v, want allowed", ok.GetDecision())
	}
	var bad []gatehousev1.Feature
	for f := gatehousev1.Feature_FEATURE_CUSTOMER_SCREEN_SHARING; f <= gatehousev1.Feature_FEATURE_INVITE_EXTERNAL_SPECIALIST; f++ {
		bad = append(bad, f+256, f+512, f+1<<16, f-256)
	}
	bad = append(bad, 113, 13, 100, 1<<30, -1, math.MinInt32, math.MaxInt32)
	for _, f := range bad {
		req := &gatehousev1.CheckFeatureRequest{SessionId: sess.GetId(), Actor: customer(sess.GetCustomerId()), Feature: f}
		resp, err := e.decide.CheckFeature(ctx, req)
		if err == nil {
			t.Errorf("CheckFeature(feature %d) = %v, want INVALID_ARGUMENT", f, resp.GetDecision())
			continue
		}
		wantInvalid(t, err, "feature")
		_, err = e.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{
			{SessionId: sess.GetId(), Actor: customer(sess.GetCustomerId()), Feature: gatehousev1.Feature_FEATURE_SEND_FILES}, req}})
		wantInvalid(t, err, "checks[1].feature")
	}
}

// startSupportSession creates a portal chain and a representative with
// every function on and starts a support session at the subportal.
func startSupportSession(t *testing.T, e *testEnv) *gatehousev1.Session {
	t.Helper()
	ctx := ctxT(t)
	all := &gatehousev1.SupportFunctions{}
	pr := all.ProtoReflect()
	for i := 0; i < pr.Descriptor().Fields().Len(); i++ {
		pr.Set(pr.Descriptor().Fields().Get(i), protoreflect.ValueOfBool(true))
	}
	if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "sup", DisplayName: "Support"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "sup", Portal: &gatehousev1.Portal{Id: "top", Name: "Top", Functions: all}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "sup", Portal: &gatehousev1.Portal{Id: "sub", ParentId: "top", Name: "Sub", Functions: all}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "sup", Team: &gatehousev1.Team{Id: "team", Name: "Team", PortalId: "sub"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "sup",
		Representative: &gatehousev1.Representative{Id: "rep", DisplayName: "Rep", TeamId: "team", Functions: all}}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "sup", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "rep", CustomerId: "cust", PortalId: "sub"})
	if err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	return resp.GetSession()
}
