package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/server"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

func TestBackup_RestoredStoreHasTheData(t *testing.T) {
	t.Parallel()
	ts := mustStart(t, withAuth)
	ts.richAccount("acme")
	dir := t.TempDir()
	file := filepath.Join(dir, bolt.FileName)
	out := ts.must("backup", "--file", file)
	wantIn(t, out, "backup of revision ", "written to "+file)
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "("+strconv.FormatInt(fi.Size(), 10)+" bytes)") {
		t.Fatalf("size not reported: %q (file has %d bytes)", out, fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v, want 0600 (it holds token hashes)", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}

	// Run again over the same file: replaced whole; json output.
	ts.must("representatives", "create", "dave", "-a", "acme", "--display-name", "Dave")
	j := ts.mustJSON("backup", "--file", file)
	if j["file"] != file || j["revision"] == nil || j["size"] == nil {
		t.Fatalf("json: %v", j)
	}

	// The copy opens as a store (bolt.Open) with the account, its
	// representatives and the operator token in it.
	restored := mustStartIn(t, dir, func(o *server.Options, _ *bolt.Store, _ *testServer) { o.Authenticate = true })
	restored.bearer = ts.bearer
	wantIn(t, restored.must("representatives", "list", "-a", "acme"), "alice", "bob", "carol", "dave")
	if a, b := ts.must("export", "-a", "acme"), restored.must("export", "-a", "acme"); a != b {
		t.Fatalf("restored export differs:\n%s\n%s", a, b)
	}

	// Only operators may back up; a failed backup leaves no file.
	admin := strings.TrimSpace(ts.must("tokens", "create", "--name", "admin", "--role", "admin", "-q"))
	other := filepath.Join(dir, "other.db")
	r := runCLI(t, map[string]string{"GATEHOUSE_ADDR": ts.addr, "GATEHOUSE_TOKEN": admin}, "", "backup", "--file", other)
	if r.code != exitError || !strings.Contains(r.err, "PERMISSION_DENIED") {
		t.Fatalf("admin backup: %+v", r)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatalf("failed backup left %s: %v", other, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left after a failure: %v", entries)
	}
	wantIn(t, ts.mustFail(exitUsage, "backup").err, "backup needs --file FILE")
}
