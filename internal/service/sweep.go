package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// SessionLifecycle bounds how long sessions live; see SweepSessions.
type SessionLifecycle struct {
	// MaxAge ends an active session this long after its start, as if its
	// session server had called EndSession (0: never). It frees what a
	// session server that died without ending its sessions left behind:
	// representatives and portals with active sessions cannot be deleted.
	MaxAge time.Duration
	// Retention deletes an ended session this long after its end (0:
	// never). Until then late checks answer SESSION_ENDED; after it the
	// session is NOT_FOUND.
	Retention time.Duration
	// Interval is the time between sweeps (default 1m).
	Interval time.Duration
	// Batch bounds the sessions one sweep transaction changes, so that a
	// large backlog does not hold the write lock for long (default 500).
	Batch int
}

// SweepCaller is who the audit log names for sweeps.
var SweepCaller = auth.Caller{Name: "session sweeper", Role: auth.RoleOperator}

// Writer commits fn, with the audit events of what it changed, and
// returns once decisions see the write: the edge's write path.
type Writer func(ctx context.Context, fn func(store.Tx) error) (uint64, error)

// Sweeper ends and deletes old sessions; see Sweep.
type Sweeper struct {
	Store store.Store
	Write Writer
	Now   func() time.Time
	Log   *slog.Logger
	// Resume, when set, runs before the first sweep and after every
	// interval: the server finishes interrupted account deletions there.
	Resume func(ctx context.Context)
}

// Sweep ends the active sessions older than MaxAge and deletes the
// sessions that ended more than Retention ago, as of the sweeper's clock,
// in transactions of at most lc.Batch sessions. Ending a session queues
// its completed-session record, like EndSession; ctx names the caller the
// audit log records (SweepCaller). It returns how many sessions it ended
// and deleted.
func (s *Sweeper) Sweep(ctx context.Context, lc SessionLifecycle) (ended, deleted int, err error) {
	if lc.MaxAge <= 0 && lc.Retention <= 0 {
		return 0, 0, nil
	}
	if lc.Batch <= 0 {
		lc.Batch = 500
		// Ending a session writes up to four keys (the session, its
		// notification, their audit events): stay within the store's
		// transaction limit.
		if m := s.Store.Limits().MaxOps; m > 0 {
			lc.Batch = min(lc.Batch, max(1, (m-16)/4))
		}
	}
	for {
		now := s.Now().UTC()
		var startedBefore, endedBefore time.Time
		if lc.MaxAge > 0 {
			startedBefore = now.Add(-lc.MaxAge)
		}
		if lc.Retention > 0 {
			endedBefore = now.Add(-lc.Retention)
		}
		// Look before writing: a sweep with nothing to do commits nothing
		// (and so makes no revision). The look walks every session; the
		// write reads only the ones it found again, so that it stays as
		// short as an EndSession: on a store with optimistic concurrency
		// (etcd) a write that read every session would conflict with
		// every session started meanwhile and, under a steady stream of
		// them, never commit.
		var due []policy.Session
		err := s.Store.View(ctx, func(tx store.ReadTx) (err error) {
			due, err = store.SessionsToSweep(tx, startedBefore, endedBefore, lc.Batch)
			return err
		})
		if err != nil || len(due) == 0 {
			return ended, deleted, err
		}
		e, d := 0, 0
		_, err = s.Write(ctx, func(tx store.Tx) error {
			// The function may run more than once: count this run only.
			e, d = 0, 0
			for i := range due {
				// As it is now: ended, deleted or swept meanwhile, it may
				// no longer be due.
				cur, err := store.GetAccountSession(tx, due[i].AccountID, due[i].ID)
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCorrupt) {
					continue // gone, or undecodable: the snapshot reports it
				}
				if err != nil {
					return err
				}
				if !store.SweepDue(&cur, startedBefore, endedBefore) {
					continue
				}
				sess := &cur
				if sess.State == policy.SessionStateEnded {
					if err := store.DeleteSession(tx, sess); err != nil {
						return err
					}
					d++
					continue
				}
				sess.State, sess.EndTime = policy.SessionStateEnded, now
				if err := store.PutSession(tx, sess); err != nil {
					return err
				}
				if err := EnqueueCompletedSession(tx, sess); err != nil {
					return err
				}
				e++
			}
			return nil
		})
		if err != nil {
			return ended, deleted, err
		}
		ended, deleted = ended+e, deleted+d
		if len(due) < lc.Batch {
			return ended, deleted, err
		}
		if ctx.Err() != nil {
			return ended, deleted, ctx.Err()
		}
	}
}

// Run sweeps sessions every lc.Interval until ctx ends.
//
// It first finishes the account deletions a stop interrupted (Resume),
// and does so again at every sweep.
func (s *Sweeper) Run(ctx context.Context, lc SessionLifecycle) {
	s.resume(ctx)
	if lc.MaxAge <= 0 && lc.Retention <= 0 {
		return
	}
	if lc.Interval <= 0 {
		lc.Interval = time.Minute
	}
	t := time.NewTicker(lc.Interval)
	defer t.Stop()
	for {
		ended, deleted, err := s.Sweep(ctx, lc)
		switch {
		case err != nil && ctx.Err() == nil:
			s.Log.ErrorContext(ctx, "session sweep failed", "err", err, "ended", ended, "deleted", deleted)
		case ended+deleted > 0:
			s.Log.InfoContext(ctx, "swept sessions", "ended", ended, "deleted", deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.resume(ctx)
	}
}

func (s *Sweeper) resume(ctx context.Context) {
	if s.Resume != nil {
		s.Resume(ctx)
	}
}

// AccountDeleter finishes account deletions: DeleteAccount commits a
// tombstone (the account is gone from that commit on) and deletes the
// account's records in batches sized from the store's limits.
type AccountDeleter struct {
	Store store.Store
	Write Writer
	Log   *slog.Logger
}

// ResumeAccountDeletions finishes every account deletion left pending (a
// tombstone whose records a stopped daemon did not finish deleting). ctx
// names the caller the audit log records.
func (d *AccountDeleter) ResumeAccountDeletions(ctx context.Context) {
	var ids []string
	err := d.Store.View(ctx, func(tx store.ReadTx) (err error) {
		ids, err = store.AccountsBeingDeleted(tx)
		return err
	})
	if err != nil {
		d.Log.ErrorContext(ctx, "list pending account deletions", "err", err)
		return
	}
	for _, id := range ids {
		if _, err := d.FinishAccountDeletion(ctx, id); err == nil {
			d.Log.InfoContext(ctx, "finished an interrupted account deletion", "account_id", id)
		}
	}
}

// FinishAccountDeletion deletes the remaining records of an account being
// deleted, one batch per transaction, and returns the last commit's
// revision. A failure is logged; the next sweep resumes.
func (d *AccountDeleter) FinishAccountDeletion(ctx context.Context, id string) (uint64, error) {
	batch := store.DeleteBatch(d.Store.Limits())
	var rev uint64
	for more := true; more; {
		var err error
		rev, err = d.Write(ctx, func(tx store.Tx) (err error) {
			more, err = store.ContinueAccountDeletion(tx, id, batch)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return d.Store.Revision(), nil // finished meanwhile
		}
		if err != nil {
			d.Log.ErrorContext(ctx, "account deletion interrupted; it resumes at the next sweep", "account_id", id, "err", err)
			return 0, err
		}
	}
	return rev, nil
}
