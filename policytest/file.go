// Package policytest runs decision tests: hypothetical sessions and the
// answers expected in them, written in YAML next to an account document.
// Offline starts the server's own services in memory over a document, so
// an offline run answers with the code that answers a live server: the
// same write rules compile the document, the same engine decides. Against
// a live account the same cases go to DecisionService.CheckHypothetical.
package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	gatehousev1 "github.com/gatehouse-dev/gatehouse/gen/gatehouse/v1"
	"go.yaml.in/yaml/v3"
)

// Format names the version of the test file.
const Format = "gatehouse.decisiontest/v1"

// File is a decision test file.
type File struct {
	// Format is Format (optional).
	Format string `yaml:"format"`
	// Account names the account the cases are about (optional: the
	// document's, or the --account of a live run).
	Account string `yaml:"account"`
	// Sessions are the hypothetical sessions, by name.
	Sessions map[string]Session `yaml:"sessions"`
	// Cases are the questions and their expected answers, in order.
	Cases []Case `yaml:"cases"`
}

// Session is a session that is not started.
type Session struct {
	// Kind is live_guide or support.
	Kind string `yaml:"kind"`
	// Representative is the serving representative's id.
	Representative string `yaml:"representative"`
	// Customer is the customer's id; "customer" when empty.
	Customer string `yaml:"customer"`
	// Portal is the subportal of a support session.
	Portal string `yaml:"portal"`
	// Specialists are external specialists taking part.
	Specialists []string `yaml:"specialists"`
	// Language is the customer's language tag (en, fr-CA, …). Decisions
	// do not depend on it; it is checked and reported.
	Language string `yaml:"language"`
}

// Case is one question in a session with its expected answer.
type Case struct {
	Name    string `yaml:"name"`
	Session string `yaml:"session"`
	// Actor is agent, customer or external_specialist; ActorID defaults
	// to the session's representative, customer or first specialist.
	Actor   string   `yaml:"actor"`
	ActorID string   `yaml:"actor_id"`
	Feature string   `yaml:"feature"`
	URL     string   `yaml:"url"`
	Frame   string   `yaml:"frame"`
	Element *Element `yaml:"element"`
	Expect  Expect   `yaml:"expect"`
}

// Element is the element acted on, with its ancestors outermost first.
type Element struct {
	Tag        string            `yaml:"tag"`
	ID         string            `yaml:"id"`
	Classes    []string          `yaml:"classes"`
	Attributes map[string]string `yaml:"attributes"`
	Ancestors  []Node            `yaml:"ancestors"`
}

// Node is one ancestor of an element.
type Node struct {
	Tag        string            `yaml:"tag"`
	ID         string            `yaml:"id"`
	Classes    []string          `yaml:"classes"`
	Attributes map[string]string `yaml:"attributes"`
}

// Expect is the expected answer: allowed and/or reason, and optionally
// the rule that decided.
type Expect struct {
	Allowed *bool   `yaml:"allowed"`
	Reason  string  `yaml:"reason"`
	Rule    *string `yaml:"rule"`
}

// Parse reads a test file. Unknown keys, unknown names (features,
// reasons, roles, kinds) and cases naming no session are errors, each
// with the case it is in.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if f.Format != "" && f.Format != Format {
		return nil, fmt.Errorf("format %q: want %q", f.Format, Format)
	}
	if len(f.Cases) == 0 {
		return nil, errors.New("no cases")
	}
	for name, s := range f.Sessions {
		if _, err := sessionKind(s.Kind); err != nil {
			return nil, fmt.Errorf("session %q: %w", name, err)
		}
		if s.Representative == "" {
			return nil, fmt.Errorf("session %q: representative is required", name)
		}
	}
	for i := range f.Cases {
		c := &f.Cases[i]
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d", i+1)
		}
		if _, err := f.check(c); err != nil {
			return nil, fmt.Errorf("cases[%d] (%s): %w", i, c.Name, err)
		}
	}
	return &f, nil
}

// check builds the question of c.
func (f *File) check(c *Case) (*gatehousev1.HypotheticalCheck, error) {
	s, ok := f.Sessions[c.Session]
	if !ok {
		return nil, fmt.Errorf("session %q is not among sessions (%s)", c.Session, strings.Join(sortedNames(f.Sessions), ", "))
	}
	role, err := enumValue(gatehousev1.Role_value, "ROLE_", c.Actor, "actor", "agent, customer or external_specialist")
	if err != nil {
		return nil, err
	}
	id := c.ActorID
	if id == "" {
		switch gatehousev1.Role(role) {
		case gatehousev1.Role_ROLE_AGENT:
			id = s.Representative
		case gatehousev1.Role_ROLE_CUSTOMER:
			id = customerOf(s)
		default:
			if len(s.Specialists) == 0 {
				return nil, errors.New("actor_id is required: the session has no specialists")
			}
			id = s.Specialists[0]
		}
	}
	feature, err := enumValue(gatehousev1.Feature_value, "FEATURE_", c.Feature, "feature", "click, navigate, send_files, …")
	if err != nil {
		return nil, err
	}
	frame := int32(0)
	if c.Frame != "" {
		if frame, err = enumValue(gatehousev1.Frame_value, "FRAME_", c.Frame, "frame", "top_level or iframe"); err != nil {
			return nil, err
		}
	}
	if c.Expect.Allowed == nil && c.Expect.Reason == "" {
		return nil, errors.New("expect needs allowed or reason")
	}
	if c.Expect.Reason != "" {
		if _, err := enumValue(gatehousev1.Reason_value, "REASON_", c.Expect.Reason, "expect.reason", "ALLOWED, ELEMENT_BLOCKED, …"); err != nil {
			return nil, err
		}
	}
	q := &gatehousev1.HypotheticalCheck{Actor: &gatehousev1.Actor{Role: gatehousev1.Role(role), Id: id},
		Feature: gatehousev1.Feature(feature), Url: c.URL, Frame: gatehousev1.Frame(frame)}
	if e := c.Element; e != nil {
		q.Element = &gatehousev1.Element{Tag: e.Tag, Id: e.ID, Classes: e.Classes, Attributes: e.Attributes}
		for _, a := range e.Ancestors {
			q.Element.Ancestors = append(q.Element.Ancestors, &gatehousev1.ElementNode{Tag: a.Tag, Id: a.ID, Classes: a.Classes, Attributes: a.Attributes})
		}
	}
	return q, nil
}

func customerOf(s Session) string {
	if s.Customer == "" {
		return "customer"
	}
	return s.Customer
}

func sessionKind(kind string) (gatehousev1.SessionKind, error) {
	v, err := enumValue(gatehousev1.SessionKind_value, "SESSION_KIND_", kind, "kind", "live_guide or support")
	return gatehousev1.SessionKind(v), err
}

// enumValue parses a wire enum name given with or without its prefix, in
// any case ("click", "FEATURE_CLICK").
func enumValue(values map[string]int32, prefix, name, field, hint string) (int32, error) {
	if name == "" {
		return 0, fmt.Errorf("%s is required (%s)", field, hint)
	}
	n := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if !strings.HasPrefix(n, prefix) {
		n = prefix + n
	}
	v, ok := values[n]
	if !ok || v == 0 {
		return 0, fmt.Errorf("%s %q: unknown (%s)", field, name, hint)
	}
	return v, nil
}

// shortName is an enum name without its prefix.
func shortName(name, prefix string) string { return strings.TrimPrefix(name, prefix) }

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
