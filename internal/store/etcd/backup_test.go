package etcd_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/etcd/etcdtest"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// TestBackup_BoltFileAtOneRevision backs an etcd store up while writers
// commit (each commit writes a record and a counter together): the backup
// is a bbolt store file at the revision Backup announced, of the size it
// announced, and holds exactly the records up to its counter.
func TestBackup_BoltFileAtOneRevision(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, "")
	for i := range 300 {
		storetest.MustPut(t, s, fmt.Sprintf("seed/%04d", i), strings.Repeat("s", i))
	}
	write := func(i int) {
		storetest.MustUpdate(t, s, func(tx store.Tx) error {
			if err := tx.Put(fmt.Sprintf("w/%06d", i), []byte("r")); err != nil {
				return err
			}
			return tx.Put("counter", []byte(strconv.Itoa(i)))
		})
	}
	write(0)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ctx.Err() == nil; i++ {
			write(i)
		}
	}()
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var rev uint64
	var size int64
	err = s.Backup(context.Background(), func(r uint64, n int64) (io.Writer, error) {
		rev, size = r, n
		return f, nil
	})
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != size || rev == 0 {
		t.Fatalf("backup file: %v, %v; announced %d bytes at revision %d", fi, err, size, rev)
	}
	b, err := bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		t.Fatalf("the backup does not open as a bbolt store: %v", err)
	}
	defer b.Close()
	if b.Revision() != rev {
		t.Errorf("backup file at revision %d, announced %d", b.Revision(), rev)
	}
	records, counter, seeds := 0, -1, 0
	storetest.MustView(t, b, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
			switch {
			case k == "counter":
				counter, _ = strconv.Atoi(string(v))
			case strings.HasPrefix(k, "w/"):
				records++
			case strings.HasPrefix(k, "seed/"):
				seeds++
			}
			return true, nil
		})
	})
	if seeds != 300 || counter < 0 || records != counter+1 {
		t.Fatalf("backup holds %d seeds, %d records, counter %d: not one revision's state", seeds, records, counter)
	}
}
