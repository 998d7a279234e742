package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"

	bbolt "go.etcd.io/bbolt"
)

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common): a 16-byte
// page header, then magic, version, page size, flags, root bucket (root
// page id, sequence), freelist page id, page-id high-water mark, txid and an
// FNV-64a checksum of the fields before it.
const (
	pageHeaderSize = 16
	metaMagic      = 0xED0CDAED
	metaVersion    = 2
	metaSize       = 4 + 4 + 4 + 4 + 16 + 8 + 8 + 8 + 8
	noFreelist     = ^uint64(0)
)

type meta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64
	txid     uint64
}

// parseMeta decodes and checks one meta page; ok is false when it is not a
// valid bbolt meta page.
func parseMeta(b []byte) (m meta, ok bool) {
	if len(b) < pageHeaderSize+metaSize {
		return m, false
	}
	d := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(d[0:]) != metaMagic || le.Uint32(d[4:]) != metaVersion {
		return m, false
	}
	h := fnv.New64a()
	_, _ = h.Write(d[:metaSize-8])
	if h.Sum64() != le.Uint64(d[metaSize-8:]) {
		return m, false
	}
	return meta{
		pageSize: le.Uint32(d[8:]),
		root:     le.Uint64(d[16:]),
		freelist: le.Uint64(d[32:]),
		hwm:      le.Uint64(d[40:]),
		txid:     le.Uint64(d[48:]),
	}, true
}

// MetaFallback describes a file whose two meta pages are not both valid:
// bbolt then opens it from the valid one, which may be one commit older than
// the damaged one was, silently losing that (acknowledged) commit.
type MetaFallback struct {
	// DamagedPage is the meta page (0 or 1) that fails its checks, and
	// DamagedTxid the transaction id its txid field reads (unreliable: the
	// page is damaged).
	DamagedPage int
	DamagedTxid uint64
	// UsedPage and UsedTxid are the valid meta page the store opens from.
	UsedPage int
	UsedTxid uint64
}

func (m *MetaFallback) String() string {
	return fmt.Sprintf("meta page %d is damaged (its txid field reads %d); the store would open from meta page %d at transaction %d, "+
		"losing the last commit if the damaged page held a newer one", m.DamagedPage, m.DamagedTxid, m.UsedPage, m.UsedTxid)
}

// MetaRollbackError is Open's refusal of a file with one damaged meta
// page. It matches store.ErrCorrupt and store.ErrMetaRollback.
type MetaRollbackError struct {
	Path     string
	Fallback MetaFallback
}

func (e *MetaRollbackError) Error() string {
	return fmt.Sprintf("%v: %s: %v: %v", store.ErrCorrupt, e.Path, store.ErrMetaRollback, &e.Fallback)
}

// Unwrap makes errors.Is match store.ErrCorrupt and store.ErrMetaRollback.
func (e *MetaRollbackError) Unwrap() []error { return []error{store.ErrCorrupt, store.ErrMetaRollback} }

// rawTxid reads the txid field of a meta page without checking it.
func rawTxid(b []byte) uint64 {
	if len(b) < pageHeaderSize+56 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[pageHeaderSize+48:])
}

// preflight checks the file's meta pages before bbolt maps it. bbolt trusts
// the newest valid meta page; when that page points past the end of the
// file (a truncated copy, a torn write) bbolt reads unmapped memory and the
// process dies with a fault that recover cannot catch. A missing or empty
// file passes: bbolt initializes it. When only one meta page is valid it
// returns the fallback bbolt would take; the caller decides whether to
// accept it. It returns the meta page bbolt will use (zero for a new file).
func preflight(path string) (meta, *MetaFallback, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return meta{}, nil, nil
	}
	if err != nil {
		return meta{}, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return meta{}, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return meta{}, nil, nil
	}
	head := make([]byte, 4096)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return meta{}, nil, err
	}
	head = head[:n]
	m0, ok0 := parseMeta(head)
	pageSize := int64(os.Getpagesize())
	if ok0 {
		pageSize = int64(m0.pageSize)
	}
	if pageSize < 1024 || pageSize > 1<<20 {
		return meta{}, nil, fmt.Errorf("%w: implausible page size %d", errCorruptFile, pageSize)
	}
	second := make([]byte, pageHeaderSize+metaSize)
	var m1 meta
	ok1 := false
	if _, err := f.ReadAt(second, pageSize); err == nil {
		m1, ok1 = parseMeta(second)
	}
	var m meta
	var fallback *MetaFallback
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
		fallback = &MetaFallback{DamagedPage: 1, DamagedTxid: rawTxid(second), UsedPage: 0, UsedTxid: m0.txid}
	case ok1:
		m = m1
		fallback = &MetaFallback{DamagedPage: 0, DamagedTxid: rawTxid(head), UsedPage: 1, UsedTxid: m1.txid}
	default:
		return meta{}, nil, fmt.Errorf("%w: no valid meta page", errCorruptFile)
	}
	if m.hwm < 4 || int64(m.hwm)*int64(m.pageSize) > size {
		return meta{}, nil, fmt.Errorf("%w: file is %d bytes but its meta page needs %d pages of %d bytes (truncated?)",
			errCorruptFile, size, m.hwm, m.pageSize)
	}
	if m.root < 2 || m.root >= m.hwm || (m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm)) {
		return meta{}, nil, fmt.Errorf("%w: meta page points outside the file (root %d, freelist %d, %d pages)",
			errCorruptFile, m.root, m.freelist, m.hwm)
	}
	return m, fallback, nil
}

var errCorruptFile = errors.New("damaged file")

// checkFile checks the file at path before bbolt opens it: its meta pages
// (preflight) and the structure of every page the meta page bbolt will use
// reaches (walkPages). It holds a shared lock on the file meanwhile, so
// that a file another process has open (and may be writing) is reported
// as locked, not as damaged. It returns what preflight returns.
func checkFile(path string) (meta, *MetaFallback, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return meta{}, nil, nil
	}
	if err != nil {
		return meta{}, nil, err // names the operation and the file itself
	}
	defer f.Close()
	for deadline := time.Now().Add(2 * time.Second); ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return meta{}, nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return meta{}, nil, lockedError(path)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	m, fallback, err := preflight(path)
	if err != nil {
		if pathError(err) {
			// The file could not be read (permissions, a directory in
			// its place, an I/O error): not damage, and the error
			// already names the operation and the file.
			return m, nil, err
		}
		return m, nil, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	if m.hwm == 0 { // a new file
		return m, fallback, nil
	}
	if err := walkPages(path, m); err != nil {
		return m, fallback, fmt.Errorf("%w: %s: %w", store.ErrCorrupt, path, err)
	}
	return m, fallback, nil
}

// verify walks every page reachable from the root with bbolt's own
// consistency check, which validates page ids before it follows them.
func (s *Store) verify() error {
	return s.db.View(func(tx *bbolt.Tx) error {
		// The check runs in a goroutine of bbolt's that reads the
		// transaction until it closes the channel: drain it all (keeping
		// the first ten errors) before the transaction ends.
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: consistency check: %w", errCorruptFile, errors.Join(errs...))
		}
		return nil
	})
}
