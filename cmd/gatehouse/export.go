package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// exportFormat names the version of the account document.
const exportFormat = "gatehouse.account/v1"

// accountDoc is everything an account owns that can be written back
// through the API. It holds no output-only fields (etags, revisions,
// creation times, the account_id of owned resources), so exporting an
// imported account gives the same document. Sessions, audit events and
// caller tokens are not part of it.
type accountDoc struct {
	// revision is the store revision the document was read at (0 when
	// unknown); applying ignores it.
	revision        uint64
	account         *gatehousev1.Account
	settings        *gatehousev1.LiveGuideSettings
	customizations  []*gatehousev1.Customization
	allowlist       []*gatehousev1.AllowlistEntry
	privacyRules    []*gatehousev1.PrivacyRule
	businessHours   []*gatehousev1.BusinessHours
	portals         []*gatehousev1.Portal
	teams           []*gatehousev1.Team
	representatives []*gatehousev1.Representative
}

// section is one top-level key of the document.
type section struct {
	key  string
	list bool
	// full renders every field, also false and empty ones (the settings,
	// so the document shows every switch).
	full   bool
	newMsg func() proto.Message
	get    func(d *accountDoc) []proto.Message
	set    func(d *accountDoc, ms []proto.Message)
}

func asMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

func fromMessages[T proto.Message](in []proto.Message) []T {
	out := make([]T, len(in))
	for i, m := range in {
		out[i] = m.(T)
	}
	return out
}

func one[T proto.Message](m T) []proto.Message {
	if m.ProtoReflect().IsValid() {
		return []proto.Message{m}
	}
	return nil
}

// sections are the document's keys in order. Import writes them in the
// order their references need (see importResources).
var sections = []section{
	{key: "account", newMsg: func() proto.Message { return &gatehousev1.Account{} },
		get: func(d *accountDoc) []proto.Message { return one(d.account) },
		set: func(d *accountDoc, ms []proto.Message) { d.account = ms[0].(*gatehousev1.Account) }},
	{key: "settings", full: true, newMsg: func() proto.Message { return &gatehousev1.LiveGuideSettings{} },
		get: func(d *accountDoc) []proto.Message { return one(d.settings) },
		set: func(d *accountDoc, ms []proto.Message) { d.settings = ms[0].(*gatehousev1.LiveGuideSettings) }},
	{key: "customizations", list: true, newMsg: func() proto.Message { return &gatehousev1.Customization{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.customizations) },
		set: func(d *accountDoc, ms []proto.Message) {
			d.customizations = fromMessages[*gatehousev1.Customization](ms)
		}},
	{key: "allowlist", list: true, newMsg: func() proto.Message { return &gatehousev1.AllowlistEntry{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.allowlist) },
		set: func(d *accountDoc, ms []proto.Message) { d.allowlist = fromMessages[*gatehousev1.AllowlistEntry](ms) }},
	{key: "privacy_rules", list: true, newMsg: func() proto.Message { return &gatehousev1.PrivacyRule{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.privacyRules) },
		set: func(d *accountDoc, ms []proto.Message) { d.privacyRules = fromMessages[*gatehousev1.PrivacyRule](ms) }},
	{key: "business_hours", list: true, newMsg: func() proto.Message { return &gatehousev1.BusinessHours{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.businessHours) },
		set: func(d *accountDoc, ms []proto.Message) {
			d.businessHours = fromMessages[*gatehousev1.BusinessHours](ms)
		}},
	{key: "portals", list: true, newMsg: func() proto.Message { return &gatehousev1.Portal{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.portals) },
		set: func(d *accountDoc, ms []proto.Message) { d.portals = fromMessages[*gatehousev1.Portal](ms) }},
	{key: "teams", list: true, newMsg: func() proto.Message { return &gatehousev1.Team{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.teams) },
		set: func(d *accountDoc, ms []proto.Message) { d.teams = fromMessages[*gatehousev1.Team](ms) }},
	{key: "representatives", list: true, newMsg: func() proto.Message { return &gatehousev1.Representative{} },
		get: func(d *accountDoc) []proto.Message { return asMessages(d.representatives) },
		set: func(d *accountDoc, ms []proto.Message) {
			d.representatives = fromMessages[*gatehousev1.Representative](ms)
		}},
}

