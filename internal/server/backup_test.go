package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
)

// TestBackupStore_WhileWriting takes an online backup while writers commit,
// opens the copy as a store and serves from it: everything up to the
// backup's revision is there, nothing after it.
func TestBackupStore_WhileWriting(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	ctx := ctxT(t)
	e.MustCreateAccount("acme")
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; wctx.Err() == nil; i++ {
			_, _ = e.admin.CreateAllowlistEntry(wctx, &gatehousev1.CreateAllowlistEntryRequest{AccountId: "acme",
				Entry: &gatehousev1.AllowlistEntry{Id: fmt.Sprintf("e-%d", i), Pattern: fmt.Sprintf("h%d.example.com", i)}})
		}
	}()
	for range 20 {
		e.MustAllow("acme", "", "late.example.org") // keep writers busy around the backup
		break
	}
	stream, err := e.admin.BackupStore(ctx, &gatehousev1.BackupStoreRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var rev uint64
	var size int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rev, size = msg.GetRevision(), msg.GetSize()
		buf.Write(msg.GetChunk())
	}
	stop()
	wg.Wait()
	if int64(buf.Len()) != size || rev == 0 {
		t.Fatalf("backup: %d bytes of %d at revision %d", buf.Len(), size, rev)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := MustStart(t, dir)
	if got := restored.store.Revision(); got != rev {
		t.Fatalf("restored store at revision %d, backup said %d", got, rev)
	}
	list, err := restored.admin.ListAllowlistEntries(ctx, &gatehousev1.ListAllowlistEntriesRequest{AccountId: "acme", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range list.GetEntries() {
		if entry.GetRevision() > rev {
			t.Fatalf("entry %v is newer than the backup", entry)
		}
	}
	if len(list.GetEntries()) == 0 {
		t.Fatal("backup holds no entries")
	}
}
