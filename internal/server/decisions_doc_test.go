package server

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// decisionsDoc is the page whose examples TestDecisionsDoc replays.
const decisionsDoc = "../../docs/decisions.md"

var (
	// docExampleRE matches an example: a sh block immediately followed by a
	// json block.
	docExampleRE = regexp.MustCompile("```sh\\n([^`]*?)\\n```[ \\t]*\\n+```json\\n([^`]*?)\\n```")
	// docShRE matches any sh block.
	docShRE = regexp.MustCompile("```sh\\n([^`]*?)\\n```")
	// docCommandRE is the one grpcurl command an example's sh block holds.
	docCommandRE = regexp.MustCompile(`(?s)^grpcurl -plaintext (-format-error )?-d '([^']*)' 127\.0\.0\.1:8470 (gatehouse\.v1\.DecisionService)/([A-Za-z]+)$`)
	// docPlaceholderRE finds placeholders left after substitution.
	docPlaceholderRE = regexp.MustCompile(`"[A-Z_]*SESSION"`)
	// docFixtureCallRE is one admin call of the fixture's sh block.
	docFixtureCallRE = regexp.MustCompile(`^grpcurl -plaintext -d '([^']*)' 127\.0\.0\.1:8470 (gatehouse\.v1\.[A-Za-z]+)/([A-Za-z]+)(?:   # [A-Z_]+)?$`)
	docHeadingRE     = regexp.MustCompile(`(?m)^#{1,6} .*$`)
	docRevisionRE    = regexp.MustCompile(`"revision": "(\d+)"`)
)

// docExample is one grpcurl call of the doc with the answer it shows.
type docExample struct {
	name        string // docs/decisions.md:<line> (<heading>), for messages
	short       string // line <line> <heading>, the subtest's name
	formatError bool   // the answer is a google.rpc.Status
	service     string
	method      string
	request     string
	answer      string
}

// parseDocExamples extracts the examples of doc. It fails the test when a
// sh block calling DecisionService is not an example or not in the
// expected form, so that no example escapes the test.
func parseDocExamples(t *testing.T, doc string) []docExample {
	t.Helper()
	var out []docExample
	for _, m := range docExampleRE.FindAllStringSubmatchIndex(doc, -1) {
		line := 1 + strings.Count(doc[:m[0]], "\n")
		heading := ""
		for _, h := range docHeadingRE.FindAllStringIndex(doc[:m[0]], -1) {
			heading = strings.TrimLeft(doc[h[0]:h[1]], "# ")
		}
		name := fmt.Sprintf("docs/decisions.md:%d (%s)", line, heading)
		cmd := strings.TrimSpace(doc[m[2]:m[3]])
		c := docCommandRE.FindStringSubmatch(cmd)
		if c == nil {
			t.Fatalf("%s: the sh block must hold exactly one command\n  grpcurl -plaintext [-format-error] -d '<json>' 127.0.0.1:8470 gatehouse.v1.DecisionService/<Method>\ngot:\n%s", name, cmd)
		}
		out = append(out, docExample{
			name: name, short: strings.ReplaceAll(fmt.Sprintf("line %d %s", line, heading), "/", "-"), formatError: c[1] != "", service: c[3], method: c[4],
			request: c[2], answer: doc[m[4]:m[5]],
		})
	}
	calls := 0
	for _, m := range docShRE.FindAllStringSubmatch(doc, -1) {
		if strings.Contains(m[1], "gatehouse.v1.DecisionService/") {
			calls++
		}
	}
	if calls != len(out) {
		t.Fatalf("%d sh blocks call DecisionService but only %d are examples (a sh block immediately followed by a json block with the answer)", calls, len(out))
	}
	return out
}

