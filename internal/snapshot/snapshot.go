// Package snapshot keeps the decision engine's in-memory policy.Snapshot in
// step with the store: it loads everything at start, then follows the
// store's commits and rebuilds only the accounts and sessions a commit
// touched, swapping the new snapshot in atomically. Readers never lock.
package snapshot

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

// Follower owns the current snapshot of one store.
type Follower struct {
	st  store.Store
	log *slog.Logger
	cur atomic.Pointer[policy.Snapshot]

	mu      sync.Mutex    // serializes rebuilds
	waitMu  sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced on every swap

	// lastBuild is the duration of the last rebuild, for metrics.
	lastBuild atomic.Int64
}

// New loads the whole store into a first snapshot.
func New(ctx context.Context, st store.Store, log *slog.Logger) (*Follower, error) {
	f := &Follower{st: st, log: log, changed: make(chan struct{})}
	snap, err := f.loadAll(ctx)
	if err != nil {
		return nil, err
	}
	f.cur.Store(snap)
	return f, nil
}

// Current returns the latest snapshot. It never blocks.
func (f *Follower) Current() *policy.Snapshot { return f.cur.Load() }

// LastBuild returns how long the last rebuild took.
func (f *Follower) LastBuild() time.Duration { return time.Duration(f.lastBuild.Load()) }

// Run follows the store until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	ch, cancel := f.st.Subscribe()
	defer cancel()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		// The first pass catches a commit that landed between New and
		// Subscribe.
		if err := f.catchUp(ctx); err != nil {
			// Keep serving the last good snapshot: decisions stay
			// consistent with a committed revision, and writes wait.
			f.log.Error("snapshot rebuild failed; serving last good snapshot", "revision", f.Current().Revision(), "err", err)
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
// follower to catch up until ctx ends.
func (f *Follower) WaitFor(ctx context.Context, rev uint64) (*policy.Snapshot, error) {
	for {
		f.waitMu.Lock()
		ch := f.changed
		f.waitMu.Unlock()
		if s := f.Current(); s.Revision() >= rev {
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
func (f *Follower) catchUp(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := time.Now()
	cur := f.Current()
	if f.st.Revision() <= cur.Revision() {
		return nil
	}
	next, err := f.apply(ctx, cur)
	if errors.Is(err, store.ErrCompacted) {
		f.log.Warn("change history compacted; reloading the whole store", "revision", cur.Revision())
		next, err = f.loadAll(ctx)
	}
	if err != nil {
		return err
	}
	f.swap(next)
	f.lastBuild.Store(int64(time.Since(start)))
	return nil
}

func (f *Follower) swap(s *policy.Snapshot) {
	f.cur.Store(s)
	f.waitMu.Lock()
	close(f.changed)
	f.changed = make(chan struct{})
	f.waitMu.Unlock()
}

// apply rebuilds the accounts and sessions touched by the commits after
// cur, reading them in one transaction so that the new snapshot is exactly
// the store at that transaction's revision.
func (f *Follower) apply(ctx context.Context, cur *policy.Snapshot) (*policy.Snapshot, error) {
	var next *policy.Snapshot
	err := f.st.View(ctx, func(tx store.ReadTx) error {
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
				f.log.Error("account unreadable: its decisions are refused until its records are repaired",
					"account_id", id, "revision", tx.Revision(), "err", err)
			case err != nil:
				return fmt.Errorf("load account %q: %w", id, err)
			default:
				accStates[id] = policy.CompileFrom(prev, d)
				if wasUnreadable {
					unreadable[id] = ""
					f.log.Info("account readable again", "account_id", id, "revision", tx.Revision())
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
				f.logBadSession(id, acct, err)
			case err != nil:
				return fmt.Errorf("load session %q: %w", id, err)
			default:
				sessStates[id] = &s
				if wasUnreadable {
					badSessions[id] = policy.UnreadableSession{}
					f.log.Info("session readable again", "session_id", id, "account_id", acct, "revision", tx.Revision())
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
					f.log.Error("caller token unreadable: it authenticates nobody", "token_id", id, "err", err)
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

func (f *Follower) loadAll(ctx context.Context) (*policy.Snapshot, error) {
	var snap *policy.Snapshot
	err := f.st.View(ctx, func(tx store.ReadTx) error {
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
			f.logBadSession(info.Session, info.Account, err)
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
					f.log.Error("account unreadable: its decisions are refused until its records are repaired",
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
			f.log.Error("caller token unreadable: it authenticates nobody", "key", key, "err", err)
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
func (f *Follower) logBadSession(id, acct string, err error) {
	f.log.Error("session unreadable: its decisions are refused until its record is repaired",
		"session_id", id, "account_id", acct, "err", err)
}

// Changed returns a channel that is closed when the snapshot after the
// current one is swapped in. Take it before reading Current to miss no swap.
func (f *Follower) Changed() <-chan struct{} {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	return f.changed
}
