//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
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
// continuations are joined: G -d '<json>' $A <service>/<method>.
var readmeCall = regexp.MustCompile(`^G -d '([^']*)'\s+\$A (\S+)/(\S+)$`)

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

// readmeShellBlocks returns the ```sh blocks of the README that call G.
func readmeShellBlocks(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(raw), "```sh\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, "\nG ") || strings.HasPrefix(block, "G ") || strings.Contains(block, "G()") {
			blocks = append(blocks, block)
		}
	}
	return blocks
}

// The walk-through pastes into bash and zsh alike: each grpcurl call gets
// its arguments as the words the README writes (zsh does not split an
// unquoted variable into words, so a G="grpcurl -plaintext" would run a
// command named "grpcurl -plaintext"). A stand-in bin/grpcurl records the
// words it receives.
func TestREADME_WalkThroughPastesIntoBashAndZsh(t *testing.T) {
	t.Parallel()
	blocks := readmeShellBlocks(t)
	if len(blocks) < 2 || !strings.Contains(blocks[0], "G()") {
		t.Fatalf("README walk-through blocks not found (%d)", len(blocks))
	}
	script := strings.Join(blocks, "\n")
	wantCalls := len(readmeSteps(t))
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			path, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed", shell)
			}
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			// One line per call: the number of words, then the words.
			fake := "#!/bin/sh\nprintf '%s' \"$#\" >> calls.log\nfor a in \"$@\"; do printf '\\t%s' \"$a\" >> calls.log; done\necho >> calls.log\n"
			if err := os.WriteFile(filepath.Join(dir, "bin", "grpcurl"), []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(path, "-c", script)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", shell, err, out)
			}
			log, err := os.ReadFile(filepath.Join(dir, "calls.log"))
			if err != nil {
				t.Fatal(err)
			}
			calls := strings.Split(strings.TrimSpace(string(log)), "\n")
			if len(calls) != wantCalls {
				t.Fatalf("%s ran %d grpcurl calls, the README has %d:\n%s", shell, len(calls), wantCalls, log)
			}
			for _, c := range calls {
				words := strings.Split(c, "\t")
				if len(words) != 6 || words[0] != "5" || words[1] != "-plaintext" || words[2] != "-d" ||
					!strings.HasPrefix(words[3], "{") || words[4] != "127.0.0.1:8470" || !strings.Contains(words[5], "/") {
					t.Errorf("%s: grpcurl got %q, want -plaintext -d JSON ADDRESS SERVICE/METHOD", shell, words)
				}
			}
		})
	}
}
