package accountdoc

import (
	"errors"
	"fmt"
	"slices"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/proto"
)

// Options of one Apply.
type Options struct {
	// DryRun plans without committing.
	DryRun bool
	// Prune deletes what the account holds and the document does not.
	Prune bool
	// ExpectedRevision, when not 0, refuses the apply with a *ChangedError
	// when a commit after it touched the account.
	ExpectedRevision uint64
	// Current is the store revision the transaction builds on (the last
	// commit); a plan reports it.
	Current uint64
	// Changes returns the commits after a revision (store.ReadTx.Changes).
	Changes func(rev uint64) ([]store.Change, error)
	// MaxWrites, when positive, is the most records the apply may write
	// (put or delete) in its one transaction; more fail with *LimitError.
	MaxWrites int
}

// Apply brings the account of doc to the document's state inside tx, with
// the rules r, and returns the plan: every resource created, updated and
// deleted, with its fields before and after. Resources are created and
// updated in the order references need (business hours, allowlist,
// privacy rules, portals parents first, teams parents first,
// representatives, then settings and texts), and deleted (with Prune)
// after that in the reverse order, children first.
//
// When nothing changes, and always with DryRun, Apply returns the plan
// with an error for which IsRollback is true: the caller's Update must
// then roll back, committing nothing. Any other error is the reason the
// document cannot be applied; nothing may be committed either.
func Apply(tx store.Tx, r Rules, in *gatehousev1.AccountDocument, o Options) (*gatehousev1.ApplyAccountResponse, error) {
	doc, err := checkDocument(in, r)
	if err != nil {
		return nil, err
	}
	acct := doc.GetAccount().GetId()
	if err := checkRevision(acct, o); err != nil {
		return nil, err
	}
	rt := newRecordTx(tx)
	before, err := readState(rt, r, acct)
	if err != nil {
		return nil, err
	}
	if err := write(rt, r, doc, before, o.Prune); err != nil {
		return nil, err
	}
	after, err := readState(rt, r, acct)
	if err != nil {
		return nil, err
	}
	writes, err := rt.settle()
	if err != nil {
		return nil, err
	}
	resp := &gatehousev1.ApplyAccountResponse{Changes: plan(before, after), Revision: o.Current}
	if !o.Prune {
		resp.NotPruned = notPruned(after, doc)
	}
	if o.MaxWrites > 0 && writes > o.MaxWrites {
		return resp, &LimitError{Writes: writes, Max: o.MaxWrites}
	}
	if o.DryRun || len(resp.Changes) == 0 {
		return resp, errRollback
	}
	resp.Applied = true
	return resp, nil
}

// checkDocument refuses what no rule would catch: a foreign format, a
// missing account id, resources without ids (applying twice would create
// them twice) and ids given twice. It returns a copy without output-only
// fields.
func checkDocument(in *gatehousev1.AccountDocument, r Rules) (*gatehousev1.AccountDocument, error) {
	switch {
	case in == nil:
		return nil, &InvalidError{Field: "document", Reason: "is required"}
	case in.GetFormat() == "":
		return nil, &InvalidError{Field: "document.format", Reason: fmt.Sprintf("is required (%q)", Format)}
	case in.GetFormat() != Format:
		return nil, &InvalidError{Field: "document.format", Reason: fmt.Sprintf("is %q; want %q", in.GetFormat(), Format)}
	case in.GetAccount().GetId() == "":
		return nil, &InvalidError{Field: "document.account.id", Reason: "is required"}
	}
	doc := &gatehousev1.AccountDocument{Format: in.GetFormat(), Account: strip(in.GetAccount())}
	doc.Account.CobrowseUrl = in.GetAccount().GetCobrowseUrl()
	if in.Settings != nil {
		doc.Settings = strip(in.GetSettings())
	}
	langs := map[string]int{}
	for i, c := range in.GetCustomizations() {
		field := fmt.Sprintf("document.customizations[%d].language", i)
		if c.GetLanguage() == "" {
			return nil, &InvalidError{Field: field, Reason: "is required"}
		}
		if j, dup := langs[c.GetLanguage()]; dup {
			return nil, &InvalidError{Field: field, Reason: fmt.Sprintf("%q is given twice (also customizations[%d])", c.GetLanguage(), j)}
		}
		langs[c.GetLanguage()] = i
		doc.Customizations = append(doc.Customizations, strip(c))
	}
	for _, c := range r.Collections() {
		ids := map[string]int{}
		var items []proto.Message
		for i, m := range section(in, c.Section()) {
			field := fmt.Sprintf("document.%s[%d].id", c.Section(), i)
			id := str(m, "id")
			if id == "" {
				return nil, &InvalidError{Field: field, Reason: "is required in a document (an id is what lets a second apply find the resource instead of creating another)"}
			}
			if j, dup := ids[id]; dup {
				return nil, &InvalidError{Field: field, Reason: fmt.Sprintf("%q is given twice (also %s[%d])", id, c.Section(), j)}
			}
			ids[id] = i
			items = append(items, strip(m))
		}
		setSection(doc, c.Section(), items)
	}
	return doc, nil
}

