package main

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	bbolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
)

// bbolt page layout, read from the file: a 16-byte header (id, flags,
// count, overflow), elements of 16 bytes after it; the meta page's root
// bucket page id at offset 32, freelist page id at 48, txid at 64.
const (
	pageHdr       = 16
	flagBranch    = 0x01
	flagLeaf      = 0x02
	metaTxidField = 64
)

// writeBranchyStore writes a store in dir whose kv bucket has a branch
// page, and returns the file with the page ids of a branch page, a leaf
// page, the root page and the freelist page, found by parsing the file.
func writeBranchyStore(t *testing.T, dir string) (data []byte, ps int, pages map[string]int) {
	t.Helper()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for c := range 3 {
		if _, err := s.Update(context.Background(), func(tx store.Tx) error {
			for i := range 300 {
				if err := tx.Put(fmt.Sprintf("k/%d/%04d", c, i), bytes.Repeat([]byte{'a'}, 200)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	le := bin.LittleEndian
	ps = int(le.Uint32(data[24:]))
	newest := 0
	if le.Uint64(data[ps+metaTxidField:]) > le.Uint64(data[metaTxidField:]) {
		newest = 1
	}
	m := data[newest*ps:]
	pages = map[string]int{"root": int(le.Uint64(m[32:])), "freelist": int(le.Uint64(m[48:]))}
	// Free pages keep stale contents, so the live pages are found from the
	// root: the kv bucket's root is a branch page, its first child a leaf.
	root := data[pages["root"]*ps:]
	for i := range int(le.Uint16(root[10:])) {
		e := pageHdr + i*16
		pos, ksize := int(le.Uint32(root[e+4:])), int(le.Uint32(root[e+8:]))
		if string(root[e+pos:e+pos+ksize]) == "kv" {
			kvRoot := int(le.Uint64(root[e+pos+ksize:]))
			if le.Uint16(data[kvRoot*ps+8:]) != flagBranch {
				t.Fatalf("the kv bucket's root page %d is not a branch page", kvRoot)
			}
			pages["branch"] = kvRoot
			pages["leaf"] = int(le.Uint64(data[kvRoot*ps+pageHdr+8:]))
		}
	}
	if _, ok := pages["branch"]; !ok {
		t.Fatal("no kv bucket in the root page")
	}
	if le.Uint16(data[pages["leaf"]*ps+8:]) != flagLeaf {
		t.Fatalf("page %d is not a leaf page", pages["leaf"])
	}
	return data, ps, pages
}

// TestE2E_RefusesDamagedPages: one flipped bit in the element count of a
// leaf page, in a branch page's child pointer, in the freelist's count, in
// the root page's bucket flag, or in the schema record, stops start-up with
// exit code 1 and "store is corrupt" naming the page or record, never with
// a crash, and leaves the file alone.
func TestE2E_RefusesDamagedPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, ps, pages := writeBranchyStore(t, dir)
	// The schema bucket is inline in the root page.
	schema := pages["root"]*ps + bytes.Index(data[pages["root"]*ps:(pages["root"]+1)*ps], []byte("schema_version")) + len("schema_version")
	tests := []struct {
		name, want string
		off        int
		mask       byte
	}{
		{"leaf element count", fmt.Sprintf("page %d", pages["leaf"]), pages["leaf"]*ps + 10, 0x10},
		{"leaf element count, high bit", fmt.Sprintf("page %d", pages["leaf"]), pages["leaf"]*ps + 11, 0x10},
		{"branch child page id", "page", pages["branch"]*ps + pageHdr + 8 + 2, 0x10},
		{"freelist count", fmt.Sprintf("freelist page %d", pages["freelist"]), pages["freelist"]*ps + 10, 0x10},
		{"root page bucket flag", fmt.Sprintf("page %d", pages["root"]), pages["root"]*ps + pageHdr, 0x01}, // bit 0: "is a bucket"
		{"schema record", "schema_version", schema + 8, 0x10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := bytes.Clone(data)
			d[tc.off] ^= tc.mask
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "gatehouse.db"), d, 0o600); err != nil {
				t.Fatal(err)
			}
			wantDamageRefusal(t, dir, "store is corrupt", tc.want)
		})
	}
}

// TestE2E_MetaRollback: a bit flipped in the newest meta page stops
// start-up (exit 1) with a message naming both transaction ids and the
// flag; with --accept-meta-rollback the daemon starts one commit behind,
// logs it at ERROR and exports gatehouse_store_meta_fallback 1; its first
// commit repairs the page, so the next start needs no flag.
func TestE2E_MetaRollback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := start(t, nil, loopbackArgs(dir, "--demo")...)
	d.stop()
	path := filepath.Join(dir, "gatehouse.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := bin.LittleEndian
	ps := int(le.Uint32(data[24:]))
	tx0, tx1 := le.Uint64(data[metaTxidField:]), le.Uint64(data[ps+metaTxidField:])
	newest, older := 0, tx1
	if tx1 > tx0 {
		newest, older = 1, tx0
	}
	data[newest*ps+40] ^= 0x04 // the freelist page id
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out := wantDamageRefusal(t, dir, "store is corrupt", fmt.Sprintf("meta page %d is damaged", newest),
		fmt.Sprintf("transaction %d", older), "--accept-meta-rollback")
	// The refusal is logged at ERROR with both transaction ids.
	for _, want := range []string{`"level":"ERROR","msg":"store refused: a meta page is damaged`, fmt.Sprintf(`"used_txid":%d`, older), fmt.Sprintf(`"damaged_meta_page":%d`, newest), `"damaged_txid":`} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal's log lacks %s", want)
		}
	}

	d = start(t, nil, loopbackArgs(dir, "--accept-meta-rollback", "--metrics-addr", "127.0.0.1:0")...)
	e := d.mustLog("store opened from its older meta page (--accept-meta-rollback): the last commit may be lost")
	if e["level"] != "ERROR" || fmt.Sprint(e["used_txid"]) != fmt.Sprint(older) || fmt.Sprint(e["damaged_meta_page"]) != fmt.Sprint(newest) {
		t.Errorf("log entry %v; want ERROR with damaged_meta_page %d, used_txid %d", e, newest, older)
	}
	if !strings.Contains(scrape(t, d), "\ngatehouse_store_meta_fallback 1\n") {
		t.Errorf("metrics lack gatehouse_store_meta_fallback 1")
	}
	d.stop()

	d = start(t, nil, loopbackArgs(dir, "--metrics-addr", "127.0.0.1:0")...)
	if i, _ := d.logIndex("store opened from its older meta page (--accept-meta-rollback): the last commit may be lost", nil); i >= 0 {
		t.Errorf("the start after the repair reports a fallback again")
	}
	d.stop()
}

