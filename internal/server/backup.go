package server

import (
	"context"
	"fmt"
	"io"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// backupChunk is the size of one BackupStore message.
const backupChunk = 1 << 20

// chunkWriter sends what is written to it as BackupStore messages.
type chunkWriter struct {
	// ctx is the stream's: when it ends (the caller's credential revoked,
	// the server shutting down) the copy stops at the next write.
	ctx       context.Context
	stream    gatehousev1.AdminService_BackupStoreServer
	rev       uint64
	size      int64
	buf       []byte
	sentBytes int64
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		take := min(backupChunk-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == backupChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.stream.Send(&gatehousev1.BackupStoreResponse{Chunk: w.buf, Revision: w.rev, Size: w.size})
	w.sentBytes += int64(len(w.buf))
	w.buf = make([]byte, 0, backupChunk)
	return err
}

// BackupStore streams a consistent copy of the store in chunks of 1 MiB,
// each stamped with the revision the copy reflects and the file's size.
func (a *adminService) BackupStore(_ *gatehousev1.BackupStoreRequest, stream gatehousev1.AdminService_BackupStoreServer) error {
	ctx := stream.Context()
	b, ok := a.s.store.(store.Backuper)
	if !ok {
		return errs.New(errs.Unimplemented, "this store cannot be backed up online")
	}
	w := &chunkWriter{ctx: ctx, stream: stream, buf: make([]byte, 0, backupChunk)}
	err := b.Backup(ctx, func(rev uint64, size int64) (io.Writer, error) {
		w.rev, w.size = rev, size
		return w, nil
	})
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return err
	}
	if w.sentBytes != w.size {
		return fmt.Errorf("backup sent %d bytes of %d", w.sentBytes, w.size)
	}
	return nil
}
