package accountdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// recordTx remembers the value of every key before its first write, so that
// settle can undo writes that changed nothing but the record's revision
// stamp (a document value the rules normalize to what is stored) and count
// the writes that remain.
type recordTx struct {
	store.Tx
	before  map[string][]byte // nil: the key did not exist
	touched []string
}

func newRecordTx(tx store.Tx) *recordTx { return &recordTx{Tx: tx, before: map[string][]byte{}} }

func (r *recordTx) remember(key string) error {
	if _, seen := r.before[key]; seen {
		return nil
	}
	v, _, err := r.Tx.Get(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		v = nil
	case err != nil:
		return err
	default:
		v = bytes.Clone(v)
	}
	r.before[key] = v
	r.touched = append(r.touched, key)
	return nil
}

// Put writes val unless key already holds it: a write of the same bytes
// would still give the record a new revision (and so a new etag).
func (r *recordTx) Put(key string, val []byte) error {
	if err := r.remember(key); err != nil {
		return err
	}
	switch cur, _, err := r.Tx.Get(key); {
	case err == nil && bytes.Equal(cur, val):
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	return r.Tx.Put(key, val)
}

func (r *recordTx) Delete(key string) error {
	if err := r.remember(key); err != nil {
		return err
	}
	return r.Tx.Delete(key)
}

// settle writes back the old value of every key whose record differs from
// it only in its revision stamp, and returns how many keys the transaction
// changes.
func (r *recordTx) settle() (int, error) {
	n := 0
	for _, key := range r.touched {
		before := r.before[key]
		after, _, err := r.Tx.Get(key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			after = nil
		case err != nil:
			return 0, err
		}
		switch {
		case before == nil && after == nil:
			continue
		case before == nil || after == nil:
			n++
		case bytes.Equal(before, after):
		case sameButRevision(before, after):
			if err := r.Tx.Put(key, before); err != nil {
				return 0, err
			}
		default:
			n++
		}
	}
	return n, nil
}

// sameButRevision reports whether two JSON records are equal but for their
// "revision" field.
func sameButRevision(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	delete(x, "revision")
	delete(y, "revision")
	return reflect.DeepEqual(x, y)
}
