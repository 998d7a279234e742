package loadgen

import (
	"context"
	"fmt"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/replica"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
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

// fail counts a failed call of method with req.
func (r *WriteResult) fail(method string, req proto.Message, err error) {
	r.Errors++
	if r.FirstError == nil {
		r.FirstError = &CallError{Method: method, Request: req, Err: err}
	}
}

// MeasureSettingsUpdates calls UpdateLiveGuideSettings n times in a row on
// one account, toggling language_selector (a switch no decision reads) and
// leaving it as it was. It stops early when budget has passed. Every call
// commits with fsync and returns once the decision snapshot reflects it;
// an answer that does not echo the value written counts as a failed call.
func MeasureSettingsUpdates(ctx context.Context, conn *grpc.ClientConn, account string, n int, budget time.Duration) WriteResult {
	admin := gatehousev1.NewAdminServiceClient(conn)
	r := WriteResult{Name: "UpdateLiveGuideSettings", Account: account}
	get := &gatehousev1.GetLiveGuideSettingsRequest{AccountId: account}
	cur, err := admin.GetLiveGuideSettings(ctx, get)
	if err != nil {
		r.fail("GetLiveGuideSettings", get, err)
		return r
	}
	orig := cur.GetSettings().GetLanguageSelector()
	value := orig
	mask := &fieldmaskpb.FieldMask{Paths: []string{"language_selector"}}
	update := func(ctx context.Context) {
		req := &gatehousev1.UpdateLiveGuideSettingsRequest{
			Settings:   &gatehousev1.LiveGuideSettings{AccountId: account, LanguageSelector: !value},
			UpdateMask: mask,
		}
		t0 := time.Now()
		resp, err := admin.UpdateLiveGuideSettings(ctx, req)
		if err != nil {
			r.fail("UpdateLiveGuideSettings", req, err)
			return
		}
		if got := resp.GetSettings(); got.GetLanguageSelector() != !value || got.GetAccountId() != account {
			r.fail("UpdateLiveGuideSettings", req, fmt.Errorf("answered account %q language_selector=%t, want %q %t",
				got.GetAccountId(), got.GetLanguageSelector(), account, !value))
			return
		}
		value = !value
		r.Latency.Record(time.Since(t0))
	}
	end := time.Now().Add(budget)
	for i := 0; i < n && time.Now().Before(end) && ctx.Err() == nil; i++ {
		update(ctx)
	}
	if value != orig {
		// Leave the account as it was even when the run is interrupted.
		update(context.WithoutCancel(ctx))
	}
	return r
}

// MeasureAllowlistCreates measures n CreateAllowlistEntry and n
// DeleteAllowlistEntry calls in a row on one account that holds size
// entries. While the account has room for n more entries below max (the
// server's per-account limit), it creates new entries (ids "lt-<run>-<i>")
// and then deletes them again. An account at or near the limit (the big
// generated tenants hold exactly limit) cannot take more, so there each
// step deletes one of the account's own entries and creates it again as
// it was. Either way the account ends as it started, also when ctx ends
// early.
func MeasureAllowlistCreates(ctx context.Context, conn *grpc.ClientConn, account, run string, size, limit, n int, budget time.Duration) (create, del WriteResult) {
	admin := gatehousev1.NewAdminServiceClient(conn)
	create = WriteResult{Name: "CreateAllowlistEntry", Account: account}
	del = WriteResult{Name: "DeleteAllowlistEntry", Account: account}
	createOne := func(ctx context.Context, e *gatehousev1.AllowlistEntry) bool {
		req := &gatehousev1.CreateAllowlistEntryRequest{AccountId: account, Entry: e}
		t0 := time.Now()
		if _, err := admin.CreateAllowlistEntry(ctx, req); err != nil {
			create.fail("CreateAllowlistEntry", req, err)
			return false
		}
		create.Latency.Record(time.Since(t0))
		return true
	}
	deleteOne := func(ctx context.Context, id string) bool {
		req := &gatehousev1.DeleteAllowlistEntryRequest{AccountId: account, Id: id}
		t0 := time.Now()
		if _, err := admin.DeleteAllowlistEntry(ctx, req); err != nil {
			del.fail("DeleteAllowlistEntry", req, err)
			return false
		}
		del.Latency.Record(time.Since(t0))
		return true
	}
	end := time.Now().Add(budget)
	if size+n <= limit {
		var made []string
		for i := 0; i < n && time.Now().Before(end) && ctx.Err() == nil; i++ {
			id := fmt.Sprintf("lt-%s-%d", run, i)
			if createOne(ctx, &gatehousev1.AllowlistEntry{Id: id, Pattern: fmt.Sprintf("%s.loadtest-partner.com/help/", id), Description: "load test"}) {
				made = append(made, id)
			}
		}
		for _, id := range made {
			deleteOne(context.WithoutCancel(ctx), id)
		}
		return create, del
	}
	// Replace existing entries: the last n of the first page after the
	// first entry (the brand's own site, kept in place).
	list := &gatehousev1.ListAllowlistEntriesRequest{AccountId: account, PageSize: int32(min(n+1, 1000))}
	page, err := admin.ListAllowlistEntries(ctx, list)
	if err != nil {
		create.fail("ListAllowlistEntries", list, err)
		return create, del
	}
	entries := page.GetEntries()
	if len(entries) > 0 {
		entries = entries[1:]
	}
	for _, e := range entries {
		if time.Now().After(end) || ctx.Err() != nil {
			break
		}
		if !deleteOne(ctx, e.GetId()) {
			continue
		}
		// Put it back as it was, even when the run is interrupted.
		createOne(context.WithoutCancel(ctx), &gatehousev1.AllowlistEntry{Id: e.GetId(), Pattern: e.GetPattern(),
			Description: e.GetDescription(), AllowPublicSuffixSubdomains: e.GetAllowPublicSuffixSubdomains()})
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
// f must be following st (Replica.Run).
func MeasureReflect(ctx context.Context, st store.Store, f *replica.Replica, account, kind string, n int) (ReflectResult, error) {
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
