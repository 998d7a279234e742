package server

import (
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// Writes whose function runs again after a conflict. (Every server test
// also runs each write twice: see MustStart.)

// TestBootstrapOperatorToken_LastRunCounts: when the bootstrap's write runs
// again after a concurrent writer created an operator token, it reports
// the outcome of the run that committed (nothing created), not a bearer
// from the run that was rolled back.
func TestBootstrapOperatorToken_LastRunCounts(t *testing.T) {
	t.Parallel()
	e := MustStart(t, "")
	var once sync.Once
	st := storetest.Interleaved(e.store, func() {
		once.Do(func() {
			storetest.MustUpdate(t, e.store, func(tx store.Tx) error {
				return store.PutToken(tx, &auth.Token{ID: "other", Name: "other", Role: auth.RoleOperator, Hash: "sha256:00", CreateTime: time.Now().UTC()})
			})
		})
	})
	bearer, created, err := BootstrapOperatorToken(ctxT(t), st, "bootstrap", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if created || bearer != "" {
		t.Errorf("BootstrapOperatorToken = %q, created %v; want nothing created (another operator token committed first)", bearer, created)
	}
	var toks []auth.Token
	storetest.MustView(t, e.store, func(tx store.ReadTx) (err error) {
		toks, _, err = store.ListTokens(tx, "", 0)
		return err
	})
	if len(toks) != 1 || toks[0].ID != "other" {
		t.Errorf("tokens %+v; want only the concurrent writer's", toks)
	}
}