// docOutputOnly are the fields the document leaves out.
var docOutputOnly = []string{"etag", "revision", "create_time", "account_id"}

// stripOutputOnly clears the fields the document leaves out.
func stripOutputOnly(m proto.Message) {
	r := m.ProtoReflect()
	for _, f := range docOutputOnly {
		if fd := r.Descriptor().Fields().ByName(protoreflect.Name(f)); fd != nil {
			r.Clear(fd)
		}
	}
}

// encode renders the document as YAML or JSON.
func (d *accountDoc) encode(format string) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	root.Content = append(root.Content, strNode("format"), strNode(exportFormat))
	if d.revision != 0 {
		root.Content = append(root.Content, strNode("revision"), &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(d.revision, 10)})
	}
	for _, s := range sections {
		ms := s.get(d)
		if len(ms) == 0 {
			continue
		}
		var val *yaml.Node
		if s.list {
			val = &yaml.Node{Kind: yaml.SequenceNode}
		}
		for _, m := range ms {
			n, err := resourceNode(m, s.full)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.key, err)
			}
			if !s.list {
				val = n
				break
			}
			val.Content = append(val.Content, n)
		}
		root.Content = append(root.Content, strNode(s.key), val)
	}
	if format == "json" {
		raw, err := nodeJSON(root)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	return encodeYAML(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}})
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// resourceNode renders one resource as a mapping node in field order,
// without output-only fields.
func resourceNode(m proto.Message, full bool) (*yaml.Node, error) {
	m = proto.Clone(m)
	stripOutputOnly(m)
	opts := protoJSON
	opts.EmitUnpopulated = full
	b, err := opts.Marshal(m)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	n := doc.Content[0]
	if full {
		// EmitUnpopulated also brings back the cleared output-only fields.
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !slices.Contains(docOutputOnly, n.Content[i].Value) {
				kept = append(kept, n.Content[i], n.Content[i+1])
			}
		}
		n.Content = kept
	}
	return n, nil
}

// decodeDoc reads a document in YAML or JSON (JSON is YAML). Unknown keys
// and fields are errors, so a typo is not silently dropped.
func decodeDoc(data []byte) (*accountDoc, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not an account document: want a mapping with format, account, settings, …")
	}
	root := doc.Content[0]
	d := &accountDoc{}
	var keys []string
	for _, s := range sections {
		keys = append(keys, s.key)
	}
	format := ""
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, root.Content[i+1]
		if k == "format" {
			format = v.Value
			continue
		}
		if k == "revision" {
			rev, err := strconv.ParseUint(v.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: revision %q: want a store revision (a whole number)", v.Line, v.Value)
			}
			d.revision = rev
			continue
		}
		idx := slices.IndexFunc(sections, func(s section) bool { return s.key == k })
		if idx < 0 {
			return nil, fmt.Errorf("line %d: unknown key %q (keys: format, revision, %s)", root.Content[i].Line, k, strings.Join(keys, ", "))
		}
		s := sections[idx]
		elems := []*yaml.Node{v}
		if s.list {
			if v.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("line %d: %s must be a list", v.Line, k)
			}
			elems = v.Content
		}
		var ms []proto.Message
		for j, e := range elems {
			raw, err := nodeJSON(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m := s.newMsg()
			if err := protojson.Unmarshal(raw, m); err != nil {
				where := k
				if s.list {
					where = fmt.Sprintf("%s[%d]", k, j)
				}
				return nil, fmt.Errorf("%s (line %d): %w", where, e.Line, err)
			}
			stripOutputOnly(m)
			ms = append(ms, m)
		}
		if len(ms) > 0 {
			s.set(d, ms)
		}
	}
	if format != exportFormat {
		return nil, fmt.Errorf("format %q: want %q", format, exportFormat)
	}
	if d.account == nil || d.account.GetId() == "" {
		return nil, errors.New("the document has no account id")
	}
	return d, nil
}

