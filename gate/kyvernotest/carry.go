package kyvernotest

import (
	"sort"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

// Tests follow a migrated policy. A suite written for a ClusterPolicy (or
// Policy) whose policy files now hold the ValidatingPolicy that replaces it
// (the same name, or kyverno.ReplacesAnnotation naming it) would fail on
// results the new kind never produces: its results name the old policy and
// a rule, a ValidatingPolicy's results name the policy only. Each such
// result is run against the successor instead, so that a migration keeps
// its test coverage without editing the suite. This is exact only where
// one rule maps onto one successor: a successor of a whole policy takes
// the results of a suite that names one rule of it, a successor of one
// rule (split per rule) the results of that rule; a suite that names
// several rules of a policy one successor replaces keeps its results as
// written, and fails as it would.

// carryOver returns t with the results of replaced policies mapped onto
// their successors among pols, and one line per mapping ("ClusterPolicy a
// → ValidatingPolicy b"); t itself when nothing maps.
func carryOver(t *v1alpha1.Test, pols *Policies) (*v1alpha1.Test, []string) {
	if t == nil || pols == nil || len(pols.ValidatingPolicies) == 0 {
		return t, nil
	}
	legacy := map[string]bool{}
	for _, p := range pols.Policies {
		legacy[policyRef(p.GetNamespace(), p.GetName())] = true
	}
	// successors by the old policy's reference ("name" or "ns/name") and
	// rule ("" for the whole policy).
	type succ struct{ ref, kind string }
	whole, byRule := map[string][]succ{}, map[string][]succ{}
	for _, vp := range pols.ValidatingPolicies {
		s := succ{ref: policyRef(vp.GetNamespace(), vp.GetName()), kind: vp.GetKind()}
		named := false
		for _, r := range kyverno.Replaces(vp.GetAnnotations()[kyverno.ReplacesAnnotation]) {
			named = true
			old := policyRef(r.Namespace, r.Name)
			if r.Rule == "" {
				whole[old] = append(whole[old], s)
			} else {
				byRule[old+"#"+r.Rule] = append(byRule[old+"#"+r.Rule], s)
			}
		}
		if !named {
			whole[s.ref] = append(whole[s.ref], s)
		}
	}
	// The rules each old policy's results name.
	rules := map[string]map[string]bool{}
	for _, r := range t.Results {
		if !legacyResult(r) || legacy[r.Policy] {
			continue
		}
		if rules[r.Policy] == nil {
			rules[r.Policy] = map[string]bool{}
		}
		rules[r.Policy][baseRule(r.Rule)] = true
	}
	var notes []string
	noted := map[string]bool{}
	out := *t
	out.Results = make([]v1alpha1.TestResult, len(t.Results))
	changed := false
	for i, r := range t.Results {
		out.Results[i] = r
		if !legacyResult(r) || legacy[r.Policy] || rules[r.Policy] == nil {
			continue
		}
		cands := byRule[r.Policy+"#"+baseRule(r.Rule)]
		if len(cands) == 0 && len(rules[r.Policy]) == 1 {
			cands = whole[r.Policy]
		}
		if len(cands) != 1 {
			continue
		}
		s := cands[0]
		note := "ClusterPolicy " + r.Policy + " → " + s.kind + " " + s.ref
		if strings.Contains(r.Policy, "/") {
			note = "Policy " + r.Policy + " → " + s.kind + " " + s.ref
		}
		if !noted[note] {
			noted[note] = true
			notes = append(notes, note)
		}
		r.Policy, r.Rule, r.IsValidatingPolicy = s.ref, "", true
		out.Results[i] = r
		changed = true
	}
	if !changed {
		return t, nil
	}
	sort.Strings(notes)
	return &out, notes
}

// legacyResult reports whether r is written for a kyverno.io policy: it
// names a rule and none of the other kinds' flags.
func legacyResult(r v1alpha1.TestResult) bool {
	b := r.TestResultBase
	return b.Rule != "" && !b.IsValidatingAdmissionPolicy && !b.IsMutatingAdmissionPolicy && !b.IsValidatingPolicy &&
		!b.IsDeletingPolicy && !b.IsImageValidatingPolicy && !b.IsGeneratingPolicy && !b.IsMutatingPolicy
}

// baseRule is the rule an autogen rule was made from.
func baseRule(rule string) string {
	for _, p := range []string{"autogen-cronjob-", "autogen-"} {
		if strings.HasPrefix(rule, p) {
			return strings.TrimPrefix(rule, p)
		}
	}
	return rule
}

func policyRef(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
