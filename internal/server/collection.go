package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
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
	// fails with FAILED_PRECONDITION and reasonLimit.
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
	if _, err := getAccount(tx, acct); err != nil {
		var zero D
		return zero, err
	}
	d, err := c.get(tx, acct, id)
	if errors.Is(err, store.ErrNotFound) {
		return d, notFound(c.kind, id)
	}
	return d, err
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
		return zero, s.status(ctx, err)
	}
	id := inID
	if id == "" {
		id = newID(c.idPrefix)
	}
	var out D
	rev, err := s.write(ctx, func(tx store.Tx) error {
		if _, err := getAccount(tx, acct); err != nil {
			return err
		}
		switch _, err := c.get(tx, acct, id); {
		case err == nil:
			return alreadyExists(c.kind, id)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := c.checkLimit(tx, acct); err != nil {
			return err
		}
		p := proto.CloneOf(in)
		m := p.ProtoReflect()
		m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(id))
		d, err := c.fromProto(tx, acct, p)
		if err != nil {
			return err
		}
		out = d
		if err := c.put(tx, acct, &out); err != nil {
			return err
		}
		if c.afterCreate != nil {
			return c.afterCreate(tx, acct, &out)
		}
		return nil
	})
	if err != nil {
		return zero, s.status(ctx, err)
	}
	store.WrittenAt(&out, rev)
	return c.toProto(&out), nil
}

// reasonLimit is the ErrorInfo reason of a create refused because the
// account already holds the most resources of that kind it may.
const reasonLimit = "RESOURCE_LIMIT"

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
		return newError(codes.FailedPrecondition, reasonLimit, map[string]string{"limit": strconv.Itoa(c.max)},
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
		return zero, s.status(ctx, err)
	}
	var d D
	err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
		d, err = c.load(tx, acct, id)
		return err
	})
	if err != nil {
		return zero, s.status(ctx, err)
	}
	return c.toProto(&d), nil
}

func (c *collection[D, P]) listPage(ctx context.Context, s *Server, acct string, size int32, token string) ([]P, string, error) {
	var v violations
	v.checkID("account_id", acct, false)
	if err := v.err(); err != nil {
		return nil, "", s.status(ctx, err)
	}
	limit, after, err := pageParams(size, token)
	if err != nil {
		return nil, "", s.status(ctx, err)
	}
	var items []D
	var more bool
	err = s.store.View(ctx, func(tx store.ReadTx) (err error) {
		if _, err := getAccount(tx, acct); err != nil {
			return err
		}
		items, more, err = c.list(tx, acct, after, limit)
		return err
	})
	if err != nil {
		return nil, "", s.status(ctx, err)
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
		return zero, s.status(ctx, err)
	}
	var out D
	rev, err := s.write(ctx, func(tx store.Tx) error {
		cur, err := c.load(tx, acct, inID)
		if err != nil {
			return err
		}
		if err := checkEtag(c.kind, inID, etag, c.revision(&cur)); err != nil {
			return err
		}
		p := c.toProto(&cur)
		if err := applyMask(p, in, mask, c.mutable); err != nil {
			return err
		}
		if out, err = c.fromProto(tx, acct, p); err != nil {
			return err
		}
		return c.put(tx, acct, &out)
	})
	if err != nil {
		return zero, s.status(ctx, err)
	}
	store.WrittenAt(&out, rev)
	return c.toProto(&out), nil
}

func (c *collection[D, P]) remove(ctx context.Context, s *Server, acct, id, etag string) (uint64, error) {
	var v violations
	v.checkID("account_id", acct, false)
	v.checkID("id", id, false)
	if err := v.err(); err != nil {
		return 0, s.status(ctx, err)
	}
	rev, err := s.write(ctx, func(tx store.Tx) error {
		cur, err := c.load(tx, acct, id)
		if err != nil {
			return err
		}
		if err := checkEtag(c.kind, id, etag, c.revision(&cur)); err != nil {
			return err
		}
		if c.beforeDelete != nil {
			if err := c.beforeDelete(tx, acct, &cur); err != nil {
				return err
			}
		}
		return c.del(tx, acct, id)
	})
	if err != nil {
		return 0, s.status(ctx, err)
	}
	return rev, nil
}
