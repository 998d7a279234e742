// Package demo seeds a small, realistic data set into an empty store so
// that a freshly started daemon can be called right away.
package demo

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// AccountID is the id of the demo account.
const AccountID = "demo"

// Seed writes the demo account into st when st holds no account at all, and
// reports whether it did. Existing data is never touched. Replicas that
// seed one shared store at the same time seed it once: the store commits
// the first, the others' transactions conflict, run again and find the
// account there. The account has
// Live Guide settings, an allowlist entry, two privacy rules, a portal with
// its default subportal, a team and two representatives (alice may run Live
// Guide sessions, bob may not).
func Seed(ctx context.Context, st store.Store, now time.Time) (bool, error) {
	seeded := false
	_, err := st.Update(ctx, func(tx store.Tx) error {
		// The function runs again when another writer committed since
		// its reads (on etcd, another replica seeding at the same time):
		// only the last run's outcome counts.
		seeded = false
		ids, err := store.AccountIDs(tx)
		if err != nil || len(ids) > 0 {
			return err
		}
		seeded = true
		acct := policy.Account{ID: AccountID, DisplayName: "Demo Bank", CreateTime: now.UTC()}
		if err := store.PutAccount(tx, &acct); err != nil {
			return err
		}
		settings := policy.DefaultLiveGuideSettings(AccountID)
		settings.AgentInputRestricted = true
		settings.Chat = true
		settings.VideoAgent = true
		settings.DisplayAgentName = true
		settings.SessionStartURL = "https://www.example.com/help"
		if err := store.PutSettings(tx, &settings); err != nil {
			return err
		}
		allow := policy.AllowlistEntry{ID: "site", Pattern: "example.com", Description: "the bank's web site"}
		if err := store.PutAllowlistEntry(tx, AccountID, &allow); err != nil {
			return err
		}
		for _, r := range []policy.PrivacyRule{
			{ID: "card", Kind: policy.PrivacyRuleKindDataMask, Selector: "input[name=cvv], #card-number", URLPattern: "shop.example.com/checkout", Description: "card data"},
			{ID: "transfer", Kind: policy.PrivacyRuleKindButtonBlock, Selector: "button.transfer", URLPattern: "www.example.com/transfer", Description: "only customers move money"},
		} {
			if err := store.PutPrivacyRule(tx, AccountID, &r); err != nil {
				return err
			}
		}
		all := policy.Functions(1<<policy.NumFunctions - 1)
		for _, p := range []policy.Portal{
			{ID: "helpdesk", Name: "Help desk", Functions: all.With(policy.FunctionRecordCustomerScreen, false), NotificationEmail: "support-reports@example.com"},
			{ID: "helpdesk-default", ParentID: "helpdesk", Name: "Help desk (default)", Functions: all},
		} {
			if err := store.PutPortal(tx, AccountID, &p); err != nil {
				return err
			}
		}
		team := policy.Team{ID: "tier1", Name: "Tier 1", PortalID: "helpdesk"}
		if err := store.PutTeam(tx, AccountID, &team); err != nil {
			return err
		}
		some := policy.Functions(0).With(policy.FunctionSendFiles, true).With(policy.FunctionReceiveFiles, true).
			With(policy.FunctionAnnotations, true).With(policy.FunctionInviteExternalSpecialist, true).
			With(policy.FunctionCustomerScreenSharing, true)
		for _, r := range []policy.Representative{
			{ID: "alice", DisplayName: "Alice Agent", TeamID: "tier1", Functions: some, LiveGuideEnabled: true},
			{ID: "bob", DisplayName: "Bob Builder", TeamID: "tier1", Functions: all, LiveGuideEnabled: false},
		} {
			if err := store.PutRepresentative(tx, AccountID, &r); err != nil {
				return err
			}
		}
		return nil
	})
	return seeded, err
}
