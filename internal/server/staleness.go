package server

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// DefaultMaxStaleness is the default bound on the age of the data a
// replica answers decisions from (--max-staleness): long enough to ride
// out an etcd leader election, a rolling restart of its members or a
// short network fault without flapping, short enough that a replica cut
// off from etcd stops applying a revoked permission or an ended session
// within half a minute.
const DefaultMaxStaleness = 30 * time.Second

// staleness bounds the age of the snapshot decisions are answered from
// (Options.MaxStaleness): past the bound, calls that decide from it are
// refused (staleErr) and the health service reports NOT_SERVING. The
// replica says how old its snapshot is (replica.Staleness); a store that
// is always current (bbolt) never passes the bound.
type staleness struct {
	max time.Duration // 0: no bound

	// flagged is watchStaleness's verdict at its last look: once it has
	// reported NOT_SERVING, decisions are refused until it reports
	// SERVING again, so that the two agree.
	flagged atomic.Bool

	mu sync.Mutex
	// wake is closed when the replica turns stale, and replaced when it
	// is fresh again.
	wake  chan struct{}
	stale bool
}

// staleErr returns the refusal of a decision when the replica's snapshot
// is older than the bound (or watchStaleness still reports it so), nil
// otherwise. It reads the replica's staleness without a lock: decisions
// check it on every call.
func (s *Server) staleErr() error {
	if s.stale.max <= 0 {
		return nil
	}
	age := s.snaps.Staleness(time.Now())
	if age <= s.stale.max && !s.stale.flagged.Load() {
		return nil
	}
	e := errs.Refuse(errs.Unavailable, errs.ReasonSnapshotStale,
		map[string]string{"staleness": age.Round(time.Millisecond).String(), "max_staleness": s.stale.max.String()},
		"this replica's data is older than its staleness bound of %v (--max-staleness): the store has not confirmed it for %v; decisions are refused until the replica catches up; retry, or ask another replica",
		s.stale.max, age.Round(time.Millisecond))
	e.RetryAfter = time.Second
	return e
}

// staleWake returns a channel closed when the replica turns stale: take
// it before checking staleErr to miss no change. It is nil (never ready)
// when there is no bound to pass.
func (s *Server) staleWake() <-chan struct{} {
	s.stale.mu.Lock()
	defer s.stale.mu.Unlock()
	return s.stale.wake
}

// stalenessTick is how often watchStaleness looks at the replica's
// staleness: a tenth of the bound, between 10 ms and 100 ms.
func stalenessTick(bound time.Duration) time.Duration {
	return min(max(bound/10, 10*time.Millisecond), 100*time.Millisecond)
}

// watchStaleness follows the replica's staleness until Shutdown: when it
// passes the bound, the health service reports NOT_SERVING (for the whole
// server and every Gatehouse service) and policy watchers are woken to
// end their streams; when it is back within the bound, SERVING again.
func (s *Server) watchStaleness() {
	t := time.NewTicker(stalenessTick(s.stale.max))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		age := s.snaps.Staleness(time.Now())
		stale := age > s.stale.max
		s.stale.mu.Lock()
		changed := stale != s.stale.stale
		s.stale.stale = stale
		s.stale.flagged.Store(stale)
		if changed && stale {
			close(s.stale.wake)
		} else if changed {
			s.stale.wake = make(chan struct{})
		}
		s.stale.mu.Unlock()
		if !changed {
			continue
		}
		st := healthpb.HealthCheckResponse_SERVING
		if stale {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			s.log.Warn("snapshot older than --max-staleness: the store has not confirmed it; refusing decisions and reporting NOT_SERVING until it catches up",
				"staleness", age.Round(time.Millisecond).String(), "max_staleness", s.stale.max.String(), "revision", s.snaps.Current().Revision())
		} else {
			s.log.Info("snapshot within --max-staleness again: serving decisions",
				"staleness", age.Round(time.Millisecond).String(), "revision", s.snaps.Current().Revision())
		}
		// After Shutdown the health server ignores this: NOT_SERVING stays.
		s.health.SetServingStatus("", st)
		for name := range s.grpc.GetServiceInfo() {
			if strings.HasPrefix(name, "gatehouse.") {
				s.health.SetServingStatus(name, st)
			}
		}
	}
}
