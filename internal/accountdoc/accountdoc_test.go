package accountdoc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/internal/policy"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/bolt"
	"google.golang.org/protobuf/proto"
)

func TestFieldChanges_PathsAndZeroValues(t *testing.T) {
	before := &gatehousev1.Portal{Id: "p", Name: "Desk", Functions: &gatehousev1.SupportFunctions{SendFiles: true}, Etag: "3", Revision: 3}
	after := &gatehousev1.Portal{Id: "p", Name: "Desk", Functions: &gatehousev1.SupportFunctions{ReceiveFiles: true}}
	var got []string
	for _, f := range fieldChanges(before, after) {
		got = append(got, fmt.Sprintf("%s %s→%s", f.GetPath(), f.GetBeforeJson(), f.GetAfterJson()))
	}
	want := []string{"functions.receive_files →true", "functions.send_files true→"}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q (output-only fields and equal ones left out)", got, want)
	}
	// Unset and zero are the same: no functions message and an empty one,
	// an unset enum and its _UNSPECIFIED value.
	if !sameFields(&gatehousev1.Representative{Id: "r"}, &gatehousev1.Representative{Id: "r", Functions: &gatehousev1.SupportFunctions{}}) {
		t.Error("an empty functions message differs from none")
	}
	if !sameFields(&gatehousev1.PrivacyRule{Id: "x"}, &gatehousev1.PrivacyRule{Id: "x", Kind: gatehousev1.PrivacyRuleKind_PRIVACY_RULE_KIND_UNSPECIFIED}) {
		t.Error("an unspecified enum differs from none")
	}
	// A created resource lists its set fields, a deleted one too.
	if n := len(fieldChanges(nil, after)); n != 3 {
		t.Errorf("create lists %d fields, want 3 (id, name, functions.receive_files)", n)
	}
	if n := len(fieldChanges(before, nil)); n != 3 {
		t.Errorf("delete lists %d fields, want 3", n)
	}
}

func TestParentsFirstAndDepths(t *testing.T) {
	p := func(id, parent string) proto.Message { return &gatehousev1.Portal{Id: id, ParentId: parent} }
	items := []proto.Message{p("c", "b"), p("x", ""), p("b", "a"), p("a", ""), p("orphan", "gone"), p("loop1", "loop2"), p("loop2", "loop1")}
	var order []string
	for _, m := range parentsFirst(items) {
		order = append(order, str(m, "id"))
	}
	pos := func(id string) int { return slices.Index(order, id) }
	if len(order) != len(items) || pos("a") > pos("b") || pos("b") > pos("c") {
		t.Fatalf("order %v: want every item once, parents first", order)
	}
	d := depths(items)
	if d["a"] != 0 || d["b"] != 1 || d["c"] != 2 || d["orphan"] != 0 {
		t.Fatalf("depths %v", d)
	}
}