// checkRevision refuses the apply when a commit after o.ExpectedRevision
// touched a record of the account (sessions aside: they are not part of
// the document).
func checkRevision(acct string, o Options) error {
	if o.ExpectedRevision == 0 {
		return nil
	}
	if o.ExpectedRevision > o.Current {
		return &InvalidError{Field: "expected_revision", Reason: fmt.Sprintf("%d is ahead of the store (revision %d)", o.ExpectedRevision, o.Current)}
	}
	changes, err := o.Changes(o.ExpectedRevision)
	if errors.Is(err, store.ErrCompacted) {
		return &ChangedError{Expected: o.ExpectedRevision, Current: o.Current}
	}
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.Revision <= o.ExpectedRevision || c.Revision > o.Current {
			continue
		}
		for _, k := range c.Keys {
			if info := store.ParseKey(k); info.Account == acct && info.Session == "" {
				return &ChangedError{Expected: o.ExpectedRevision, Revision: c.Revision, Current: o.Current}
			}
		}
	}
	return nil
}

// write makes the writes, each through the service's rules.
func write(tx store.Tx, r Rules, doc *gatehousev1.AccountDocument, before *state, prune bool) error {
	acct := doc.GetAccount().GetId()
	a := doc.GetAccount()
	item := func(field, what string, err error) error {
		if err == nil {
			return nil
		}
		return &ItemError{Field: field, What: what, Err: err}
	}
	what := fmt.Sprintf("account %q", acct)
	if before.account == nil {
		create := proto.CloneOf(a)
		create.CobrowseUrl = ""
		if err := r.CreateAccount(tx, create); err != nil {
			return item("document.account", what, err)
		}
	} else if a.GetDisplayName() != before.account.GetDisplayName() || a.GetDecisionLogPercent() != before.account.GetDecisionLogPercent() {
		if err := r.UpdateAccount(tx, a); err != nil {
			return item("document.account", what, err)
		}
	}
	// The co-browse URL is set when the document names one; a document
	// without one leaves the account's as it is (no call removes it).
	if u := a.GetCobrowseUrl(); u != "" && (before.account == nil || u != before.account.GetCobrowseUrl()) {
		if err := r.SetCobrowseURL(tx, acct, u); err != nil {
			return item("document.account.cobrowse_url", what, err)
		}
	}

	for _, c := range r.Collections() {
		items := section(doc, c.Section())
		index := map[string]int{}
		for i, m := range items {
			index[str(m, "id")] = i
		}
		if hierarchical(c.Section()) {
			items = parentsFirst(items)
		}
		for _, m := range items {
			id := str(m, "id")
			field := fmt.Sprintf("document.%s[%d]", c.Section(), index[id])
			what := fmt.Sprintf("%s %q", c.Kind(), id)
			cur, err := c.Get(tx, acct, id)
			if err != nil {
				return item(field, what, err)
			}
			switch {
			case cur == nil:
				err = c.Create(tx, acct, m)
			case !sameFields(cur, m):
				err = c.Update(tx, acct, m)
			}
			if err != nil {
				return item(field, what, err)
			}
		}
	}

	if s := doc.GetSettings(); s != nil {
		s.AccountId = acct
		cur, err := r.Settings(tx, acct)
		if err != nil {
			return item("document.settings", "settings", err)
		}
		if !sameFields(cur, s) {
			if err := r.UpdateSettings(tx, s); err != nil {
				return item("document.settings", "settings", err)
			}
		}
	}
	stored, err := r.Customizations(tx, acct)
	if err != nil {
		return err
	}
	current := func(lang string) *gatehousev1.Customization {
		for _, c := range stored {
			if c.GetLanguage() == lang {
				return c
			}
		}
		return r.DefaultCustomization(acct, lang)
	}
	inDoc := map[string]bool{}
	for i, c := range doc.GetCustomizations() {
		c.AccountId = acct
		inDoc[c.GetLanguage()] = true
		if !sameFields(current(c.GetLanguage()), c) {
			if err := r.UpdateCustomization(tx, c); err != nil {
				return item(fmt.Sprintf("document.customizations[%d]", i), fmt.Sprintf("texts of %q", c.GetLanguage()), err)
			}
		}
	}
	if !prune {
		return nil
	}
	for _, c := range before.customs {
		if !inDoc[c.GetLanguage()] {
			def := strip(r.DefaultCustomization(acct, c.GetLanguage()))
			def.AccountId = acct
			if err := r.UpdateCustomization(tx, def); err != nil {
				return item("document.customizations", fmt.Sprintf("texts of %q", c.GetLanguage()), err)
			}
		}
	}
	cols := slices.Clone(r.Collections())
	slices.Reverse(cols)
	for _, c := range cols {
		if err := prunePart(tx, c, acct, doc); err != nil {
			return err
		}
	}
	return nil
}

