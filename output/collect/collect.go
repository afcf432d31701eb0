// Package collect turns what the gates produce (Kyverno objects, the
// weaken and floor gates' evaluations, Kyverno test results) into the
// output package's CheckReport pieces. It is apart from package output so
// that output, which every command uses, does not link Kyverno.
package collect

import (
	"strings"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/output"
)

// Posture returns the effective action of every rule that has one among
// objs, the loaded objects of environment env's rendering (see
// weaken.RuleActions for which rules and the action strings). The result
// does not depend on env, which only says which column the map is for.
func Posture(env string, objs []*kyverno.Object) map[output.PolicyRule]string {
	out := map[output.PolicyRule]string{}
	for _, ra := range weaken.RuleActions(objs) {
		out[key(ra)] = ra.Action
	}
	return out
}

func key(ra weaken.RuleAction) output.PolicyRule {
	return output.PolicyRule{Kind: ra.Kind, Policy: ra.Policy, Rule: ra.Rule}
}

// Column returns environment env's posture column: the effective action of
// every rule of head and, when base is not nil (an empty, non-nil base is a
// baseline with nothing in it), the change mark against base. The mark
// combines the change of the action itself (weaker when less is blocked,
// with Kyverno's override precedence) and every enforcement change
// weaken.Diff finds for the rule or its whole policy (a narrowed match is
// weaker even when the action stays Enforce); the worst wins, and new and
// removed rules stay so. items, the weaken gate's Evaluate items, refine
// the classes (a witness proves an unknown change weaker).
func Column(env string, head, base []*kyverno.Object, items ...weaken.Item) output.Column {
	col := output.Column{Environment: env, Cells: map[output.PolicyRule]output.Cell{}}
	heads := map[output.PolicyRule]weaken.RuleAction{}
	for _, ra := range weaken.RuleActions(head) {
		heads[key(ra)] = ra
		col.Cells[key(ra)] = output.Cell{Action: ra.Action}
	}
	if base == nil {
		return col
	}
	bases := map[output.PolicyRule]weaken.RuleAction{}
	for _, ra := range weaken.RuleActions(base) {
		bases[key(ra)] = ra
	}
	for k, h := range heads {
		b, ok := bases[k]
		if !ok {
			col.Cells[k] = output.Cell{Action: h.Action, Baseline: output.ActionAbsent, Change: output.MarkNew}
			continue
		}
		c := output.Cell{Action: h.Action, Change: mark(weaken.CompareRuleActions(b, h))}
		if c.Change == output.MarkNone && b.Action != h.Action {
			c.Change = output.MarkChanged
		}
		if b.Action != h.Action {
			c.Baseline = b.Action
		}
		col.Cells[k] = c
	}
	for k, b := range bases {
		if _, ok := heads[k]; !ok {
			col.Cells[k] = output.Cell{Action: output.ActionAbsent, Baseline: b.Action, Change: output.MarkRemoved}
		}
	}
	proven := map[string]weaken.Class{}
	for _, it := range items {
		proven[it.Change.Fingerprint] = it.Change.Class
	}
	for _, ch := range weaken.Diff(base, head) {
		class := ch.Class
		if p, ok := proven[ch.Fingerprint]; ok {
			class = p
		}
		m := mark(class)
		if m == output.MarkNone {
			continue
		}
		for k, c := range col.Cells {
			if k.Kind != ch.Kind || k.Policy != ch.Policy {
				continue
			}
			if ch.Rule != "" && ch.Rule != k.Rule && autogenParent(ch.Rule) != k.Rule {
				continue
			}
			if c.Change != output.MarkNew && c.Change != output.MarkRemoved && rank(m) > rank(c.Change) {
				c.Change = m
			}
			if !contains(c.Fingerprints, ch.Fingerprint) {
				c.Fingerprints = append(c.Fingerprints, ch.Fingerprint)
			}
			col.Cells[k] = c
		}
	}
	return col
}

func mark(c weaken.Class) output.ChangeMark {
	switch c {
	case weaken.Weaker:
		return output.MarkWeaker
	case weaken.Stricter:
		return output.MarkStricter
	case weaken.Unknown:
		return output.MarkUnknown
	}
	return output.MarkNone
}

func rank(m output.ChangeMark) int {
	switch m {
	case output.MarkWeaker:
		return 5
	case output.MarkUnknown:
		return 4
	case output.MarkStricter:
		return 3
	case output.MarkChanged:
		return 2
	}
	return 1
}

