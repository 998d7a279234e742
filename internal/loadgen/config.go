package loadgen

import (
	"fmt"
	"slices"
)

// Config sizes a generated tenant population. Totals are exact: a Config
// with Allowlist 100 000 yields exactly 100 000 allowlist entries.
type Config struct {
	// Name is the preset name, for reports ("large", "small").
	Name string `json:"name"`
	// Seed makes the dataset reproducible.
	Seed uint64 `json:"seed"`

	// Accounts is the number of tenants. The first BigAccounts of them
	// (acct-0000 …) are the large tenants.
	Accounts    int `json:"accounts"`
	BigAccounts int `json:"big_accounts"`

	// Allowlist is the total number of allowlist entries; each big
	// account holds BigAllowlist of them, the rest are spread (skewed,
	// some accounts with none) over the other accounts.
	Allowlist    int `json:"allowlist"`
	BigAllowlist int `json:"big_allowlist"`

	// PrivacyRules is the total number of privacy rules; each big account
	// holds BigPrivacy of them.
	PrivacyRules int `json:"privacy_rules"`
	BigPrivacy   int `json:"big_privacy"`

	// Portals is the number of top portals. Each comes with its default
	// subportal and up to two more subportals, some of which have a
	// subportal of their own, so the number of portal records is larger.
	Portals    int `json:"portals"`
	BigPortals int `json:"big_portals"`

	// Representatives is the total number of representatives, each in a
	// team of a nested team tree; each big account holds BigReps.
	Representatives int `json:"representatives"`
	BigReps         int `json:"big_reps"`

	// Sessions is the number of active sessions, spread over the accounts
	// in proportion to their representatives.
	Sessions int `json:"sessions"`
}

// Large is the realistic large population: 1 000 accounts, 100 000
// allowlist entries (five accounts with 10 000 each), 10 000 privacy rules
// (five accounts with 1 000 each), 2 000 top portals with subportals,
// 100 000 representatives in nested teams and 10 000 active sessions.
func Large() Config {
	return Config{
		Name: "large", Seed: 1,
		Accounts: 1000, BigAccounts: 5,
		Allowlist: 100_000, BigAllowlist: 10_000,
		PrivacyRules: 10_000, BigPrivacy: 1_000,
		Portals: 2_000, BigPortals: 20,
		Representatives: 100_000, BigReps: 5_000,
		Sessions: 10_000,
	}
}

// Small is the same shape at about 1 % of the size, for tests and for the
// small side of the engine benchmarks. Its big account holds 100 allowlist
// entries and 20 privacy rules.
func Small() Config {
	return Config{
		Name: "small", Seed: 1,
		Accounts: 10, BigAccounts: 1,
		Allowlist: 300, BigAllowlist: 100,
		PrivacyRules: 60, BigPrivacy: 20,
		Portals: 20, BigPortals: 4,
		Representatives: 300, BigReps: 60,
		Sessions: 100,
	}
}

// Tiny is a minimal population for smoke tests.
func Tiny() Config {
	return Config{
		Name: "tiny", Seed: 1,
		Accounts: 3, BigAccounts: 1,
		Allowlist: 30, BigAllowlist: 20,
		PrivacyRules: 12, BigPrivacy: 6,
		Portals: 4, BigPortals: 2,
		Representatives: 20, BigReps: 10,
		Sessions: 12,
	}
}

var presets = map[string]func() Config{"large": Large, "small": Small, "tiny": Tiny}

// Preset returns the named preset ("large", "small" or "tiny").
func Preset(name string) (Config, error) {
	f, ok := presets[name]
	if !ok {
		names := make([]string, 0, len(presets))
		for n := range presets {
			names = append(names, n)
		}
		slices.Sort(names)
		return Config{}, fmt.Errorf("unknown scale %q (want one of %v)", name, names)
	}
	return f(), nil
}

// Validate reports a Config whose totals cannot be met.
func (c Config) Validate() error {
	switch {
	case c.Accounts <= 0:
		return fmt.Errorf("accounts must be positive")
	case c.Accounts > 10_000:
		return fmt.Errorf("at most 10000 accounts")
	case c.BigAccounts < 0 || c.BigAccounts > c.Accounts:
		return fmt.Errorf("big_accounts must be between 0 and accounts")
	case c.Allowlist < c.BigAccounts*c.BigAllowlist:
		return fmt.Errorf("allowlist total %d is smaller than big_accounts*big_allowlist", c.Allowlist)
	case c.PrivacyRules < c.BigAccounts*c.BigPrivacy:
		return fmt.Errorf("privacy_rules total %d is smaller than big_accounts*big_privacy", c.PrivacyRules)
	case c.Portals < c.BigAccounts*c.BigPortals:
		return fmt.Errorf("portals total %d is smaller than big_accounts*big_portals", c.Portals)
	case c.Representatives < c.BigAccounts*c.BigReps || c.Representatives < c.Accounts:
		return fmt.Errorf("representatives total %d must cover big_accounts*big_reps and one per account", c.Representatives)
	case c.BigAllowlist > 99_999 || c.BigReps > 99_999 || c.BigPrivacy > 9_999:
		return fmt.Errorf("per-account sizes are limited to 5-digit ids")
	case c.Sessions < 0:
		return fmt.Errorf("sessions must not be negative")
	}
	return nil
}
