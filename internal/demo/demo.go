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
// reports whether it did. Existing data is never touched.
func Seed(ctx context.Context, st store.Store, now time.Time) (bool, error) {
	seeded := false
	_, err := st.Update(ctx, func(tx store.Tx) error {
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
		for _, r := range []policy.Representative{
			{ID: "alice", DisplayName: "Alice Agent", LiveGuideEnabled: true},
			{ID: "bob", DisplayName: "Bob Builder", LiveGuideEnabled: false},
		} {
			if err := store.PutRepresentative(tx, AccountID, &r); err != nil {
				return err
			}
		}
		return nil
	})
	return seeded, err
}