// docFormat picks json or yaml from --format, else the file extension.
func docFormat(flag, file string) (string, error) {
	switch flag {
	case "json", "yaml":
		return flag, nil
	case "":
	default:
		return "", usageError{fmt.Errorf("--format %q: want yaml or json", flag)}
	}
	if strings.HasSuffix(strings.ToLower(file), ".json") {
		return "json", nil
	}
	return "yaml", nil
}

func exportCmd(a *app) *cobra.Command {
	var file, format string
	cmd := &cobra.Command{
		Use:   "export --account ID [-f FILE]",
		Short: "Write a whole account as one YAML or JSON document",
		Long: `Write an account and everything it owns as one document: the account (id,
display name, co-browse URL), all Live Guide settings, the texts of every
language changed from the built-in defaults, the allowlist, privacy rules,
business hours, portals (parents before children, default subportals
included), teams (parents first) and representatives. Output-only fields
(etags, revisions, creation times) are left out, so export → import →
export gives the same document (but for its revision line). Sessions, audit events and caller tokens are
not exported.

The format follows --format, else the file's extension (.json → JSON),
else YAML. The server reads the whole account in one transaction; the
document records the store revision it was read at (revision:), which
"gatehouse apply --expect-revision" takes to refuse an apply when the
account changed since.`,
		Example: "  gatehouse export --account acme -f acme.yaml",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			fmtName, err := docFormat(format, file)
			if err != nil {
				return err
			}
			d, err := a.readAccount(cmd.Context(), acct)
			if err != nil {
				return err
			}
			b, err := d.encode(fmtName)
			if err != nil {
				return err
			}
			if file == "" || file == "-" {
				_, err = a.out.Write(b)
				return err
			}
			if err := writeAtomic(file, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
				return err
			}
			fmt.Fprintf(a.errOut, "exported account %s to %s\n", acct, file)
			return nil
		},
	}
	addAccountFlag(a, cmd, false)
	cmd.Flags().StringVarP(&file, "file", "f", "-", "output `file` (- for stdout)")
	cmd.Flags().StringVar(&format, "format", "", "yaml or json (default: from the file extension, else yaml)")
	a.choiceFlag(cmd, "format", []string{"yaml", "json"}, nil)
	return cmd
}

// readAccount reads the account's document, in one transaction on the
// server (ExportAccount).
func (a *app) readAccount(ctx context.Context, acct string) (*accountDoc, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	cctx, cancel := a.call(ctx)
	defer cancel()
	resp, err := c.admin.ExportAccount(cctx, &gatehousev1.ExportAccountRequest{AccountId: acct})
	if err != nil {
		return nil, err
	}
	return docFromProto(resp.GetDocument()), nil
}

// docFromProto and toProto convert between the document as the CLI
// renders it and as the API carries it.
func docFromProto(p *gatehousev1.AccountDocument) *accountDoc {
	d := &accountDoc{revision: p.GetRevision(), account: p.GetAccount(), settings: p.GetSettings(), customizations: p.GetCustomizations(),
		allowlist: p.GetAllowlist(), privacyRules: p.GetPrivacyRules(), businessHours: p.GetBusinessHours(),
		portals: p.GetPortals(), teams: p.GetTeams(), representatives: p.GetRepresentatives()}
	if !d.settings.ProtoReflect().IsValid() {
		d.settings = nil
	}
	return d
}

func (d *accountDoc) toProto() *gatehousev1.AccountDocument {
	return &gatehousev1.AccountDocument{Format: exportFormat, Revision: d.revision, Account: d.account, Settings: d.settings,
		Customizations: d.customizations, Allowlist: d.allowlist, PrivacyRules: d.privacyRules, BusinessHours: d.businessHours,
		Portals: d.portals, Teams: d.teams, Representatives: d.representatives}
}

