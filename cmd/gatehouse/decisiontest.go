package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/policytest"
	"github.com/spf13/cobra"
)

func testCmd(a *app) *cobra.Command {
	var file, policyFile, server, junit string
	cmd := &cobra.Command{
		Use:   "test -f CASES (--policy DOCUMENT | --server ADDR --account ID) [--junit FILE]",
		Short: "Run decision tests against a document offline or against a live account",
		Long: `Run decision tests: hypothetical sessions (kind, representative, portal,
customer, specialists, language) and cases (actor, feature, URL, frame,
element) with the answer each must get (allowed, reason, optionally the
rule that decides). See docs/policy-as-code.md for the file format.

--policy DOCUMENT runs them offline against an account document (as export
writes it): the document is applied, with the server's own write rules,
to a store in a temporary directory, and the server's own engine answers,
so an offline run and a run against a server holding the same document
agree. Nothing is contacted.

--server ADDR (or --addr) with --account runs them against the live
account through DecisionService.CheckHypothetical: no session is created;
the server logs the run as a dry run. Needs a decider or operator token.

Prints PASS/FAIL per case with expected and actual answers, and under each
failure what differs; exits 1 when any case fails. --junit FILE also writes
JUnit XML for CI systems; -o json prints the report.`,
		Example: "  gatehouse test -f examples/policy/demo_test.yaml --policy examples/policy/demo.yaml\n" +
			"  gatehouse test -f cases.yaml --server 127.0.0.1:8470 --account acme --junit report.xml",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("test needs -f CASES (a decision test file)")}
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			cases, err := policytest.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			acct, _ := cmd.Flags().GetString("account")
			if acct == "" {
				acct = a.env(envAccount)
			}
			var check policytest.Checker
			if policyFile != "" {
				if server != "" || cmd.Flags().Changed("account") {
					return usageError{errors.New("--policy runs offline: pass it without --server and --account")}
				}
				d, err := a.readDocFile(policyFile)
				if err != nil {
					return err
				}
				eng, err := policytest.Offline(cmd.Context(), d.toProto())
				if err != nil {
					return fmt.Errorf("%s: %w", policyFile, err)
				}
				defer eng.Close()
				acct, check = eng.Account, eng.Check
			} else {
				if server != "" {
					a.addr = server
				}
				if acct == "" {
					acct = cases.Account
				}
				if acct == "" {
					return usageError{errors.New("test needs --policy DOCUMENT (offline) or --account ID (against the server)")}
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				check = func(ctx context.Context, req *gatehousev1.CheckHypotheticalRequest) (*gatehousev1.CheckHypotheticalResponse, error) {
					cctx, cancel := a.call(ctx)
					defer cancel()
					return c.decide.CheckHypothetical(cctx, req)
				}
			}
			if cases.Account != "" && cases.Account != acct {
				return fmt.Errorf("%s is about account %q, not %q", file, cases.Account, acct)
			}
			rep, err := policytest.Run(cmd.Context(), cases, acct, check)
			if err != nil {
				return err
			}
			if junit != "" {
				suite := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
				if err := writeAtomic(junit, 0o644, func(w io.Writer) error { return rep.WriteJUnit(w, suite) }); err != nil {
					return err
				}
			}
			if err := a.emit(rep, rep.WriteTable); err != nil {
				return err
			}
			if rep.Failed > 0 {
				return silentError{fmt.Errorf("%d of %d cases failed", rep.Failed, len(rep.Results))}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "decision test `file` (YAML)")
	cmd.Flags().StringVar(&policyFile, "policy", "", "account document `file` to test offline")
	cmd.Flags().StringVar(&server, "server", "", "test the live account on gatehoused at `host:port` (default --addr)")
	cmd.Flags().StringVar(&junit, "junit", "", "also write JUnit XML to `file`")
	addAccountFlag(a, cmd, false)
	return cmd
}
