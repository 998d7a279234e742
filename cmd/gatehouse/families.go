package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// family is one kind of resource with Create / Get / List / Update /
// Delete RPCs. Its commands are built from this description.
type family struct {
	use     string // command name, e.g. "portals"
	aliases []string
	kind    string // singular, for messages: "portal"
	short   string
	long    string
	account bool // owned by an account: every command takes --account
	// confirmDelete: delete removes much (a whole tenant), so it asks first
	// on a terminal and needs --yes otherwise.
	confirmDelete bool
	newItem       func() proto.Message
	fields        []fieldSpec
	columns       []column
	// one and many name the family's AdminService methods: Get<one>,
	// List<many>, Create<one>, Update<one> and Delete<one> (see rpc.go).
	one, many string
}

const functionUsage = "support function `name=bool` (repeatable; \"all=false\" for all twelve), e.g. send_files=true"

func families() []*family {
	return []*family{accountsFamily(), allowlistFamily(), privacyRulesFamily(), portalsFamily(),
		teamsFamily(), representativesFamily(), businessHoursFamily()}
}

func accountsFamily() *family {
	return &family{
		use: "accounts", aliases: []string{"account"}, kind: "account", one: "Account", many: "Accounts",
		short:   "Manage accounts (tenants)",
		long:    "Accounts are tenants; everything else belongs to one account. Creating and deleting accounts needs an operator token.",
		newItem: func() proto.Message { return &gatehousev1.Account{} },
		fields: []fieldSpec{
			{"display-name", "display_name", "human-readable `name`"},
			{"decision-log-percent", "decision_log_percent", "log this `percent` (0-100) of the account's decisions (0: off)"},
		},
		columns:       cols("id", "display_name", "cobrowse_url", "create_time"),
		confirmDelete: true,
	}
}

func allowlistFamily() *family {
	return &family{
		use: "allowlist", aliases: []string{"allowlist-entries"}, kind: "allowlist entry", account: true, one: "AllowlistEntry", many: "AllowlistEntries",
		short: "Manage the co-browse domain allowlist",
		long: `An empty allowlist lets every http(s) page be co-browsed; a non-empty one only
the pages an entry matches. Patterns are [*.]host[:port][/path-prefix]:
"example.com" matches the host and its subdomains, "*.example.com" subdomains only.`,
		newItem: func() proto.Message { return &gatehousev1.AllowlistEntry{} },
		fields: []fieldSpec{
			{"pattern", "pattern", "`pattern` such as example.com, *.example.com, example.com:8443/help/"},
			{"description", "description", "free `text` for admins"},
			{"allow-public-suffix-subdomains", "allow_public_suffix_subdomains", "accept a pattern with public suffixes under its host (amazonaws.com covers every *.s3.amazonaws.com site)"},
		},
		columns: cols("id", "pattern", "description"),
	}
}

func privacyRulesFamily() *family {
	return &family{
		use: "privacy-rules", aliases: []string{"privacy-rule"}, kind: "privacy rule", account: true, one: "PrivacyRule", many: "PrivacyRules",
		short: "Manage privacy rules (button blocking, data masking)",
		long: `BUTTON_BLOCK: the agent may not click matching elements. DATA_MASK: matching
elements are hidden from the agent, who may not type into them either.
Selectors are CSS over the element and its ancestors.`,
		newItem: func() proto.Message { return &gatehousev1.PrivacyRule{} },
		fields: []fieldSpec{
			{"kind", "kind", "what happens to matching elements"},
			{"selector", "selector", "CSS `selector`, e.g. \"form#pay button.submit\""},
			{"url-pattern", "url_pattern", "limit the rule to pages matching `pattern` (allowlist syntax; empty: every page)"},
			{"description", "description", "free `text` for admins"},
		},
		columns: cols("id", "kind", "selector", "url_pattern", "description"),
	}
}

func portalsFamily() *family {
	return &family{
		use: "portals", aliases: []string{"portal"}, kind: "portal", account: true, one: "Portal", many: "Portals",
		short: "Manage remote-support portals and subportals",
		long: `A top portal (no --parent) comes with a default subportal "<id>-default"
that has every function on. A function is on for a representative only when
it is on for the subportal, every ancestor portal and the representative.`,
		newItem: func() proto.Message { return &gatehousev1.Portal{} },
		fields: []fieldSpec{
			{"parent", "parent_id", "parent portal `id` (empty for a top portal)"},
			{"name", "name", "human-readable `name`"},
			{"function", "functions", functionUsage},
			{"notification-email", "notification_email", "`address` that receives completed-session records"},
			{"business-hours", "business_hours_id", "business hours `id` in force (empty: always open)"},
		},
		columns: cols("id", "parent_id", "name", "functions", "business_hours_id", "notification_email"),
	}
}

