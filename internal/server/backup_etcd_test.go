package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"google.golang.org/grpc/codes"
)

// TestBackupStore_Etcd: BackupStore on an etcd-backed server streams a
// bbolt store file, in chunks of 1 MiB at most, each stamped with the one
// revision and size of the copy; the file serves (as a bbolt store) at
// that revision with every entry; and the RPC stays an operator's.
func TestBackupStore_Etcd(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/backup/"})
	if err != nil {
		t.Fatal(err)
	}
	e := mustStartOn(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.MustCreateAccount("acme")
	const entries = 20
	for i := range entries {
		if _, err := e.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
			Entry: &gatehousev1.AllowlistEntry{Id: fmt.Sprintf("e-%04d", i), Pattern: fmt.Sprintf("h%d.example.com", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// More than two chunks: audit events of 200 KiB, one per commit
	// (etcd takes about 1.5 MiB a transaction).
	const bulky = 12
	for i := range bulky {
		if _, err := st.Update(ctx, func(tx store.Tx) error {
			return store.PutAuditEvent(tx, &store.AuditEvent{ID: store.NextAuditID(tx, 0), Caller: "test", RPC: "Bulk",
				ResourceType: "filler", ResourceID: fmt.Sprint(i), Before: strings.Repeat("b", 200<<10)})
		}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := e.admin.BackupStore(ctx, &gatehousev1.BackupStoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var rev uint64
	var size int64
	chunks := 0
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("BackupStore on etcd: %v", err)
		}
		if chunks > 0 && (msg.GetRevision() != rev || msg.GetSize() != size) {
			t.Fatalf("chunk %d at revision %d size %d, the first at %d size %d", chunks, msg.GetRevision(), msg.GetSize(), rev, size)
		}
		if len(msg.GetChunk()) > backupChunk {
			t.Fatalf("chunk of %d bytes", len(msg.GetChunk()))
		}
		rev, size = msg.GetRevision(), msg.GetSize()
		chunks++
		buf.Write(msg.GetChunk())
	}
	if int64(buf.Len()) != size || chunks < 3 || rev == 0 || rev > st.Revision() {
		t.Fatalf("backup: %d bytes of %d in %d chunks at revision %d (store at %d)", buf.Len(), size, chunks, rev, st.Revision())
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := MustStart(t, dir)
	if got := restored.store.Revision(); got != rev {
		t.Fatalf("restored store at revision %d, backup said %d", got, rev)
	}
	list, err := restored.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "acme", PageSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.GetEntries()); n != entries {
		t.Fatalf("restored %d entries, want %d", n, entries)
	}
	var audit []store.AuditEvent
	if err := restored.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		audit, _, err = store.ListAuditEvents(tx, "", 0, 0, func(e *store.AuditEvent) bool { return e.RPC == "Bulk" })
		return err
	}); err != nil || len(audit) != bulky {
		t.Fatalf("restored %d bulky audit events (%v), want %d", len(audit), err, bulky)
	}
	// A write on the restored store comes after every copied revision.
	resp, err := restored.admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme", Entry: &gatehousev1.AllowlistEntry{Pattern: "after.example.com"}})
	if err != nil || resp.GetEntry().GetRevision() <= rev {
		t.Fatalf("write after restore: %v at %d, backup at %d", err, resp.GetEntry().GetRevision(), rev)
	}
	var _ store.Backuper = st
}

// TestBackupStore_EtcdNeedsOperator: with authentication on, an
// etcd-backed server's BackupStore is refused to a caller without the
// operator role, as on bbolt.
func TestBackupStore_EtcdNeedsOperator(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	st, err := etcd.Open(context.Background(), etcd.Options{Endpoints: srv.Endpoints, Prefix: "/backup-auth/"})
	if err != nil {
		t.Fatal(err)
	}
	e := mustStartOn(t, st, func(o *Options) { o.Authenticate = true })
	stream, err := e.admin.BackupStore(ctxT(t), &gatehousev1.BackupStoreRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.Unauthenticated)
}
