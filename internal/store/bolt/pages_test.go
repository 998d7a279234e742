package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// pageInfo is one page of a store file, located by parsing its header.
type pageInfo struct {
	id       int
	flags    uint16
	count    int
	overflow int
}

// bigStoreFile writes a store large enough that its kv bucket has a branch
// page and returns the file's bytes, the page
// size and every page in use by kind.
func bigStoreFile(t *testing.T) ([]byte, int, map[string][]pageInfo) {
	t.Helper()
	dir := t.TempDir()
	s := MustOpen(t, dir)
	for c := range 3 {
		storetest.MustUpdate(t, s, func(tx store.Tx) error {
			for i := range 300 {
				if err := tx.Put(fmt.Sprintf("k/%d/%04d", c, i), bytes.Repeat([]byte{'a' + byte(c)}, 200)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// A little churn, so that the freelist lists pages.
	storetest.MustUpdate(t, s, func(tx store.Tx) error {
		for i := range 100 {
			if err := tx.Delete(fmt.Sprintf("k/1/%04d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	MustClose(t, s)
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := preflight(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	ps := int(m.pageSize)
	pages := map[string][]pageInfo{}
	// Walk the tree from the root as bbolt does, to know which pages are
	// in use (free pages keep stale contents).
	// The change log's pages are listed apart ("changes"): its root leaf
	// may be empty, so a flip that empties it loses only history (Changes
	// answers ErrCompacted and followers reload).
	var walk func(id int, depth int, log bool)
	walk = func(id int, depth int, log bool) {
		p := data[id*ps:]
		pi := pageInfo{id: id, flags: binary.LittleEndian.Uint16(p[8:]), count: int(binary.LittleEndian.Uint16(p[10:])), overflow: int(binary.LittleEndian.Uint32(p[12:]))}
		switch pi.flags {
		case branchPageFlag:
			pages["branch"] = append(pages["branch"], pi)
			for i := range pi.count {
				walk(int(binary.LittleEndian.Uint64(p[pageHeaderSize+i*elementSize+8:])), depth+1, log)
			}
		case leafPageFlag:
			kind := "leaf"
			switch {
			case depth == 0 && id == int(m.root):
				kind = "root"
			case log:
				kind = "changes"
			}
			pages[kind] = append(pages[kind], pi)
			for i := range pi.count {
				e := pageHeaderSize + i*elementSize
				if binary.LittleEndian.Uint32(p[e:])&bucketLeafFlag != 0 {
					pos, ks := int(binary.LittleEndian.Uint32(p[e+4:])), int(binary.LittleEndian.Uint32(p[e+8:]))
					name := string(p[e+pos : e+pos+ks])
					if root := binary.LittleEndian.Uint64(p[e+pos+ks:]); root != 0 {
						walk(int(root), 0, name == string(changesBucket))
					}
				}
			}
		}
	}
	walk(int(m.root), 0, false)
	if m.freelist != noFreelist {
		p := data[int(m.freelist)*ps:]
		pages["freelist"] = []pageInfo{{id: int(m.freelist), flags: binary.LittleEndian.Uint16(p[8:]), count: int(binary.LittleEndian.Uint16(p[10:]))}}
	}
	for _, k := range []string{"root", "branch", "leaf", "freelist"} {
		if len(pages[k]) == 0 {
			t.Fatalf("the store file has no %s page: %v", k, pages)
		}
	}
	if pages["freelist"][0].count == 0 {
		t.Fatalf("the freelist is empty")
	}
	return data, ps, pages
}

// openDamaged writes data as a store file, opens it (which commits once),
// and when it opens reads every key. It returns Open's error and the number
// of records Open found damaged; a panic fails the test.
func openDamaged(t *testing.T, dir string, data []byte) (openErr error, damaged int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		return err, 0
	}
	defer s.Close()
	_, damaged = s.DamagedRecords()
	_ = s.View(context.Background(), func(tx store.ReadTx) error {
		return tx.Scan("", "", func(string, []byte, uint64) (bool, error) { return true, nil })
	})
	return nil, damaged
}

// TestOpen_DamagedPages flips, one at a time, every bit of the header and
// of the first and last element of pages of every kind (the root page,
// which holds the schema bucket inline, branch and leaf pages of the kv
// bucket, the freelist), and of the schema record. A damaged header or
// element is refused at open with store.ErrCorrupt naming the page; no flip
// crashes the process (a fault would end the test binary). A few flips
// change nothing bbolt reads (unused flag bits, an element of a page
// nothing reads past) or only a record's bytes: those open, and a changed
// record is reported by its checksum.
func TestOpen_DamagedPages(t *testing.T) {
	data, ps, pages := bigStoreFile(t)
	t.Logf("pages: %d root, %d branch, %d leaf, freelist %v", len(pages["root"]), len(pages["branch"]), len(pages["leaf"]), pages["freelist"])
	dir := t.TempDir()
	if err, n := openDamaged(t, dir, data); err != nil || n != 0 {
		t.Fatalf("the undamaged file: %v, %d damaged records", err, n)
	}
	for _, kind := range []string{"root", "branch", "leaf", "freelist"} {
		list := pages[kind]
		sample := []pageInfo{list[0]}
		if kind == "leaf" {
			sample = append(sample, list[len(list)-1])
		}
		for _, pi := range sample {
			t.Run(fmt.Sprintf("%s page %d", kind, pi.id), func(t *testing.T) {
				base := pi.id * ps
				var offs []int
				for off := range pageHeaderSize {
					offs = append(offs, off)
				}
				if kind != "freelist" {
					last := pageHeaderSize + (pi.count-1)*elementSize
					for off := range elementSize {
						offs = append(offs, pageHeaderSize+off, last+off)
					}
				} else {
					for off := range 16 { // the first two page ids
						offs = append(offs, pageHeaderSize+off)
					}
				}
				refused, opened := 0, 0
				for _, off := range offs {
					for bit := range 8 {
						d := bytes.Clone(data)
						d[base+off] ^= 1 << bit
						err, damaged := openDamaged(t, dir, d)
						what := fmt.Sprintf("offset %d bit %d", off, bit)
						switch {
						case err != nil:
							if !errors.Is(err, store.ErrCorrupt) {
								t.Errorf("%s: Open = %v; want ErrCorrupt", what, err)
							}
							refused++
						case mustBeRefused(kind, pi, off, bit):
							t.Errorf("%s: opened (%d damaged records); want refused", what, damaged)
						default:
							opened++
						}
					}
				}
				t.Logf("%d flips refused, %d opened", refused, opened)
			})
		}
	}
}

// mustBeRefused says which flips change what bbolt reads of a page's
// structure: the header's id, flags and count, and every element field but
// the unused flag bits of a leaf element (bit 0 marks a bucket) and the
// sizes of the last element (its end is not bounded by another element;
// a changed key or value there is a record whose checksum fails).
func mustBeRefused(kind string, pi pageInfo, off, bit int) bool {
	switch {
	case off < 8: // page id
		return true
	case off < 12: // flags, count
		return true
	case off < pageHeaderSize: // overflow
		return false
	}
	if kind == "freelist" {
		return false
	}
	rel := (off - pageHeaderSize) % elementSize
	lastElem := off >= pageHeaderSize+(pi.count-1)*elementSize
	if pi.flags == leafPageFlag {
		switch {
		case rel < 4: // element flags
			return rel == 0 && bit == 0
		case rel < 8: // pos
			return true
		default: // ksize, vsize
			return !lastElem
		}
	}
	// branch: pos, ksize, child page id
	return rel < 8 && !lastElem || rel < 4 || rel >= 8
}

// TestOpen_DamagedSchemaRecord: every flip in the schema record (in the
// schema bucket, inline in the root page) is refused as damage, never as
// "schema is newer".
func TestOpen_DamagedSchemaRecord(t *testing.T) {
	data, _, _ := bigStoreFile(t)
	i := bytes.Index(data, keySchema)
	if i < 0 {
		t.Fatal("no schema record in the file")
	}
	val := i + len(keySchema) // the value follows its key
	dir := t.TempDir()
	for off := val; off < val+recordHeaderSize+8; off++ {
		for bit := range 8 {
			d := bytes.Clone(data)
			d[off] ^= 1 << bit
			err, _ := openDamaged(t, dir, d)
			if !errors.Is(err, store.ErrCorrupt) || errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "schema_version") {
				t.Fatalf("offset %d bit %d: Open = %v; want ErrCorrupt naming the schema record", off-val, bit, err)
			}
		}
	}
}
