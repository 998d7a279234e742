package service

import (
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/errs"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// CheckChainWrite checks that writing record id of kind ("portal" or
// "team", field its request field) under parentID keeps its chains within
// policy.MaxChainDepth and makes no cycle. parents maps every record of
// the account to its parent as stored. The chain that matters is the new
// parent's chain, plus id itself, plus the longest path below id: moving a
// record moves everything under it. A cycle is a field violation on
// parent_id; a chain too deep is a *policy.ChainTooDeepError
// (FAILED_PRECONDITION) naming the deepest record (the least id of
// those equally deep).
func CheckChainWrite(v *errs.Violations, kind, field, id, parentID string, parents map[string]string) error {
	// Up: how many records the new parent's chain holds.
	above := 0
	seen := map[string]bool{}
	for cur := parentID; cur != ""; {
		if cur == id {
			v.Add(field+".parent_id", "%s %q is %q itself or below it: that would make a cycle", kind, parentID, id)
			return nil
		}
		if seen[cur] {
			return policy.ErrBrokenChain // a stored loop: damaged data
		}
		seen[cur] = true
		above++
		next, ok := parents[cur]
		if !ok {
			break // checked by the reference check; nothing above
		}
		cur = next
	}
	if above >= policy.MaxChainDepth {
		return &policy.ChainTooDeepError{Kind: kind, ID: id, Depth: above + 1}
	}
	// Down: the longest chain of records below id, id itself counted.
	children := map[string][]string{}
	for c, p := range parents {
		if p != "" {
			children[p] = append(children[p], c)
		}
	}
	below := 1
	level := []string{id}
	visited := map[string]bool{id: true}
	for {
		var next []string
		for _, n := range level {
			for _, c := range children[n] {
				if !visited[c] {
					visited[c] = true
					next = append(next, c)
				}
			}
		}
		if len(next) == 0 {
			break
		}
		below++
		level = next
	}
	if above+below > policy.MaxChainDepth {
		return &policy.ChainTooDeepError{Kind: kind, ID: slices.Min(level), Depth: above + below}
	}
	return nil
}

// PortalParents maps every portal of acct to its parent.
func PortalParents(tx store.ReadTx, acct string) (map[string]string, error) {
	all, _, err := store.ListPortals(tx, acct, "", 0)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(all))
	for _, p := range all {
		m[p.ID] = p.ParentID
	}
	return m, nil
}

// TeamParents maps every team of acct to its parent.
func TeamParents(tx store.ReadTx, acct string) (map[string]string, error) {
	all, _, err := store.ListTeams(tx, acct, "", 0)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(all))
	for _, t := range all {
		m[t.ID] = t.ParentID
	}
	return m, nil
}

// ParentChanges reports whether a write gives record id the parent
// parentID: always for a new record, and for an existing one when it is
// moved. A write that keeps the parent (a rename, say) neither makes a
// cycle nor deepens a chain, so it is not refused for a chain that is
// already too deep.
func ParentChanges[T any](tx store.ReadTx, acct, id, parentID string, get func(store.ReadTx, string, string) (T, error), parentOf func(*T) string) bool {
	cur, err := get(tx, acct, id)
	return err != nil || parentOf(&cur) != parentID
}
