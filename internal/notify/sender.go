package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Backend delivers one queued message. It returns nil only when the message
// has been handed over for good (an SMTP server answered 250 to its data, a
// file was written durably); any error means "try again later".
type Backend interface {
	Deliver(ctx context.Context, m *store.OutboxMessage) error
}

// Defaults of Options.
const (
	// DefaultMaxIdle is the longest the sender sleeps without looking at
	// the outbox.
	DefaultMaxIdle = time.Minute
	// DefaultBatch is how many messages one store read returns.
	DefaultBatch = 100
	// MaxBackoff caps the pause between two attempts at one message.
	MaxBackoff = 10 * time.Minute
	// maxLastError bounds the error text kept with a message.
	maxLastError = 500
	// storeErrorPause is how long the sender waits after the store failed.
	storeErrorPause = 5 * time.Second
)

// Options configure a Sender.
type Options struct {
	// Store holds the outbox; required.
	Store store.Store
	// Backend delivers; required.
	Backend Backend
	// Logger receives one line per delivery and per failed attempt;
	// discarded when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Backoff returns the pause after a message's failures-th failed
	// attempt; DefaultBackoff when nil.
	Backoff func(failures int) time.Duration
	// MaxIdle is the longest sleep without a look at the outbox;
	// DefaultMaxIdle when zero.
	MaxIdle time.Duration
	// Batch is how many messages one store read returns; DefaultBatch
	// when zero.
	Batch int
}

