package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"github.com/gatehouse-dev/gatehouse/schema"
	"github.com/spf13/cobra"
)

// readDocFile reads an account document from file ("-": stdin).
func (a *app) readDocFile(file string) (*accountDoc, error) {
	if file == "" {
		return nil, usageError{errors.New("needs -f FILE (an account document; - reads stdin)")}
	}
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(a.stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	d, err := decodeDoc(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return d, nil
}

// applyDoc sends d to ApplyAccount.
func (a *app) applyDoc(ctx context.Context, d *accountDoc, dry, prune bool, expect uint64) (*gatehousev1.ApplyAccountResponse, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	cctx, cancel := a.call(ctx)
	defer cancel()
	return c.admin.ApplyAccount(cctx, &gatehousev1.ApplyAccountRequest{Document: d.toProto(), DryRun: dry, Prune: prune, ExpectedRevision: expect})
}

func diffCmd(a *app) *cobra.Command {
	var file string
	var prune bool
	cmd := &cobra.Command{
		Use:   "diff -f FILE [--prune]",
		Short: "Show what applying an account document would change",
		Long: `Compare an account document (as export writes it, YAML or JSON; - reads
stdin) with the account it names and print the plan: every resource apply
would create (+), update (~, each field before → after) and, with --prune,
delete (-). Resources the account holds and the document does not are
listed apart: apply deletes them only with --prune. Nothing is written.

The plan is made by the server with the same rules as apply, and says the
store revision it was made at; "gatehouse apply --expect-revision R" with
that revision refuses to apply if the account changed since.

Exit status 0 also when there are changes; -o json prints the plan as
the ApplyAccount response.`,
		Example: "  gatehouse diff -f acme.yaml\n  gatehouse diff -f acme.yaml --prune -o json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.readDocFile(file)
			if err != nil {
				return err
			}
			resp, err := a.applyDoc(cmd.Context(), d, true, prune, 0)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error { return writePlan(w, d.account.GetId(), resp, prune) })
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "account document `file` (- for stdin)")
	cmd.Flags().BoolVar(&prune, "prune", false, "plan to delete what the account holds and the document does not")
	return cmd
}

func applyCmd(a *app) *cobra.Command {
	var file string
	var prune, dry bool
	var expect uint64
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--expect-revision R]",
		Short: "Bring an account to the state of a document, in one transaction",
		Long: `Apply an account document (as export writes it, YAML or JSON; - reads
stdin): create the account when it does not exist, create and update what
differs and, with --prune, delete what the document no longer holds. The
server makes every change in one store transaction, with the rules of the
single create, update and delete commands: either all of it is applied or,
on any error, none. Applying a document the account already matches
changes nothing and says so.

--expect-revision R (the revision "gatehouse diff" or "gatehouse export"
printed) refuses the apply with ABORTED when anything the document covers
changed in the account after R, so that what is applied is what was
reviewed. Creating an account and setting its co-browse URL need an
operator token, as the single commands do.`,
		Example: "  gatehouse diff -f acme.yaml\n  gatehouse apply -f acme.yaml --expect-revision 42\n  gatehouse apply -f acme.yaml --prune",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := a.readDocFile(file)
			if err != nil {
				return err
			}
			resp, err := a.applyDoc(cmd.Context(), d, dry, prune, expect)
			if err != nil {
				return err
			}
			return a.emit(resp, func(w io.Writer) error {
				if err := writePlan(w, d.account.GetId(), resp, prune); err != nil {
					return err
				}
				if resp.GetApplied() {
					fmt.Fprintf(w, "\napplied %d change(s) to account %s at revision %d\n", len(resp.GetChanges()), d.account.GetId(), resp.GetRevision())
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "account document `file` (- for stdin)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete what the account holds and the document does not")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only print the plan (as diff does)")
	cmd.Flags().Uint64Var(&expect, "expect-revision", 0, "refuse (ABORTED) when the account changed after store `revision` R")
	return cmd
}

// writePlan renders a plan as readable per-resource diffs.
func writePlan(w io.Writer, acct string, resp *gatehousev1.ApplyAccountResponse, prune bool) error {
	var creates, updates, deletes int
	for _, c := range resp.GetChanges() {
		switch c.GetAction() {
		case gatehousev1.ChangeAction_CHANGE_ACTION_CREATE:
			creates++
		case gatehousev1.ChangeAction_CHANGE_ACTION_UPDATE:
			updates++
		case gatehousev1.ChangeAction_CHANGE_ACTION_DELETE:
			deletes++
		}
	}
	verb := "plan"
	if resp.GetApplied() {
		verb = "changes"
	}
	if len(resp.GetChanges()) == 0 {
		fmt.Fprintf(w, "no changes: account %s matches the document (revision %d)\n", acct, resp.GetRevision())
	} else {
		at := fmt.Sprintf("planned at revision %d", resp.GetRevision())
		if resp.GetApplied() {
			at = fmt.Sprintf("committed at revision %d", resp.GetRevision())
		}
		fmt.Fprintf(w, "%s for account %s (%s): %d to create, %d to update, %d to delete\n", verb, acct, at, creates, updates, deletes)
	}
	for _, c := range resp.GetChanges() {
		writeChange(w, c)
	}
	if np := resp.GetNotPruned(); len(np) > 0 {
		fmt.Fprintf(w, "\nin the account but not in the document, kept (--prune deletes them):\n")
		for _, c := range np {
			fmt.Fprintf(w, "  %s/%s\n", c.GetSection(), c.GetId())
		}
	}
	return nil
}

func writeChange(w io.Writer, c *gatehousev1.ResourceChange) {
	mark := map[gatehousev1.ChangeAction]string{
		gatehousev1.ChangeAction_CHANGE_ACTION_CREATE: "+",
		gatehousev1.ChangeAction_CHANGE_ACTION_UPDATE: "~",
		gatehousev1.ChangeAction_CHANGE_ACTION_DELETE: "-",
	}[c.GetAction()]
	fmt.Fprintf(w, "\n%s %s/%s\n", mark, c.GetSection(), c.GetId())
	width := 0
	for _, f := range c.GetFields() {
		width = max(width, len(f.GetPath()))
	}
	for _, f := range c.GetFields() {
		pad := strings.Repeat(" ", width-len(f.GetPath()))
		switch c.GetAction() {
		case gatehousev1.ChangeAction_CHANGE_ACTION_CREATE:
			fmt.Fprintf(w, "    %s:%s %s\n", f.GetPath(), pad, f.GetAfterJson())
		case gatehousev1.ChangeAction_CHANGE_ACTION_DELETE:
			fmt.Fprintf(w, "    %s:%s %s\n", f.GetPath(), pad, f.GetBeforeJson())
		default:
			fmt.Fprintf(w, "    %s:%s %s → %s\n", f.GetPath(), pad, orZero(f.GetBeforeJson(), f.GetAfterJson()), orZero(f.GetAfterJson(), f.GetBeforeJson()))
		}
	}
}

// orZero renders an unset value (v empty) as the zero value of the type
// of other, the field's value on the other side of the change.
func orZero(v, other string) string {
	switch {
	case v != "":
		return v
	case other == "true":
		return "false"
	case strings.HasPrefix(other, `"`):
		return `""`
	case strings.HasPrefix(other, "["):
		return "[]"
	case other != "" && strings.Trim(other, "-0123456789.") == "":
		return "0"
	}
	return "(unset)"
}

func schemaCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the account document",
		Long: `Print the JSON Schema (draft 2020-12) of the account document that export
writes and diff and apply read (format gatehouse.account/v1), so that an
editor can check a document as it is written, e.g. with a first line
"# yaml-language-server: $schema=account.v1.json" in a YAML file.`,
		Example: "  gatehouse schema > account.v1.json",
		Args:    args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			_, err := a.out.Write(schema.AccountV1)
			return err
		},
	}
}
