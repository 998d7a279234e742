package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/grpc/codes"
)

// Machine-readable reasons of the co-browse URL RPCs.
const (
	reasonCobrowseURLAlreadySet  = "COBROWSE_URL_ALREADY_SET"
	reasonCobrowseNamesExhausted = "COBROWSE_NAMES_EXHAUSTED"
)

// cobrowseNameAttempts bounds how many random names GenerateCobrowseUrl
// tries before giving up. With about 36 million names, running out means
// the name space is nearly full, not bad luck.
const cobrowseNameAttempts = 16

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

// randomCobrowseName returns a readable random DNS label such as
// "amber-harbor-4821": two words and four digits.
func randomCobrowseName() string {
	return cobrowseAdjectives[rand.IntN(len(cobrowseAdjectives))] + "-" +
		cobrowseNouns[rand.IntN(len(cobrowseNouns))] + "-" +
		strconv.Itoa(1000+rand.IntN(9000))
}

// cobrowseURLOf is the co-browse URL of a name under base.
func cobrowseURLOf(name, base string) string { return "https://" + name + "." + base }

// isDNSLabel reports whether s is a lower-case DNS label (LDH rule):
// 1-63 of [a-z0-9-], not starting or ending with '-'.
func isDNSLabel(s string) bool {
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

// checkCobrowseURL returns why raw is not a co-browse URL under base, or "".
// The only accepted form is https://<label>.<base>, exactly: one lower-case
// DNS label, no port, path, query, fragment or user info.
func checkCobrowseURL(raw, base string) string {
	want := "must be https://<name>." + base + " with <name> a lower-case DNS label (a-z, 0-9, '-'; at most 63 characters) and nothing after it"
	host, ok := strings.CutPrefix(raw, "https://")
	if !ok {
		return want
	}
	label, ok := strings.CutSuffix(host, "."+base)
	if !ok || !isDNSLabel(label) || len(host) > 253 {
		return want
	}
	return ""
}

// assignCobrowseURL gives acct the URL url (whose index entry is free or
// already acct's), releasing the index entry of its previous URL, and
// writes the account.
func assignCobrowseURL(tx store.Tx, acct *policy.Account, url string) error {
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

// generateCobrowseURL gives the account id a new unique co-browse URL under
// base, trying names from name until one is free. Uniqueness holds because
// the check and the claim happen in the same write transaction, and the
// store serializes write transactions.
func generateCobrowseURL(tx store.Tx, id, base string, name func() string) (policy.Account, error) {
	acct, err := getAccount(tx, id)
	if err != nil {
		return acct, err
	}
	if acct.CobrowseURL != "" {
		return acct, newError(codes.FailedPrecondition, reasonCobrowseURLAlreadySet,
			map[string]string{"cobrowse_url": acct.CobrowseURL},
			"account %q already has the co-browse URL %s; it is generated once, and only an operator can change it", id, acct.CobrowseURL)
	}
	for range cobrowseNameAttempts {
		url := cobrowseURLOf(name(), base)
		switch _, err := store.CobrowseOwner(tx, url); {
		case errors.Is(err, store.ErrNotFound):
			return acct, assignCobrowseURL(tx, &acct, url)
		case err != nil:
			return acct, err
		}
	}
	return acct, newError(codes.ResourceExhausted, reasonCobrowseNamesExhausted, nil,
		"no free co-browse URL found in %d attempts; try again", cobrowseNameAttempts)
}

func (a *adminService) GenerateCobrowseUrl(ctx context.Context, req *gatehousev1.GenerateCobrowseUrlRequest) (*gatehousev1.GenerateCobrowseUrlResponse, error) {
	var v violations
	v.checkID("account_id", req.GetAccountId(), false)
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	var acct policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		acct, err = generateCobrowseURL(tx, req.GetAccountId(), a.s.cobrowseBase, randomCobrowseName)
		return err
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.GenerateCobrowseUrlResponse{Url: acct.CobrowseURL, Account: accountToProto(&acct)}, nil
}

// SetCobrowseUrl is operator-only: the access rules refuse every other
// caller before the handler runs (the product lets only support staff
// change an account's URL).
func (a *adminService) SetCobrowseUrl(ctx context.Context, req *gatehousev1.SetCobrowseUrlRequest) (*gatehousev1.SetCobrowseUrlResponse, error) {
	return a.setCobrowseURL(ctx, req.GetAccountId(), req.GetUrl())
}

// setCobrowseURL sets an account's co-browse URL for an operator caller:
// url must be https://<label>.<base> (INVALID_ARGUMENT on field "url"
// otherwise) and not held by another account (ALREADY_EXISTS); the
// account's previous URL is released for others to take. Setting the URL
// the account already has succeeds without writing.
func (a *adminService) setCobrowseURL(ctx context.Context, acctID, url string) (*gatehousev1.SetCobrowseUrlResponse, error) {
	var v violations
	v.checkID("account_id", acctID, false)
	switch {
	case url == "":
		v.add("url", "is required")
	case len(url) > maxURLLength:
		v.add("url", "must be at most %d bytes", maxURLLength)
	default:
		if why := checkCobrowseURL(url, a.s.cobrowseBase); why != "" {
			v.add("url", "%s", why)
		}
	}
	if err := v.err(); err != nil {
		return nil, a.s.status(ctx, err)
	}
	var acct policy.Account
	rev, err := a.s.write(ctx, func(tx store.Tx) (err error) {
		if acct, err = getAccount(tx, acctID); err != nil {
			return err
		}
		switch owner, err := store.CobrowseOwner(tx, url); {
		case err == nil && owner != acct.ID:
			return newError(codes.AlreadyExists, "", nil, "co-browse URL %s is held by another account", url)
		case err == nil && acct.CobrowseURL == url:
			return nil // already this account's URL: nothing to write
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		return assignCobrowseURL(tx, &acct, url)
	})
	if err != nil {
		return nil, a.s.status(ctx, err)
	}
	store.WrittenAt(&acct, rev)
	return &gatehousev1.SetCobrowseUrlResponse{Url: acct.CobrowseURL, Account: accountToProto(&acct)}, nil
}
