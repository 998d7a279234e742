package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// collection describes one kind of account-owned resource (allowlist
// entries, privacy rules, representatives, …) so that Create, Get, List,
// Update and Delete follow the same conventions everywhere: slug ids
// (generated when empty), ALREADY_EXISTS on duplicates, FieldMask updates,
// etag preconditions, opaque page tokens, NOT_FOUND for unknown ids and
// accounts. D is the domain type, P its wire message.
type collection[D any, P proto.Message] struct {
	kind     string // "allowlist entry", for messages
	field    string // the request field holding the resource: "entry"
	idPrefix string // prefix of generated ids
	mutable  []string
	// max, when positive, is how many resources of this kind an account
	// may hold; count counts them, stopping at upTo. A create past it
	// fails with FAILED_PRECONDITION and errs.ReasonLimit.
	max   int
	count func(tx store.ReadTx, acct string, upTo int) (int, error)

	get  func(tx store.ReadTx, acct, id string) (D, error)
	put  func(tx store.Tx, acct string, d *D) error
	del  func(tx store.Tx, acct, id string) error
	list func(tx store.ReadTx, acct, after string, limit int) ([]D, bool, error)

	id       func(d *D) string
	revision func(d *D) uint64
	toProto  func(d *D) P
	// fromProto validates a resource to be written and converts it,
	// normalizing what needs it; violations name fields under c.field.
	fromProto func(tx store.ReadTx, acct string, p P) (D, error)
	// afterCreate, when set, runs in the creating transaction (for
	// resources that come with others, like a top portal's subportal).
	afterCreate func(tx store.Tx, acct string, d *D) error
	// beforeDelete, when set, runs in the deleting transaction: it refuses
	// a delete while something depends on d, or deletes what goes with it.
	beforeDelete func(tx store.Tx, acct string, d *D) error
}

// load reads one resource of an existing account.
func (c *collection[D, P]) load(tx store.ReadTx, acct, id string) (D, error) {
	if _, err := service.GetAccount(tx, acct); err != nil {
		var zero D
		return zero, err
	}
	d, err := c.get(tx, acct, id)
	return d, service.Found(err, c.kind, id)
}

func (c *collection[D, P]) create(ctx context.Context, s *Server, acct string, in P, inID string) (P, error) {
	var zero P
	var v violations
	v.checkID("account_id", acct, false)
	if !in.ProtoReflect().IsValid() {
		v.add(c.field, "is required")
	}
	v.checkID(c.field+".id", inID, true)
	if err := v.err(); err != nil {
		return zero, err
	}
	id := inID
	if id == "" {
		id = service.NewID(c.idPrefix)
	}
	var out D
	rev, err := s.write(ctx, func(tx store.Tx) (err error) {
		out, err = c.createIn(tx, acct, in, id)
		return err
	})
	if err != nil {
		return zero, err
	}
	store.WrittenAt(&out, rev)
	return c.toProto(&out), nil
}

// createIn is the create rules inside a transaction: the account exists,
// the id is free, the account is below its limit, the resource validates;
// then it is written with what comes with it. CreateX and ApplyAccount
// share it.
func (c *collection[D, P]) createIn(tx store.Tx, acct string, in P, id string) (D, error) {
	var out D
	if _, err := service.GetAccount(tx, acct); err != nil {
		return out, err
	}
	switch _, err := c.get(tx, acct, id); {
	case err == nil:
		return out, errs.Exists(c.kind, id)
	case !errors.Is(err, store.ErrNotFound):
		return out, err
	}
	if err := c.checkLimit(tx, acct); err != nil {
		return out, err
	}
	p := proto.CloneOf(in)
	m := p.ProtoReflect()
	m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(id))
	out, err := c.fromProto(tx, acct, p)
	if err != nil {
		return out, err
	}
	if err := c.put(tx, acct, &out); err != nil {
		return out, err
	}
	if c.afterCreate != nil {
		return out, c.afterCreate(tx, acct, &out)
	}
	return out, nil
}

// checkLimit refuses a create when the account already holds c.max
// resources. The count and the write are one transaction, and the store
// serializes writers, so concurrent creates cannot exceed the limit.
func (c *collection[D, P]) checkLimit(tx store.ReadTx, acct string) error {
	if c.max <= 0 {
		return nil
	}
	n, err := c.count(tx, acct, c.max)
	if err != nil {
		return err
	}
	if n >= c.max {
		return errs.Precondition(errs.ReasonLimit, map[string]string{"limit": strconv.Itoa(c.max)},
			"account %q already has %d %s, the most an account may have; delete one before creating another", acct, c.max, c.plural())
	}
	return nil
}