// importResult is what import reports.
type importResult struct {
	Account  string         `json:"account"`
	Revision uint64         `json:"revision"`
	Created  map[string]int `json:"created"`
	Notes    []string       `json:"notes,omitempty"`
}

func importCmd(a *app) *cobra.Command {
	var file, rename string
	cmd := &cobra.Command{
		Use:   "import -f FILE [--account NEW-ID]",
		Short: "Recreate an exported account (refused when the account exists)",
		Long: `Recreate an account from a document written by export (YAML or JSON; - reads
stdin). The account must not exist yet: import never changes an existing
account. --account imports under another id; the co-browse URL is then not
carried over (it is unique across accounts) and can be generated anew.

The server creates the whole account in one transaction (ApplyAccount):
when anything in the document is refused, nothing is written and the error
names the field by its place in the document (document.portals[2].name).
Creating accounts and setting co-browse URLs needs an operator token.`,
		Example: "  gatehouse import -f acme.yaml\n  gatehouse import -f acme.yaml --account acme-staging",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("import needs -f FILE")}
			}
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(a.stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			d, err := decodeDoc(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var notes []string
			if rename != "" && rename != d.account.GetId() {
				d.account.Id = rename
				if d.account.GetCobrowseUrl() != "" {
					notes = append(notes, "the co-browse URL "+d.account.GetCobrowseUrl()+" stays with the original account; generate a new one with: gatehouse cobrowse-url generate --account "+rename)
					d.account.CobrowseUrl = ""
				}
			}
			res, err := a.importAccount(cmd.Context(), d)
			if err != nil {
				return err
			}
			res.Notes = append(res.Notes, notes...)
			return a.emit(res, func(w io.Writer) error {
				fmt.Fprintf(w, "imported account %s at revision %d\n", res.Account, res.Revision)
				tw := newTable(w)
				for _, s := range sections[1:] {
					row(tw, "  "+s.key, fmt.Sprint(res.Created[s.key]))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				for _, n := range res.Notes {
					fmt.Fprintln(w, "note:", n)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "document `file` (- for stdin)")
	cmd.Flags().StringVarP(&rename, "account", "a", "", "import under this account `id` instead of the document's")
	return cmd
}

// importAccount creates the account of d from the document with one
// ApplyAccount (with prune, so the new account holds exactly the document:
// a top portal's automatic subportal that the document lacks is not
// kept). The server writes everything in one transaction: a failure
// leaves nothing behind.
func (a *app) importAccount(ctx context.Context, d *accountDoc) (*importResult, error) {
	acct := d.account.GetId()
	// The plan tells whether the account exists; applying it guarded by
	// the plan's revision makes sure nobody created it in between.
	plan, err := a.applyDoc(ctx, d, true, true, 0)
	if err != nil {
		return nil, wrapStatus("account "+acct, err)
	}
	if !slices.ContainsFunc(plan.GetChanges(), func(ch *gatehousev1.ResourceChange) bool {
		return ch.GetSection() == "account" && ch.GetAction() == gatehousev1.ChangeAction_CHANGE_ACTION_CREATE
	}) {
		return nil, fmt.Errorf("account %q already exists; import refuses to change an existing account (delete it first, import under another id with --account, or use apply)", acct)
	}
	resp, err := a.applyDoc(ctx, d, false, true, plan.GetRevision())
	if err != nil {
		return nil, wrapStatus("account "+acct, err)
	}
	res := &importResult{Account: acct, Revision: resp.GetRevision(), Created: map[string]int{}}
	for _, s := range sections[1:] {
		n := len(s.get(d))
		if s.key == "settings" && n > 0 {
			n = 1
		}
		res.Created[s.key] = n
	}
	return res, nil
}

// wrapStatus names the resource a call failed on, keeping the gRPC status
// (and its details) reachable with errors.As and status.FromError.
func wrapStatus(what string, err error) error {
	return &stepError{what: what, err: err}
}

type stepError struct {
	what string
	err  error
}

func (e *stepError) Error() string { return e.what + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }
