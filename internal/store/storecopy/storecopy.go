// Package storecopy copies the whole content of one store into another —
// every key, read in one transaction so the copy is consistent at one
// source revision — and verifies a copy key by key. It works on any pair
// of drivers through the store interface: online backups of an etcd
// store into a bbolt file, and the migration between bbolt and etcd.
package storecopy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Batch bounds for a target without limits of its own (zero
// store.Limits): what one write transaction of the copy holds.
const (
	DefaultBatchKeys  = 1024
	DefaultBatchBytes = 8 << 20
)

// maxListed bounds the keys a MismatchError names per kind.
const maxListed = 10

// ErrTargetNotEmpty is the error of a copy into a store that already
// holds keys, unless Options.Force.
var ErrTargetNotEmpty = errors.New("target store is not empty")

// ErrMismatch matches every *MismatchError.
var ErrMismatch = errors.New("copy differs from its source")

// Loader is implemented by a driver that bulk-loads a new, empty store at
// a given revision (the bbolt driver): the copy then ends at the source's
// revision, with every value's mod revision that revision.
type Loader interface {
	Load(ctx context.Context, rev uint64, fill func(put func(key string, val []byte) error) error) error
}

// RevisionRaiser is implemented by a driver whose revision can be raised
// (the etcd driver's revision base, the bbolt driver's counter): a copy
// into it first makes every later revision larger than the source's, so
// that what was made from the source's revisions (audit and outbox ids,
// etags, min_revision values) stays below what the target makes next.
type RevisionRaiser interface {
	RaiseRevision(ctx context.Context, floor uint64) error
}

// Options change a copy.
type Options struct {
	// Force copies into a target that holds keys: every source key is
	// written and every target key the source lacks is deleted, so the
	// target ends equal to the source.
	Force bool
}

// Report says what a copy did.
type Report struct {
	// SourceRevision is the source revision the copy reflects.
	SourceRevision uint64 `json:"source_revision"`
	// TargetRevision is the target's revision after the copy.
	TargetRevision uint64 `json:"target_revision"`
	// Keys and Bytes count the keys copied and their values' bytes.
	Keys  int   `json:"keys"`
	Bytes int64 `json:"bytes"`
	// Batches is the number of write transactions on the target (0 for a
	// bulk load).
	Batches int `json:"batches"`
	// Deleted counts the keys a forced copy removed from the target.
	Deleted int `json:"deleted"`
	// Loaded is true when the target was bulk-loaded at SourceRevision
	// (a bbolt target), false when it was written transaction by
	// transaction at revisions of its own (etcd).
	Loaded bool `json:"loaded"`
}

// Digest is the content of a store at one revision: a SHA-256 of each
// key's value.
type Digest struct {
	Revision uint64
	Sums     map[string][sha256.Size]byte
	Bytes    int64
}

func newDigest(rev uint64) *Digest {
	return &Digest{Revision: rev, Sums: map[string][sha256.Size]byte{}}
}

func (d *Digest) add(key string, val []byte) {
	d.Sums[key] = sha256.Sum256(val)
	d.Bytes += int64(len(val))
}

// Count returns how many keys the store held.
func (d *Digest) Count() int { return len(d.Sums) }

// Empty reports whether st holds no key.
func Empty(ctx context.Context, st store.Store) (bool, error) {
	empty := true
	err := st.View(ctx, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(string, []byte, uint64) (bool, error) {
			empty = false
			return false, nil
		})
	})
	return empty, err
}

// Take reads every key of st in one transaction and returns its digest.
func Take(ctx context.Context, st store.Store) (*Digest, error) {
	var d *Digest
	err := st.View(ctx, func(tx store.ReadTx) error {
		d = newDigest(tx.Revision())
		return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
			d.add(k, v)
			return true, nil
		})
	})
	if err != nil {
		return nil, readErr("read", err)
	}
	return d, nil
}

