package server

import (
	"context"
	"errors"
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

// sweepCaller is who the audit log names for sweeps.
var sweepCaller = auth.Caller{Name: "session sweeper", Role: auth.RoleOperator}

// SweepSessions ends the active sessions older than MaxAge and deletes the
// sessions that ended more than Retention ago, as of the server's clock,
// in transactions of at most lc.Batch sessions. Ending a session queues
// its completed-session record, like EndSession; every change is in the
// audit log under "session sweeper". It returns how many sessions it
// ended and deleted.
func (s *Server) SweepSessions(ctx context.Context, lc SessionLifecycle) (ended, deleted int, err error) {
	if lc.MaxAge <= 0 && lc.Retention <= 0 {
		return 0, 0, nil
	}
	ctx = withOperation(auth.NewContext(ctx, sweepCaller), "SweepSessions")
	if lc.Batch <= 0 {
		lc.Batch = 500
		// Ending a session writes up to four keys (the session, its
		// notification, their audit events): stay within the store's
		// transaction limit.
		if m := s.store.Limits().MaxOps; m > 0 {
			lc.Batch = min(lc.Batch, max(1, (m-16)/4))
		}
	}
	for {
		now := s.now().UTC()
		var startedBefore, endedBefore time.Time
		if lc.MaxAge > 0 {
			startedBefore = now.Add(-lc.MaxAge)
		}
		if lc.Retention > 0 {
			endedBefore = now.Add(-lc.Retention)
		}
		// Look before writing: a sweep with nothing to do commits nothing
		// (and so makes no revision).
		var due []policy.Session
		err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
			due, err = store.SessionsToSweep(tx, startedBefore, endedBefore, 1)
			return err
		})
		if err != nil || len(due) == 0 {
			return ended, deleted, err
		}
		n, e, d := 0, 0, 0
		_, err = s.write(ctx, func(tx store.Tx) error {
			// The function may run more than once: count this run only.
			n, e, d = 0, 0, 0
			batch, err := store.SessionsToSweep(tx, startedBefore, endedBefore, lc.Batch)
			if err != nil {
				return err
			}
			n = len(batch)
			for i := range batch {
				sess := &batch[i]
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
				if err := enqueueCompletedSession(tx, sess); err != nil {
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
		if n < lc.Batch {
			return ended, deleted, err
		}
		if ctx.Err() != nil {
			return ended, deleted, ctx.Err()
		}
	}
}

// RunSessionSweeper sweeps sessions every lc.Interval until ctx ends.
//
// It first finishes the account deletions a stop interrupted, and does so
// again at every sweep.
func (s *Server) RunSessionSweeper(ctx context.Context, lc SessionLifecycle) {
	s.ResumeAccountDeletions(ctx)
	if lc.MaxAge <= 0 && lc.Retention <= 0 {
		return
	}
	if lc.Interval <= 0 {
		lc.Interval = time.Minute
	}
	t := time.NewTicker(lc.Interval)
	defer t.Stop()
	for {
		ended, deleted, err := s.SweepSessions(ctx, lc)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.ErrorContext(ctx, "session sweep failed", "err", err, "ended", ended, "deleted", deleted)
		case ended+deleted > 0:
			s.log.InfoContext(ctx, "swept sessions", "ended", ended, "deleted", deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.ResumeAccountDeletions(ctx)
	}
}

// ResumeAccountDeletions finishes every account deletion left pending (a
// tombstone whose records a stopped daemon did not finish deleting).
func (s *Server) ResumeAccountDeletions(ctx context.Context) {
	var ids []string
	err := s.store.View(ctx, func(tx store.ReadTx) (err error) {
		ids, err = store.AccountsBeingDeleted(tx)
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "list pending account deletions", "err", err)
		return
	}
	ctx = withOperation(auth.NewContext(ctx, sweepCaller), "DeleteAccount")
	for _, id := range ids {
		if _, err := s.finishAccountDeletion(ctx, id); err == nil {
			s.log.InfoContext(ctx, "finished an interrupted account deletion", "account_id", id)
		}
	}
}

// finishAccountDeletion deletes the remaining records of an account being
// deleted, one batch per transaction, and returns the last commit's
// revision. A failure is logged; the next sweep resumes.
func (s *Server) finishAccountDeletion(ctx context.Context, id string) (uint64, error) {
	batch := store.DeleteBatch(s.store.Limits())
	var rev uint64
	for more := true; more; {
		var err error
		rev, err = s.write(ctx, func(tx store.Tx) (err error) {
			more, err = store.ContinueAccountDeletion(tx, id, batch)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return s.store.Revision(), nil // finished meanwhile
		}
		if err != nil {
			s.log.ErrorContext(ctx, "account deletion interrupted; it resumes at the next sweep", "account_id", id, "err", err)
			return 0, err
		}
	}
	return rev, nil
}
