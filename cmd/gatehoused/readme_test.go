//go:build unix

package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	_ "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1" // registers the API types
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// readmeCall matches a grpcurl call of the README walk-through after line
// continuations are joined: $G -d '<json>' $A <service>/<method>.
var readmeCall = regexp.MustCompile(`^\$G -d '([^']*)'\s+\$A (\S+)/(\S+)$`)

// readmeStep is one grpcurl call of the README and, when the README shows
// one right after the call's code block, the answer it shows.
type readmeStep struct {
	body, service, method string
	want                  string
}

// readmeSteps parses the README's walk-throughs.
func readmeSteps(t *testing.T) []readmeStep {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.ReplaceAll(string(raw), "\\\n", " "), "\n")
	var steps []readmeStep
	prev := ""
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if m := readmeCall.FindStringSubmatch(line); m != nil {
			steps = append(steps, readmeStep{body: m[1], service: m[2], method: m[3]})
		}
		// A json block right after a closing code fence is the answer
		// to the last call.
		if line == "```json" && prev == "```" && len(steps) > 0 {
			var b strings.Builder
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				b.WriteString(lines[i] + "\n")
			}
			steps[len(steps)-1].want = b.String()
			line = "```"
		}
		if line != "" {
			prev = line
		}
	}
	return steps
}

// TestREADME_WalkThrough replays the README's grpcurl walk-throughs against
// the real binary on an empty store, with the same JSON requests, and
// compares every answer the README shows with the service's, so the README
// cannot drift from what the service does.
func TestREADME_WalkThrough(t *testing.T) {
	t.Parallel()
	steps := readmeSteps(t)
	shown := 0
	for _, st := range steps {
		if st.want != "" {
			shown++
		}
	}
	if len(steps) < 10 || shown < 3 {
		t.Fatalf("README walk-throughs not found (%d calls, %d answers)", len(steps), shown)
	}

	d := start(t, nil, loopbackArgs(t.TempDir())...)
	c := dial(t, d.addr)
	ctx := testContext(t)
	sessionID := ""
	for _, st := range steps {
		sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(st.service))
		if err != nil {
			t.Fatalf("README names unknown service %s: %v", st.service, err)
		}
		md := sd.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(st.method))
		if md == nil {
			t.Fatalf("README names unknown method %s/%s", st.service, st.method)
		}
		body := strings.ReplaceAll(st.body, "s-…", sessionID)
		body = grpcurlMask.ReplaceAllStringFunc(body, canonicalMask)
		in := newMessage(t, md.Input())
		if err := protojson.Unmarshal([]byte(body), in); err != nil {
			t.Fatalf("README request for %s is not valid JSON for %s: %v", st.method, md.Input().FullName(), err)
		}
		out := newMessage(t, md.Output())
		if err := c.conn.Invoke(ctx, "/"+st.service+"/"+st.method, in, out); err != nil {
			t.Fatalf("README call %s(%s): %v", st.method, body, err)
		}
		if st.method == "StartSession" {
			sf := md.Output().Fields().ByName("session")
			sessionID = out.ProtoReflect().Get(sf).Message().Get(sf.Message().Fields().ByName("id")).String()
		}
		if st.want == "" {
			continue
		}
		want := newMessage(t, md.Output())
		if err := protojson.Unmarshal([]byte(st.want), want); err != nil {
			t.Fatalf("README answer to %s is not a %s: %v", st.method, md.Output().FullName(), err)
		}
		if !proto.Equal(out, want) {
			t.Fatalf("README shows for %s(%s)\n%s\nbut the service answers\n%s", st.method, body, st.want, protojson.Format(out))
		}
	}
}

// grpcurlMask matches an update mask written as grpcurl (v1.9) parses it,
// {"paths":[...]}; protojson wants the canonical string form instead.
var grpcurlMask = regexp.MustCompile(`"update_mask":\{"paths":\[([^\]]*)\]\}`)

func canonicalMask(s string) string {
	paths := grpcurlMask.FindStringSubmatch(s)[1]
	var camel []string
	for _, p := range strings.Split(paths, ",") {
		p = strings.Trim(strings.TrimSpace(p), `"`)
		parts := strings.Split(p, "_")
		for i := 1; i < len(parts); i++ {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
		camel = append(camel, strings.Join(parts, ""))
	}
	return `"update_mask":"` + strings.Join(camel, ",") + `"`
}

func newMessage(t *testing.T, md protoreflect.MessageDescriptor) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		t.Fatal(err)
	}
	return mt.New().Interface()
}
