package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc"
)

// auditTx records, for every resource a write transaction touches, its
// value before the transaction; flush then appends one audit event per
// resource that changed, in the same transaction, so that a write and its
// audit record commit together or not at all.
type auditTx struct {
	store.Tx
	touched []string
	before  map[string][]byte // nil: the resource did not exist
}

func newAuditTx(tx store.Tx) *auditTx { return &auditTx{Tx: tx, before: map[string][]byte{}} }

func (a *auditTx) remember(key string) {
	if _, seen := a.before[key]; seen {
		return
	}
	if _, _, _, ok := store.ResourceOfKey(key); !ok {
		return
	}
	var prev []byte
	if v, _, err := a.Tx.Get(key); err == nil {
		prev = bytes.Clone(v)
	}
	a.before[key] = prev
	a.touched = append(a.touched, key)
}

func (a *auditTx) Put(key string, val []byte) error {
	a.remember(key)
	return a.Tx.Put(key, val)
}

func (a *auditTx) Delete(key string) error {
	a.remember(key)
	return a.Tx.Delete(key)
}

type operationKey struct{}

// withOperation names, for the audit log, the writes of a background job
// (which no RPC makes).
func withOperation(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, operationKey{}, name)
}

// maxAuditPurge bounds how many expired events one write deletes.
const maxAuditPurge = 100

func (a *auditTx) flush(ctx context.Context, s *Server) error {
	caller := auth.Local.Name
	if c, ok := auth.FromContext(ctx); ok {
		caller = c.Name
	}
	rpc, ok := grpc.Method(ctx)
	if !ok {
		rpc, _ = ctx.Value(operationKey{}).(string)
	}
	now := s.now().UTC()
	seq := 0
	for _, key := range a.touched {
		var after []byte
		if v, _, err := a.Tx.Get(key); err == nil {
			after = v
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		before := a.before[key]
		if bytes.Equal(before, after) {
			continue
		}
		acct, typ, id, _ := store.ResourceOfKey(key)
		if typ == "notification" {
			acct = store.OutboxAccount(before)
			if acct == "" {
				acct = store.OutboxAccount(after)
			}
		}
		e := store.AuditEvent{ID: store.NextAuditID(a.Tx, seq), AccountID: acct, Caller: caller, Time: now, RPC: rpc,
			ResourceType: typ, ResourceID: id, Before: auditJSON(typ, before), After: auditJSON(typ, after)}
		if err := store.PutAuditEvent(a.Tx, &e); err != nil {
			return err
		}
		seq++
	}
	if s.auditRetention > 0 && seq > 0 {
		purge := maxAuditPurge
		if m := s.store.Limits().MaxOps; m > 0 {
			// Room for the purge within the store's transaction limit.
			purge = min(purge, max(1, m/16))
		}
		if _, err := store.PurgeAuditEvents(a.Tx, now.Add(-s.auditRetention), purge); err != nil {
			return err
		}
	}
	return nil
}

// auditJSON is the stored record as the audit log shows it; secrets (a
// caller token's hash) are left out.
func auditJSON(typ string, raw []byte) string {
	if raw == nil {
		return ""
	}
	if typ != "caller_token" {
		return string(raw)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return ""
	}
	delete(m, "hash")
	b, _ := json.Marshal(m)
	return string(b)
}

func (a *adminService) ListAuditEvents(ctx context.Context, req *gatehousev1.ListAuditEventsRequest) (*gatehousev1.ListAuditEventsResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), true)
	if rt := req.GetResourceType(); rt != "" && !slices.Contains(store.AuditResourceTypes(), rt) {
		v.add("resource_type", "must be empty (any) or one of %s", strings.Join(store.AuditResourceTypes(), ", "))
	}
	v.checkID("resource_id", req.GetResourceId(), true)
	var start, end time.Time
	if ts := req.GetStartTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("start_time", "%v", err)
		}
		start = ts.AsTime()
	}
	if ts := req.GetEndTime(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.add("end_time", "%v", err)
		}
		end = ts.AsTime()
	}
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	limit, after, err := pageParams(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	var since time.Time // see tenantSince
	match := func(e *store.AuditEvent) bool {
		return (req.GetAccountId() == "" || e.AccountID == req.GetAccountId()) &&
			(since.IsZero() || !e.Time.Before(since)) &&
			(req.GetResourceType() == "" || e.ResourceType == req.GetResourceType()) &&
			(req.GetResourceId() == "" || e.ResourceID == req.GetResourceId()) &&
			(start.IsZero() || !e.Time.Before(start)) &&
			(end.IsZero() || e.Time.Before(end))
	}
	var events []store.AuditEvent
	var next string
	err = a.s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if since, err = tenantSince(ctx, tx, req.GetAccountId()); err != nil {
			return err
		}
		events, next, err = store.ListAuditEvents(tx, after, limit, a.s.auditScan, match)
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	resp := &gatehousev1.ListAuditEventsResponse{}
	for i := range events {
		e := &events[i]
		resp.Events = append(resp.Events, &gatehousev1.AuditEvent{Id: e.ID, AccountId: e.AccountID, Caller: e.Caller, Time: timestampOf(e.Time),
			Rpc: e.RPC, ResourceType: e.ResourceType, ResourceId: e.ResourceID, BeforeJson: e.Before, AfterJson: e.After, Revision: e.Revision})
	}
	resp.NextPageToken = nextPageToken(next != "", next)
	return resp, nil
}
