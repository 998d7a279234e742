package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// outputOnly are the settings fields --set may not name: the account comes
// from --account, the etag from --etag.
var outputOnly = []string{"account_id", "etag", "revision"}

// settingsFields are the LiveGuideSettings fields --set may name.
func settingsFields() []string {
	var out []string
	fields := (&gatehousev1.LiveGuideSettings{}).ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if n := string(fields.Get(i).Name()); !slices.Contains(outputOnly, n) {
			out = append(out, n)
		}
	}
	return out
}

func settingsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Show and change an account's Live Guide (co-browse) switches",
	}
	addAccountFlag(a, cmd, true)
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the Live Guide settings",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, c, ctx, cancel, err := a.accountCall(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.admin.GetLiveGuideSettings(ctx, &gatehousev1.GetLiveGuideSettingsRequest{AccountId: acct})
			if err != nil {
				return err
			}
			s := resp.GetSettings()
			return a.emit(s, func(w io.Writer) error { return detailTable(w, s) })
		},
	}
	var sets []string
	var etag string
	update := &cobra.Command{
		Use:   "update --set FIELD=VALUE...",
		Short: "Change the settings named by --set (only those)",
		Long: "Change the settings named by --set; the update mask holds exactly the fields\n" +
			"given, so the others are left alone. Fields: " + strings.Join(settingsFields(), ", ") + ".",
		Example: "  gatehouse settings update --account acme --set agent_click_restricted=true --set session_start_url=https://www.example.com/",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			s := &gatehousev1.LiveGuideSettings{AccountId: acct, Etag: etag}
			paths, err := applySets(s, sets)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := c.admin.UpdateLiveGuideSettings(ctx, &gatehousev1.UpdateLiveGuideSettingsRequest{Settings: s, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
			if err != nil {
				return err
			}
			out := resp.GetSettings()
			return a.emit(out, func(w io.Writer) error { return detailTable(w, out) })
		},
	}
	update.Flags().StringArrayVar(&sets, "set", nil, "`field=value` to change (repeatable)")
	update.Flags().StringVar(&etag, "etag", "", "write only if the current etag is `etag` (from get)")
	_ = update.RegisterFlagCompletionFunc("set", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, f := range settingsFields() {
			out = append(out, f+"=")
		}
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	})
	cmd.AddCommand(get, update)
	return cmd
}

// applySets sets field=value pairs on m, parsing each value by the field's
// type, and returns the mask paths.
func applySets(m proto.Message, sets []string) ([]string, error) {
	if len(sets) == 0 {
		return nil, usageError{fmt.Errorf("nothing to update: give --set field=value (fields: %s)", strings.Join(settingsFields(), ", "))}
	}
	r := m.ProtoReflect()
	var paths []string
	for _, kv := range sets {
		name, val, err := parseSet(kv)
		if err != nil {
			return nil, usageError{err}
		}
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil || slices.Contains(outputOnly, name) {
			return nil, usageError{fmt.Errorf("--set %q: no setting %q (settings: %s)%s", kv, name, strings.Join(settingsFields(), ", "), didYouMean(name, settingsFields()))}
		}
		switch fd.Kind() {
		case protoreflect.BoolKind:
			b, err := strconv.ParseBool(strings.TrimSpace(val))
			if err != nil {
				return nil, usageError{fmt.Errorf("--set %q: %s takes true or false", kv, name)}
			}
			r.Set(fd, protoreflect.ValueOfBool(b))
		case protoreflect.StringKind:
			r.Set(fd, protoreflect.ValueOfString(val))
		default:
			return nil, usageError{fmt.Errorf("--set %q: %s cannot be set here", kv, name)}
		}
		if !slices.Contains(paths, name) {
			paths = append(paths, name)
		}
	}
	return paths, nil
}

// languages are the seven languages with texts.
var languages = []string{"en", "fr", "it", "de", "es", "pt", "nl"}

func customizationCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "customization",
		Aliases: []string{"customizations", "texts"},
		Short:   "Show and change an account's texts per language (" + strings.Join(languages, " ") + ")",
	}
	addAccountFlag(a, cmd, true)
	var getLang, lang string
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the texts of one language (negotiated: fr-CA gives fr, unknown gives en)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, c, ctx, cancel, err := a.accountCall(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: acct, Language: getLang})
			if err != nil {
				return err
			}
			out := resp.GetCustomization()
			return a.emit(out, func(w io.Writer) error { return detailTable(w, out) })
		},
	}
	get.Flags().StringVarP(&getLang, "language", "l", "en", "BCP 47 language `tag`")
	list := &cobra.Command{
		Use:   "list",
		Short: "Show the texts of all seven languages (revision - : built-in defaults)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			all, err := a.customizations(cmd, acct)
			if err != nil {
				return err
			}
			msgs := make([]proto.Message, len(all))
			items := make([]protoreflect.Message, len(all))
			for i, c := range all {
				msgs[i], items[i] = c, c.ProtoReflect()
			}
			return a.emit(msgs, func(w io.Writer) error {
				return listTable(w, cols("language", "agent_alias", "customer_alias", "disclaimer_text", "revision"), items)
			})
		},
	}
	var etag string
	specs := []fieldSpec{
		{"disclaimer-text", "disclaimer_text", "disclaimer shown to the customer before the session starts"},
		{"agent-alias", "agent_alias", "agent name shown when the real name is not"},
		{"customer-alias", "customer_alias", "customer name shown to the agent"},
	}
	update := &cobra.Command{
		Use:   "update --language LANG",
		Short: "Change the given texts of one language (only those)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			in := &gatehousev1.Customization{AccountId: acct, Language: lang, Etag: etag}
			paths, err := applyFields(cmd.Flags(), specs, in)
			if err != nil {
				return err
			}
			if len(paths) == 0 {
				return usageError{fmt.Errorf("nothing to update: give at least one of %s", flagNames(specs))}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := c.admin.UpdateCustomization(ctx, &gatehousev1.UpdateCustomizationRequest{Customization: in, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
			if err != nil {
				return err
			}
			out := resp.GetCustomization()
			return a.emit(out, func(w io.Writer) error { return detailTable(w, out) })
		},
	}
	update.Flags().StringVarP(&lang, "language", "l", "", "one of "+strings.Join(languages, " "))
	_ = update.MarkFlagRequired("language")
	a.choiceFlag(update, "language", languages, nil)
	update.Flags().StringVar(&etag, "etag", "", "write only if the current etag is `etag` (from get)")
	bindFields(update, (&gatehousev1.Customization{}).ProtoReflect().Descriptor(), specs)
	cmd.AddCommand(get, list, update)
	return cmd
}

// customizations reads the texts of the seven languages.
func (a *app) customizations(cmd *cobra.Command, acct string) ([]*gatehousev1.Customization, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	out := make([]*gatehousev1.Customization, 0, len(languages))
	for _, l := range languages {
		ctx, cancel := a.call(cmd.Context())
		resp, err := c.admin.GetCustomization(ctx, &gatehousev1.GetCustomizationRequest{AccountId: acct, Language: l})
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetCustomization())
	}
	return out, nil
}

func cobrowseURLCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cobrowse-url",
		Short: "Show, generate or set an account's unique co-browse URL",
	}
	addAccountFlag(a, cmd, true)
	get := &cobra.Command{
		Use:   "get",
		Short: "Show the account's co-browse URL (empty until generated)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, c, ctx, cancel, err := a.accountCall(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.admin.GetAccount(ctx, &gatehousev1.GetAccountRequest{Id: acct})
			if err != nil {
				return err
			}
			return a.emit(map[string]string{"url": resp.GetAccount().GetCobrowseUrl()}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, orDash(resp.GetAccount().GetCobrowseUrl()))
				return err
			})
		},
	}
	generate := &cobra.Command{
		Use:   "generate",
		Short: "Give the account a random, readable co-browse URL (once; a second call is FAILED_PRECONDITION)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, c, ctx, cancel, err := a.accountCall(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.admin.GenerateCobrowseUrl(ctx, &gatehousev1.GenerateCobrowseUrlRequest{AccountId: acct})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, resp.GetUrl())
				return err
			})
		},
	}
	set := &cobra.Command{
		Use:   "set URL",
		Short: "Set the account's co-browse URL (operators only; unique across accounts)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			acct, c, ctx, cancel, err := a.accountCall(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := c.admin.SetCobrowseUrl(ctx, &gatehousev1.SetCobrowseUrlRequest{AccountId: acct, Url: argv[0]})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, resp.GetUrl())
				return err
			})
		},
	}
	cmd.AddCommand(get, generate, set)
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
