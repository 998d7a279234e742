package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// AuditTx records, for every resource a write transaction touches, its
// value before the transaction; Flush then appends one audit event per
// resource that changed, in the same transaction, so that a write and its
// audit record commit together or not at all.
type AuditTx struct {
	store.Tx
	touched []string
	before  map[string][]byte // nil: the resource did not exist
	// Summary, when set, is recorded first: the event of a write made of
	// many (ApplyAccount), whose records' events follow it.
	Summary *store.AuditEvent
}

// NewAuditTx wraps tx, remembering what it touches. Expired events are
// deleted by the audit retention job (service.AuditPruner), not by
// writes.
func NewAuditTx(tx store.Tx) *AuditTx {
	return &AuditTx{Tx: tx, before: map[string][]byte{}}
}

func (a *AuditTx) remember(key string) {
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

func (a *AuditTx) Put(key string, val []byte) error {
	a.remember(key)
	return a.Tx.Put(key, val)
}

func (a *AuditTx) Delete(key string) error {
	a.remember(key)
	return a.Tx.Delete(key)
}

type operationKey struct{}

// WithOperation names, for the audit log, the writes of a background job
// (which no RPC makes).
func WithOperation(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, operationKey{}, name)
}

// Operation returns the name WithOperation gave ctx ("" without one).
func Operation(ctx context.Context) string {
	name, _ := ctx.Value(operationKey{}).(string)
	return name
}

// Flush appends, in the transaction, one audit event per resource that
// changed, naming caller and the operation rpc at time now, and orders
// the transaction after every other that recorded events
// (store.OrderAuditEvents).
func (a *AuditTx) Flush(caller, rpc string, now time.Time) error {
	seq, last := 0, ""
	if e := a.Summary; e != nil {
		e.ID, e.Caller, e.Time, e.RPC = store.NextAuditID(a.Tx, seq), caller, now, rpc
		if err := store.PutAuditEvent(a.Tx, e); err != nil {
			return err
		}
		seq, last = seq+1, e.ID
	}
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
		seq, last = seq+1, e.ID
	}
	if seq == 0 {
		return nil
	}
	return store.OrderAuditEvents(a.Tx, last)
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