// DefaultBackoff doubles the pause from 1s with every failure up to
// MaxBackoff, then picks a random point in its upper half so that messages
// that failed together do not retry in lockstep.
func DefaultBackoff(failures int) time.Duration {
	d := MaxBackoff
	if failures <= 20 {
		d = min(time.Second<<max(failures-1, 0), MaxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// Sender delivers the outbox: oldest message first, each at least once. A
// message is deleted from the outbox, in its own store transaction, only
// after the backend accepted it; a failed attempt is recorded on the
// message (attempts, last error, next attempt after a backoff) and retried,
// without end. A process that stops between the backend's acceptance and
// the delete sends that message again after a restart: receivers can
// recognize the duplicate by its Message-ID (see MessageID).
//
// Only one Sender may run per store.
type Sender struct {
	store   store.Store
	backend Backend
	log     *slog.Logger
	now     func() time.Time
	backoff func(int) time.Duration
	maxIdle time.Duration
	batch   int

	// seenRev is the store revision up to which the outbox has been
	// looked at (0: not yet): after a commit only the messages the
	// commits since then wrote need a look, which the store's change
	// feed names. (Outbox ids are not enough: with concurrent writers
	// (etcd) a message may commit after one with a higher id.)
	seenRev uint64
	// nextDue is the earliest next attempt of a message seen and not yet
	// due; zero when none is known.
	nextDue time.Time
	// wake asks Run for a full pass at once (see Wake).
	wake chan struct{}
}

// NewSender returns a sender; call Run to start it.
func NewSender(o Options) *Sender {
	s := &Sender{store: o.Store, backend: o.Backend, log: o.Logger, now: o.Now, backoff: o.Backoff, maxIdle: o.MaxIdle, batch: o.Batch,
		wake: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.backoff == nil {
		s.backoff = DefaultBackoff
	}
	if s.maxIdle <= 0 {
		s.maxIdle = DefaultMaxIdle
	}
	if s.batch <= 0 {
		s.batch = DefaultBatch
	}
	return s
}

// Run delivers until ctx ends. It wakes after every store commit (to send
// what was just queued), when a retry falls due, and at least every
// MaxIdle. An attempt in flight when ctx ends is abandoned without being
// counted; the message stays queued. Run returns after its last store
// write, so the store may be closed once it has returned.
func (s *Sender) Run(ctx context.Context) {
	commits, unsubscribe := s.store.Subscribe()
	defer unsubscribe()
	s.log.Info("notification sender started", "backend", fmt.Sprint(s.backend))
	full := true
	for {
		if !s.nextDue.IsZero() && !s.now().Before(s.nextDue) {
			full = true
		}
		err := s.pass(ctx, full)
		if ctx.Err() != nil {
			// A store error while stopping is still worth a line: a
			// delivered message whose removal failed (on a leader
			// deposed meanwhile, store.ErrFenced) will be sent again.
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Error("notification outbox", "err", err)
			}
			return
		}
		wait := s.maxIdle
		if err != nil {
			s.log.Error("notification outbox", "err", err)
			wait = min(wait, storeErrorPause)
		}
		if !s.nextDue.IsZero() {
			wait = min(wait, max(s.nextDue.Sub(s.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-commits:
			full = err != nil
		case <-s.wake:
			full = true
		case <-t.C:
			full = true
		}
		t.Stop()
	}
}

// Wake makes Run look at the whole outbox at once, for a message an
// operator made due (RetryNotification) instead of at the next full pass.
// It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SendDue makes one attempt at every message that is due now, oldest first.
// It returns when all were tried, when ctx ends, or on a store error. It
// must not run while the same Sender's Run does.
func (s *Sender) SendDue(ctx context.Context) error { return s.pass(ctx, true) }

// pass tries the due messages: all of them when full, else those that
// the commits since the last pass wrote.
func (s *Sender) pass(ctx context.Context, full bool) error {
	if !full && s.seenRev > 0 {
		err := s.changed(ctx)
		if !errors.Is(err, store.ErrCompacted) {
			return err
		}
		// The change feed no longer reaches back to the last pass (or
		// a commit was too large to list): look at everything.
	}
	s.nextDue = time.Time{}
	now := s.now()
	after := ""
	for first := true; ; first = false {
		var page []store.OutboxMessage
		var more bool
		var rev uint64
		err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
			rev = tx.Revision()
			page, more, err = store.ListOutbox(tx, after, s.batch)
			return err
		})
		if err != nil {
			return err
		}
		if first {
			// Commits after the first page's revision are in the change
			// feed from it, those of the messages of later pages among
			// them: the next pass reads those again, and finds them
			// delivered or not due.
			s.seenRev = rev
		}
		for i := range page {
			if err := s.try(ctx, &page[i], now); err != nil {
				return err
			}
		}
		if !more || len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// changed tries the due messages among those the commits after seenRev
// wrote, oldest first. It returns store.ErrCompacted when the change feed
// cannot tell.
func (s *Sender) changed(ctx context.Context) error {
	var ids []string
	var rev uint64
	err := s.store.View(ctx, func(tx store.ReadTx) error {
		rev = tx.Revision()
		changes, err := tx.Changes(s.seenRev)
		ids = ids[:0]
		for _, c := range changes {
			for _, k := range c.Keys {
				if _, typ, id, ok := store.ResourceOfKey(k); ok && typ == "notification" {
					ids = append(ids, id)
				}
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	now := s.now()
	for _, id := range ids {
		var m store.OutboxMessage
		err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
			m, err = store.GetOutbox(tx, id)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			continue // delivered or dropped
		}
		if err != nil {
			return err
		}
		if err := s.try(ctx, &m, now); err != nil {
			return err
		}
	}
	s.seenRev = rev
	return nil
}

// try attempts m if it is due at now, else notes when it falls due.
func (s *Sender) try(ctx context.Context, m *store.OutboxMessage, now time.Time) error {
	if m.NextAttempt.After(now) {
		s.due(m.NextAttempt)
		return nil
	}
	return s.attempt(ctx, m)
}

// due notes that a message falls due at t.
func (s *Sender) due(t time.Time) {
	if s.nextDue.IsZero() || t.Before(s.nextDue) {
		s.nextDue = t
	}
}

// attempt delivers m once and records the outcome. It returns an error only
// when ctx ended or the store failed.
func (s *Sender) attempt(ctx context.Context, m *store.OutboxMessage) error {
	derr := s.backend.Deliver(ctx, m)
	if derr != nil && ctx.Err() != nil {
		// Abandoned by shutdown or a lost leadership: not the message's
		// fault; it stays queued as it was.
		s.log.Info("notification delivery abandoned; the message stays queued", "id", m.ID, "session_id", m.SessionID, "err", derr)
		return ctx.Err()
	}
	// The outcome is recorded even when ctx ends meanwhile: a delivered
	// message must leave the outbox now, not be sent again after a restart.
	wctx := context.WithoutCancel(ctx)
	if derr == nil {
		_, err := s.store.Update(wctx, func(tx store.Tx) error { return store.DeleteOutbox(tx, m.ID) })
		if err != nil {
			return fmt.Errorf("delete delivered message %s (it will be sent again): %w", m.ID, err)
		}
		s.log.Info("notification delivered", "id", m.ID, "session_id", m.SessionID, "account_id", m.AccountID,
			"to", m.To, "attempts", m.Attempts+1)
		return nil
	}
	lastErr := derr.Error()
	if len(lastErr) > maxLastError {
		lastErr = lastErr[:maxLastError]
	}
	next := s.now().Add(s.backoff(m.Attempts + 1)).UTC()
	// Only the bookkeeping of the stored message changes: an operator may
	// have corrected its recipient while this attempt ran.
	var cur store.OutboxMessage
	_, err := s.store.Update(wctx, func(tx store.Tx) (err error) {
		cur, err = store.RecordOutboxFailure(tx, m.ID, lastErr, next)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // dropped by an operator meanwhile
	}
	if err != nil {
		return fmt.Errorf("record failed attempt at %s: %w", m.ID, err)
	}
	*m = cur
	s.due(m.NextAttempt)
	s.log.Warn("notification delivery failed; will retry", "id", m.ID, "session_id", m.SessionID, "account_id", m.AccountID,
		"to", m.To, "attempts", m.Attempts, "next_attempt", m.NextAttempt.Format(time.RFC3339), "err", derr)
	return nil
}
