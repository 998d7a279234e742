package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// bbolt's page layout (go.etcd.io/bbolt/internal/common/page.go): a 16-byte
// header (id uint64, flags uint16, count uint16, overflow uint32), then
// count elements of 16 bytes; a branch element is (pos, ksize uint32, child
// page id uint64), a leaf element (flags, pos, ksize, vsize uint32); pos is
// relative to the element itself. A leaf element with the bucket flag holds
// a bucket header (root page id, sequence) whose root 0 means the bucket's
// page follows inline in the value. A freelist page holds count page ids
// (count 0xFFFF: the real count is the first uint64).
const (
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	elementSize      = 16
	bucketHeaderSize = 16
	maxTreeDepth     = 64
)

// pageWalker checks the structure of every page reachable from a meta
// page with bounds-checked reads of the file, before bbolt follows the same
// pointers through its memory map: a damaged element count, offset, size
// or page id then is an error naming the page, not a read outside the
// mapping (a fault that kills the process).
type pageWalker struct {
	data []byte // the file, pages 0 .. hwm-1
	ps   uint64
	hwm  uint64
	seen []bool
}

// walkPages checks the file at path as m describes it.
func walkPages(path string, m meta) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	size := m.hwm * uint64(m.pageSize)
	if size == 0 {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	defer func() { _ = syscall.Munmap(data) }()
	w := &pageWalker{data: data, ps: uint64(m.pageSize), hwm: m.hwm, seen: make([]bool, m.hwm)}
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	return w.tree(m.root, "root bucket", 0, bounds{}, true)
}

// bounds are the keys a page's keys must lie in: lo <= key < hi (nil: no
// bound), from the branch element that points to the page and the next.
type bounds struct {
	lo, hi []byte
	child  bool // reached from a branch page: it cannot be empty
}

// page returns page id with its overflow pages, after checking its header.
func (w *pageWalker) page(id uint64, what string) (p []byte, flags uint16, count int, err error) {
	if id < 2 || id >= w.hwm {
		return nil, 0, 0, fmt.Errorf("%w: %s: page id %d is outside the file (%d pages)", errCorruptFile, what, id, w.hwm)
	}
	hdr := w.data[id*w.ps : id*w.ps+pageHeaderSize]
	le := binary.LittleEndian
	if got := le.Uint64(hdr); got != id {
		return nil, 0, 0, fmt.Errorf("%w: %s: page %d says it is page %d", errCorruptFile, what, id, got)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return nil, 0, 0, fmt.Errorf("%w: %s: page %d has %d overflow pages, past the end of the file (%d pages)", errCorruptFile, what, id, overflow, w.hwm)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, 0, 0, fmt.Errorf("%w: %s: page %d is reached twice", errCorruptFile, what, i)
		}
		w.seen[i] = true
	}
	return w.data[id*w.ps : (id+overflow+1)*w.ps], le.Uint16(hdr[8:]), int(le.Uint16(hdr[10:])), nil
}

func (w *pageWalker) freelist(id uint64) error {
	p, flags, count, err := w.page(id, "freelist")
	if err != nil {
		return err
	}
	if flags != freelistPageFlag {
		return fmt.Errorf("%w: freelist page %d has flags %#x, not a freelist page", errCorruptFile, id, flags)
	}
	start := uint64(pageHeaderSize)
	n := uint64(count)
	if count == 0xFFFF {
		if len(p) < pageHeaderSize+8 {
			return fmt.Errorf("%w: freelist page %d is too short", errCorruptFile, id)
		}
		n = binary.LittleEndian.Uint64(p[pageHeaderSize:])
		start += 8
	}
	if n > (uint64(len(p))-start)/8 {
		return fmt.Errorf("%w: freelist page %d lists %d page ids, more than it holds", errCorruptFile, id, n)
	}
	for i := range n {
		if fid := binary.LittleEndian.Uint64(p[start+8*i:]); fid < 2 || fid >= w.hwm {
			return fmt.Errorf("%w: freelist page %d lists page %d, outside the file (%d pages)", errCorruptFile, id, fid, w.hwm)
		}
	}
	return nil
}

// tree checks the B+tree rooted at page id, of the bucket named what.
// Gatehouse's root bucket holds only buckets (meta, kv), and those hold no
// buckets: buckets says which the tree's leaves hold.
func (w *pageWalker) tree(id uint64, what string, depth int, b bounds, buckets bool) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("%w: %s: tree deeper than %d pages at page %d", errCorruptFile, what, maxTreeDepth, id)
	}
	p, flags, count, err := w.page(id, what)
	if err != nil {
		return err
	}
	return w.node(p, flags, count, fmt.Sprintf("%s, page %d", what, id), depth, b, buckets)
}

