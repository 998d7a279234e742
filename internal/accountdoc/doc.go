// Package accountdoc exports an account as one document and applies a
// document to an account: the plan (every create, update and delete with
// its fields before and after) and the writes, in one store transaction.
//
// It holds no write rule of its own. Every create, update and delete goes
// through Rules, which the service supplies with the very functions its
// single Create, Update and Delete RPCs run, so a document can do exactly
// what a sequence of those calls could do, no more. What this package adds
// is the order of the writes (references before what references them,
// deletions last and children first), the comparison of the document with
// the account, and the guards of a whole-account write: the expected
// revision and the bound on writes per transaction.
package accountdoc

import (
	"errors"
	"fmt"
)

// Format names the document version.
const Format = "gatehouse.account/v1"

// Sections are the document's keys, in the order a document lists them.
var Sections = []string{"account", "settings", "customizations", "allowlist", "privacy_rules", "business_hours", "portals", "teams", "representatives"}

// OutputOnly are the resource fields a document leaves out.
var OutputOnly = []string{"etag", "revision", "create_time", "account_id"}

// InvalidError is a document that cannot be applied as it is; Field names
// the offending field by its path in the request ("document.allowlist[2].id").
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// ItemError is a rule of the service refusing one resource of the
// document. Field is the resource's path in the request
// ("document.portals[3]", "document.settings"); Err is the rule's error.
type ItemError struct {
	Field string
	What  string // "portal \"eu\"", for messages
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("%s (%s): %v", e.What, e.Field, e.Err) }
func (e *ItemError) Unwrap() error { return e.Err }

// ChangedError refuses an apply guarded by an expected revision: the
// account changed after it, or the store no longer knows whether it did.
type ChangedError struct {
	Expected uint64
	// Revision is the first later commit that touched the account; 0 when
	// the history since Expected is no longer kept.
	Revision uint64
	Current  uint64
}

func (e *ChangedError) Error() string {
	if e.Revision == 0 {
		return fmt.Sprintf("the store no longer keeps its history since revision %d (now %d), so it cannot tell whether the account changed: plan again (gatehouse diff) and apply with the new revision", e.Expected, e.Current)
	}
	return fmt.Sprintf("the account changed at revision %d, after the expected revision %d (now %d): plan again (gatehouse diff) and review the new plan", e.Revision, e.Expected, e.Current)
}

// LimitError refuses an apply that needs more writes than one transaction
// may hold.
type LimitError struct {
	Writes int
	Max    int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("applying the document needs %d record writes, more than the %d one transaction may hold; apply it in parts (see docs/policy-as-code.md, \"Large documents\")", e.Writes, e.Max)
}

// errRollback is how Apply ends a dry run, or an apply that changes
// nothing, without committing.
var errRollback = errors.New("accountdoc: roll back")

// IsRollback reports whether err is the rollback of a dry run or of an
// apply that changed nothing: not a failure.
func IsRollback(err error) bool { return errors.Is(err, errRollback) }
