package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	sessionKindDesc  = gatehousev1.SessionKind(0).Descriptor()
	roleDesc         = gatehousev1.Role(0).Descriptor()
	featureDesc      = gatehousev1.Feature(0).Descriptor()
	frameDesc        = gatehousev1.Frame(0).Descriptor()
	callerRoleDesc   = gatehousev1.CallerRole(0).Descriptor()
	sessionStateDesc = gatehousev1.SessionState(0).Descriptor()
)

func enumFlagCompletion(ed protoreflect.EnumDescriptor) cobra.CompletionFunc {
	return cobra.FixedCompletions(enumChoices(ed), cobra.ShellCompDirectiveNoFileComp)
}

func sessionsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sessions",
		Aliases: []string{"session"},
		Short:   "Start, inspect and end sessions; invite and remove external specialists",
	}
	// sessionCall runs one SessionService call that answers a session and
	// shows it.
	sessionCall := func(cmd *cobra.Command, call func(ctx context.Context, c *clients) (*gatehousev1.Session, error)) error {
		return a.showCall(cmd, func(ctx context.Context, c *clients) (proto.Message, error) { return call(ctx, c) })
	}

	var kind, rep, customer, portal string
	start := &cobra.Command{
		Use:   "start",
		Short: "Start a Live Guide or support session",
		Example: "  gatehouse sessions start --account acme --kind live_guide --rep alice --customer cust-1\n" +
			"  gatehouse sessions start --account acme --kind support --rep alice --customer cust-2 --portal helpdesk-default",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			k, err := parseEnum(sessionKindDesc, kind)
			if err != nil {
				return usageError{fmt.Errorf("--kind: %w", err)}
			}
			return sessionCall(cmd, func(ctx context.Context, c *clients) (*gatehousev1.Session, error) {
				r, err := c.sessions.StartSession(ctx, &gatehousev1.StartSessionRequest{AccountId: acct, Kind: gatehousev1.SessionKind(k),
					RepresentativeId: rep, CustomerId: customer, PortalId: portal})
				return r.GetSession(), err
			})
		},
	}
	addAccountFlag(a, start, false)
	start.Flags().StringVar(&kind, "kind", "", "session kind ("+strings.Join(enumChoices(sessionKindDesc), ", ")+")")
	start.Flags().StringVar(&rep, "rep", "", "representative `id` serving the session")
	setsField(start, "rep", "representative_id")
	start.Flags().StringVar(&customer, "customer", "", "customer `id`")
	start.Flags().StringVar(&portal, "portal", "", "subportal `id` (support sessions)")
	_ = start.MarkFlagRequired("kind")
	_ = start.RegisterFlagCompletionFunc("kind", enumFlagCompletion(sessionKindDesc))

	get := &cobra.Command{
		Use:   "get SESSION",
		Short: "Show a session",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return sessionCall(cmd, func(ctx context.Context, c *clients) (*gatehousev1.Session, error) {
				r, err := c.sessions.GetSession(ctx, &gatehousev1.GetSessionRequest{SessionId: argv[0]})
				return r.GetSession(), err
			})
		},
	}

	var custRating, repRating int32
	end := &cobra.Command{
		Use:   "end SESSION",
		Short: "End a session; later checks are denied SESSION_ENDED",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return sessionCall(cmd, func(ctx context.Context, c *clients) (*gatehousev1.Session, error) {
				r, err := c.sessions.EndSession(ctx, &gatehousev1.EndSessionRequest{SessionId: argv[0], CustomerRating: custRating, RepresentativeRating: repRating})
				return r.GetSession(), err
			})
		},
	}
	end.Flags().Int32Var(&custRating, "customer-rating", 0, "customer's rating 1-5 (0: none)")
	end.Flags().Int32Var(&repRating, "rep-rating", 0, "representative's rating 1-5 (0: none)")

	var specialist, displayName string
	invite := &cobra.Command{
		Use:   "invite-specialist SESSION --specialist ID",
		Short: "Invite an external specialist (needs invite_external_specialist on; at most 5)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return sessionCall(cmd, func(ctx context.Context, c *clients) (*gatehousev1.Session, error) {
				r, err := c.sessions.InviteExternalSpecialist(ctx, &gatehousev1.InviteExternalSpecialistRequest{SessionId: argv[0], SpecialistId: specialist, DisplayName: displayName})
				return r.GetSession(), err
			})
		},
	}
	invite.Flags().StringVar(&specialist, "specialist", "", "specialist `id` (their actor id in checks)")
	invite.Flags().StringVar(&displayName, "display-name", "", "specialist's `name`")
	_ = invite.MarkFlagRequired("specialist")

	var removeID string
	remove := &cobra.Command{
		Use:   "remove-specialist SESSION --specialist ID",
		Short: "Remove an external specialist from a session",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return sessionCall(cmd, func(ctx context.Context, c *clients) (*gatehousev1.Session, error) {
				r, err := c.sessions.RemoveExternalSpecialist(ctx, &gatehousev1.RemoveExternalSpecialistRequest{SessionId: argv[0], SpecialistId: removeID})
				return r.GetSession(), err
			})
		},
	}
	remove.Flags().StringVar(&removeID, "specialist", "", "specialist `id`")
	_ = remove.MarkFlagRequired("specialist")

	cmd.AddCommand(start, get, end, invite, remove, sessionsListCmd(a))
	return cmd
}