// readErr names what a failed read of a store was doing; a damaged record
// is named by its key.
func readErr(what string, err error) error {
	var de *store.DamagedError
	if errors.As(err, &de) {
		return fmt.Errorf("%s: record %q is damaged (its checksum fails), so it cannot be copied faithfully: %w", what, de.Key, err)
	}
	if errors.Is(err, store.ErrCompacted) {
		return fmt.Errorf("%s: the source's history was compacted past the copy's revision while it was read; run it again (or raise etcd's compaction retention): %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Copy copies every key of src, read in one transaction at one revision,
// into dst, and returns what it did and the digest of what it read (for
// Verify). A dst that holds keys is refused with ErrTargetNotEmpty unless
// o.Force. An empty dst that is a Loader is bulk-loaded at the source's
// revision; any other is written in transactions within dst.Limits(),
// after its revision was raised above the source's (RevisionRaiser).
// A copy that fails part-way leaves dst partly written.
func Copy(ctx context.Context, src, dst store.Store, o Options) (Report, *Digest, error) {
	var rep Report
	empty, err := Empty(ctx, dst)
	if err != nil {
		return rep, nil, fmt.Errorf("read the target: %w", err)
	}
	if !empty && !o.Force {
		return rep, nil, ErrTargetNotEmpty
	}
	var d *Digest
	loader, bulk := dst.(Loader)
	bulk = bulk && empty && dst.Revision() == 0
	err = src.View(ctx, func(tx store.ReadTx) error {
		d = newDigest(tx.Revision())
		rep.SourceRevision = tx.Revision()
		scan := func(put func(string, []byte) error) error {
			return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
				d.add(k, v)
				return true, put(k, v)
			})
		}
		if bulk {
			if d.Revision == 0 {
				// A source that never committed: nothing to load.
				return scan(func(string, []byte) error { return nil })
			}
			rep.Loaded = true
			return loader.Load(ctx, tx.Revision(), scan)
		}
		if r, ok := dst.(RevisionRaiser); ok {
			if err := r.RaiseRevision(ctx, tx.Revision()); err != nil {
				return fmt.Errorf("raise the target's revision above the source's %d: %w", tx.Revision(), err)
			}
		}
		b := newBatcher(ctx, dst, &rep)
		if err := scan(b.put); err != nil {
			return err
		}
		return b.flush()
	})
	if err != nil {
		return rep, nil, readErr("copy", err)
	}
	rep.Keys, rep.Bytes = d.Count(), d.Bytes
	if !empty {
		n, err := deleteExtra(ctx, dst, d, &rep)
		rep.Deleted = n
		if err != nil {
			return rep, nil, fmt.Errorf("remove the target's keys the source lacks: %w", err)
		}
	}
	rep.TargetRevision = dst.Revision()
	return rep, d, nil
}

// batcher writes puts (or deletes) to a store in transactions within its
// limits.
type batcher struct {
	ctx   context.Context
	dst   store.Store
	rep   *Report
	bytes int
	lim   store.Limits
	ops   []batchOp
}

type batchOp struct {
	key string
	val []byte
	del bool
}

func newBatcher(ctx context.Context, dst store.Store, rep *Report) *batcher {
	lim := dst.Limits()
	if lim.MaxOps <= 0 {
		lim.MaxOps = DefaultBatchKeys
	}
	if lim.MaxTxnBytes <= 0 {
		lim.MaxTxnBytes = DefaultBatchBytes
	}
	return &batcher{ctx: ctx, dst: dst, rep: rep, lim: lim}
}

func (b *batcher) add(o batchOp) error {
	n := len(o.key) + len(o.val)
	if n > b.lim.MaxTxnBytes {
		return fmt.Errorf("%w: key %q and its value are %d bytes, more than the target's %d bytes per transaction", store.ErrTxnTooLarge, o.key, n, b.lim.MaxTxnBytes)
	}
	if len(b.ops) == b.lim.MaxOps || b.bytes+n > b.lim.MaxTxnBytes {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.ops = append(b.ops, o)
	b.bytes += n
	return nil
}

func (b *batcher) put(k string, v []byte) error {
	return b.add(batchOp{key: k, val: slices.Clone(v)})
}

func (b *batcher) del(k string) error { return b.add(batchOp{key: k, del: true}) }

func (b *batcher) flush() error {
	if len(b.ops) == 0 {
		return nil
	}
	ops := b.ops
	_, err := b.dst.Update(b.ctx, func(tx store.Tx) error {
		for _, o := range ops {
			var err error
			if o.del {
				err = tx.Delete(o.key)
			} else {
				err = tx.Put(o.key, o.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write to the target: %w", err)
	}
	b.rep.Batches++
	b.ops, b.bytes = nil, 0
	return nil
}

// deleteExtra deletes the keys of dst that d lacks.
func deleteExtra(ctx context.Context, dst store.Store, d *Digest, rep *Report) (int, error) {
	var extra []string
	err := dst.View(ctx, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, _ []byte, _ uint64) (bool, error) {
			if _, ok := d.Sums[k]; !ok {
				extra = append(extra, k)
			}
			return true, nil
		})
	})
	var de *store.DamagedError
	if errors.As(err, &de) {
		// A damaged record of the target: collect the rest after it.
		return 0, fmt.Errorf("the target's record %q is damaged; remove it or copy into an empty target: %w", de.Key, err)
	}
	if err != nil {
		return 0, err
	}
	b := newBatcher(ctx, dst, rep)
	for _, k := range extra {
		if err := b.del(k); err != nil {
			return 0, err
		}
	}
	return len(extra), b.flush()
}

// MismatchError describes how a store differs from a digest.
type MismatchError struct {
	// Want and Got are the key counts of the digest and of the store.
	Want, Got int
	// Missing, Extra and Differ name (at most 10 each, sorted) the keys
	// the store lacks, holds in addition, and holds with another value;
	// the counts say how many there were in all.
	Missing, Extra, Differ                []string
	MissingCount, ExtraCount, DifferCount int
}

func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, keys []string, n int) {
		if n == 0 {
			return
		}
		s := fmt.Sprintf("%d %s (%s", n, what, strings.Join(quote(keys), ", "))
		if n > len(keys) {
			s += ", …"
		}
		parts = append(parts, s+")")
	}
	list("missing", e.Missing, e.MissingCount)
	list("extra", e.Extra, e.ExtraCount)
	list("with another value", e.Differ, e.DifferCount)
	return fmt.Sprintf("%v: the source has %d keys, the copy %d; %s", ErrMismatch, e.Want, e.Got, strings.Join(parts, "; "))
}

// Unwrap makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

func quote(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q", k)
	}
	return out
}