// docFixture builds the store the doc's examples run against, as the doc
// describes it, and returns the placeholder values and the revision the
// store ends at.
func docFixture(e *testEnv) (map[string]string, uint64) {
	e.t.Helper()
	ctx := ctxT(e.t)
	account := func(id, name string) {
		e.t.Helper()
		if _, err := e.admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: id, DisplayName: name}}); err != nil {
			e.t.Fatalf("CreateAccount(%s): %v", id, err)
		}
		if _, err := e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: id,
			Representative: &gatehousev1.Representative{Id: "alice", DisplayName: "Alice", LiveGuideEnabled: true}}); err != nil {
			e.t.Fatalf("CreateRepresentative(%s): %v", id, err)
		}
	}
	account("acme", "Acme")
	e.MustAllow("acme", "main", "example.com")
	e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "no-pay", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_BUTTON_BLOCK,
		Selector: "form.checkout button.pay"})
	e.MustPrivacyRule("acme", &gatehousev1.PrivacyRule{Id: "card", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_DATA_MASK,
		Selector: "input[name=cvv]", UrlPattern: "shop.example.com/checkout"})
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "acme", AgentInputRestricted: true}, "agent_input_restricted")
	session := e.MustStartSession("acme")
	ended := e.MustStartSession("acme")
	if _, err := e.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: ended.GetId()}); err != nil {
		e.t.Fatalf("EndSession: %v", err)
	}
	account("strict", "Strict")
	e.MustUpdateSettings(&gatehousev1.LiveGuideSettings{AccountId: "strict", AgentClickRestricted: true}, "agent_click_restricted")
	strict := e.MustStartSession("strict")

	// Support in acme: send_files is off on corp and corp-eu, receive_files
	// on corp-eu only, annotations for bob.
	must := func(what string, err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp", Name: "Corp",
		Functions: &gatehousev1.SupportFunctions{CustomerScreenSharing: true, RepScreenSharing: true, ReceiveFiles: true, Annotations: true, InviteExternalSpecialist: true}}})
	must("CreatePortal(corp)", err)
	_, err = e.admin.CreatePortal(ctx, &gatehousev1.CreatePortalRequest{AccountId: "acme", Portal: &gatehousev1.Portal{Id: "corp-eu", ParentId: "corp", Name: "Corp EU",
		Functions: &gatehousev1.SupportFunctions{CustomerScreenSharing: true, RepScreenSharing: true, Annotations: true, InviteExternalSpecialist: true}}})
	must("CreatePortal(corp-eu)", err)
	_, err = e.admin.CreateTeam(ctx, &gatehousev1.CreateTeamRequest{AccountId: "acme", Team: &gatehousev1.Team{Id: "support", Name: "Support", PortalId: "corp"}})
	must("CreateTeam(support)", err)
	_, err = e.admin.CreateRepresentative(ctx, &gatehousev1.CreateRepresentativeRequest{AccountId: "acme", Representative: &gatehousev1.Representative{
		Id: "bob", DisplayName: "Bob", TeamId: "support",
		Functions: &gatehousev1.SupportFunctions{CustomerScreenSharing: true, RepScreenSharing: true, SendFiles: true, ReceiveFiles: true, InviteExternalSpecialist: true}}})
	must("CreateRepresentative(bob)", err)
	started, err := e.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT,
		RepresentativeId: "bob", CustomerId: "cust-2", PortalId: "corp-eu"})
	must("StartSession(support)", err)
	support := started.GetSession()
	invited, err := e.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: support.GetId(),
		SpecialistId: "spec-1", DisplayName: "Specialist"})
	must("InviteExternalSpecialist", err)
	return map[string]string{
		"SESSION":         session.GetId(),
		"ENDED_SESSION":   ended.GetId(),
		"STRICT_SESSION":  strict.GetId(),
		"SUPPORT_SESSION": support.GetId(),
	}, invited.GetSession().GetRevision()
}

// clearRevisions zeroes every uint64 field named revision in m and in the
// messages it holds.
func clearRevisions(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "revision" && fd.Kind() == protoreflect.Uint64Kind && !fd.IsList():
			m.Clear(fd)
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				clearRevisions(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			clearRevisions(v.Message())
		}
		return true
	})
}

// reasonsOf collects the reasons of the decisions in m.
func reasonsOf(m protoreflect.Message, seen map[gatehousev1.Reason]bool) {
	switch x := m.Interface().(type) {
	case *gatehousev1.Decision:
		seen[x.GetReason()] = true
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				reasonsOf(v.List().Get(i).Message(), seen)
			}
		case fd.Message() != nil && !fd.IsMap():
			reasonsOf(v.Message(), seen)
		}
		return true
	})
}

