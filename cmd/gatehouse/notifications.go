package main

import (
	"context"
	"io"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
)

func notificationsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "notifications",
		Aliases: []string{"notification"},
		Short:   "Inspect, retry and drop queued completed-session notifications",
		Long: `Completed-session notifications wait in the outbox until the SMTP server
accepts them; a failing one is retried with backoff, without end. list shows
what waits, with the failed attempts and the last error; retry makes one due
at once, optionally to a corrected recipient (--to); delete drops one that
cannot be delivered. An admin scoped to one account handles that account's
notifications only, and lists them with --account.`,
	}
	var lf listFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List queued notifications, oldest first",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			acct, _ := cmd.Flags().GetString("account")
			if acct == "" {
				acct = a.env(envAccount)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			resp, err := a.listAll(cmd.Context(), lf, func(ctx context.Context, size int32, token string) (proto.Message, error) {
				return c.admin.ListNotifications(ctx, &gatehousev1.ListNotificationsRequest{AccountId: acct, PageSize: size, PageToken: token})
			})
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := listTable(w, cols("id", "account_id", "to", "attempts", "next_attempt_time", "last_error"), messages(resp)); err != nil {
					return err
				}
				a.moreNote(resp)
				return nil
			})
		},
	}
	addAccountFlag(a, list, false)
	lf.bind(list)

	var to string
	retry := &cobra.Command{
		Use:   "retry ID",
		Short: "Make a queued notification due at once (with --to: to a corrected recipient)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.showCall(cmd, func(ctx context.Context, c *clients) (proto.Message, error) {
				resp, err := c.admin.RetryNotification(ctx, &gatehousev1.RetryNotificationRequest{Id: argv[0], To: to})
				return resp.GetNotification(), err
			})
		},
	}
	retry.Flags().StringVar(&to, "to", "", "send it to this `address` instead")

	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Drop a queued notification",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return a.showCall(cmd, func(ctx context.Context, c *clients) (proto.Message, error) {
				return c.admin.DeleteNotification(ctx, &gatehousev1.DeleteNotificationRequest{Id: argv[0]})
			})
		},
	}
	cmd.AddCommand(list, retry, del)
	return cmd
}
