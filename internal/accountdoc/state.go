package accountdoc

import (
	"slices"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// state is what an account holds, in wire form, output-only fields kept.
type state struct {
	account  *gatehousev1.Account // nil: no such account
	settings *gatehousev1.LiveGuideSettings
	// customs are the stored texts that differ from the built-in ones.
	customs []*gatehousev1.Customization
	lists   map[string][]proto.Message
}

func readState(tx store.ReadTx, r Rules, acct string) (*state, error) {
	st := &state{lists: map[string][]proto.Message{}}
	a, err := r.Account(tx, acct)
	if err != nil || a == nil {
		return st, err
	}
	st.account = a
	if st.settings, err = r.Settings(tx, acct); err != nil {
		return nil, err
	}
	cs, err := r.Customizations(tx, acct)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if !sameFields(c, r.DefaultCustomization(acct, c.GetLanguage())) {
			st.customs = append(st.customs, c)
		}
	}
	for _, c := range r.Collections() {
		if st.lists[c.Section()], err = c.List(tx, acct); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Export reads the document of account acct in tx; nil, nil when the
// account does not exist. The document records the transaction's revision.
func Export(tx store.ReadTx, r Rules, acct string) (*gatehousev1.AccountDocument, error) {
	st, err := readState(tx, r, acct)
	if err != nil || st.account == nil {
		return nil, err
	}
	d := &gatehousev1.AccountDocument{Format: Format, Revision: tx.Revision(),
		Account: strip(st.account), Settings: strip(st.settings)}
	for _, c := range st.customs {
		d.Customizations = append(d.Customizations, strip(c))
	}
	for _, c := range r.Collections() {
		items := st.lists[c.Section()]
		if hierarchical(c.Section()) {
			items = parentsFirst(items)
		}
		for _, m := range items {
			setSection(d, c.Section(), append(section(d, c.Section()), strip(m)))
		}
	}
	return d, nil
}

// strip returns a copy of m without its output-only fields.
func strip[T proto.Message](m T) T {
	if !m.ProtoReflect().IsValid() {
		return m
	}
	c := proto.CloneOf(m)
	r := c.ProtoReflect()
	for _, f := range OutputOnly {
		if fd := r.Descriptor().Fields().ByName(protoreflect.Name(f)); fd != nil {
			r.Clear(fd)
		}
	}
	return c
}

// section returns the document's list of one collection section.
func section(d *gatehousev1.AccountDocument, name string) []proto.Message {
	r := d.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
	l := r.Get(fd).List()
	out := make([]proto.Message, l.Len())
	for i := range l.Len() {
		out[i] = l.Get(i).Message().Interface()
	}
	return out
}

func setSection(d *gatehousev1.AccountDocument, name string, items []proto.Message) {
	r := d.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
	l := r.NewField(fd).List()
	for _, m := range items {
		l.Append(protoreflect.ValueOfMessage(m.ProtoReflect()))
	}
	r.Set(fd, protoreflect.ValueOfList(l))
}

func hierarchical(section string) bool { return section == "portals" || section == "teams" }

func str(m proto.Message, field string) string {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil {
		return ""
	}
	return r.Get(fd).String()
}

// keyOf is what identifies a resource within its section.
func keyOf(m proto.Message) string {
	if c, ok := m.(*gatehousev1.Customization); ok {
		return c.GetLanguage()
	}
	return str(m, "id")
}

// parentsFirst orders items so that every item comes after its parent
// (when the parent is among them), keeping the given order otherwise: each
// root is followed by its descendants, depth first. Items in a cycle come
// last, for the rules to refuse.
func parentsFirst(items []proto.Message) []proto.Message {
	ids := map[string]bool{}
	children := map[string][]proto.Message{}
	for _, m := range items {
		ids[str(m, "id")] = true
	}
	var roots []proto.Message
	for _, m := range items {
		if p := str(m, "parent_id"); p == "" || !ids[p] {
			roots = append(roots, m)
		} else {
			children[p] = append(children[p], m)
		}
	}
	out := make([]proto.Message, 0, len(items))
	seen := map[string]bool{}
	var visit func(m proto.Message)
	visit = func(m proto.Message) {
		id := str(m, "id")
		if seen[id] {
			return
		}
		seen[id] = true
		out = append(out, m)
		for _, c := range children[id] {
			visit(c)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	for _, m := range items {
		visit(m)
	}
	return out
}

// depths returns each item's depth below the top of its chain (0: no
// parent among items); a cycle counts as depth 0 where it is entered.
func depths(items []proto.Message) map[string]int {
	parent := map[string]string{}
	for _, m := range items {
		parent[str(m, "id")] = str(m, "parent_id")
	}
	out := map[string]int{}
	for id := range parent {
		d, seen := 0, map[string]bool{id: true}
		for p := parent[id]; p != ""; p = parent[p] {
			if _, ok := parent[p]; !ok || seen[p] {
				break
			}
			seen[p] = true
			d++
		}
		out[id] = d
	}
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
