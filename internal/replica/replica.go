// Package replica keeps the decision engine's in-memory replica of the
// store, a policy.Snapshot, in step with the store: it loads everything at
// start, then follows the store's commits and rebuilds only the accounts
// and sessions a commit touched, swapping the new snapshot in atomically.
// Readers never lock.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Replica owns the current snapshot of one store and follows its commits.
type Replica struct {
	st  store.Store
	log *slog.Logger
	cur atomic.Pointer[policy.Snapshot]

	mu      sync.Mutex    // serializes rebuilds
	waitMu  sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced on every swap

	// lastBuild is the duration of the last rebuild, for metrics.
	lastBuild atomic.Int64

	// fresh is the store's store.Freshness, nil when the store is always
	// current (the bbolt file).
	fresh store.Freshness
	// base is when New started; asOf is the time, as a duration after
	// base, up to which the current snapshot is known to hold every
	// commit. Both carry the monotonic clock: a jump of the wall clock
	// changes no staleness.
	base time.Time
	asOf atomic.Int64
}

// freshnessPoll is how often a replica of a store that can fall behind
// takes up the store's confirmations that it is current (Staleness).
const freshnessPoll = 50 * time.Millisecond

// New loads the whole store into a first snapshot.
func New(ctx context.Context, st store.Store, log *slog.Logger) (*Replica, error) {
	r := &Replica{st: st, log: log, changed: make(chan struct{}), base: time.Now()}
	r.fresh, _ = st.(store.Freshness)
	snap, err := r.loadAll(ctx)
	if err != nil {
		return nil, err
	}
	r.cur.Store(snap)
	// loadAll's read confirmed the snapshot current after base.
	r.takeFreshness()
	return r, nil
}

// Staleness returns how long before now the current snapshot was last
// known to hold every commit of the store: the age of the data decisions
// are answered from, as far as the store can vouch for it. It is 0 on a
// store that is always current (one without store.Freshness: the bbolt
// file). It never blocks; Run takes up the store's confirmations.
func (r *Replica) Staleness(now time.Time) time.Duration {
	if r.fresh == nil {
		return 0
	}
	return max(now.Sub(r.base)-time.Duration(r.asOf.Load()), 0)
}

// TracksStaleness reports whether the store can fall behind unnoticed,
// so that Staleness can grow.
func (r *Replica) TracksStaleness() bool { return r.fresh != nil }

// takeFreshness advances asOf to the store's latest confirmation that
// covers the current snapshot's revision. A snapshot that has not applied
// a confirmed commit yet is not covered by that confirmation: it keeps its
// older time until it catches up.
func (r *Replica) takeFreshness() {
	if r.fresh == nil {
		return
	}
	at, ok := r.fresh.CurrentAsOf(r.Current().Revision())
	if !ok {
		return
	}
	n := int64(at.Sub(r.base))
	for {
		cur := r.asOf.Load()
		if n <= cur || r.asOf.CompareAndSwap(cur, n) {
			return
		}
	}
}

// followFreshness takes up the store's confirmations until ctx ends.
func (r *Replica) followFreshness(ctx context.Context) {
	t := time.NewTicker(freshnessPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.takeFreshness()
		}
	}
}

// Current returns the latest snapshot. It never blocks.
func (r *Replica) Current() *policy.Snapshot { return r.cur.Load() }

// LastBuild returns how long the last rebuild took.
func (r *Replica) LastBuild() time.Duration { return time.Duration(r.lastBuild.Load()) }

// Run follows the store until ctx ends.
func (r *Replica) Run(ctx context.Context) {
	ch, cancel := r.st.Subscribe()
	defer cancel()
	if r.fresh != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); r.followFreshness(ctx) }()
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		// The first pass catches a commit that landed between New and
		// Subscribe.
		if err := r.catchUp(ctx); err != nil {
			// Keep serving the last good snapshot: decisions stay
			// consistent with a committed revision, and writes wait.
			r.log.Error("snapshot rebuild failed; serving last good snapshot", "revision", r.Current().Revision(), "err", err)
			retry.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-retry.C:
		}
	}
}

