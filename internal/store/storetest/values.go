// Large values and many keys.

package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// maxValue is the largest value the suite writes: 1 MiB, or what the
// driver's size limit leaves for one key.
func maxValue(s store.Store, key string) int {
	n := 1 << 20
	if m := s.Limits().MaxTxnBytes; m > 0 {
		n = min(n, m-len(key))
	}
	return n
}

// testLargeValues writes values up to 1 MiB (within the driver's limits)
// and reads them back whole, by Get and by Scan.
func testLargeValues(t *testing.T, s store.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{1 << 10, 100 << 10, 1 << 20} {
		key := fmt.Sprintf("large/%d", size)
		size = min(size, maxValue(s, key))
		val := make([]byte, size)
		for i := range val {
			val[i] = byte(rng.Uint32())
		}
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			rev := MustUpdate(t, s, func(tx store.Tx) error { return tx.Put(key, val) })
			if got := MustGet(t, s, key); !bytes.Equal(got, val) {
				t.Errorf("Get returned %d bytes, equal %v; want the %d written", len(got), bytes.Equal(got, val), size)
			}
			MustView(t, s, func(tx store.ReadTx) error {
				return tx.Scan(key, "", func(k string, v []byte, r uint64) (bool, error) {
					if k != key || !bytes.Equal(v, val) || r != rev {
						t.Errorf("Scan: %q, %d bytes at %d; want %q, the %d written at %d", k, len(v), r, key, size, rev)
					}
					return true, nil
				})
			})
			MustPut(t, s, key, "small")
			if got := MustGet(t, s, key); string(got) != "small" {
				t.Errorf("after overwriting a large value with a small one: %d bytes", len(got))
			}
		})
	}
}

// testManyKeys writes 3 000 keys in transactions the driver's limits allow,
// then pages through them with Scan's startAfter and deletes them.
func testManyKeys(t *testing.T, s store.Store) {
	const total = 3000
	batch := 500
	if m := s.Limits().MaxOps; m > 0 {
		batch = min(batch, m)
	}
	var want []string
	for i := range total {
		want = append(want, fmt.Sprintf("many/%05d", i))
	}
	for i := 0; i < total; i += batch {
		MustUpdate(t, s, func(tx store.Tx) error {
			for _, k := range want[i:min(i+batch, total)] {
				if err := tx.Put(k, []byte(k)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var got []string
	after := ""
	for {
		var page []string
		MustView(t, s, func(tx store.ReadTx) error {
			return tx.Scan("many/", after, func(k string, v []byte, _ uint64) (bool, error) {
				if string(v) != k {
					t.Errorf("%s = %q", k, v)
				}
				page = append(page, k)
				return len(page) < 100, nil
			})
		})
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, want) {
		t.Errorf("paging found %d keys; want %d in order", len(got), total)
	}
	for i := 0; i < total; i += batch {
		MustDelete(t, s, want[i:min(i+batch, total)]...)
	}
	if keys, _ := MustScan(t, s, "many/", ""); len(keys) != 0 {
		t.Errorf("%d keys left after deleting all", len(keys))
	}
}