func checkCmd(a *app) *cobra.Command {
	var session, role, actor, feature, url, frame, element string
	var minRevision uint64
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Ask one decision: may this actor use this feature here?",
		Long: `Ask DecisionService.CheckFeature one question and print the decision with a
one-line explanation. A denial is an answer, not an error (exit code 0).

--element describes the element acted on and its ancestors, outermost first,
separated by '>'; the last node is the element itself:

  --element 'body > form#checkout > button.pay.primary#submit[name=pay][data-step="2"]'

Each node is an optional tag followed by any of #id, .class and [attr] or
[attr=value] (quote values holding spaces or ']').`,
		Example: `  gatehouse check --session s-abc --role agent --actor alice --feature click --url https://www.example.com/
  gatehouse check --session s-abc --role agent --actor alice --feature click \
      --url https://www.example.com/transfer --element 'form#t > button.transfer'`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &gatehousev1.CheckFeatureRequest{SessionId: session, Url: url, MinRevision: minRevision}
			r, err := parseEnum(roleDesc, role)
			if err != nil {
				return usageError{fmt.Errorf("--role: %w", err)}
			}
			req.Actor = &gatehousev1.Actor{Role: gatehousev1.Role(r), Id: actor}
			f, err := parseEnum(featureDesc, feature)
			if err != nil {
				return usageError{fmt.Errorf("--feature: %w", err)}
			}
			req.Feature = gatehousev1.Feature(f)
			if frame != "" {
				fr, err := parseEnum(frameDesc, frame)
				if err != nil {
					return usageError{fmt.Errorf("--frame: %w", err)}
				}
				req.Frame = gatehousev1.Frame(fr)
			}
			if element != "" {
				if req.Element, err = parseElement(element); err != nil {
					return usageError{fmt.Errorf("--element: %w", err)}
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := c.decide.CheckFeature(ctx, req)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				d := resp.GetDecision()
				tw := newTable(w)
				row(tw, "allowed", fmt.Sprint(d.GetAllowed()))
				row(tw, "reason", enumLabel(d.GetReason().Descriptor(), protoreflect.EnumNumber(d.GetReason())))
				row(tw, "message", d.GetMessage())
				row(tw, "rule", d.GetRule())
				row(tw, "revision", fmt.Sprint(resp.GetRevision()))
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err := fmt.Fprintln(w, explain(req, d))
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&session, "session", "", "session `id`")
	fs.StringVar(&role, "role", "", "actor's role ("+strings.Join(enumChoices(roleDesc), ", ")+")")
	fs.StringVar(&actor, "actor", "", "actor `id`: representative id (agent), customer id or specialist id")
	fs.StringVar(&feature, "feature", "", "feature, e.g. navigate, click, type, view_element, send_files")
	fs.StringVar(&url, "url", "", "page `URL` (navigate, click, scroll, type, view_element, clipboard)")
	fs.StringVar(&frame, "frame", "", "top_level (default) or iframe")
	fs.StringVar(&element, "element", "", "element acted on, with its ancestors: 'body > form#f > button.pay[name=x]'")
	fs.Uint64Var(&minRevision, "min-revision", 0, "wait until the server has caught up with this store `revision`")
	setsField(cmd, "actor", "actor.id")
	for _, f := range []string{"session", "role", "actor", "feature"} {
		_ = cmd.MarkFlagRequired(f)
	}
	_ = cmd.RegisterFlagCompletionFunc("role", enumFlagCompletion(roleDesc))
	_ = cmd.RegisterFlagCompletionFunc("feature", enumFlagCompletion(featureDesc))
	_ = cmd.RegisterFlagCompletionFunc("frame", enumFlagCompletion(frameDesc))
	return cmd
}

// explain says in one line why a decision came out as it did, and where
// to look or what to change.
func explain(req *gatehousev1.CheckFeatureRequest, d *gatehousev1.Decision) string {
	feature := strings.ToLower(enumLabel(featureDesc, protoreflect.EnumNumber(req.GetFeature())))
	role := strings.ToLower(enumLabel(roleDesc, protoreflect.EnumNumber(req.GetActor().GetRole())))
	who := role + " " + req.GetActor().GetId()
	el := "the element"
	if e := req.GetElement(); e != nil {
		el = formatNode(e.GetTag(), e.GetId(), e.GetClasses(), e.GetAttributes())
	}
	switch d.GetReason() {
	case gatehousev1.Reason_REASON_ALLOWED:
		return fmt.Sprintf("allowed: nothing denies %s to %s", feature, who)
	case gatehousev1.Reason_REASON_SESSION_ENDED:
		return fmt.Sprintf("denied: session %s has ended; every check in it is denied", req.GetSessionId())
	case gatehousev1.Reason_REASON_ACTOR_NOT_IN_SESSION:
		return fmt.Sprintf("denied: %s is not a participant of session %s", who, req.GetSessionId())
	case gatehousev1.Reason_REASON_FEATURE_NOT_IN_SESSION_KIND:
		return fmt.Sprintf("denied: %s belongs to the other session kind (co-browse features are for Live Guide sessions, support functions for support sessions)", feature)
	case gatehousev1.Reason_REASON_URL_INVALID:
		return fmt.Sprintf("denied: %q cannot be parsed as a URL", req.GetUrl())
	case gatehousev1.Reason_REASON_URL_NOT_PERMITTED:
		return fmt.Sprintf("denied: only http and https pages may be co-browsed, not %q", req.GetUrl())
	case gatehousev1.Reason_REASON_DOMAIN_NOT_ALLOWLISTED:
		return fmt.Sprintf("denied: the account's allowlist is not empty and no entry matches %s (see: gatehouse allowlist list)", req.GetUrl())
	case gatehousev1.Reason_REASON_AGENT_CLICK_RESTRICTED, gatehousev1.Reason_REASON_AGENT_INPUT_RESTRICTED:
		return fmt.Sprintf("denied: the account's setting %s is on (lift it with: gatehouse settings update --set %s=false)", d.GetRule(), d.GetRule())
	case gatehousev1.Reason_REASON_FEATURE_DISABLED:
		return fmt.Sprintf("denied: the account's setting %s is off (turn it on with: gatehouse settings update --set %s=true)", d.GetRule(), d.GetRule())
	case gatehousev1.Reason_REASON_ELEMENT_BLOCKED:
		return fmt.Sprintf("denied: privacy rule %s (button block) matches %s; agents may not click it (see: gatehouse privacy-rules get %s)", d.GetRule(), el, d.GetRule())
	case gatehousev1.Reason_REASON_ELEMENT_MASKED:
		return fmt.Sprintf("denied: privacy rule %s (data mask) matches %s; it is hidden from agents (see: gatehouse privacy-rules get %s)", d.GetRule(), el, d.GetRule())
	case gatehousev1.Reason_REASON_PORTAL_FUNCTION_DISABLED:
		return fmt.Sprintf("denied: %s is off on portal %s, which is the session's subportal or one of its ancestors (gatehouse portals update %s --function %s=true)", feature, d.GetRule(), d.GetRule(), feature)
	case gatehousev1.Reason_REASON_REPRESENTATIVE_FUNCTION_DISABLED:
		return fmt.Sprintf("denied: %s is off for representative %s (gatehouse representatives update %s --function %s=true)", feature, d.GetRule(), d.GetRule(), feature)
	}
	if d.GetAllowed() {
		return "allowed"
	}
	return "denied: " + d.GetMessage()
}

func sessionsListCmd(a *app) *cobra.Command {
	var state, kind, rep, customer, since, until string
	var lf listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List an account's sessions ordered by id",
		Long: `List an account's sessions ordered by id, filtered by --state, --kind,
--rep, --customer and the start time (--since, --until: an RFC 3339 time,
a date (UTC) or a duration back from now, 24h). Ended sessions are kept
for the daemon's --session-retention.`,
		Example: "  gatehouse sessions list --account acme --state active --rep alice\n" +
			"  gatehouse sessions list --account acme --since 24h --output json",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, err := a.accountOf(cmd)
			if err != nil {
				return err
			}
			req := &gatehousev1.ListSessionsRequest{AccountId: acct, RepresentativeId: rep, CustomerId: customer}
			if state != "" {
				n, err := parseEnum(sessionStateDesc, state)
				if err != nil {
					return usageError{fmt.Errorf("--state: %w", err)}
				}
				req.State = gatehousev1.SessionState(n)
			}
			if kind != "" {
				n, err := parseEnum(sessionKindDesc, kind)
				if err != nil {
					return usageError{fmt.Errorf("--kind: %w", err)}
				}
				req.Kind = gatehousev1.SessionKind(n)
			}
			now := time.Now()
			if req.StartedAfter, err = parseWhen(since, now); err != nil {
				return usageError{fmt.Errorf("--since: %w", err)}
			}
			if req.StartedBefore, err = parseWhen(until, now); err != nil {
				return usageError{fmt.Errorf("--until: %w", err)}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := a.listAll(cmd.Context(), lf, func(ctx context.Context, size int32, token string) (proto.Message, error) {
				r := proto.Clone(req).(*gatehousev1.ListSessionsRequest)
				r.PageSize, r.PageToken = size, token
				return c.sessions.ListSessions(ctx, r)
			})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := listTable(w, cols("id", "kind", "state", "representative_id", "customer_id", "portal_id", "start_time", "end_time"), messages(resp)); err != nil {
					return err
				}
				a.moreNote(resp)
				return nil
			})
		},
	}
	addAccountFlag(a, cmd, false)
	fs := cmd.Flags()
	fs.StringVar(&state, "state", "", "only sessions in this `state`: "+strings.Join(enumChoices(sessionStateDesc), ", "))
	fs.StringVar(&kind, "kind", "", "only sessions of this `kind`: "+strings.Join(enumChoices(sessionKindDesc), ", "))
	fs.StringVar(&rep, "rep", "", "only sessions served by this representative `id`")
	fs.StringVar(&customer, "customer", "", "only sessions of this customer `id`")
	fs.StringVar(&since, "since", "", "only sessions started at or after `time`")
	fs.StringVar(&until, "until", "", "only sessions started before `time`")
	setsField(cmd, "rep", "representative_id")
	setsField(cmd, "since", "started_after")
	setsField(cmd, "until", "started_before")
	_ = cmd.RegisterFlagCompletionFunc("state", enumFlagCompletion(sessionStateDesc))
	_ = cmd.RegisterFlagCompletionFunc("kind", enumFlagCompletion(sessionKindDesc))
	lf.bind(cmd)
	return cmd
}