func marshalForDoc(m proto.Message) string {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// sameStatus compares two statuses, unpacking their details.
func sameStatus(got, want *spb.Status) error {
	if got.GetCode() != want.GetCode() || got.GetMessage() != want.GetMessage() || len(got.GetDetails()) != len(want.GetDetails()) {
		return fmt.Errorf("status differs")
	}
	for i := range got.GetDetails() {
		g, err := anypb.UnmarshalNew(got.GetDetails()[i], proto.UnmarshalOptions{})
		if err != nil {
			return err
		}
		w, err := anypb.UnmarshalNew(want.GetDetails()[i], proto.UnmarshalOptions{})
		if err != nil {
			return err
		}
		if !proto.Equal(g, w) {
			return fmt.Errorf("detail %d differs", i)
		}
	}
	return nil
}

// TestDecisionsDoc replays every grpcurl example of docs/decisions.md
// against a server holding the fixture the doc describes and compares the
// answers with the ones the doc shows (ignoring revisions), and checks that
// every reason has an example.
func TestDecisionsDoc(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(decisionsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	examples := parseDocExamples(t, doc)
	if len(examples) < 12 {
		t.Fatalf("docs/decisions.md has %d examples, want at least 12", len(examples))
	}

	e := MustStart(t, "")
	ids, fixtureRev := docFixture(e)
	checkDocFixtureCalls(t, doc, fixtureRev)

	// The doc says which revision its answers were made at; keep that true.
	for _, m := range docRevisionRE.FindAllStringSubmatch(doc, -1) {
		if n, _ := strconv.ParseUint(m[1], 10, 64); n != fixtureRev {
			t.Errorf(`docs/decisions.md shows "revision": %q but the fixture ends at revision %d: update the shown revisions and the fixture text`, m[1], fixtureRev)
			break
		}
	}

	seen := map[gatehousev1.Reason]bool{}
	for _, ex := range examples {
		t.Run(ex.short, func(t *testing.T) {
			req := ex.request
			for k, v := range ids {
				req = strings.ReplaceAll(req, strconv.Quote(k), strconv.Quote(v))
			}
			if p := docPlaceholderRE.FindString(req); p != "" {
				t.Fatalf("%s: unknown placeholder %s (known: SESSION, ENDED_SESSION, STRICT_SESSION, SUPPORT_SESSION)", ex.name, p)
			}
			in, out, err := methodTypes(ex.service, ex.method)
			if err != nil {
				t.Fatalf("%s: %v", ex.name, err)
			}
			reqMsg := in.New().Interface()
			if err := protojson.Unmarshal([]byte(req), reqMsg); err != nil {
				t.Fatalf("%s: request JSON does not parse as %s: %v", ex.name, in.Descriptor().FullName(), err)
			}
			got := out.New().Interface()
			callErr := e.conn.Invoke(ctxT(t), "/"+ex.service+"/"+ex.method, reqMsg, got)

			if ex.formatError {
				want := &spb.Status{}
				if err := protojson.Unmarshal([]byte(ex.answer), want); err != nil {
					t.Fatalf("%s: shown error does not parse as google.rpc.Status: %v", ex.name, err)
				}
				if callErr == nil {
					t.Fatalf("%s: the doc shows an error, the server answered\n%s", ex.name, marshalForDoc(got))
				}
				gotSt := status.Convert(callErr).Proto()
				if err := sameStatus(gotSt, want); err != nil {
					t.Fatalf("%s: %v\nthe doc shows:\n%s\nthe server says:\n%s", ex.name, err, ex.answer, marshalForDoc(gotSt))
				}
				return
			}
			if callErr != nil {
				t.Fatalf("%s: the doc shows an answer, the server failed: %v", ex.name, callErr)
			}
			want := out.New().Interface()
			if err := protojson.Unmarshal([]byte(ex.answer), want); err != nil {
				t.Fatalf("%s: shown answer does not parse as %s: %v", ex.name, out.Descriptor().FullName(), err)
			}
			reasonsOf(want.ProtoReflect(), seen)
			if got.ProtoReflect().Get(got.ProtoReflect().Descriptor().Fields().ByName("revision")).Uint() == 0 {
				t.Errorf("%s: the answer carries no revision", ex.name)
			}
			shown := marshalForDoc(got)
			clearRevisions(got.ProtoReflect())
			clearRevisions(want.ProtoReflect())
			if !proto.Equal(got, want) {
				t.Fatalf("%s: answers differ (revisions ignored)\nthe doc shows:\n%s\nthe server says:\n%s", ex.name, ex.answer, shown)
			}
		})
	}
	if t.Failed() {
		return
	}

	// Every reason has an example.
	for n, name := range gatehousev1.Reason_name {
		if n != int32(gatehousev1.Reason_REASON_UNSPECIFIED) && !seen[gatehousev1.Reason(n)] {
			t.Errorf("no example in docs/decisions.md answers %s: add one", name)
		}
	}

	// The order of evaluation names every reason.
	order := docSection(doc, "## Order of evaluation")
	for n, name := range gatehousev1.Reason_name {
		if n != int32(gatehousev1.Reason_REASON_UNSPECIFIED) && !strings.Contains(order, "`"+name+"`") {
			t.Errorf(`"Order of evaluation" does not name %s`, name)
		}
	}
}

// methodTypes resolves the request and response types of a unary method.
func methodTypes(service, method string) (protoreflect.MessageType, protoreflect.MessageType, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil || md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, nil, fmt.Errorf("%s/%s is not a unary method", service, method)
	}
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return nil, nil, err
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, nil, err
	}
	return in, out, nil
}

