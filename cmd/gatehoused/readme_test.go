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

// TestREADME_WalkThrough replays the README's grpcurl walk-through against
// the real binary on an empty store, with the same JSON requests, and
// compares the last answer with the JSON the README shows, so the README
// cannot drift from what the service does.
func TestREADME_WalkThrough(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var calls [][]string
	var wantJSON string
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimSpace(line)
		if m := readmeCall.FindStringSubmatch(line); m != nil {
			calls = append(calls, m[1:])
		}
		// The answer shown is the ```json block after the last call.
		if line == "```json" && len(calls) > 0 && wantJSON == "" {
			var b strings.Builder
			for _, l := range lines[i+1:] {
				if strings.TrimSpace(l) == "```" {
					break
				}
				b.WriteString(l + "\n")
			}
			wantJSON = b.String()
		}
	}
	if len(calls) < 5 || wantJSON == "" {
		t.Fatalf("README walk-through not found (%d calls, answer %q)", len(calls), wantJSON)
	}

	d := start(t, nil, loopbackArgs(t.TempDir())...)
	c := dial(t, d.addr)
	ctx := testContext(t)
	sessionID := ""
	var last proto.Message
	for _, call := range calls {
		body, service, method := call[0], call[1], call[2]
		sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
		if err != nil {
			t.Fatalf("README names unknown service %s: %v", service, err)
		}
		md := sd.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
		if md == nil {
			t.Fatalf("README names unknown method %s/%s", service, method)
		}
		body = strings.ReplaceAll(body, "s-…", sessionID)
		body = grpcurlMask.ReplaceAllStringFunc(body, canonicalMask)
		in := newMessage(t, md.Input())
		if err := protojson.Unmarshal([]byte(body), in); err != nil {
			t.Fatalf("README request for %s is not valid JSON for %s: %v", method, md.Input().FullName(), err)
		}
		out := newMessage(t, md.Output())
		if err := c.conn.Invoke(ctx, "/"+service+"/"+method, in, out); err != nil {
			t.Fatalf("README call %s(%s): %v", method, body, err)
		}
		if method == "StartSession" {
			sessionID = out.ProtoReflect().Get(md.Output().Fields().ByName("session")).Message().
				Get(md.Output().Fields().ByName("session").Message().Fields().ByName("id")).String()
		}
		last = out
	}
	want := newMessage(t, last.ProtoReflect().Descriptor())
	if err := protojson.Unmarshal([]byte(wantJSON), want); err != nil {
		t.Fatalf("README answer is not a %s: %v", last.ProtoReflect().Descriptor().FullName(), err)
	}
	if !proto.Equal(last, want) {
		t.Fatalf("README shows\n%s\nbut the service answers\n%s", wantJSON, protojson.Format(last))
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
