package service

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Machine-readable reasons of the co-browse URL RPCs.
const (
	ReasonCobrowseURLAlreadySet  = "COBROWSE_URL_ALREADY_SET"
	ReasonCobrowseNamesExhausted = "COBROWSE_NAMES_EXHAUSTED"
)

// CobrowseNameAttempts bounds how many random names GenerateCobrowseUrl
// tries before giving up. With about 36 million names, running out means
// the name space is nearly full, not bad luck.
const CobrowseNameAttempts = 16

// Words of generated co-browse names: short, common, friendly English words
// that are easy to read out on the phone and unlikely to offend.
var (
	cobrowseAdjectives = []string{
		"amber", "azure", "bold", "brave", "bright", "brisk", "calm", "clear",
		"clever", "coral", "cosmic", "crisp", "eager", "early", "fair", "fancy",
		"fresh", "gentle", "glad", "golden", "grand", "green", "happy", "honest",
		"jolly", "keen", "kind", "lively", "lucky", "mellow", "merry", "mighty",
		"misty", "modern", "noble", "polar", "proud", "quick", "quiet", "rapid",
		"ready", "rosy", "royal", "rustic", "sandy", "sharp", "silver", "simple",
		"smooth", "snowy", "solar", "sunny", "swift", "tidy", "true", "vivid",
		"warm", "wise", "witty", "young", "zesty", "velvet", "cheery", "steady",
	}
	cobrowseNouns = []string{
		"anchor", "badger", "beacon", "breeze", "brook", "cactus", "canyon", "cedar",
		"comet", "cove", "crane", "dolphin", "ember", "falcon", "fern", "fjord",
		"forest", "garden", "garnet", "glacier", "harbor", "harvest", "hazel", "heron",
		"island", "jasper", "lagoon", "lantern", "maple", "meadow", "meteor", "orchard",
		"otter", "panda", "pebble", "pine", "planet", "prairie", "quartz", "rain",
		"raven", "reef", "ridge", "river", "robin", "sail", "sparrow", "spruce",
		"summit", "thistle", "tiger", "trail", "tulip", "valley", "walrus", "willow",
		"yarrow", "zephyr", "bison", "clover", "delta", "echo", "lotus", "oak",
	}
)

// RandomCobrowseName returns a readable random DNS label such as
// "amber-harbor-4821": two words and four digits.
func RandomCobrowseName() string {
	return cobrowseAdjectives[rand.IntN(len(cobrowseAdjectives))] + "-" +
		cobrowseNouns[rand.IntN(len(cobrowseNouns))] + "-" +
		strconv.Itoa(1000+rand.IntN(9000))
}

// CobrowseURLOf is the co-browse URL of a name under base.
func CobrowseURLOf(name, base string) string { return "https://" + name + "." + base }

// IsDNSLabel reports whether s is a lower-case DNS label (LDH rule):
// 1-63 of [a-z0-9-], not starting or ending with '-'.
func IsDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// CheckCobrowseURL returns why raw is not a co-browse URL under base, or "".
// The only accepted form is https://<label>.<base>, exactly: one lower-case
// DNS label, no port, path, query, fragment or user info.
func CheckCobrowseURL(raw, base string) string {
	want := "must be https://<name>." + base + " with <name> a lower-case DNS label (a-z, 0-9, '-'; at most 63 characters) and nothing after it"
	host, ok := strings.CutPrefix(raw, "https://")
	if !ok {
		return want
	}
	label, ok := strings.CutSuffix(host, "."+base)
	if !ok || !IsDNSLabel(label) || len(host) > 253 {
		return want
	}
	return ""
}

// AssignCobrowseURL gives acct the URL url (whose index entry is free or
// already acct's), releasing the index entry of its previous URL, and
// writes the account.
func AssignCobrowseURL(tx store.Tx, acct *policy.Account, url string) error {
	if old := acct.CobrowseURL; old != "" && old != url {
		switch owner, err := store.CobrowseOwner(tx, old); {
		case err == nil && owner == acct.ID:
			if err := store.SetCobrowseOwner(tx, old, ""); err != nil {
				return err
			}
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	if err := store.SetCobrowseOwner(tx, url, acct.ID); err != nil {
		return err
	}
	acct.CobrowseURL = url
	return store.PutAccount(tx, acct)
}

// GenerateCobrowseURL gives the account id a new unique co-browse URL under
// base, trying names from name until one is free. Uniqueness holds because
// the check and the claim happen in the same write transaction, and the
// store serializes write transactions.
func GenerateCobrowseURL(tx store.Tx, id, base string, name func() string) (policy.Account, error) {
	acct, err := GetAccount(tx, id)
	if err != nil {
		return acct, err
	}
	if acct.CobrowseURL != "" {
		return acct, errs.Precondition(ReasonCobrowseURLAlreadySet,
			map[string]string{"cobrowse_url": acct.CobrowseURL},
			"account %q already has the co-browse URL %s; it is generated once, and only an operator can change it", id, acct.CobrowseURL)
	}
	for range CobrowseNameAttempts {
		url := CobrowseURLOf(name(), base)
		switch _, err := store.CobrowseOwner(tx, url); {
		case errors.Is(err, store.ErrNotFound):
			return acct, AssignCobrowseURL(tx, &acct, url)
		case err != nil:
			return acct, err
		}
	}
	return acct, errs.Refuse(errs.ResourceExhausted, ReasonCobrowseNamesExhausted, nil,
		"no free co-browse URL found in %d attempts; try again", CobrowseNameAttempts)
}

// SetCobrowseURL gives account acctID the co-browse URL url (already
// checked with CheckCobrowseURL) unless another account holds it
// (ALREADY_EXISTS); the account's previous URL is released for others to
// take. Setting the URL the account already has writes nothing.
func SetCobrowseURL(tx store.Tx, acctID, url string) (policy.Account, error) {
	acct, err := GetAccount(tx, acctID)
	if err != nil {
		return acct, err
	}
	switch owner, err := store.CobrowseOwner(tx, url); {
	case err == nil && owner != acct.ID:
		return acct, errs.New(errs.AlreadyExists, "co-browse URL %s is held by another account", url)
	case err == nil && acct.CobrowseURL == url:
		return acct, nil // already this account's URL: nothing to write
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return acct, err
	}
	return acct, AssignCobrowseURL(tx, &acct, url)
}
