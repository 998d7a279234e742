package server

import (
	"context"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync/atomic"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// inflightKey names the caller whose share of the unary pool a call takes.
// The zero key is no caller: the call takes the server's pool only.
type inflightKey struct {
	kind uint8 // keyAccount or keyCredential
	id   string
}

const (
	keyAccount = iota + 1
	keyCredential
	// keyConn is a client connection (its peer address); callerCPU only.
	keyConn
)

func (k inflightKey) String() string {
	switch k.kind {
	case keyCredential:
		return fmt.Sprintf("credential %q", k.id)
	case keyConn:
		return fmt.Sprintf("connection %s", k.id)
	}
	return fmt.Sprintf("account %q", k.id)
}

// inflightKeyOf returns the caller of a call: the account of a caller scoped
// to one, the credential of one scoped to all accounts. Without a
// credential (--auth none) it is the account the request names, in its
// account_id field or through the session it names (sessionAccount, one
// lookup in the call's snapshot; for a batch, its first check's), or in the
// account_id of the resource it carries (nestedAccountID: admin writes); a
// request that names none has no caller. Decisions allocate nothing.
func inflightKeyOf(ctx context.Context, req any, sessionAccount func(context.Context, string) string) inflightKey {
	if c, ok := auth.FromContext(ctx); ok {
		switch {
		case c.AccountID != "":
			return inflightKey{keyAccount, c.AccountID}
		case c.TokenID != "":
			return inflightKey{keyCredential, c.TokenID}
		}
	}
	switch r := req.(type) {
	case interface{ GetAccountId() string }:
		if id := r.GetAccountId(); id != "" {
			return inflightKey{keyAccount, id}
		}
	case interface{ GetSessionId() string }:
		if sessionAccount != nil {
			if id := sessionAccount(ctx, r.GetSessionId()); id != "" {
				return inflightKey{keyAccount, id}
			}
		}
	case *gatehousev1.CheckFeaturesRequest:
		if sessionAccount != nil && len(r.GetChecks()) > 0 {
			if id := sessionAccount(ctx, r.GetChecks()[0].GetSessionId()); id != "" {
				return inflightKey{keyAccount, id}
			}
		}
		return inflightKey{}
	}
	if m, ok := req.(proto.Message); ok {
		if id := nestedAccountID(m.ProtoReflect()); id != "" {
			return inflightKey{keyAccount, id}
		}
	}
	return inflightKey{}
}

// nestedAccountID returns the account_id of the first message-typed field
// of m that has one (UpdateLiveGuideSettingsRequest.settings.account_id and
// its like: the admin writes that carry a whole resource), or "".
func nestedAccountID(m protoreflect.Message) string {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() || !m.Has(fd) {
			continue
		}
		sub := m.Get(fd).Message()
		if af := sub.Descriptor().Fields().ByName("account_id"); af != nil && af.Kind() == protoreflect.StringKind && !af.IsList() {
			if id := sub.Get(af).String(); id != "" {
				return id
			}
		}
	}
	return ""
}

// inflightSlots is the size of callerInflight's table of counters.
const inflightSlots = 4096

// callerInflight counts the unary calls each caller has running and
// refuses one past the caller's share, without a lock or a map: a caller
// counts in two slots of a table of counters chosen by two hashes of its
// key, and its count is the smaller of the two (a count-min sketch). A slot
// shared with other callers can only count more, never less, so no caller
// exceeds its share; a caller is refused for others' calls only when both
// its slots are shared with callers that have calls running, which with
// 4096 slots and at most --max-inflight calls running is rare. Memory is
// fixed whatever keys callers send, and a slot is back to zero when its
// calls have ended.
type callerInflight struct {
	limit int32
	seed  maphash.Seed
	slots [inflightSlots]atomic.Int32
}

func newCallerInflight(limit int) *callerInflight {
	return &callerInflight{limit: int32(limit), seed: maphash.MakeSeed()}
}

// slotsOf returns the two slots of k, distinct.
func (c *callerInflight) slotsOf(k inflightKey) (*atomic.Int32, *atomic.Int32) {
	h := maphash.String(c.seed, k.id) ^ uint64(k.kind)*0x9e3779b97f4a7c15
	i, j := h%inflightSlots, (h>>32)%inflightSlots
	if i == j {
		j = (j + 1) % inflightSlots
	}
	return &c.slots[i], &c.slots[j]
}

// acquire takes one of k's slots, or reports false when k has all of its
// share running.
func (c *callerInflight) acquire(k inflightKey) bool {
	a, b := c.slotsOf(k)
	if min(a.Add(1), b.Add(1)) > c.limit {
		a.Add(-1)
		b.Add(-1)
		return false
	}
	return true
}

func (c *callerInflight) release(k inflightKey) {
	a, b := c.slotsOf(k)
	a.Add(-1)
	b.Add(-1)
}

// running returns how many calls k has running (more when both its slots
// are shared).
func (c *callerInflight) running(k inflightKey) int {
	a, b := c.slotsOf(k)
	return int(min(a.Load(), b.Load()))
}

// callerOverloaded is the status of a call refused because its caller has
// its share of the unary pool running.
func callerOverloaded(k inflightKey, share, pool int) error {
	e := errs.Refuse(errs.ResourceExhausted, reasonOverloaded, map[string]string{
		"shed": shedInflightCaller, "scope": "caller", "limit": strconv.Itoa(share)},
		"%s has %d calls running, its share of the server's %d; retry with backoff", k, share, pool)
	e.RetryAfter = overloadRetryDelay
	return e
}