// plural is the kind's plural for messages.
func (c *collection[D, P]) plural() string {
	if strings.HasSuffix(c.kind, "y") {
		return strings.TrimSuffix(c.kind, "y") + "ies"
	}
	return c.kind + "s"
}

func (c *collection[D, P]) getOne(ctx context.Context, s *Server, acct, id string) (P, error) {
	var zero P
	var v violations
	v.checkID("account_id", acct, false)
	v.checkID("id", id, false)
	if err := v.err(); err != nil {
		return zero, err
	}
	var d D
	err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
		d, err = c.load(tx, acct, id)
		return err
	})
	if err != nil {
		return zero, err
	}
	return c.toProto(&d), nil
}

func (c *collection[D, P]) listPage(ctx context.Context, s *Server, acct string, size int32, token string) ([]P, string, error) {
	var v violations
	v.checkID("account_id", acct, false)
	if err := v.err(); err != nil {
		return nil, "", err
	}
	limit, after, err := pageParams(size, token)
	if err != nil {
		return nil, "", err
	}
	var items []D
	var more bool
	err = s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if _, err := service.GetAccount(tx, acct); err != nil {
			return err
		}
		items, more, err = c.list(tx, acct, after, limit)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	out := make([]P, len(items))
	for i := range items {
		out[i] = c.toProto(&items[i])
	}
	next := ""
	if more {
		next = nextPageToken(more, c.id(&items[len(items)-1]))
	}
	return out, next, nil
}

func (c *collection[D, P]) update(ctx context.Context, s *Server, acct string, in P, inID, etag string, mask *fieldmaskpb.FieldMask) (P, error) {
	var zero P
	var v violations
	v.checkID("account_id", acct, false)
	if !in.ProtoReflect().IsValid() {
		v.add(c.field, "is required")
	}
	v.checkID(c.field+".id", inID, false)
	if err := v.err(); err != nil {
		return zero, err
	}
	var out D
	rev, err := s.write(ctx, func(tx store.Tx) (err error) {
		out, err = c.updateIn(tx, acct, in, inID, etag, mask)
		return err
	})
	if err != nil {
		return zero, err
	}
	store.WrittenAt(&out, rev)
	return c.toProto(&out), nil
}

// updateIn is the update rules inside a transaction: the resource exists,
// the etag (when sent) is current, the masked fields (every mutable one for
// an empty mask) are copied and the result validates. UpdateX and
// ApplyAccount share it.
func (c *collection[D, P]) updateIn(tx store.Tx, acct string, in P, id, etag string, mask *fieldmaskpb.FieldMask) (D, error) {
	var out D
	cur, err := c.load(tx, acct, id)
	if err != nil {
		return out, err
	}
	if err := service.CheckEtag(c.kind, id, etag, c.revision(&cur)); err != nil {
		return out, err
	}
	p := c.toProto(&cur)
	if err := applyMask(p, in, mask, c.mutable); err != nil {
		return out, err
	}
	if out, err = c.fromProto(tx, acct, p); err != nil {
		return out, err
	}
	return out, c.put(tx, acct, &out)
}

func (c *collection[D, P]) remove(ctx context.Context, s *Server, acct, id, etag string) (uint64, error) {
	var v violations
	v.checkID("account_id", acct, false)
	v.checkID("id", id, false)
	if err := v.err(); err != nil {
		return 0, err
	}
	rev, err := s.write(ctx, func(tx store.Tx) error { return c.removeIn(tx, acct, id, etag) })
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// removeIn is the delete rules inside a transaction: the resource exists,
// the etag (when sent) is current, nothing depends on it (beforeDelete,
// which also deletes what goes with it). DeleteX and ApplyAccount share it.
func (c *collection[D, P]) removeIn(tx store.Tx, acct, id, etag string) error {
	cur, err := c.load(tx, acct, id)
	if err != nil {
		return err
	}
	if err := service.CheckEtag(c.kind, id, etag, c.revision(&cur)); err != nil {
		return err
	}
	if c.beforeDelete != nil {
		if err := c.beforeDelete(tx, acct, &cur); err != nil {
			return err
		}
	}
	return c.del(tx, acct, id)
}