// node checks one branch or leaf page p (a mapped page or an inline
// bucket's page) and what it points to.
func (w *pageWalker) node(p []byte, flags uint16, count int, where string, depth int, b bounds, buckets bool) error {
	if flags != branchPageFlag && flags != leafPageFlag {
		return fmt.Errorf("%w: %s: flags %#x, neither a branch nor a leaf page", errCorruptFile, where, flags)
	}
	if count == 0 && (flags == branchPageFlag || b.child) {
		// bbolt removes a page that becomes empty; only a bucket's root
		// leaf may be.
		return fmt.Errorf("%w: %s: no elements", errCorruptFile, where)
	}
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Errorf("%w: %s: %d elements do not fit in %d bytes", errCorruptFile, where, count, len(p))
	}
	le := binary.LittleEndian
	var prev []byte
	// bbolt writes a page's keys and values packed, in element order, right
	// after the element array (common.WriteInodeToPage): each element's
	// data starts where the previous one's ended. A changed count, offset
	// or size breaks that.
	next := uint64(pageHeaderSize + count*elementSize)
	for i := range count {
		e := pageHeaderSize + i*elementSize
		var pos, ksize, vsize uint64
		var eflags uint32
		if flags == branchPageFlag {
			pos, ksize = uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:]))
		} else {
			eflags = le.Uint32(p[e:])
			pos, ksize, vsize = uint64(le.Uint32(p[e+4:])), uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
		}
		ks := uint64(e) + pos
		if ks+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("%w: %s: element %d (offset %d, key %d bytes, value %d bytes) runs past the page end", errCorruptFile, where, i, ks, ksize, vsize)
		}
		if ks != next || ksize == 0 {
			return fmt.Errorf("%w: %s: element %d has its key at offset %d (%d bytes); the page layout puts it at %d", errCorruptFile, where, i, ks, ksize, next)
		}
		next = ks + ksize + vsize
		key := p[ks : ks+ksize]
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return fmt.Errorf("%w: %s: keys out of order at element %d", errCorruptFile, where, i)
		}
		if i == 0 && b.lo != nil && bytes.Compare(key, b.lo) < 0 || b.hi != nil && bytes.Compare(key, b.hi) >= 0 {
			return fmt.Errorf("%w: %s: element %d's key is outside the range its parent page gives", errCorruptFile, where, i)
		}
		prev = key
		if flags == branchPageFlag {
			cb := bounds{lo: key, hi: b.hi, child: true}
			if i+1 < count {
				// The next element's key bounds this child; it is
				// checked for layout when the loop gets there, so only
				// its bounds are read here.
				ne := pageHeaderSize + (i+1)*elementSize
				nks := uint64(ne) + uint64(le.Uint32(p[ne:]))
				nksize := uint64(le.Uint32(p[ne+4:]))
				if nks+nksize > uint64(len(p)) {
					return fmt.Errorf("%w: %s: element %d runs past the page end", errCorruptFile, where, i+1)
				}
				cb.hi = p[nks : nks+nksize]
			}
			if err := w.tree(le.Uint64(p[e+8:]), where, depth+1, cb, buckets); err != nil {
				return err
			}
			continue
		}
		if isBucket := eflags&bucketLeafFlag != 0; isBucket != buckets {
			if buckets {
				return fmt.Errorf("%w: %s: element %d (%q) is a value where only buckets are", errCorruptFile, where, i, key)
			}
			return fmt.Errorf("%w: %s: element %d is a nested bucket where only records are", errCorruptFile, where, i)
		}
		if !buckets {
			continue
		}
		v := p[ks+ksize : ks+ksize+vsize]
		name := fmt.Sprintf("bucket %q", key)
		if len(v) < bucketHeaderSize {
			return fmt.Errorf("%w: %s: %s header is %d bytes", errCorruptFile, where, name, len(v))
		}
		if root := le.Uint64(v); root != 0 {
			if err := w.tree(root, name, 0, bounds{}, false); err != nil {
				return err
			}
			continue
		}
		inline := v[bucketHeaderSize:]
		if len(inline) < pageHeaderSize {
			return fmt.Errorf("%w: %s: %s inline page is %d bytes", errCorruptFile, where, name, len(inline))
		}
		if f := le.Uint16(inline[8:]); f != leafPageFlag {
			return fmt.Errorf("%w: %s: %s inline page has flags %#x, not a leaf page", errCorruptFile, where, name, f)
		}
		if err := w.node(inline, le.Uint16(inline[8:]), int(le.Uint16(inline[10:])), fmt.Sprintf("%s (inline in %s)", name, where), depth+1, bounds{}, false); err != nil {
			return err
		}
	}
	return nil
}