// WaitFor returns a snapshot at revision rev or later, waiting for the
// replica to catch up until ctx ends.
func (r *Replica) WaitFor(ctx context.Context, rev uint64) (*policy.Snapshot, error) {
	for {
		r.waitMu.Lock()
		ch := r.changed
		r.waitMu.Unlock()
		if s := r.Current(); s.Revision() >= rev {
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// catchUp applies every commit after the current snapshot.
func (r *Replica) catchUp(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	cur := r.Current()
	if r.st.Revision() <= cur.Revision() {
		return nil
	}
	next, err := r.apply(ctx, cur)
	if errors.Is(err, store.ErrCompacted) {
		r.log.Warn("change history compacted; reloading the whole store", "revision", cur.Revision())
		next, err = r.loadAll(ctx)
	}
	if err != nil {
		return err
	}
	r.swap(next)
	r.takeFreshness()
	r.lastBuild.Store(int64(time.Since(start)))
	return nil
}

func (r *Replica) swap(s *policy.Snapshot) {
	r.cur.Store(s)
	r.waitMu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.waitMu.Unlock()
}

// apply rebuilds the accounts and sessions touched by the commits after
// cur, reading them in one transaction so that the new snapshot is exactly
// the store at that transaction's revision.
func (r *Replica) apply(ctx context.Context, cur *policy.Snapshot) (*policy.Snapshot, error) {
	var next *policy.Snapshot
	err := r.st.View(ctx, func(tx store.ReadTx) error {
		if tx.Revision() <= cur.Revision() {
			next = cur
			return nil
		}
		changes, err := tx.Changes(cur.Revision())
		if err != nil {
			return err
		}
		accounts := map[string][]string{} // account -> keys written
		sessions := map[string]string{}   // session -> account (of its key)
		tokens := map[string]bool{}
		for _, c := range changes {
			if c.Revision > tx.Revision() {
				break
			}
			for _, k := range c.Keys {
				info := store.ParseKey(k)
				switch {
				case info.Token != "":
					tokens[info.Token] = true
				case info.Session != "":
					sessions[info.Session] = info.Account
				case info.Account != "":
					accounts[info.Account] = append(accounts[info.Account], k)
				}
			}
		}
		accStates := make(map[string]*policy.AccountState, len(accounts))
		sessStates := make(map[string]*policy.Session, len(sessions))
		unreadable := map[string]string{}
		for id, keys := range accounts {
			prev := cur.Account(id)
			_, wasUnreadable := cur.Unreadable(id)
			d, err := loadAccount(tx, prev, id, keys)
			switch {
			case errors.Is(err, store.ErrNotFound):
				accStates[id] = nil
				if wasUnreadable {
					unreadable[id] = "" // deleted
				}
			case errors.Is(err, store.ErrCorrupt):
				// Only this account is left out; the others go on.
				accStates[id] = nil
				unreadable[id] = err.Error()
				r.log.Error("account unreadable: its decisions are refused until its records are repaired",
					"account_id", id, "revision", tx.Revision(), "err", err)
			case err != nil:
				return fmt.Errorf("load account %q: %w", id, err)
			default:
				accStates[id] = policy.CompileFrom(prev, d)
				if wasUnreadable {
					unreadable[id] = ""
					r.log.Info("account readable again", "account_id", id, "revision", tx.Revision())
				}
			}
		}
		badSessions := map[string]policy.UnreadableSession{}
		for id, acct := range sessions {
			// Read by the record's own key: the session index is not
			// what decisions depend on.
			s, err := store.GetAccountSession(tx, acct, id)
			_, wasUnreadable := cur.UnreadableSession(id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				sessStates[id] = nil
				if wasUnreadable {
					badSessions[id] = policy.UnreadableSession{} // deleted
				}
			case errors.Is(err, store.ErrCorrupt):
				sessStates[id] = nil
				badSessions[id] = policy.UnreadableSession{AccountID: acct, Why: err.Error()}
				r.logBadSession(id, acct, err)
			case err != nil:
				return fmt.Errorf("load session %q: %w", id, err)
			default:
				sessStates[id] = &s
				if wasUnreadable {
					badSessions[id] = policy.UnreadableSession{}
					r.log.Info("session readable again", "session_id", id, "account_id", acct, "revision", tx.Revision())
				}
			}
		}
		next = cur.Apply(tx.Revision(), accStates, sessStates)
		if len(unreadable) > 0 {
			next = next.WithUnreadable(unreadable)
		}
		if len(badSessions) > 0 {
			next = next.WithUnreadableSessions(badSessions)
		}
		if len(tokens) > 0 {
			changed := make(map[string]*auth.Token, len(tokens))
			for id := range tokens {
				t, err := store.GetToken(tx, id)
				switch {
				case errors.Is(err, store.ErrNotFound):
					changed[id] = nil
				case errors.Is(err, store.ErrCorrupt):
					changed[id] = nil
					r.log.Error("caller token unreadable: it authenticates nobody", "token_id", id, "err", err)
				case err != nil:
					return fmt.Errorf("load token %q: %w", id, err)
				default:
					changed[id] = &t
				}
			}
			next = next.WithTokens(changed)
		}
		return nil
	})
	return next, err
}

// maxPatchKeys bounds the keys of one account that apply reads one by
// one; beyond it, reading the whole account in one scan is cheaper.
const maxPatchKeys = 1000

// loadAccount returns the data of an account at tx: prev's records with
// the written keys read again when the account was known, else all of it.
// Either way CompileFrom then recompiles only what changed, so a write to
// a large account does not cost its size.
func loadAccount(tx store.ReadTx, prev *policy.AccountState, id string, keys []string) (policy.AccountData, error) {
	if prev != nil && len(keys) <= maxPatchKeys {
		d := prev.Data()
		return d, store.PatchAccount(tx, &d, keys)
	}
	d, _, err := store.LoadAccount(tx, id, false)
	return d, err
}

func (r *Replica) loadAll(ctx context.Context) (*policy.Snapshot, error) {
	var snap *policy.Snapshot
	err := r.st.View(ctx, func(tx store.ReadTx) error {
		ids, err := store.AccountIDs(tx)
		if err != nil {
			return err
		}
		accounts := make(map[string]*policy.AccountState, len(ids))
		sessions := map[string]*policy.Session{}
		unreadable := map[string]string{}
		badSessions := map[string]policy.UnreadableSession{}
		badSession := func(key string, err error) {
			info := store.ParseKey(key)
			badSessions[info.Session] = policy.UnreadableSession{AccountID: info.Account, Why: err.Error()}
			r.logBadSession(info.Session, info.Account, err)
		}
		for _, id := range ids {
			// One scan reads the account with its sessions; only when a
			// record does not decode are data and sessions read apart, so
			// that a bad session takes out the session alone (its
			// decisions answer DATA_LOSS) and bad data the account alone.
			d, ss, err := store.LoadAccount(tx, id, true)
			if errors.Is(err, store.ErrCorrupt) {
				d, _, err = store.LoadAccount(tx, id, false)
				if errors.Is(err, store.ErrCorrupt) {
					// Leave this account out (its sessions stay, so that
					// their decisions say why they fail); the others go on.
					unreadable[id] = err.Error()
					r.log.Error("account unreadable: its decisions are refused until its records are repaired",
						"account_id", id, "revision", tx.Revision(), "err", err)
					err = nil
				}
				if err == nil {
					ss, err = store.AccountSessions(tx, id, badSession)
				}
			}
			if err != nil {
				return fmt.Errorf("load account %q: %w", id, err)
			}
			if _, bad := unreadable[id]; !bad {
				accounts[id] = policy.Compile(d)
			}
			for i := range ss {
				sessions[ss[i].ID] = &ss[i]
			}
		}
		toks, err := store.LoadTokens(tx, func(key string, err error) {
			r.log.Error("caller token unreadable: it authenticates nobody", "key", key, "err", err)
		})
		if err != nil {
			return err
		}
		tokens := make(map[string]*auth.Token, len(toks))
		for i := range toks {
			tokens[toks[i].ID] = &toks[i]
		}
		snap = policy.NewSnapshot(tx.Revision(), accounts, sessions).WithTokens(tokens).WithUnreadable(unreadable).
			WithUnreadableSessions(badSessions)
		return nil
	})
	return snap, err
}

// logBadSession logs a session whose record cannot be read.
func (r *Replica) logBadSession(id, acct string, err error) {
	r.log.Error("session unreadable: its decisions are refused until its record is repaired",
		"session_id", id, "account_id", acct, "err", err)
}

// Changed returns a channel that is closed when the snapshot after the
// current one is swapped in. Take it before reading Current to miss no swap.
func (r *Replica) Changed() <-chan struct{} {
	r.waitMu.Lock()
	defer r.waitMu.Unlock()
	return r.changed
}