// autogenParent is the rule an autogen rule was generated from.
func autogenParent(rule string) string {
	if strings.HasPrefix(rule, "autogen-cronjob-") {
		return strings.TrimPrefix(rule, "autogen-cronjob-")
	}
	return strings.TrimPrefix(rule, "autogen-")
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// Findings converts one overlay's gate findings (gate.Report.Findings, in
// their order) and adds what the weaken and floor gates' Evaluate items
// know: fingerprint, change, witness, the approval found and the approval
// to add. Approved items, which are not findings, are appended with
// severity note. An item is matched to its finding by gate and by the
// approval key, which the finding's hint names.
func Findings(fs []gate.Finding, weakenItems, floorItems []weaken.Item) []output.Finding {
	out := output.FromGate(fs)
	used := make([]bool, len(out))
	var approved []output.Finding
	for _, g := range []struct {
		name  string
		items []weaken.Item
	}{{"weaken", weakenItems}, {"floor", floorItems}} {
		for _, it := range g.items {
			if it.Approved {
				f := output.Finding{Gate: g.name, Severity: output.SeverityNote, Object: it.Change.Kind + " " + it.Change.Policy,
					Rule: it.Change.Rule, Message: it.Change.Message}
				if a := it.Approval; a != nil && a.Object == f.Object {
					f.File = a.File
				}
				enrich(&f, g.name, it)
				approved = append(approved, f)
				continue
			}
			k := it.Suggestion.Key
			matched := false
			for i := range out {
				if used[i] || out[i].Gate != g.name || out[i].Severity != output.SeverityError || k == "" || !strings.Contains(out[i].Hint, k) {
					continue
				}
				used[i], matched = true, true
				enrich(&out[i], g.name, it)
				break
			}
			if !matched {
				f := output.Finding{Gate: g.name, Severity: output.SeverityError, Object: it.Change.Kind + " " + it.Change.Policy,
					Rule: it.Change.Rule, Message: it.Change.Message, Hint: it.Suggestion.Hint()}
				enrich(&f, g.name, it)
				out = append(out, f)
			}
		}
	}
	return append(out, approved...)
}

// enrich adds an item's details to its finding.
func enrich(f *output.Finding, gateName string, it weaken.Item) {
	c := it.Change
	f.Fingerprint, f.ID = c.Fingerprint, c.Fingerprint
	if f.Field == "" {
		f.Field = c.Field
	}
	f.Approved = it.Approved
	f.Kind = "violation"
	if gateName == "weaken" {
		f.Kind = string(c.Class)
	}
	f.Change = &output.Change{Class: string(c.Class), Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Before: c.Before, After: c.After}
	if a := it.Approval; a != nil {
		ap := &output.Approval{Key: a.Key(), Reason: a.Reason, Ticket: a.Ticket, By: a.By, Object: a.Object, File: a.File}
		if !a.Expires.IsZero() {
			ap.Expires = a.Expires.Format("2006-01-02")
		}
		switch {
		case it.Approved:
			ap.Status = "valid"
		case a.Err != nil:
			ap.Status, ap.Error = "invalid", a.Err.Error()
		default:
			ap.Status = "expired"
		}
		f.Approval = ap
	}
	if !it.Approved {
		s := it.Suggestion
		sg := &output.ApprovalSuggestion{Key: s.Key, Value: s.Value, Object: s.Object, Kustomization: s.Kustomization,
			AnyObject: s.AnyObject, Patch: s.Patch}
		if s.Kind != "" {
			sg.Target = &output.ObjectRef{APIVersion: s.APIVersion, Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}
		}
		f.ApprovalToAdd = sg
	}
	if w := it.Witness; w != nil {
		f.Witness = &output.Witness{File: w.File, APIVersion: w.APIVersion, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name,
			PolicyKind: w.PolicyKind, Policy: w.Policy, Rule: w.Rule, Message: w.Message, Exclusive: w.Exclusive}
	}
}

// Tests summarises Kyverno test results: the counts and one case per row
// (and per suite skipped or not run).
func Tests(results []*kyvernotest.SuiteResult) *output.TestSummary {
	c := kyvernotest.Count(results)
	t := &output.TestSummary{Suites: c.Suites, Skipped: c.Skipped, Errors: c.Errors, Results: c.Results,
		UpstreamPassed: c.UpstreamPassed, UpstreamFailed: c.UpstreamFailed, Failed: c.Failed}
	for _, r := range results {
		suite, name := "", ""
		if r.Suite != nil {
			suite, name = r.Suite.Rel, r.Suite.Name()
		}
		switch {
		case r.Skipped != "":
			t.Cases = append(t.Cases, output.TestCase{Suite: suite, SuiteName: name, Status: "skip", Message: r.Skipped})
			continue
		case r.Err != nil:
			t.Cases = append(t.Cases, output.TestCase{Suite: suite, SuiteName: name, Status: "error", Message: r.Err.Error()})
		}
		for _, row := range r.Rows {
			status := "pass"
			switch {
			case row.Failed():
				status = "fail"
			case row.Upstream == "skip":
				status = "skip"
			}
			t.Cases = append(t.Cases, output.TestCase{Suite: suite, SuiteName: name, Policy: row.Policy, Rule: row.Rule,
				Resource: row.Resource, Expected: row.Expected, Got: row.Got, Status: status, Upstream: row.Upstream,
				Reason: row.Reason, Message: row.Message, Strict: row.Strict})
		}
	}
	return t
}
