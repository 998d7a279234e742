package bolt

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// Bounds of one bbolt transaction of a Load: what it holds in memory
// before it commits.
const (
	loadBatchKeys  = 4096
	loadBatchBytes = 16 << 20
)

// ErrNotEmpty is the error of a Load into a store that holds data or has
// committed before.
var ErrNotEmpty = errors.New("store is not empty")

// Load fills a new, empty store with a bulk copy taken at revision rev of
// another store: fill calls put for every key, and the store ends at
// revision rev with every value's mod revision rev, as if one commit at
// rev had written them all. So a copy of a store at revision N is at
// revision N, and etags and min_revision values that were valid at N
// stay valid.
//
// Load commits in batches (bounded memory) and sets the revision last;
// the store's change log stays empty (Changes before rev is
// store.ErrCompacted, so a follower reloads). It is meant for a file
// nobody else uses yet (the file lock makes sure no daemon does): a Load
// that fails leaves a partial store, which the caller discards. A store
// that has committed before, or holds a key, is refused with ErrNotEmpty.
func (s *Store) Load(ctx context.Context, rev uint64, fill func(put func(key string, val []byte) error) error) error {
	if rev == 0 {
		return errors.New("load: revision 0")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if cur := s.rev.Load(); cur != 0 {
		return fmt.Errorf("%w: at revision %d", ErrNotEmpty, cur)
	}
	if err := closedErr(s.db.View(func(btx *bbolt.Tx) error {
		if k, _ := btx.Bucket(kvBucket).Cursor().First(); k != nil {
			return fmt.Errorf("%w: holds key %q", ErrNotEmpty, k)
		}
		return nil
	})); err != nil {
		return err
	}
	type kvPair struct {
		k string
		v []byte
	}
	var batch []kvPair
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.db.Update(func(btx *bbolt.Tx) error {
			b := btx.Bucket(kvBucket)
			for _, p := range batch {
				if err := b.Put([]byte(p.k), p.v); err != nil {
					return err
				}
			}
			return nil
		})
		batch, size = batch[:0], 0
		if err != nil {
			return noSpaceErr(closedErr(err))
		}
		return nil
	}
	put := func(key string, val []byte) error {
		if key == "" {
			return errors.New("empty key")
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// sealAt copies val: the caller may reuse its buffer.
		batch = append(batch, kvPair{key, sealAt([]byte(key), val, rev)})
		size += len(key) + len(val)
		if len(batch) >= loadBatchKeys || size >= loadBatchBytes {
			return flush()
		}
		return nil
	}
	if err := fill(put); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	err := s.db.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket(metaBucket).Put(keyRevision, sealU64(keyRevision, rev))
	})
	if err != nil {
		return noSpaceErr(closedErr(err))
	}
	s.rev.Store(rev)
	s.notify()
	return nil
}

// RaiseRevision makes every later commit's revision larger than floor
// (the revision counter jumps; it never goes back). The change log keeps
// no entry for the jump: nothing changed in it.
func (s *Store) RaiseRevision(ctx context.Context, floor uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.rev.Load() >= floor {
		return nil
	}
	err := s.db.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket(metaBucket).Put(keyRevision, sealU64(keyRevision, floor))
	})
	if err != nil {
		return noSpaceErr(closedErr(err))
	}
	s.rev.Store(floor)
	s.notify()
	return nil
}