func TestCheckRevision(t *testing.T) {
	changes := func(rev uint64) ([]store.Change, error) {
		if rev < 5 {
			return nil, store.ErrCompacted
		}
		all := []store.Change{
			{Revision: 6, Keys: []string{"t/other/settings"}},
			{Revision: 7, Keys: []string{"t/acme/session/s-1", "sess/s-1"}}, // sessions are not in the document
			{Revision: 8, Keys: []string{"t/acme/allow/e1"}},
		}
		return slices.DeleteFunc(all, func(c store.Change) bool { return c.Revision <= rev }), nil
	}
	for _, c := range []struct {
		expected, current uint64
		changedAt         uint64 // 0: accepted
		compacted         bool
		invalid           bool
	}{
		{expected: 0, current: 8},
		{expected: 8, current: 8},
		{expected: 7, current: 8, changedAt: 8},
		{expected: 6, current: 7},
		{expected: 5, current: 8, changedAt: 8},
		{expected: 4, current: 8, compacted: true},
		{expected: 9, current: 8, invalid: true},
	} {
		err := checkRevision("acme", Options{ExpectedRevision: c.expected, Current: c.current, Changes: changes})
		var ce *ChangedError
		var ie *InvalidError
		switch {
		case c.invalid:
			if !errors.As(err, &ie) || ie.Field != "expected_revision" {
				t.Errorf("%+v: %v", c, err)
			}
		case c.compacted:
			if !errors.As(err, &ce) || ce.Revision != 0 {
				t.Errorf("%+v: %v", c, err)
			}
		case c.changedAt != 0:
			if !errors.As(err, &ce) || ce.Revision != c.changedAt {
				t.Errorf("%+v: %v", c, err)
			}
		case err != nil:
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// TestRecordTx_SettleUndoesRevisionOnlyWrites: a write that changes only
// a record's revision stamp is undone, so that applying what is stored
// commits nothing; real changes are counted.
func TestRecordTx_SettleUndoesRevisionOnlyWrites(t *testing.T) {
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	e := policy.AllowlistEntry{ID: "e1", Pattern: "example.com"}
	first, err := st.Update(ctx, func(tx store.Tx) error {
		a := policy.Account{ID: "acme", DisplayName: "Acme"}
		if err := store.PutAccount(tx, &a); err != nil {
			return err
		}
		return store.PutAllowlistEntry(tx, "acme", &e)
	})
	if err != nil {
		t.Fatal(err)
	}
	store.WrittenAt(&e, first)
	rev := st.Revision()
	var writes int
	_, err = st.Update(ctx, func(tx store.Tx) error {
		rt := newRecordTx(tx)
		same := e // rewritten unchanged: a new revision stamp only
		if err := store.PutAllowlistEntry(rt, "acme", &same); err != nil {
			return err
		}
		added := policy.AllowlistEntry{ID: "e2", Pattern: "example.org"}
		if err := store.PutAllowlistEntry(rt, "acme", &added); err != nil {
			return err
		}
		gone := policy.AllowlistEntry{ID: "e3", Pattern: "example.net"}
		if err := store.PutAllowlistEntry(rt, "acme", &gone); err != nil {
			return err
		}
		if err := store.DeleteAllowlistEntry(rt, "acme", "e3"); err != nil { // created and deleted: nothing
			return err
		}
		writes, err = rt.settle()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if writes != 1 {
		t.Fatalf("settle counted %d writes, want 1 (e2)", writes)
	}
	if err := st.View(ctx, func(tx store.ReadTx) error {
		got, err := store.GetAllowlistEntry(tx, "acme", "e1")
		if err != nil {
			return err
		}
		if got.Revision != e.Revision || got.Revision > rev {
			t.Errorf("e1 revision %d, want its old %d: the no-op write was not undone", got.Revision, e.Revision)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDocument(t *testing.T) {
	r := fakeCollections{}
	for _, c := range []struct {
		doc   *gatehousev1.AccountDocument
		field string
	}{
		{nil, "document"},
		{&gatehousev1.AccountDocument{Account: &gatehousev1.Account{Id: "a"}}, "document.format"},
		{&gatehousev1.AccountDocument{Format: Format}, "document.account.id"},
		{&gatehousev1.AccountDocument{Format: Format, Account: &gatehousev1.Account{Id: "a"},
			Teams: []*gatehousev1.Team{{Id: "t"}, {Name: "no id"}}}, "document.teams[1].id"},
		{&gatehousev1.AccountDocument{Format: Format, Account: &gatehousev1.Account{Id: "a"},
			Teams: []*gatehousev1.Team{{Id: "t"}, {Id: "t"}}}, "document.teams[1].id"},
		{&gatehousev1.AccountDocument{Format: Format, Account: &gatehousev1.Account{Id: "a"},
			Customizations: []*gatehousev1.Customization{{Language: "fr"}, {Language: "fr"}}}, "document.customizations[1].language"},
	} {
		_, err := checkDocument(c.doc, r)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%v: %v, want a violation of %s", c.doc, err, c.field)
		}
	}
	in := &gatehousev1.AccountDocument{Format: Format, Revision: 9, Account: &gatehousev1.Account{Id: "a", Etag: "3", CobrowseUrl: "https://a.support.me"},
		Teams: []*gatehousev1.Team{{Id: "t", Etag: "4", Revision: 4}}}
	out, err := checkDocument(in, r)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetAccount().GetEtag() != "" || out.GetTeams()[0].GetRevision() != 0 || out.GetAccount().GetCobrowseUrl() == "" || in.GetTeams()[0].GetEtag() != "4" {
		t.Errorf("checkDocument must strip output-only fields from a copy: %v", out)
	}
}

// fakeCollections names the collections; checkDocument reads only their
// sections.
type fakeCollections struct{ Rules }

type namedCollection struct {
	Collection
	name string
}

func (n namedCollection) Section() string { return n.name }

func (fakeCollections) Collections() []Collection {
	var out []Collection
	for _, s := range Sections[3:] {
		out = append(out, namedCollection{name: s})
	}
	return out
}
