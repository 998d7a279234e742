//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storecopy"
	"google.golang.org/protobuf/proto"
)

// runTool runs a built binary with args and returns its output and exit
// code.
func runTool(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = environ()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

// migrationData fills the store of a daemon with the demo data, sessions
// of every kind and state, and more allowlist entries than one etcd
// transaction may write, and returns questions about it.
func migrationData(ctx context.Context, t *testing.T, c *clients) []*gatehousev1.CheckFeatureRequest {
	t.Helper()
	var ids []string
	startSession := func(req *gatehousev1.StartSessionRequest) string {
		t.Helper()
		resp, err := c.sessions.StartSession(ctx, req)
		if err != nil {
			t.Fatalf("StartSession(%v): %v", req, err)
		}
		ids = append(ids, resp.GetSession().GetId())
		return resp.GetSession().GetId()
	}
	startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	ended := startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-1"})
	if _, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: ended}); err != nil {
		t.Fatal(err)
	}
	support := startSession(&gatehousev1.StartSessionRequest{AccountId: "demo", Kind: gatehousev1.SessionKind_SESSION_KIND_SUPPORT, RepresentativeId: "bob", CustomerId: "cust-2", PortalId: "helpdesk-default"})
	if _, err := c.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: support, SpecialistId: "spec", DisplayName: "Spec"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
		Settings: &gatehousev1.LiveGuideSettings{AccountId: "demo", AgentInputRestricted: true, Chat: true}, UpdateMask: mask("agent_input_restricted", "chat")}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := c.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "demo",
			Entry: &gatehousev1.AllowlistEntry{Pattern: fmt.Sprintf("h%03d.example.net", i), Description: strings.Repeat("d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	actors := []*gatehousev1.Actor{agent("alice"), agent("bob"), customer("cust-1"), customer("cust-2"),
		{Role: gatehousev1.Role_ROLE_EXTERNAL_SPECIALIST, Id: "spec"}, agent("mallory")}
	urls := []string{"https://www.example.com/help", "https://h007.example.net/x", "https://h299.example.net/", "https://h300.example.net/",
		"https://example.com.evil.net/", "javascript:alert(1)", "https://www.example.com/transfer"}
	elements := []*gatehousev1.Element{nil, {Tag: "input", Attributes: map[string]string{"name": "cvv"}},
		{Tag: "button", Classes: []string{"transfer"}}, {Tag: "div", Id: "card-number"}}
	features := []gatehousev1.Feature{gatehousev1.Feature_FEATURE_NAVIGATE, gatehousev1.Feature_FEATURE_CLICK, gatehousev1.Feature_FEATURE_TYPE,
		gatehousev1.Feature_FEATURE_CHAT, gatehousev1.Feature_FEATURE_CLIPBOARD, gatehousev1.Feature_FEATURE_SEND_FILES,
		gatehousev1.Feature_FEATURE_INVITE_EXTERNAL_SPECIALIST, gatehousev1.Feature_FEATURE_VIEW_ELEMENT}
	rng := rand.New(rand.NewPCG(14, 5))
	var checks []*gatehousev1.CheckFeatureRequest
	for range 800 {
		checks = append(checks, &gatehousev1.CheckFeatureRequest{
			SessionId: ids[rng.IntN(len(ids))], Actor: actors[rng.IntN(len(actors))], Feature: features[rng.IntN(len(features))],
			Url: urls[rng.IntN(len(urls))], Frame: gatehousev1.Frame(rng.IntN(3)), Element: elements[rng.IntN(len(elements))],
		})
	}
	return checks
}

// decisions asks checks of the daemon at addr and returns the decisions.
func decisions(ctx context.Context, t *testing.T, addr string, checks []*gatehousev1.CheckFeatureRequest) []*gatehousev1.Decision {
	t.Helper()
	c := dial(t, addr)
	defer c.conn.Close()
	var out []*gatehousev1.Decision
	for i := 0; i < len(checks); i += 100 {
		resp, err := c.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: checks[i:min(i+100, len(checks))]})
		if err != nil {
			t.Fatalf("CheckFeatures: %v", err)
		}
		for _, r := range resp.GetResults() {
			out = append(out, r.GetDecision())
		}
	}
	return out
}

func sameDecisions(t *testing.T, what string, got, want []*gatehousev1.Decision) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d decisions, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s: decision %d is %v, on the original bbolt store %v", what, i, got[i], want[i])
		}
	}
}

// digestOf reads the bbolt store file at path.
func digestOf(t *testing.T, path string) *storecopy.Digest {
	t.Helper()
	st, err := bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := storecopy.Take(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDigest(t *testing.T, what string, got, want *storecopy.Digest) {
	t.Helper()
	if got.Count() != want.Count() || got.Bytes != want.Bytes {
		t.Fatalf("%s: %d keys, %d bytes; the original %d keys, %d bytes", what, got.Count(), got.Bytes, want.Count(), want.Bytes)
	}
	for k, sum := range want.Sums {
		if got.Sums[k] != sum {
			t.Fatalf("%s: key %q differs from the original", what, k)
		}
	}
}

// TestE2E_MigrateBoltToEtcdAndBack: gatehoused migrate copies a daemon's
// bbolt store into etcd (more keys than one etcd transaction takes) and
// verifies it; a daemon on that etcd answers every question as the
// daemon on the bbolt file did; gatehouse backup of the etcd daemon and
// gatehoused migrate back to bbolt give files with the original's keys and
// values, at the etcd revision, on which a daemon answers the same again.
// A second copy into the non-empty prefix is refused, and a check after
// the target changed fails naming what differs.
func TestE2E_MigrateBoltToEtcdAndBack(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	cli := cliBinary(t)
	srv := etcdtest.Start(t)
	ctx := testContext(t)
	ep := srv.Endpoints[0]
	etcdFlags := []string{"--etcd-endpoints", ep, "--etcd-prefix", "/migrated/"}

	src := t.TempDir()
	d := start(t, nil, loopbackArgs(src, "--demo")...)
	checks := migrationData(ctx, t, dial(t, d.addr))
	want := decisions(ctx, t, d.addr, checks)
	d.stop()
	orig := digestOf(t, filepath.Join(src, bolt.FileName))

	out, errOut, code := runTool(t, bin, append([]string{"migrate", "--to", "etcd", "--data-dir", src, "--output", "json"}, etcdFlags...)...)
	if code != 0 {
		t.Fatalf("migrate --to etcd: exit %d\n%s", code, errOut)
	}
	var rep migrateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("migrate report %q: %v", out, err)
	}
	if rep.Keys != orig.Count() || rep.Verified != orig.Count() || rep.SourceRevision != orig.Revision || rep.Loaded {
		t.Errorf("migrate --to etcd reported %+v; the store holds %d keys at revision %d", rep, orig.Count(), orig.Revision)
	}
	if rep.TargetRevision <= rep.SourceRevision {
		t.Errorf("etcd at revision %d after a copy of revision %d: later writes would reuse the copied audit ids", rep.TargetRevision, rep.SourceRevision)
	}
	if rep.Batches < (orig.Count()+126)/127 {
		t.Errorf("%d transactions for %d keys: more keys per transaction than etcd takes", rep.Batches, rep.Keys)
	}
	if _, errOut, code := runTool(t, bin, append([]string{"migrate", "--to", "etcd", "--data-dir", src}, etcdFlags...)...); code != 1 || !strings.Contains(errOut, "holds keys already") {
		t.Errorf("second migrate into the same prefix: exit %d, %s; want a refusal", code, errOut)
	}

	e := start(t, nil, loopbackArgs(t.TempDir(), append([]string{"--store", "etcd"}, etcdFlags...)...)...)
	sameDecisions(t, "daemon on the migrated etcd", decisions(ctx, t, e.addr, checks), want)
	backup := filepath.Join(t.TempDir(), "backup.db")
	if out, errOut, code := runTool(t, cli, "--addr", e.addr, "backup", "--file", backup); code != 0 || !strings.Contains(out, "backup of revision") {
		t.Fatalf("gatehouse backup of the etcd daemon: exit %d\n%s%s", code, out, errOut)
	}
	e.stop()
	sameDigest(t, "backup of the etcd daemon", digestOf(t, backup), orig)

	back := t.TempDir()
	out, errOut, code = runTool(t, bin, append([]string{"migrate", "--to", "bolt", "--data-dir", back, "--output", "json"}, etcdFlags...)...)
	if code != 0 {
		t.Fatalf("migrate --to bolt: exit %d\n%s", code, errOut)
	}
	rep = migrateReport{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Loaded || rep.TargetRevision != rep.SourceRevision || rep.Verified != orig.Count() {
		t.Errorf("migrate --to bolt reported %+v; want a load at the etcd revision of %d keys", rep, orig.Count())
	}
	roundTrip := digestOf(t, filepath.Join(back, bolt.FileName))
	sameDigest(t, "bbolt → etcd → bbolt", roundTrip, orig)
	if roundTrip.Revision != rep.SourceRevision {
		t.Errorf("the copy is at revision %d, etcd was at %d", roundTrip.Revision, rep.SourceRevision)
	}
	f := start(t, nil, loopbackArgs(back)...)
	sameDecisions(t, "daemon on the round trip", decisions(ctx, t, f.addr, checks), want)
	f.stop()

	// The target changes (an audited write, whose audit id comes from the
	// revision: it must not collide with a copied one): a check fails and
	// names the difference.
	e = start(t, nil, loopbackArgs(t.TempDir(), append([]string{"--store", "etcd"}, etcdFlags...)...)...)
	if _, err := dial(t, e.addr).admin.CreateAccount(ctx, &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "intruder", DisplayName: "Intruder"}}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	_, errOut, code = runTool(t, bin, append([]string{"migrate", "--check", "--to", "etcd", "--data-dir", src}, etcdFlags...)...)
	if code != 1 || !strings.Contains(errOut, "differs from") || !strings.Contains(errOut, "extra") || !strings.Contains(errOut, "intruder") {
		t.Errorf("check after the target changed: exit %d, %s; want a mismatch naming the new account's keys", code, errOut)
	}
	// Forced, the copy makes the prefix equal to the source again.
	out, errOut, code = runTool(t, bin, append([]string{"migrate", "--force", "--to", "etcd", "--data-dir", src}, etcdFlags...)...)
	if code != 0 || !strings.Contains(out, "the source lacks deleted") {
		t.Fatalf("forced migrate: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runTool(t, bin, append([]string{"migrate", "--check", "--to", "etcd", "--data-dir", src}, etcdFlags...)...); code != 0 {
		t.Errorf("check after the forced copy: exit %d\n%s%s", code, out, errOut)
	}
}

// TestE2E_MigrateRefusals: gatehoused migrate refuses, changing nothing, a
// source that does not exist (it is not created), a bbolt file a daemon is
// using, and a bbolt target that holds data (unless --force); an unknown
// flag is a usage error.
func TestE2E_MigrateRefusals(t *testing.T) {
	t.Parallel()
	bin := binary(t)
	srv := etcdtest.Start(t)
	etcdFlags := []string{"--etcd-endpoints", srv.Endpoints[0], "--etcd-prefix", "/refusals/"}
	migrate := func(args ...string) (string, int) {
		t.Helper()
		_, errOut, code := runTool(t, bin, append(append([]string{"migrate"}, args...), etcdFlags...)...)
		return errOut, code
	}

	missing := filepath.Join(t.TempDir(), "nope")
	if out, code := migrate("--to", "etcd", "--data-dir", missing); code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("missing source: exit %d, %s", code, out)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing source was created: %v", err)
	}

	busy := t.TempDir()
	d := start(t, nil, loopbackArgs(busy, "--demo")...)
	if out, code := migrate("--to", "etcd", "--data-dir", busy); code != 1 || !strings.Contains(out, "locked by another process") {
		t.Errorf("source in use by a daemon: exit %d, %s", code, out)
	}
	d.stop()

	// Put the demo store into etcd, then try to copy it over a bbolt
	// target that holds data.
	if out, code := migrate("--to", "etcd", "--data-dir", busy); code != 0 {
		t.Fatalf("migrate --to etcd: exit %d, %s", code, out)
	}
	target := t.TempDir()
	f := start(t, nil, loopbackArgs(target)...)
	if _, err := dial(t, f.addr).admin.CreateAccount(testContext(t), &gatehousev1.CreateAccountRequest{Account: &gatehousev1.Account{Id: "keep", DisplayName: "Keep"}}); err != nil {
		t.Fatal(err)
	}
	f.stop()
	before := digestOf(t, filepath.Join(target, bolt.FileName))
	if out, code := migrate("--to", "bolt", "--data-dir", target); code != 1 || !strings.Contains(out, "holds keys already") {
		t.Errorf("non-empty bbolt target: exit %d, %s", code, out)
	}
	sameDigest(t, "refused target", digestOf(t, filepath.Join(target, bolt.FileName)), before)
	if out, code := migrate("--to", "bolt", "--data-dir", target, "--force"); code != 0 {
		t.Fatalf("forced: exit %d, %s", code, out)
	}
	sameDigest(t, "forced target", digestOf(t, filepath.Join(target, bolt.FileName)), digestOf(t, filepath.Join(busy, bolt.FileName)))
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".migrate-") {
			t.Errorf("target directory holds %s: a temporary file was left", e.Name())
		}
	}

	if out, code := migrate("--to", "etcd", "--bogus"); code != 2 || !strings.Contains(out, "gatehoused migrate --help") {
		t.Errorf("unknown flag: exit %d, %s", code, out)
	}
	if out, code := migrate("--to", "nowhere", "--data-dir", busy); code != 1 || !strings.Contains(out, `--to "nowhere"`) {
		t.Errorf("--to nowhere: exit %d, %s", code, out)
	}
}
