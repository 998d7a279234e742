package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func healthCmd(a *app) *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe gatehoused (gRPC health): exit 0 when serving, 1 when not",
		Long: `Ask the gRPC health service (grpc.health.v1.Health/Check) of gatehoused
whether it serves, and print the answer: SERVING, NOT_SERVING (shutting
down) or an error (not reachable, unknown --service). The exit code is 0
only for SERVING, so scripts, container health checks and orchestrators can
use it as a probe. Health checks need no token. The daemon answers the same
over HTTP at /healthz on its --metrics-addr.`,
		Example: "  gatehouse health --addr 10.0.0.5:8470 --timeout 2s\n" +
			"  gatehouse health --service gatehouse.v1.DecisionService",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.client(); err != nil {
				return err
			}
			ctx, cancel := a.call(cmd.Context())
			defer cancel()
			resp, err := healthpb.NewHealthClient(a.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			if err != nil {
				return err
			}
			st := resp.GetStatus().String()
			if err := a.emit(resp, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, st)
				return err
			}); err != nil {
				return err
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return silentError{fmt.Errorf("%s", st)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "ask about one gRPC `service` (e.g. gatehouse.v1.DecisionService; empty: the whole server)")
	return cmd
}
