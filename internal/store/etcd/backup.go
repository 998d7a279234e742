package etcd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"github.com/gatehouse-dev/gatehouse/internal/store/storecopy"
)

var _ store.Backuper = (*Store)(nil)

// Backup implements store.Backuper: it copies every key of the store, read
// at one etcd revision, into a new bbolt store file (the bbolt driver's
// format, schema and checksums) at that revision, verifies the file
// against what it read, and writes the file to the writer open returns
// for the revision and the file's size. So a backup from etcd is the
// same kind of file as one from bbolt: gatehoused serves it with --store
// bolt, and gatehouse migrate loads it into etcd.
//
// The file is staged in a temporary directory (os.TempDir, or
// Options.BackupDir) and removed afterwards: the backup needs that much
// free space there.
func (s *Store) Backup(ctx context.Context, open func(rev uint64, size int64) (io.Writer, error)) error {
	dir, err := os.MkdirTemp(s.backupDir, "gatehouse-backup-")
	if err != nil {
		return fmt.Errorf("backup: stage the copy: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, bolt.FileName)
	b, err := bolt.OpenFile(path, bolt.Options{})
	if err != nil {
		return fmt.Errorf("backup: stage the copy: %w", err)
	}
	defer b.Close()
	rep, digest, err := storecopy.Copy(ctx, s, b, storecopy.Options{})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := storecopy.Verify(ctx, b, digest); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("backup: stage the copy: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	w, err := open(rep.SourceRevision, fi.Size())
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
