package notify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Dir "delivers" a message by writing its XML record to <Path>/<id>.xml,
// for a daemon without an SMTP server (make run). The file appears whole or
// not at all (temporary file, fsync, rename, fsync of the directory), and
// a retry rewrites the same file with the same content. The directory is
// created on the first delivery.
type Dir struct {
	Path string
}

// String names the backend in logs.
func (d *Dir) String() string { return "dir:" + d.Path }

// FileName returns the name of the file a message is written to.
func FileName(id string) string { return id + ".xml" }

// Deliver writes m's record.
func (d *Dir) Deliver(_ context.Context, m *store.OutboxMessage) (err error) {
	if m.ID == "" || strings.ContainsAny(m.ID, `/\`) || strings.HasPrefix(m.ID, ".") {
		return fmt.Errorf("outbox id %q cannot name a file", m.ID)
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Path, "."+m.ID+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.WriteString(m.XML); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(d.Path, FileName(m.ID))); err != nil {
		return err
	}
	return syncDir(d.Path)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	return f.Sync()
}
