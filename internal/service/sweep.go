package service

import (
	"context"
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
		// (and so makes no revision).
		var due []policy.Session
		err := s.Store.View(ctx, func(tx store.ReadTx) (err error) {
			due, err = store.SessionsToSweep(tx, startedBefore, endedBefore, 1)
			return err
		})
		if err != nil || len(due) == 0 {
			return ended, deleted, err
		}
		n, e, d := 0, 0, 0
		_, err = s.Write(ctx, func(tx store.Tx) error {
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
		if n < lc.Batch {
			return ended, deleted, err
		}
		if ctx.Err() != nil {
			return ended, deleted, ctx.Err()
		}
	}
}

// Run sweeps sessions every lc.Interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context, lc SessionLifecycle) {
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
	}
}
