package server

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/observe"
	"github.com/gatehouse-dev/gatehouse/internal/service"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// SessionLifecycle bounds how long sessions live; see service.Sweeper.
type SessionLifecycle = service.SessionLifecycle

// sweeper is the session sweeper writing through s.write.
func (s *Server) sweeper() *service.Sweeper {
	return &service.Sweeper{Store: s.store, Write: s.write, Now: s.now, Log: s.log, Resume: s.ResumeAccountDeletions}
}

// deleter finishes account deletions through s.write.
func (s *Server) deleter() *service.AccountDeleter {
	return &service.AccountDeleter{Store: s.store, Write: s.write, Log: s.log}
}

// deletionContext names the sweeper as the caller of the DeleteAccount
// writes that finish an interrupted deletion.
func deletionContext(ctx context.Context) context.Context {
	return observe.WithOperation(auth.NewContext(ctx, service.SweepCaller), "DeleteAccount")
}

// ResumeAccountDeletions finishes every account deletion left pending (a
// tombstone whose records a stopped daemon did not finish deleting).
func (s *Server) ResumeAccountDeletions(ctx context.Context) {
	s.deleter().ResumeAccountDeletions(deletionContext(ctx))
}

// sweepContext names the sweeper as the caller and operation of its
// writes in the audit log.
func sweepContext(ctx context.Context) context.Context {
	return observe.WithOperation(auth.NewContext(ctx, service.SweepCaller), "SweepSessions")
}

// SweepSessions runs one sweep (service.Sweeper.Sweep).
func (s *Server) SweepSessions(ctx context.Context, lc SessionLifecycle) (ended, deleted int, err error) {
	return s.sweeper().Sweep(sweepContext(ctx), lc)
}

// RunSessionSweeper sweeps sessions every lc.Interval until ctx ends. It
// first finishes the account deletions a stop interrupted, and does so
// again at every sweep.
func (s *Server) RunSessionSweeper(ctx context.Context, lc SessionLifecycle) {
	s.sweeper().Run(sweepContext(ctx), lc)
}

// BootstrapOperatorToken creates the first operator credential; see
// service.BootstrapOperatorToken. The daemon calls it before it serves.
func BootstrapOperatorToken(ctx context.Context, st store.Store, name string, now time.Time) (bearer string, created bool, err error) {
	return service.BootstrapOperatorToken(ctx, st, name, now)
}
