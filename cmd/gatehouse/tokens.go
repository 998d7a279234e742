package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func tokensCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokens",
		Aliases: []string{"token"},
		Short:   "Manage caller tokens and certificate credentials (operators only)",
		Long: `Tokens authenticate callers when gatehoused runs with --auth token.
Roles: decider (SessionService, DecisionService), admin (AdminService except
store-wide operations), operator (everything). A token is scoped to one
account with --account, or to all accounts without it.

A token is a bearer secret, or, with --certificate-identity, a certificate
credential: with --tls-client-ca, a caller that sends no bearer token and
whose verified client certificate holds that identity is this caller. No
secret exists for it. The identity names one certificate field and matches
only that field: "cn:NAME" the subject common name, "uri:URI" a URI SAN
(e.g. a SPIFFE ID), "dns:NAME" a DNS SAN. Without a prefix, a value that
starts with a URI scheme ("spiffe://…") is a URI SAN and anything else a
common name.`,
	}
	var name, role, acct, certID string
	var quiet bool
	create := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Create a token and print its bearer string (shown only this once)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := parseEnum(callerRoleDesc, role)
			if err != nil {
				return usageError{fmt.Errorf("--role: %w", err)}
			}
			kind, identity, err := parseCertIdentity(certID)
			if err != nil {
				return usageError{fmt.Errorf("--certificate-identity: %w", err)}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := c.admin.CreateCallerToken(ctx, &gatehousev1.CreateCallerTokenRequest{Token: &gatehousev1.CallerToken{
				Name: name, Role: gatehousev1.CallerRole(r), AccountId: acct, CertificateIdentity: identity, CertificateIdentityKind: kind}})
			if err != nil {
				return err
			}
			if quiet {
				out := resp.GetBearer()
				if out == "" {
					out = resp.GetToken().GetId()
				}
				_, err := fmt.Fprintln(a.out, out)
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				tw := newTable(w)
				writeDetail(tw, resp.GetToken().ProtoReflect())
				if resp.GetBearer() == "" {
					return tw.Flush()
				}
				row(tw, "bearer", resp.GetBearer())
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(a.errOut, "The bearer is shown only once: store it now (send it with --token or --token-file).")
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "who holds the token")
	create.Flags().StringVar(&role, "role", "", "role ("+strings.Join(enumChoices(callerRoleDesc), ", ")+")")
	create.Flags().StringVarP(&acct, "account", "a", "", "scope the token to this account `id` (default: all accounts)")
	create.Flags().StringVar(&certID, "certificate-identity", "", "create a certificate credential (no bearer secret) for client certificates with this identity: cn:NAME (subject common name), uri:URI (URI SAN) or dns:NAME (DNS SAN); unprefixed, a URI is a URI SAN, anything else a common name")
	create.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the bearer string (the token id for a certificate credential)")
	_ = create.MarkFlagRequired("role")
	_ = create.RegisterFlagCompletionFunc("role", enumFlagCompletion(callerRoleDesc))
	_ = create.RegisterFlagCompletionFunc("account", a.completeAccounts)

	var lf listFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := a.listAll(cmd.Context(), lf, func(ctx context.Context, size int32, token string) (proto.Message, error) {
				return c.admin.ListCallerTokens(ctx, &gatehousev1.ListCallerTokensRequest{PageSize: size, PageToken: token})
			})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := listTable(w, cols("id", "name", "role", "account_id", "certificate_identity_kind", "certificate_identity", "create_time", "revoked"), messages(resp)); err != nil {
					return err
				}
				a.moreNote(resp)
				return nil
			})
		},
	}
	lf.bind(list)

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token at once",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.showCall(cmd, func(ctx context.Context, c *clients) (proto.Message, error) {
				resp, err := c.admin.RevokeCallerToken(ctx, &gatehousev1.RevokeCallerTokenRequest{Id: argv[0]})
				return resp.GetToken(), err
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// auditResourceTypes are the kinds of resource the audit log records.
var auditResourceTypes = []string{"account", "account_apply", "live_guide_settings", "customization", "allowlist_entry", "privacy_rule",
	"portal", "team", "representative", "business_hours", "session", "caller_token", "notification"}

// auditResourceAliases lets --resource-type take the CLI's own nouns
// ("representatives", "privacy-rules", "tokens", …) for those kinds.
func auditResourceAliases() map[string]string {
	m := map[string]string{
		"settings": "live_guide_settings", "customizations": "customization", "texts": "customization",
		"sessions": "session", "tokens": "caller_token", "token": "caller_token", "notifications": "notification",
	}
	for _, f := range families() {
		typ := strings.ReplaceAll(f.kind, " ", "_")
		switch f.use {
		case "business-hours":
			typ = "business_hours"
		}
		for _, n := range append([]string{f.use}, f.aliases...) {
			m[n] = typ
		}
	}
	return m
}

// Orders of audit list.
const (
	orderNewest = "newest"
	orderOldest = "oldest"
)

func auditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log of committed writes",
	}
	var typ, id, since, until, order string
	var lf listFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Long: `List audit events, newest first (--order oldest for the log's own order).
Without --account every account's events are listed (callers scoped to all
accounts only). --since and --until take an RFC 3339 time, a date
(2026-11-24, UTC) or a duration back from now (90m, 24h). --limit keeps the
first n events of the chosen order: the n newest by default. The CHANGE
column lists the top-level fields an update changed.

The server lists the log oldest first, so --order newest reads every event
that matches the filters before it shows the newest; narrow a large log
with --since. --page-token continues an --order oldest listing only.`,
		Example: "  gatehouse audit list --account acme --resource-type portal --since 24h\n" +
			"  gatehouse audit list --limit 5",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, _ := cmd.Flags().GetString("account")
			if acct == "" {
				acct = a.env(envAccount)
			}
			if order == orderNewest && lf.pageToken != "" {
				return usageError{errors.New("--page-token continues an --order oldest listing; add --order oldest")}
			}
			req := &gatehousev1.ListAuditEventsRequest{AccountId: acct, ResourceType: typ, ResourceId: id}
			var err error
			now := time.Now()
			if req.StartTime, err = parseWhen(since, now); err != nil {
				return usageError{fmt.Errorf("--since: %w", err)}
			}
			if req.EndTime, err = parseWhen(until, now); err != nil {
				return usageError{fmt.Errorf("--until: %w", err)}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			fetch := lf
			if order == orderNewest {
				fetch.limit = 0 // the newest are at the end
			}
			resp, err := a.listAll(cmd.Context(), fetch, func(ctx context.Context, size int32, token string) (proto.Message, error) {
				r := proto.Clone(req).(*gatehousev1.ListAuditEventsRequest)
				r.PageSize, r.PageToken = size, token
				return c.admin.ListAuditEvents(ctx, r)
			})
			if err != nil {
				return err
			}
			if order == orderNewest {
				events := resp.(*gatehousev1.ListAuditEventsResponse).Events
				slices.Reverse(events)
				if lf.limit > 0 && len(events) > lf.limit {
					events = events[:lf.limit]
				}
				resp.(*gatehousev1.ListAuditEventsResponse).Events = events
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := listTable(w, auditColumns(), messages(resp)); err != nil {
					return err
				}
				a.moreNote(resp)
				return nil
			})
		},
	}
	addAccountFlag(a, list, false)
	list.Flags().StringVar(&typ, "resource-type", "", "only this `kind` of resource: "+strings.Join(auditResourceTypes, ", ")+" (the command nouns work too, e.g. representatives)")
	list.Flags().StringVar(&id, "resource-id", "", "only this resource `id`")
	list.Flags().StringVar(&since, "since", "", "only events at or after `time`")
	list.Flags().StringVar(&until, "until", "", "only events before `time`")
	list.Flags().StringVar(&order, "order", orderNewest, "`order` of the events: newest (first) or oldest (first)")
	lf.bind(list)
	a.choiceFlag(list, "resource-type", auditResourceTypes, auditResourceAliases())
	a.choiceFlag(list, "order", []string{orderNewest, orderOldest}, nil)
	cmd.AddCommand(list)
	return cmd
}

// auditColumns are the columns of audit list.
func auditColumns() []column {
	return append(cols("revision", "time", "account_id", "caller"),
		column{"RPC", func(m protoreflect.Message) string {
			rpc := getString(m, "rpc")
			return rpc[strings.LastIndexByte(rpc, '/')+1:]
		}},
		column{"RESOURCE", func(m protoreflect.Message) string {
			return getString(m, "resource_type") + "/" + getString(m, "resource_id")
		}},
		column{"CHANGE", func(m protoreflect.Message) string {
			return auditChange(getString(m, "before_json"), getString(m, "after_json"))
		}})
}

// parseWhen reads an RFC 3339 time, a date (UTC) or a duration back from
// now; "" is no bound.
func parseWhen(s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return timestamppb.New(t), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return timestamppb.New(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	return nil, fmt.Errorf("%q is not an RFC 3339 time, a date or a duration", s)
}

// auditChange summarizes an event: "create", "delete" or "update" with
// the top-level fields that changed (revision and etag left out).
func auditChange(before, after string) string {
	switch {
	case before == "" && after == "":
		return ""
	case before == "":
		return "create"
	case after == "":
		return "delete"
	}
	var b, a map[string]json.RawMessage
	if json.Unmarshal([]byte(before), &b) != nil || json.Unmarshal([]byte(after), &a) != nil {
		return "update"
	}
	var changed []string
	for k, v := range a {
		if k == "revision" || k == "etag" {
			continue
		}
		if string(b[k]) != string(v) {
			changed = append(changed, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && k != "revision" && k != "etag" {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	if len(changed) == 0 {
		return "update"
	}
	return "update " + strings.Join(changed, ",")
}

// certIdentityPrefixes are the kind prefixes of --certificate-identity.
var certIdentityPrefixes = map[string]gatehousev1.CertificateIdentityKind{
	"cn":  gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_SUBJECT_CN,
	"uri": gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_URI_SAN,
	"dns": gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_DNS_SAN,
}

// parseCertIdentity splits a --certificate-identity value into its kind
// and identity: "cn:", "uri:" or "dns:" (any case) name the kind; without
// one of them the kind is left for the server to infer from the value.
func parseCertIdentity(s string) (gatehousev1.CertificateIdentityKind, string, error) {
	prefix, rest, ok := strings.Cut(s, ":")
	kind, known := certIdentityPrefixes[strings.ToLower(prefix)]
	if !ok || !known {
		return gatehousev1.CertificateIdentityKind_CERTIFICATE_IDENTITY_KIND_UNSPECIFIED, s, nil
	}
	if rest == "" {
		return 0, "", fmt.Errorf("%q names a kind but no identity", s)
	}
	return kind, rest, nil
}