// prunePart deletes the resources of one collection the document does not
// hold, children before their parents. Deleting a top portal deletes its
// subportals with it (the last subportal of a top portal cannot be deleted
// on its own), so top portals go before the subportals right under them.
func prunePart(tx store.Tx, c Collection, acct string, doc *gatehousev1.AccountDocument) error {
	keep := map[string]bool{}
	for _, m := range section(doc, c.Section()) {
		keep[str(m, "id")] = true
	}
	all, err := c.List(tx, acct)
	if err != nil {
		return err
	}
	depth := depths(all)
	var victims []string
	for _, m := range all {
		if id := str(m, "id"); !keep[id] {
			victims = append(victims, id)
		}
	}
	rank := func(id string) int {
		d := depth[id]
		if c.Section() == "portals" && d <= 1 {
			return -1 - d // after every deeper one: top portals (-1), then subportals (-2)
		}
		return d
	}
	slices.SortStableFunc(victims, func(a, b string) int { return rank(b) - rank(a) })
	for _, id := range victims {
		cur, err := c.Get(tx, acct, id)
		if err != nil {
			return err
		}
		if cur == nil {
			continue // deleted with its top portal
		}
		if err := c.Delete(tx, acct, id); err != nil {
			return &ItemError{Field: "document." + c.Section(), What: fmt.Sprintf("deleting %s %q", c.Kind(), id), Err: err}
		}
	}
	return nil
}

// plan compares two states section by section, ids in order.
func plan(before, after *state) []*gatehousev1.ResourceChange {
	var out []*gatehousev1.ResourceChange
	add := func(sectionName string, b, a []proto.Message) {
		bm, am := map[string]proto.Message{}, map[string]proto.Message{}
		for _, m := range b {
			bm[keyOf(m)] = m
		}
		for _, m := range a {
			am[keyOf(m)] = m
		}
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			bv, av := bm[k], am[k]
			ch := &gatehousev1.ResourceChange{Section: sectionName, Id: k, Fields: fieldChanges(bv, av)}
			switch {
			case bv == nil:
				ch.Action = gatehousev1.ChangeAction_CHANGE_ACTION_CREATE
			case av == nil:
				ch.Action = gatehousev1.ChangeAction_CHANGE_ACTION_DELETE
			case len(ch.Fields) > 0:
				ch.Action = gatehousev1.ChangeAction_CHANGE_ACTION_UPDATE
			default:
				continue
			}
			out = append(out, ch)
		}
	}
	one := func(m proto.Message) []proto.Message {
		if m == nil || !m.ProtoReflect().IsValid() {
			return nil
		}
		return []proto.Message{m}
	}
	var b, a []proto.Message
	if before.account != nil {
		b = append(b, before.account)
	}
	if after.account != nil {
		a = append(a, after.account)
	}
	add("account", b, a)
	add("settings", one(before.settings), one(after.settings))
	add("customizations", asMessages(before.customs), asMessages(after.customs))
	for _, s := range Sections[3:] {
		add(s, before.lists[s], after.lists[s])
	}
	acct := after.account.GetId()
	if acct == "" {
		acct = before.account.GetId()
	}
	for _, ch := range out {
		if ch.Section == "settings" {
			ch.Id = acct
		}
	}
	return out
}

func asMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// notPruned lists what the account holds and the document does not.
func notPruned(st *state, doc *gatehousev1.AccountDocument) []*gatehousev1.ResourceChange {
	var out []*gatehousev1.ResourceChange
	del := func(section string, m proto.Message) {
		out = append(out, &gatehousev1.ResourceChange{Action: gatehousev1.ChangeAction_CHANGE_ACTION_DELETE, Section: section,
			Id: keyOf(m), Fields: fieldChanges(m, nil)})
	}
	langs := map[string]bool{}
	for _, c := range doc.GetCustomizations() {
		langs[c.GetLanguage()] = true
	}
	for _, c := range st.customs {
		if !langs[c.GetLanguage()] {
			del("customizations", c)
		}
	}
	for _, s := range Sections[3:] {
		keep := map[string]bool{}
		for _, m := range section(doc, s) {
			keep[str(m, "id")] = true
		}
		for _, m := range st.lists[s] {
			if !keep[str(m, "id")] {
				del(s, m)
			}
		}
	}
	return out
}