func teamsFamily() *family {
	return &family{
		use: "teams", aliases: []string{"team"}, kind: "team", account: true, one: "Team", many: "Teams",
		short:   "Manage teams and subteams",
		long:    "A subteam with no portal of its own inherits its parent's.",
		newItem: func() proto.Message { return &gatehousev1.Team{} },
		fields: []fieldSpec{
			{"parent", "parent_id", "parent team `id` (empty for a top team)"},
			{"name", "name", "human-readable `name`"},
			{"portal", "portal_id", "portal `id` the team serves (empty: inherit)"},
		},
		columns: cols("id", "parent_id", "name", "portal_id"),
	}
}

func representativesFamily() *family {
	return &family{
		use: "representatives", aliases: []string{"representative", "reps"}, kind: "representative", account: true, one: "Representative", many: "Representatives",
		short:   "Manage representatives (agents)",
		newItem: func() proto.Message { return &gatehousev1.Representative{} },
		fields: []fieldSpec{
			{"display-name", "display_name", "real `name`, shown to customers when display_agent_name is on"},
			{"team", "team_id", "team `id` (empty for none)"},
			{"function", "functions", functionUsage},
			{"live-guide", "live_guide_enabled", "may run Live Guide (co-browse) sessions"},
		},
		columns: cols("id", "display_name", "team_id", "live_guide_enabled", "functions"),
	}
}

func businessHoursFamily() *family {
	count := func(field, unit string) column {
		return column{header: strings.ToUpper(field), value: func(m protoreflect.Message) string {
			n := m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field))).List().Len()
			if n == 1 {
				return "1 " + unit
			}
			return fmt.Sprintf("%d %ss", n, unit)
		}}
	}
	return &family{
		use: "business-hours", aliases: []string{"hours"}, kind: "business-hours set", account: true, one: "BusinessHours", many: "BusinessHours",
		short: "Manage business hours (weekly windows and holidays)",
		long: `Weekly windows: --window "mon 09:00-17:00", also "mon-fri 09:00-17:00" or
"sat,sun 10:00-14:00" (one window per day; an end before the start crosses
midnight; "24:00" ends at midnight). Holidays: --holiday "2026-12-25 closed
Christmas" or --holiday "2026-12-24 09:00-12:00 Christmas Eve". On update,
--window / --holiday replace the whole list; "none" empties it.`,
		newItem: func() proto.Message { return &gatehousev1.BusinessHours{} },
		fields: []fieldSpec{
			{"name", "name", "human-readable `name`"},
			{"time-zone", "time_zone", "IANA time `zone`, e.g. Europe/Berlin"},
			{"window", "weekly", "weekly window \"DAYS HH:MM-HH:MM\" (repeatable)"},
			{"holiday", "holidays", "holiday \"YYYY-MM-DD closed|HH:MM-HH:MM [NAME]\" (repeatable)"},
		},
		columns: append(cols("id", "name", "time_zone"), count("weekly", "window"), count("holidays", "holiday")),
	}
}

// familyCmd builds "gatehouse <family> list|get|create|update|delete".
func familyCmd(a *app, f *family) *cobra.Command {
	parent := &cobra.Command{Use: f.use, Aliases: f.aliases, Short: f.short, Long: f.long}
	if f.account {
		addAccountFlag(a, parent, true)
	}
	parent.AddCommand(f.listCmd(a), f.getCmd(a), f.createCmd(a), f.updateCmd(a), f.deleteCmd(a))
	return parent
}

// scope returns the account a command of f works in ("" for accounts).
func (f *family) scope(a *app, cmd *cobra.Command) (string, error) {
	if !f.account {
		return "", nil
	}
	return a.accountOf(cmd)
}

func (f *family) listCmd(a *app) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List " + f.use + " ordered by id",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := f.scope(a, cmd)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := a.listAll(cmd.Context(), lf, func(ctx context.Context, size int32, token string) (proto.Message, error) {
				return f.list(ctx, c, acct, size, token)
			})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := listTable(w, f.columns, messages(resp)); err != nil {
					return err
				}
				a.moreNote(resp)
				return nil
			})
		},
	}
	lf.bind(cmd)
	return cmd
}