// wantDamageRefusal launches the daemon on dir and checks that it exits 1
// without serving, says every part of want, does not crash, and leaves the
// file byte for byte as it was. (Unlike wantRefusal it never opens the
// damaged file with bbolt in the test process.)
func wantDamageRefusal(t *testing.T, dir string, want ...string) (stderr string) {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.db")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := launchRefused(t, dir, want...)
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the refused store file was modified")
	}
	return out
}

// scrape returns the daemon's metrics page; d runs with --metrics-addr.
func scrape(t *testing.T, d *daemon) string {
	t.Helper()
	m := d.awaitLog("serving metrics")
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", m["metrics_addr"]))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestE2E_FlippedBitInRecordLeavesItsAccountOut: one bit flipped in a
// stored settings record, leaving it valid JSON with another field name
// (agent_click_restricted -> agent_click_sestricted, which a lenient
// decoder would ignore and so allow agents to click), is damage: the
// daemon logs the record and the account, answers DATA_LOSS in the
// account, serves the other one, and counts both in its metrics.
func TestE2E_FlippedBitInRecordLeavesItsAccountOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	sessions := map[string]string{}
	for _, acct := range []string{"acme", "other"} {
		sessions[acct] = setupSessionIn(t, c, acct)
		if _, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings: &gatehousev1.LiveGuideSettings{AccountId: acct, AgentClickRestricted: true}, UpdateMask: mask("agent_click_restricted")}); err != nil {
			t.Fatal(err)
		}
	}
	d.stop()
	rawUpdate(t, dir, func(kv, _ *bbolt.Bucket) error {
		k := []byte("t/acme/settings")
		v := bytes.Clone(kv.Get(k))
		i := bytes.Index(v, []byte("agent_click_restricted"))
		if i < 0 {
			return fmt.Errorf("no agent_click_restricted in %q", v)
		}
		v[i+len("agent_click_")] ^= 0x01 // r -> s
		return kv.Put(k, v)
	})

	d = start(t, nil, loopbackArgs(dir, "--metrics-addr", "127.0.0.1:0")...)
	if e := d.mustLog("stored record damaged"); e["level"] != "ERROR" || e["key"] != "t/acme/settings" {
		t.Errorf("log entry %v; want an ERROR naming t/acme/settings", e)
	}
	if e := d.mustLog("account unreadable: its decisions are refused until its records are repaired"); e["account_id"] != "acme" {
		t.Errorf("log entry %v; want account acme", e)
	}
	c = dial(t, d.addr)
	_, err := c.decide.CheckFeature(ctx, click(sessions["acme"], agent("alice")))
	wantCode(t, "CheckFeature in the damaged account", err, codes.DataLoss)
	checkDecision(ctx, t, c, click(sessions["other"], agent("alice")), false, gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, "agent_click_restricted")
	body := scrape(t, d)
	for _, want := range []string{"\ngatehouse_snapshot_unreadable_accounts 1\n", "\ngatehouse_store_damaged_records_at_start 1\n", "\ngatehouse_store_meta_fallback 0\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
}

// TestE2E_FlippedBitInSessionRecordIsDataLoss flips one bit of a stored
// session record (its checksum then fails): after a restart every
// session-addressed RPC on that session answers DATA_LOSS naming it — the
// decisions, the session policy (one call and a watch), the admin reads and
// writes, a batch holding it — never NOT_FOUND nor an answer; the other
// session of the same account is served as before, the account is not
// counted unreadable, and the session is counted and logged.
func TestE2E_FlippedBitInSessionRecordIsDataLoss(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := testContext(t)
	d := start(t, nil, loopbackArgs(dir)...)
	c := dial(t, d.addr)
	bad := setupSessionIn(t, c, "acme")
	good, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: "acme",
		Kind: gatehousev1.SessionKind_SESSION_KIND_LIVE_GUIDE, RepresentativeId: "alice", CustomerId: "cust-2"})
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	key := "t/acme/session/" + bad
	rawUpdate(t, dir, func(kv, _ *bbolt.Bucket) error {
		v := bytes.Clone(kv.Get([]byte(key)))
		i := bytes.Index(v, []byte(`"representative_id":"alice"`))
		if i < 0 {
			return fmt.Errorf("no representative alice in %q", v)
		}
		v[i+len(`"representative_id":"`)] ^= 0x02 // alice -> clice: still valid JSON
		return kv.Put([]byte(key), v)
	})

	d = start(t, nil, loopbackArgs(dir, "--metrics-addr", "127.0.0.1:0")...)
	if e := d.mustLog("stored record damaged"); e["key"] != key {
		t.Errorf("log entry %v; want one naming %s", e, key)
	}
	if e := d.mustLog("session unreadable: its decisions are refused until its record is repaired"); e["session_id"] != bad || e["account_id"] != "acme" {
		t.Errorf("log entry %v; want session %s of acme", e, bad)
	}
	c = dial(t, d.addr)
	dataLoss := func(what string, err error) {
		t.Helper()
		st := wantCode(t, what, err, codes.DataLoss)
		if !strings.Contains(st.Message(), bad) {
			t.Errorf("%s: message %q does not name the session", what, st.Message())
		}
	}
	_, err = c.decide.CheckFeature(ctx, click(bad, agent("alice")))
	dataLoss("CheckFeature", err)
	_, err = c.decide.CheckFeatures(ctx, &gatehousev1.CheckFeaturesRequest{Checks: []*gatehousev1.CheckFeatureRequest{click(good.GetSession().GetId(), agent("alice")), click(bad, agent("alice"))}})
	dataLoss("CheckFeatures", err)
	_, err = c.decide.GetSessionPolicy(ctx, &gatehousev1.GetSessionPolicyRequest{SessionId: bad, Actor: agent("alice")})
	dataLoss("GetSessionPolicy", err)
	w, err := c.decide.WatchSessionPolicy(ctx, &gatehousev1.WatchSessionPolicyRequest{SessionId: bad, Actor: agent("alice")})
	if err == nil {
		_, err = w.Recv()
	}
	dataLoss("WatchSessionPolicy", err)
	_, err = c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: bad})
	dataLoss("GetSession", err)
	_, err = c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: bad})
	dataLoss("EndSession", err)

	checkDecision(ctx, t, c, click(good.GetSession().GetId(), agent("alice")), true, gatehousev1.Reason_REASON_ALLOWED, "")
	body := scrape(t, d)
	for _, want := range []string{"\ngatehouse_snapshot_unreadable_sessions 1\n", "\ngatehouse_snapshot_unreadable_accounts 0\n", "\ngatehouse_store_damaged_records_at_start 1\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
}
