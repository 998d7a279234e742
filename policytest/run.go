package policytest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
)

// Checker answers the checks of one hypothetical session: an offline
// Engine, or a DecisionServiceClient's CheckHypothetical.
type Checker func(ctx context.Context, req *gatehousev1.CheckHypotheticalRequest) (*gatehousev1.CheckHypotheticalResponse, error)

// maxChecksPerCall is what one CheckHypothetical takes.
const maxChecksPerCall = 1000

// Result is the outcome of one case.
type Result struct {
	Name    string `json:"name"`
	Session string `json:"session"`
	Feature string `json:"feature"`
	Pass    bool   `json:"pass"`
	// Want is the expectation as written; Got the answer.
	Want string `json:"want"`
	Got  string `json:"got"`
	// Diff lists each expected field that differs: "reason: want X, got Y".
	Diff    []string `json:"diff,omitempty"`
	Message string   `json:"message,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Account  string        `json:"account"`
	Revision uint64        `json:"revision"`
	Passed   int           `json:"passed"`
	Failed   int           `json:"failed"`
	Results  []Result      `json:"results"`
	Elapsed  time.Duration `json:"-"`
}

// Run asks every case of f about account acct, one CheckHypothetical call
// per session (in chunks of 1000 checks), and compares the answers.
func Run(ctx context.Context, f *File, acct string, check Checker) (*Report, error) {
	start := time.Now()
	rep := &Report{Account: acct, Results: make([]Result, len(f.Cases))}
	bySession := map[string][]int{}
	for i := range f.Cases {
		bySession[f.Cases[i].Session] = append(bySession[f.Cases[i].Session], i)
	}
	for _, name := range sortedNames(bySession) {
		s := f.Sessions[name]
		kind, _ := sessionKind(s.Kind)
		hs := &gatehousev1.HypotheticalSession{Kind: kind, RepresentativeId: s.Representative, CustomerId: customerOf(s),
			PortalId: s.Portal, SpecialistIds: s.Specialists}
		idx := bySession[name]
		for len(idx) > 0 {
			n := min(len(idx), maxChecksPerCall)
			req := &gatehousev1.CheckHypotheticalRequest{AccountId: acct, Session: hs}
			for _, i := range idx[:n] {
				q, err := f.check(&f.Cases[i])
				if err != nil {
					return nil, fmt.Errorf("cases[%d] (%s): %w", i, f.Cases[i].Name, err)
				}
				req.Checks = append(req.Checks, q)
			}
			resp, err := check(ctx, req)
			if err != nil {
				return nil, fmt.Errorf("session %q: %w", name, err)
			}
			if len(resp.GetDecisions()) != n {
				return nil, fmt.Errorf("session %q: %d answers to %d checks", name, len(resp.GetDecisions()), n)
			}
			rep.Revision = max(rep.Revision, resp.GetRevision())
			for j, i := range idx[:n] {
				rep.Results[i] = compare(&f.Cases[i], resp.GetDecisions()[j])
			}
			idx = idx[n:]
		}
	}
	for _, r := range rep.Results {
		if r.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func compare(c *Case, d *gatehousev1.Decision) Result {
	feature, _ := enumValue(gatehousev1.Feature_value, "FEATURE_", c.Feature, "", "")
	r := Result{Name: c.Name, Session: c.Session, Feature: shortName(gatehousev1.Feature(feature).String(), "FEATURE_"), Message: d.GetMessage()}
	gotReason := shortName(d.GetReason().String(), "REASON_")
	r.Got = answer(d.GetAllowed(), gotReason, d.GetRule())
	var want []string
	if a := c.Expect.Allowed; a != nil {
		want = append(want, verdict(*a))
		if *a != d.GetAllowed() {
			r.Diff = append(r.Diff, fmt.Sprintf("allowed: want %v, got %v", *a, d.GetAllowed()))
		}
	}
	if c.Expect.Reason != "" {
		v, _ := enumValue(gatehousev1.Reason_value, "REASON_", c.Expect.Reason, "", "")
		wantReason := shortName(gatehousev1.Reason(v).String(), "REASON_")
		want = append(want, wantReason)
		if wantReason != gotReason {
			r.Diff = append(r.Diff, fmt.Sprintf("reason: want %s, got %s", wantReason, gotReason))
		}
	}
	if rule := c.Expect.Rule; rule != nil {
		want = append(want, "rule "+quoteEmpty(*rule))
		if *rule != d.GetRule() {
			r.Diff = append(r.Diff, fmt.Sprintf("rule: want %s, got %s", quoteEmpty(*rule), quoteEmpty(d.GetRule())))
		}
	}
	r.Want = strings.Join(want, " ")
	r.Pass = len(r.Diff) == 0
	return r
}

func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

func answer(allowed bool, reason, rule string) string {
	s := verdict(allowed) + " " + reason
	if rule != "" {
		s += " rule " + rule
	}
	return s
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// WriteTable writes one line per case (PASS or FAIL, name, feature,
// expected, got) and, under each failure, what differs.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tCASE\tSESSION\tFEATURE\tEXPECTED\tGOT")
	for _, res := range r.Results {
		mark := "PASS"
		if !res.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, res.Name, res.Session, res.Feature, res.Want, res.Got)
		for _, d := range res.Diff {
			fmt.Fprintf(tw, "\t\t\t\t\t  %s\n", d)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d cases: %d passed, %d failed (account %s, revision %d)\n", len(r.Results), r.Passed, r.Failed, r.Account, r.Revision)
	return err
}

// WriteJUnit writes the report as JUnit XML, one test case per case, for
// CI systems.
func (r *Report) WriteJUnit(w io.Writer, suite string) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Time      string   `xml:"time,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type testsuite struct {
		XMLName  xml.Name   `xml:"testsuite"`
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Time     string     `xml:"time,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	ts := testsuite{Name: suite, Tests: len(r.Results), Failures: r.Failed, Time: fmt.Sprintf("%.3f", r.Elapsed.Seconds())}
	for _, res := range r.Results {
		tc := testcase{Name: res.Name, Classname: suite + "." + res.Session, Time: "0"}
		if !res.Pass {
			tc.Failure = &failure{Message: strings.Join(res.Diff, "; "), Type: "DecisionMismatch",
				Text: fmt.Sprintf("expected: %s\ngot:      %s\n%s\n", res.Want, res.Got, res.Message)}
		}
		ts.Cases = append(ts.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(ts); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