func (f *family) getCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Short:             "Show one " + f.kind,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: f.completeIDs(a),
		RunE: func(cmd *cobra.Command, argv []string) error {
			acct, err := f.scope(a, cmd)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			item, err := f.get(ctx, c, acct, argv[0])
			if err != nil {
				return err
			}
			return a.emit(item, func(w io.Writer) error { return detailTable(w, item) })
		},
	}
}

func (f *family) createCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create [ID]",
		Short: "Create " + article(f.kind) + " (the server generates the id when none is given)",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			acct, err := f.scope(a, cmd)
			if err != nil {
				return err
			}
			item := f.newItem()
			if len(argv) == 1 {
				setString(item, "id", argv[0])
			}
			if _, err := applyFields(cmd.Flags(), f.fields, item); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			out, err := f.create(ctx, c, acct, item)
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error { return detailTable(w, out) })
		},
	}
	bindFields(cmd, f.newItem().ProtoReflect().Descriptor(), f.fields)
	return cmd
}

func (f *family) updateCmd(a *app) *cobra.Command {
	var etag string
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change the given fields of " + article(f.kind) + " (only those)",
		Long: "Change the given fields of " + article(f.kind) + ". Only the flags given are sent in\n" +
			"the update mask, so everything else is left alone. With --etag the write\n" +
			"happens only if nobody changed the " + f.kind + " since it was read (else ABORTED).",
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: f.completeIDs(a),
		RunE: func(cmd *cobra.Command, argv []string) error {
			acct, err := f.scope(a, cmd)
			if err != nil {
				return err
			}
			item := f.newItem()
			setString(item, "id", argv[0])
			setString(item, "etag", etag)
			paths, err := applyFields(cmd.Flags(), f.fields, item)
			if err != nil {
				return err
			}
			if len(paths) == 0 {
				return usageError{fmt.Errorf("nothing to update: give at least one of %s", flagNames(f.fields))}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			out, err := f.update(ctx, c, acct, item, &fieldmaskpb.FieldMask{Paths: paths})
			if err != nil {
				return err
			}
			return a.emit(out, func(w io.Writer) error { return detailTable(w, out) })
		},
	}
	bindFields(cmd, f.newItem().ProtoReflect().Descriptor(), f.fields)
	cmd.Flags().StringVar(&etag, "etag", "", "write only if the current etag is `etag` (from get)")
	return cmd
}

func (f *family) deleteCmd(a *app) *cobra.Command {
	var etag string
	var yes bool
	cmd := &cobra.Command{
		Use:               "delete ID",
		Short:             "Delete " + article(f.kind),
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: f.completeIDs(a),
		RunE: func(cmd *cobra.Command, argv []string) error {
			acct, err := f.scope(a, cmd)
			if err != nil {
				return err
			}
			if f.confirmDelete && !yes {
				if err := a.confirm(fmt.Sprintf("Delete %s %q and everything it owns?", f.kind, argv[0])); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := f.del(ctx, c, acct, argv[0], etag)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				rev := resp.ProtoReflect().Get(resp.ProtoReflect().Descriptor().Fields().ByName("revision")).Uint()
				_, err := fmt.Fprintf(w, "deleted %s %q at revision %d\n", f.kind, argv[0], rev)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&etag, "etag", "", "delete only if the current etag is `etag`")
	if f.confirmDelete {
		cmd.Short += " and everything it owns"
		cmd.Long = "Delete " + article(f.kind) + " and everything it owns. On a terminal it asks first;\n" +
			"otherwise (scripts, pipes) it needs --yes."
		cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (needed when stdin is not a terminal)")
	}
	return cmd
}

// completeIDs completes the first argument with the ids of f.
func (f *family) completeIDs(a *app) cobra.CompletionFunc {
	return func(cmd *cobra.Command, argv []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(argv) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		if a.resolveGlobals(cmd) != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		acct := ""
		if f.account {
			var err error
			if acct, err = a.accountOf(cmd); err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
		c, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		resp, err := a.listAll(cmd.Context(), listFlags{limit: 1000}, func(ctx context.Context, size int32, token string) (proto.Message, error) {
			return f.list(ctx, c, acct, size, token)
		})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var ids []string
		for _, m := range messages(resp) {
			ids = append(ids, getString(m, "id"))
		}
		return ids, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) completeAccounts(cmd *cobra.Command, argv []string, s string) ([]string, cobra.ShellCompDirective) {
	return accountsFamily().completeIDs(a)(cmd, nil, s)
}

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}
