package server

import (
	"context"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// rpcMethods are every RPC of the API, by short name.
var rpcMethods = func() []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	for _, sd := range services {
		for i := range sd.Methods().Len() {
			out = append(out, sd.Methods().Get(i))
		}
	}
	return out
}()

// fuzzMethod resolves a fuzzed method name: an RPC's short name names it,
// anything else picks one by hash, so that every input reaches a handler
// and seeds keep naming the same RPC when the API grows.
func fuzzMethod(name string) protoreflect.MethodDescriptor {
	for _, md := range rpcMethods {
		if string(md.Name()) == name {
			return md
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return rpcMethods[h.Sum32()%uint32(len(rpcMethods))]
}

// readOnly reports whether an RPC never writes.
func readOnly(md protoreflect.MethodDescriptor) bool {
	n := string(md.Name())
	for _, p := range []string{"Get", "List", "Check", "Watch", "Backup"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// Fixture ids of the fuzz store; the seeds use them so that mutations reach
// past the "not found" answers.
const (
	fuzzAccount        = "acme"
	fuzzLiveSession    = "s-fuzz-live"
	fuzzSupportSession = "s-fuzz-support"
)

// seedFuzzStore writes the fixture the seeds refer to: an account with a
// representative in a team at a portal with business hours, an allowlist
// entry, a privacy rule, and one session of each kind.
func seedFuzzStore(tb testing.TB, e *testEnv) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must := func(what string, err error) {
		if err != nil {
			tb.Fatalf("fuzz fixture %s: %v", what, err)
		}
	}
	all := &gatehousev1.SupportFunctions{SendFiles: true, ReceiveFiles: true, InviteExternalSpecialist: true, Annotations: true}
	_, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: fuzzAccount, DisplayName: "Acme"}})
	must("account", err)
	_, err = e.admin.CreateBusinessHours(ctx, &gatehousev1.CreateBusinessHoursRequest{AccountId: fuzzAccount, BusinessHours: &gatehousev1.BusinessHours{
		Id: "bh", Name: "Always", TimeZone: "Europe/Paris", Weekly: alwaysOpen()}})
	must("business hours", err)
	_, err = e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: fuzzAccount, Portal: &gatehousev1.Portal{
		Id: "help", Name: "Help", Functions: all, BusinessHoursId: "bh", NotificationEmail: "help@example.com"}})
	must("portal", err)
	_, err = e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: fuzzAccount, Team: &gatehousev1.Team{Id: "tier1", Name: "Tier 1", PortalId: "help"}})
	must("team", err)
	_, err = e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: fuzzAccount, Representative: &gatehousev1.Representative{
		Id: "alice", DisplayName: "Alice", TeamId: "tier1", Functions: all, LiveGuideEnabled: true}})
	must("representative", err)
	_, err = e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: fuzzAccount, Entry: &gatehousev1.AllowlistEntry{Id: "docs", Pattern: "example.com"}})
	must("allowlist entry", err)
	_, err = e.admin.CreatePrivacyRule(ctx, &gatehousev1.CreatePrivacyRuleRequest{AccountId: fuzzAccount, Rule: &gatehousev1.PrivacyRule{
		Id: "pr1", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK, Selector: "button.buy"}})
	must("privacy rule", err)
	// Sessions get random ids through the API; the fixture's are fixed so
	// that seeds can name them.
	rev, err := e.store.Update(ctx, func(tx store.Tx) error {
		now := time.Now().UTC()
		for _, s := range []policy.Session{
			{ID: fuzzLiveSession, AccountID: fuzzAccount, Kind: policy.SessionKindLiveGuide, State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "cust-1", StartTime: now},
			{ID: fuzzSupportSession, AccountID: fuzzAccount, Kind: policy.SessionKindSupport, State: policy.SessionStateActive, RepresentativeID: "alice", CustomerID: "cust-2", PortalID: "help-default", StartTime: now},
		} {
			if err := store.PutSession(tx, &s); err != nil {
				return err
			}
		}
		return nil
	})
	must("sessions", err)
	_, err = e.srv.snaps.WaitFor(ctx, rev)
	must("snapshot", err)
}

func alwaysOpen() []*gatehousev1.WeeklyWindow {
	var w []*gatehousev1.WeeklyWindow
	for d := gatehousev1.Weekday_WEEKDAY_MONDAY; d <= gatehousev1.Weekday_WEEKDAY_SUNDAY; d++ {
		w = append(w, &gatehousev1.WeeklyWindow{Day: d, Start: "00:00", End: "24:00"})
	}
	return w
}

// invoke calls md with req and returns the status and, for an answer, the
// response (the first message of a stream).
func (e *testEnv) invoke(ctx context.Context, md protoreflect.MethodDescriptor, req proto.Message) (*status.Status, *dynamicpb.Message) {
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	resp := dynamicpb.NewMessage(md.Output())
	var err error
	if md.IsStreamingServer() {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var cs grpc.ClientStream
		cs, err = e.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, full)
		if err == nil {
			if err = cs.SendMsg(req); err == nil {
				if err = cs.CloseSend(); err == nil {
					err = cs.RecvMsg(resp)
				}
			}
		}
	} else {
		err = e.conn.Invoke(ctx, full, req, resp)
	}
	return status.Convert(err), resp
}

// FuzzRPC decodes arbitrary bytes as the request of one RPC and calls the
// real handler through a real server. Whatever the request, the answer is
// never INTERNAL or UNKNOWN (no panic, no unmapped error); a refusal writes
// nothing; INVALID_ARGUMENT names the fields; a decision is well-formed.
func FuzzRPC(f *testing.F) {
	for _, md := range rpcMethods {
		f.Add(string(md.Name()), []byte{})
	}
	e := MustStart(f, "", withLimits(Limits{DecisionTimeout: 50 * time.Millisecond}), func(o *Options) { o.MaxRevisionWait = 50 * time.Millisecond })
	seedFuzzStore(f, e)
	f.Fuzz(func(t *testing.T, method string, data []byte) {
		md := fuzzMethod(method)
		req := dynamicpb.NewMessage(md.Input())
		if err := proto.Unmarshal(data, req); err != nil {
			return // gRPC refuses undecodable bytes before any handler runs
		}
		if e.srv.snaps.Current().Account(fuzzAccount) == nil {
			seedFuzzStore(t, e) // a fuzzed DeleteAccount removed the fixture
		}
		// No deadline: a decision gets the server's short default one, and
		// a call that never returns is reported by the fuzzer as a hang.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		before := e.store.Revision()
		st, resp := e.invoke(ctx, md, req)
		after := e.store.Revision()
		name := md.Name()
		switch st.Code() {
		case codes.Internal, codes.Unknown, codes.DataLoss:
			t.Fatalf("%s(%v) = %v: an internal failure", name, req, st.Err())
		case codes.InvalidArgument:
			if len(fieldViolations(st)) == 0 {
				t.Errorf("%s(%v) = %v without field violations", name, req, st.Err())
			}
		}
		settled := st.Code() != codes.DeadlineExceeded && st.Code() != codes.Canceled
		if settled && (st.Code() != codes.OK || readOnly(md)) && after != before {
			t.Fatalf("%s(%v) = %v, and the store revision moved %d -> %d", name, req, st.Code(), before, after)
		}
		if st.Code() != codes.OK {
			return
		}
		checkFuzzAnswer(t, string(name), req, resp, after)
	})
}

// checkFuzzAnswer checks decisions in an answer: allowed exactly when the
// reason is ALLOWED, never unspecified, at a revision the store has.
func checkFuzzAnswer(t *testing.T, method string, req, resp *dynamicpb.Message, rev uint64) {
	t.Helper()
	b, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	checkOne := func(r *gatehousev1.CheckFeatureResponse) {
		d := r.GetDecision()
		if d.GetAllowed() != (d.GetReason() == gatehousev1.Reason_REASON_ALLOWED) || d.GetReason() == gatehousev1.Reason_REASON_UNSPECIFIED {
			t.Errorf("%s(%v): malformed decision %v", method, req, d)
		}
		if r.GetRevision() > rev {
			t.Errorf("%s(%v): answered at revision %d, the store is at %d", method, req, r.GetRevision(), rev)
		}
	}
	switch method {
	case "CheckFeature":
		var r gatehousev1.CheckFeatureResponse
		if err := proto.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		checkOne(&r)
	case "CheckFeatures":
		var r gatehousev1.CheckFeaturesResponse
		var q gatehousev1.CheckFeaturesRequest
		qb, _ := proto.Marshal(req)
		if err := proto.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(qb, &q); err != nil {
			t.Fatal(err)
		}
		if len(r.GetResults()) != len(q.GetChecks()) {
			t.Errorf("CheckFeatures: %d results for %d checks", len(r.GetResults()), len(q.GetChecks()))
		}
		for _, res := range r.GetResults() {
			checkOne(res)
			if res.GetRevision() != r.GetRevision() {
				t.Errorf("CheckFeatures: a result at revision %d in a batch at %d", res.GetRevision(), r.GetRevision())
			}
		}
	}
}
