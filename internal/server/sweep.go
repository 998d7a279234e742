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
	return &service.Sweeper{Store: s.store, Write: s.write, Now: s.now, Log: s.log}
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

// RunSessionSweeper sweeps sessions every lc.Interval until ctx ends.
func (s *Server) RunSessionSweeper(ctx context.Context, lc SessionLifecycle) {
	s.sweeper().Run(sweepContext(ctx), lc)
}

// BootstrapOperatorToken creates the first operator credential; see
// service.BootstrapOperatorToken. The daemon calls it before it serves.
func BootstrapOperatorToken(ctx context.Context, st store.Store, name string, now time.Time) (bearer string, created bool, err error) {
	return service.BootstrapOperatorToken(ctx, st, name, now)
}
