package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
)

func backupCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --file FILE",
		Short: "Copy the whole store, online, into a file (operators only)",
		Long: `Stream a consistent copy of the store (AdminService.BackupStore, taken in one
read transaction while the server keeps serving) into FILE. The copy is
written to a temporary file beside FILE, synced to disk and renamed over
FILE only when complete, so FILE is never a partial store. Restore by
stopping gatehoused and putting the file in place as <data-dir>/gatehouse.db.
--timeout bounds the whole transfer.

The copy is a bbolt store file on either store: from an etcd-backed server
it holds every key at one etcd revision. Restore it into etcd with
gatehoused migrate --to etcd --bolt-file FILE.`,
		Example: "  gatehouse backup --file gatehouse-$(date +%F).db",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("backup needs --file FILE (-f FILE)")}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			stream, err := c.admin.BackupStore(ctx, &gatehousev1.BackupStoreRequest{})
			if err != nil {
				return err
			}
			var rev uint64
			var size, written int64
			err = writeAtomic(out, 0o600, func(w io.Writer) error {
				for {
					msg, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
					if written == 0 {
						rev, size = msg.GetRevision(), msg.GetSize()
					} else if msg.GetRevision() != rev || msg.GetSize() != size {
						return fmt.Errorf("backup changed revision mid-stream (%d, then %d)", rev, msg.GetRevision())
					}
					n, err := w.Write(msg.GetChunk())
					written += int64(n)
					if err != nil {
						return err
					}
				}
				if written != size || written == 0 {
					return fmt.Errorf("backup incomplete: received %d of %d bytes", written, size)
				}
				return nil
			})
			if err != nil {
				return err
			}
			result := struct {
				File     string `json:"file"`
				Revision uint64 `json:"revision"`
				Size     int64  `json:"size"`
			}{out, rev, size}
			return a.emit(result, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "backup of revision %d written to %s (%d bytes)\n", rev, out, size)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "file", "f", "", "store copy `file` (written atomically)")
	_ = cmd.MarkFlagFilename("file", "db")
	// --out was the flag's first name; -o is --output everywhere.
	cmd.Flags().StringVar(&out, "out", "", "store copy `file`")
	_ = cmd.Flags().MarkDeprecated("out", "use --file (-f)")
	return cmd
}

// writeAtomic writes path through fill: into a temporary file in the same
// directory, synced, then renamed over path, and the directory synced, so
// path holds either its old content or the complete new one. On error the
// temporary file is removed and path is untouched.
func writeAtomic(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
