package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ErrNotEmpty is returned by WriteStore when the store already holds
// accounts.
var ErrNotEmpty = errors.New("store already holds accounts")

// WriteOptions tune WriteStore.
type WriteOptions struct {
	// BatchRecords is the number of records after which a transaction is
	// committed (whole accounts are never split); default 25 000.
	BatchRecords int
	// Progress, when set, is called after every commit with the number of
	// records written so far and the total.
	Progress func(done, total int)
	// Concurrency is the number of writers on a store whose transactions
	// are bounded (Limits not zero): they commit small chunks of records
	// at once instead of whole accounts (default 8).
	Concurrency int
}

// records returns the number of records WriteStore writes for account i
// (sessions count twice: record and index entry).
func (d *Dataset) records(ad *policy.AccountData, sessions []policy.Session) int {
	n := 2 + len(ad.Allowlist) + len(ad.PrivacyRules) + len(ad.Customizations) + len(ad.Portals) +
		len(ad.Teams) + len(ad.Representatives) + len(ad.BusinessHours) + 2*len(sessions)
	if ad.Account.CobrowseURL != "" {
		n++
	}
	return n
}

// WriteStore writes d into an empty store through the typed helpers of
// internal/store, a few large transactions (one fsync each) rather than one
// per record. On a store that bounds its transactions (etcd) it commits
// records in chunks within the bounds, several at once (the store is
// complete only when it returns). It returns the revision of the last
// commit.
func WriteStore(ctx context.Context, st store.Store, d *Dataset, o WriteOptions) (uint64, error) {
	if o.BatchRecords <= 0 {
		o.BatchRecords = 25_000
	}
	bySession := make(map[string][]policy.Session, len(d.Accounts))
	for _, s := range d.Sessions {
		bySession[s.AccountID] = append(bySession[s.AccountID], s)
	}
	total := 0
	for i := range d.Accounts {
		total += d.records(&d.Accounts[i], bySession[d.Accounts[i].Account.ID])
	}
	err := st.View(ctx, func(tx store.ReadTx) error {
		ids, err := store.AccountIDs(tx)
		if err == nil && len(ids) > 0 {
			err = fmt.Errorf("%w (%d)", ErrNotEmpty, len(ids))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if lim := st.Limits(); lim.MaxOps > 0 || lim.MaxTxnBytes > 0 {
		if o.Concurrency <= 0 {
			o.Concurrency = 8
		}
		return writeLimited(ctx, st, d, bySession, total, o)
	}
	var rev uint64
	done := 0
	for start := 0; start < len(d.Accounts); {
		end, n := start, 0
		for end < len(d.Accounts) && (n == 0 || n < o.BatchRecords) {
			n += d.records(&d.Accounts[end], bySession[d.Accounts[end].Account.ID])
			end++
		}
		batch := d.Accounts[start:end]
		rev, err = st.Update(ctx, func(tx store.Tx) error {
			for i := range batch {
				if err := writeAccount(tx, &batch[i], bySession[batch[i].Account.ID]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("write accounts %s..%s: %w", d.Accounts[start].Account.ID, d.Accounts[end-1].Account.ID, err)
		}
		done += n
		if o.Progress != nil {
			o.Progress(done, total)
		}
		start = end
	}
	return rev, nil
}

// writeAccount writes one account and everything it owns.
func writeAccount(tx store.Tx, ad *policy.AccountData, sessions []policy.Session) error {
	for _, step := range accountSteps(ad, sessions) {
		if err := step(tx); err != nil {
			return err
		}
	}
	return nil
}

// accountSteps returns the writes of one account and everything it owns,
// one per record (a record writes at most two keys: itself and an index
// entry), in the order WriteStore commits them. Records are copied at
// each call, because the helpers stamp the revision into what they write
// and a transaction may run its function again.
func accountSteps(ad *policy.AccountData, sessions []policy.Session) []func(store.Tx) error {
	id := ad.Account.ID
	steps := []func(store.Tx) error{func(tx store.Tx) error {
		acct := ad.Account
		if err := store.PutAccount(tx, &acct); err != nil {
			return err
		}
		if acct.CobrowseURL != "" {
			return store.SetCobrowseOwner(tx, acct.CobrowseURL, id)
		}
		return nil
	}, func(tx store.Tx) error {
		settings := ad.Settings
		return store.PutSettings(tx, &settings)
	}}
	for _, c := range ad.Customizations {
		steps = append(steps, func(tx store.Tx) error { return store.PutCustomization(tx, &c) })
	}
	for _, h := range ad.BusinessHours {
		steps = append(steps, func(tx store.Tx) error { return store.PutBusinessHours(tx, id, &h) })
	}
	for _, p := range ad.Portals {
		steps = append(steps, func(tx store.Tx) error { return store.PutPortal(tx, id, &p) })
	}
	for _, t := range ad.Teams {
		steps = append(steps, func(tx store.Tx) error { return store.PutTeam(tx, id, &t) })
	}
	for _, r := range ad.Representatives {
		steps = append(steps, func(tx store.Tx) error { return store.PutRepresentative(tx, id, &r) })
	}
	for _, e := range ad.Allowlist {
		steps = append(steps, func(tx store.Tx) error { return store.PutAllowlistEntry(tx, id, &e) })
	}
	for _, r := range ad.PrivacyRules {
		steps = append(steps, func(tx store.Tx) error { return store.PutPrivacyRule(tx, id, &r) })
	}
	for _, s := range sessions {
		steps = append(steps, func(tx store.Tx) error { return store.PutSession(tx, &s) })
	}
	return steps
}

// writeLimited is WriteStore on a store whose transactions are bounded
// (etcd's operations and request size per transaction): it commits
// records in chunks that fit, from o.Concurrency writers at once, and
// splits a chunk the store still refuses as too large in two.
func writeLimited(ctx context.Context, st store.Store, d *Dataset, bySession map[string][]policy.Session, total int, o WriteOptions) (uint64, error) {
	lim := st.Limits()
	per := o.BatchRecords
	if lim.MaxOps > 0 {
		per = min(per, max(1, lim.MaxOps/2-1))
	}
	var steps []func(store.Tx) error
	for i := range d.Accounts {
		steps = append(steps, accountSteps(&d.Accounts[i], bySession[d.Accounts[i].Account.ID])...)
	}
	// Records counted by d.records (sessions twice) against steps (one
	// per record): progress reports records.
	scale := float64(total) / float64(max(len(steps), 1))
	var chunks [][]func(store.Tx) error
	for start := 0; start < len(steps); start += per {
		chunks = append(chunks, steps[start:min(start+per, len(steps))])
	}
	var (
		mu      sync.Mutex
		next    int
		done    int
		rev     uint64
		firstEr error
	)
	var commit func(chunk []func(store.Tx) error) error
	commit = func(chunk []func(store.Tx) error) error {
		r, err := st.Update(ctx, func(tx store.Tx) error {
			for _, step := range chunk {
				if err := step(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if (errors.Is(err, store.ErrTooManyOps) || errors.Is(err, store.ErrTxnTooLarge)) && len(chunk) > 1 {
			if err := commit(chunk[:len(chunk)/2]); err != nil {
				return err
			}
			return commit(chunk[len(chunk)/2:])
		}
		if err != nil {
			return err
		}
		mu.Lock()
		rev = max(rev, r)
		done += len(chunk)
		if o.Progress != nil {
			o.Progress(min(int(float64(done)*scale+0.5), total), total)
		}
		mu.Unlock()
		return nil
	}
	var wg sync.WaitGroup
	for range max(o.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstEr != nil
				mu.Unlock()
				if stop || i >= len(chunks) {
					return
				}
				if err := commit(chunks[i]); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("write records %d..%d: %w", i*per, i*per+len(chunks[i])-1, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return 0, firstEr
	}
	return rev, nil
}

// ManifestName is the file name of the manifest, next to the store file.
const ManifestName = "loadgen-manifest.json"

// Manifest tells a load driver what a generated store holds, so that it
// needs no admin calls to find sessions, pages and elements.
type Manifest struct {
	Version   int       `json:"version"`
	Config    Config    `json:"config"`
	Counts    Counts    `json:"counts"`
	Revision  uint64    `json:"revision"`
	Generated time.Time `json:"generated"`
	// SessionsAt is the time the sessions' start times were last stamped
	// relative to (each started at most SessionSpread before it); see
	// RestampSessions.
	SessionsAt time.Time `json:"sessions_at"`
	// WriteSeconds is how long writing the store took.
	WriteSeconds float64 `json:"write_seconds"`
	// Accounts lists every account with its sizes, largest first.
	Accounts []AccountSize `json:"accounts"`
	Probes   []Probe       `json:"probes"`
}

// AccountSize is the size of one account.
type AccountSize struct {
	ID              string `json:"id"`
	Allowlist       int    `json:"allowlist"`
	PrivacyRules    int    `json:"privacy_rules"`
	Representatives int    `json:"representatives"`
	Portals         int    `json:"portals"`
}

// manifestVersion changes when the manifest or the generator changes in
// a way that makes an old store unfit for reuse.
const manifestVersion = 2

// NewManifest describes d, with probes of up to probes sessions.
func NewManifest(d *Dataset, rev uint64, probes int) *Manifest {
	m := &Manifest{Version: manifestVersion, Config: d.Config, Counts: d.Counts(), Revision: rev, Probes: d.Probes(probes),
		SessionsAt: d.SessionsStampedAt()}
	for i := range d.Accounts {
		a := &d.Accounts[i]
		m.Accounts = append(m.Accounts, AccountSize{ID: a.Account.ID, Allowlist: len(a.Allowlist), PrivacyRules: len(a.PrivacyRules),
			Representatives: len(a.Representatives), Portals: len(a.Portals)})
	}
	// Accounts are generated big ones first; sort by size, stable.
	sortAccounts(m.Accounts)
	return m
}

func sortAccounts(a []AccountSize) {
	size := func(x AccountSize) int { return x.Allowlist + x.PrivacyRules + x.Representatives + x.Portals }
	slices.SortStableFunc(a, func(x, y AccountSize) int { return cmp.Compare(size(y), size(x)) })
}

// Matches reports whether m describes a store generated from c by this
// version of the generator.
func (m *Manifest) Matches(c Config) bool { return m.Version == manifestVersion && m.Config == c }

// WriteManifest writes m into dir (atomically, via a temporary file).
func WriteManifest(dir string, m *Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ManifestName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ManifestName))
}

// ErrManifestVersion is returned by ReadManifest for a manifest written by
// another version of the generator.
var ErrManifestVersion = errors.New("manifest version")

// ReadManifest reads the manifest in dir, or the file path itself when it
// names a file.
func ReadManifest(path string) (*Manifest, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, ManifestName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%s: %w: %d, want %d (regenerate the data)", path, ErrManifestVersion, m.Version, manifestVersion)
	}
	return &m, nil
}

// ErrStale is returned by RestampSessions when the store no longer holds a
// generated session as generated (ended by a sweeper, deleted, moved): the
// store must be generated again.
var ErrStale = errors.New("generated sessions are no longer active in the store")

// RestampSessions moves the start times of d's sessions in st, which was
// generated from d, to d's current stamp (see Dataset.StampSessions), so
// that a store generated earlier holds live sessions again. It fails with
// ErrStale, changing nothing, when a session is missing or not active. It
// returns the revision of the commit.
func RestampSessions(ctx context.Context, st store.Store, d *Dataset) (uint64, error) {
	return st.Update(ctx, func(tx store.Tx) error {
		for i := range d.Sessions {
			want := &d.Sessions[i]
			got, err := store.GetSession(tx, want.ID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: session %s is gone", ErrStale, want.ID)
			}
			if err != nil {
				return err
			}
			if got.State != policy.SessionStateActive || got.AccountID != want.AccountID {
				return fmt.Errorf("%w: session %s is %v", ErrStale, want.ID, got.State)
			}
			got.StartTime = want.StartTime
			if err := store.PutSession(tx, &got); err != nil {
				return err
			}
		}
		return nil
	})
}
