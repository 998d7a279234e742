package loadgen

import (
	"context"
	"fmt"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/snapshot"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// WriteResult is the outcome of a series of sequential writes.
type WriteResult struct {
	Name       string
	Account    string
	Latency    Histogram
	Errors     int
	FirstError error
}

func (r *WriteResult) fail(err error) {
	r.Errors++
	if r.FirstError == nil {
		r.FirstError = err
	}
}

// MeasureSettingsUpdates calls UpdateLiveGuideSettings n times in a row on
// one account, toggling language_selector (a switch no decision reads) and
// leaving it as it was. It stops early when budget has passed. Every call
// commits with fsync and returns once the decision snapshot reflects it.
func MeasureSettingsUpdates(ctx context.Context, conn *grpc.ClientConn, account string, n int, budget time.Duration) WriteResult {
	admin := gatehousev1.NewAdminServiceClient(conn)
	r := WriteResult{Name: "UpdateLiveGuideSettings", Account: account}
	cur, err := admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: account})
	if err != nil {
		r.fail(err)
		return r
	}
	orig := cur.GetSettings().GetLanguageSelector()
	value := orig
	mask := &fieldmaskpb.FieldMask{Paths: []string{"language_selector"}}
	update := func() error {
		value = !value
		_, err := admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings:   &gatehousev1.LiveGuideSettings{AccountId: account, LanguageSelector: value},
			UpdateMask: mask,
		})
		return err
	}
	end := time.Now().Add(budget)
	for i := 0; i < n && time.Now().Before(end); i++ {
		t0 := time.Now()
		if err := update(); err != nil {
			r.fail(err)
			continue
		}
		r.Latency.Record(time.Since(t0))
	}
	if value != orig {
		if err := update(); err != nil {
			r.fail(err)
		}
	}
	return r
}

// MeasureAllowlistCreates calls CreateAllowlistEntry n times in a row on
// one account (ids "lt-<run>-<i>"), then deletes the entries again, and
// returns both series.
func MeasureAllowlistCreates(ctx context.Context, conn *grpc.ClientConn, account, run string, n int, budget time.Duration) (create, del WriteResult) {
	admin := gatehousev1.NewAdminServiceClient(conn)
	create = WriteResult{Name: "CreateAllowlistEntry", Account: account}
	del = WriteResult{Name: "DeleteAllowlistEntry", Account: account}
	var made []string
	end := time.Now().Add(budget)
	for i := 0; i < n && time.Now().Before(end); i++ {
		id := fmt.Sprintf("lt-%s-%d", run, i)
		t0 := time.Now()
		_, err := admin.CreateAllowlistEntry(ctx, &gatehousev1.CreateAllowlistEntryRequest{
			AccountId: account,
			Entry:     &gatehousev1.AllowlistEntry{Id: id, Pattern: fmt.Sprintf("%s.loadtest-partner.com/help/", id), Description: "load test"},
		})
		if err != nil {
			create.fail(err)
			continue
		}
		create.Latency.Record(time.Since(t0))
		made = append(made, id)
	}
	for _, id := range made {
		t0 := time.Now()
		if _, err := admin.DeleteAllowlistEntry(ctx, &gatehousev1.DeleteAllowlistEntryRequest{AccountId: account, Id: id}); err != nil {
			del.fail(err)
			continue
		}
		del.Latency.Record(time.Since(t0))
	}
	return create, del
}

// ReflectResult is how quickly the decision snapshot reflects writes to
// one account, measured in-process against the store and its follower.
type ReflectResult struct {
	Kind    string // "settings" or "allowlist"
	Account string
	// Commit is the store.Update call (with fsync); Reflect the time from
	// its return until the follower has swapped in a snapshot at that
	// revision.
	Commit  Histogram
	Reflect Histogram
	// Rebuilt is the largest number of accounts whose compiled state
	// changed with one write; Accounts the number of accounts.
	Rebuilt  int
	Accounts int
	// LastBuild is the follower's own measure of its last rebuild.
	LastBuild time.Duration
}

// MeasureReflect writes n times to account through st (settings toggles
// of language_selector, or an allowlist entry created and deleted again),
// waits each time for f to reflect the write, and checks how many accounts
// were rebuilt by comparing the compiled account states before and after.
// f must be following st (Follower.Run).
func MeasureReflect(ctx context.Context, st store.Store, f *snapshot.Follower, account, kind string, n int) (ReflectResult, error) {
	r := ReflectResult{Kind: kind, Account: account}
	var ids []string
	if err := st.View(ctx, func(tx store.ReadTx) (err error) { ids, err = store.AccountIDs(tx); return err }); err != nil {
		return r, err
	}
	r.Accounts = len(ids)
	write := func(i int) func(store.Tx) error {
		switch kind {
		case "settings":
			return func(tx store.Tx) error {
				s, err := store.GetSettings(tx, account)
				if err != nil {
					return err
				}
				s.LanguageSelector = !s.LanguageSelector
				return store.PutSettings(tx, &s)
			}
		case "allowlist":
			id := fmt.Sprintf("lt-reflect-%d", i/2)
			if i%2 == 1 {
				return func(tx store.Tx) error { return store.DeleteAllowlistEntry(tx, account, id) }
			}
			return func(tx store.Tx) error {
				e := policy.AllowlistEntry{ID: id, Pattern: id + ".loadtest-partner.com", Description: "reflect probe"}
				return store.PutAllowlistEntry(tx, account, &e)
			}
		}
		return nil
	}
	if write(0) == nil {
		return r, fmt.Errorf("unknown write kind %q", kind)
	}
	// An even number of writes leaves the account as it was.
	n += n % 2
	for i := range n {
		before := f.Current()
		t0 := time.Now()
		rev, err := st.Update(ctx, write(i))
		if err != nil {
			return r, err
		}
		t1 := time.Now()
		after, err := f.WaitFor(ctx, rev)
		if err != nil {
			return r, err
		}
		t2 := time.Now()
		r.Commit.Record(t1.Sub(t0))
		r.Reflect.Record(t2.Sub(t1))
		r.LastBuild = f.LastBuild()
		rebuilt := 0
		for _, id := range ids {
			if before.Account(id) != after.Account(id) {
				rebuilt++
			}
		}
		r.Rebuilt = max(r.Rebuilt, rebuilt)
	}
	return r, nil
}