// checkDocFixtureCalls checks the admin calls the doc lists for the
// fixture: each is a well-formed request of an existing method, and there
// is one per revision docFixture's store went through (every write is one
// revision), so a call added to one and not the other is noticed.
func checkDocFixtureCalls(t *testing.T, doc string, fixtureRev uint64) {
	t.Helper()
	section := docSection(doc, "### The fixture")
	m := docShRE.FindStringSubmatch(section)
	if m == nil {
		t.Fatal(`docs/decisions.md: "### The fixture" has no sh block with the admin calls`)
	}
	calls := strings.Split(strings.TrimSpace(m[1]), "\n")
	for i, line := range calls {
		c := docFixtureCallRE.FindStringSubmatch(line)
		if c == nil {
			t.Errorf("fixture call %d is not of the form grpcurl -plaintext -d '<json>' 127.0.0.1:8470 gatehouse.v1.<Service>/<Method>[   # PLACEHOLDER]:\n%s", i+1, line)
			continue
		}
		in, _, err := methodTypes(c[2], c[3])
		if err != nil {
			t.Errorf("fixture call %d: %v", i+1, err)
			continue
		}
		if err := protojson.Unmarshal(grpcurlFieldMasks(t, c[1]), in.New().Interface()); err != nil {
			t.Errorf("fixture call %d: request JSON does not parse as %s: %v", i+1, in.Descriptor().FullName(), err)
		}
	}
	if uint64(len(calls)) != fixtureRev {
		t.Errorf("docs/decisions.md lists %d fixture calls but docFixture's store ends at revision %d: keep the list and docFixture in step", len(calls), fixtureRev)
	}
}

// grpcurlFieldMasks rewrites the field masks of a request as grpcurl takes
// them over server reflection, {"paths": ["a_b"]}, into the string form
// protojson expects, "aB".
func grpcurlFieldMasks(t *testing.T, req string) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(req), &v); err != nil {
		t.Errorf("request is not JSON: %v\n%s", err, req)
		return []byte(req)
	}
	var walk func(v any) any
	walk = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		if paths, ok := m["paths"].([]any); ok && len(m) == 1 {
			var camel []string
			for _, p := range paths {
				s, _ := p.(string)
				parts := strings.Split(s, "_")
				for i := 1; i < len(parts); i++ {
					parts[i] = strings.ToUpper(parts[i][:min(1, len(parts[i]))]) + parts[i][min(1, len(parts[i])):]
				}
				camel = append(camel, strings.Join(parts, ""))
			}
			return strings.Join(camel, ",")
		}
		for k, x := range m {
			m[k] = walk(x)
		}
		return m
	}
	b, err := json.Marshal(walk(v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// docSection returns the text of the section that starts with heading, up
// to the next heading of the same or a higher level.
func docSection(doc, heading string) string {
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		return ""
	}
	body := doc[i+len(heading)+2:]
	level := strings.Count(strings.Fields(heading)[0], "#")
	for _, h := range docHeadingRE.FindAllStringIndex(body, -1) {
		if l := len(body[h[0]:h[1]]) - len(strings.TrimLeft(body[h[0]:h[1]], "#")); l <= level {
			return body[:h[0]]
		}
	}
	return body
}