// Verify reads every key of st in one transaction and compares it with d:
// the same keys (count and names) with the same values. It returns the
// number of keys it read, or a *MismatchError.
func Verify(ctx context.Context, st store.Store, d *Digest) (int, error) {
	e := &MismatchError{Want: d.Count()}
	want := sortedKeys(d)
	i := 0
	missing := func(k string) {
		e.MissingCount++
		if len(e.Missing) < maxListed {
			e.Missing = append(e.Missing, k)
		}
	}
	err := st.View(ctx, func(tx store.ReadTx) error {
		return tx.Scan("", "", func(k string, v []byte, _ uint64) (bool, error) {
			e.Got++
			// Both sides are in key order: a merge.
			for ; i < len(want) && want[i] < k; i++ {
				missing(want[i])
			}
			if i == len(want) || want[i] != k {
				e.ExtraCount++
				if len(e.Extra) < maxListed {
					e.Extra = append(e.Extra, k)
				}
				return true, nil
			}
			i++
			if sha256.Sum256(v) != d.Sums[k] {
				e.DifferCount++
				if len(e.Differ) < maxListed {
					e.Differ = append(e.Differ, k)
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, readErr("verify: read the copy", err)
	}
	for ; i < len(want); i++ {
		missing(want[i])
	}
	if e.MissingCount+e.ExtraCount+e.DifferCount > 0 {
		return e.Got, e
	}
	return e.Got, nil
}

func sortedKeys(d *Digest) []string {
	keys := make([]string, 0, len(d.Sums))
	for k := range d.Sums {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
