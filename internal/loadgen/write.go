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
// per record. It returns the revision of the last commit.
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

// writeAccount writes one account and everything it owns. Records are
// copied, because the helpers stamp the revision into what they write.
func writeAccount(tx store.Tx, ad *policy.AccountData, sessions []policy.Session) error {
	id := ad.Account.ID
	acct := ad.Account
	if err := store.PutAccount(tx, &acct); err != nil {
		return err
	}
	if acct.CobrowseURL != "" {
		if err := store.SetCobrowseOwner(tx, acct.CobrowseURL, id); err != nil {
			return err
		}
	}
	settings := ad.Settings
	if err := store.PutSettings(tx, &settings); err != nil {
		return err
	}
	for _, c := range ad.Customizations {
		if err := store.PutCustomization(tx, &c); err != nil {
			return err
		}
	}
	for _, h := range ad.BusinessHours {
		if err := store.PutBusinessHours(tx, id, &h); err != nil {
			return err
		}
	}
	for _, p := range ad.Portals {
		if err := store.PutPortal(tx, id, &p); err != nil {
			return err
		}
	}
	for _, t := range ad.Teams {
		if err := store.PutTeam(tx, id, &t); err != nil {
			return err
		}
	}
	for _, r := range ad.Representatives {
		if err := store.PutRepresentative(tx, id, &r); err != nil {
			return err
		}
	}
	for _, e := range ad.Allowlist {
		if err := store.PutAllowlistEntry(tx, id, &e); err != nil {
			return err
		}
	}
	for _, r := range ad.PrivacyRules {
		if err := store.PutPrivacyRule(tx, id, &r); err != nil {
			return err
		}
	}
	for _, s := range sessions {
		if err := store.PutSession(tx, &s); err != nil {
			return err
		}
	}
	return nil
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
