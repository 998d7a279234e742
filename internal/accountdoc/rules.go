package accountdoc

import (
	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/proto"
)

// Rules are the service's own reads and write rules, in wire form. Writes
// are full replacements of a resource's mutable fields, unconditional (no
// etag: the apply as a whole is guarded by its expected revision). Reads
// return nil, nil for what does not exist.
type Rules interface {
	Account(tx store.ReadTx, id string) (*gatehousev1.Account, error)
	CreateAccount(tx store.Tx, a *gatehousev1.Account) error
	UpdateAccount(tx store.Tx, a *gatehousev1.Account) error
	// SetCobrowseURL assigns the account's co-browse URL.
	SetCobrowseURL(tx store.Tx, acct, url string) error

	Settings(tx store.ReadTx, acct string) (*gatehousev1.LiveGuideSettings, error)
	UpdateSettings(tx store.Tx, s *gatehousev1.LiveGuideSettings) error

	// Customizations returns the stored texts of every language, in the
	// order of the languages; Default the built-in ones of one language.
	Customizations(tx store.ReadTx, acct string) ([]*gatehousev1.Customization, error)
	DefaultCustomization(acct, lang string) *gatehousev1.Customization
	UpdateCustomization(tx store.Tx, c *gatehousev1.Customization) error

	// Collections are the account-owned resources with ids, in the order
	// they are created: business_hours, allowlist, privacy_rules, portals,
	// teams, representatives.
	Collections() []Collection
}

// Collection is one kind of account-owned resource with ids.
type Collection interface {
	// Section is the document key ("portals"); Kind names one resource
	// in messages ("portal").
	Section() string
	Kind() string
	// List returns every resource of the account in id order.
	List(tx store.ReadTx, acct string) ([]proto.Message, error)
	Get(tx store.ReadTx, acct, id string) (proto.Message, error)
	Create(tx store.Tx, acct string, m proto.Message) error
	Update(tx store.Tx, acct string, m proto.Message) error
	Delete(tx store.Tx, acct, id string) error
}
