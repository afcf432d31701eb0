package kyvernotest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/report"
	clires "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/resource"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Row is the outcome of one expected result on one resource: a row of
// `kyverno test`'s table, plus kyverno-gate's stricter verdict.
type Row struct {
	Policy, Rule, Resource string
	Expected               string
	// Got is the result the engine produced ("" when no rule applied).
	Got string
	// Upstream is how `kyverno test` judges the row: pass, fail or skip.
	Upstream string
	Reason   string // upstream's reason, e.g. "Ok", "Want fail, got pass", "Excluded"
	Message  string
	// Strict, when set, fails a row upstream passes, and says why.
	Strict string
}

// Failed reports whether kyverno-gate fails the row.
func (r Row) Failed() bool { return r.Upstream == "fail" || r.Strict != "" }

// check compares a suite's expected results with the engine's responses,
// row by row as upstream's test command does, adding the strict verdicts.
func check(s *Suite, ev *evaluation) []Row {
	var rows []Row
	dir := s.Dir()
	for _, res := range s.Test.Results {
		trigger := ev.trigger
		if res.Operation != "" {
			trigger = ev.byOperation[res.Operation]
		}
		keys, missing := selectResources(res, ev.target, trigger)
		if len(s.Resources) > 0 {
			keys, missing = narrow(s, keys, missing)
		}
		for _, m := range missing {
			rows = append(rows, Row{Policy: res.Policy, Rule: res.Rule, Resource: m, Expected: string(res.Result),
				Upstream: "pass", Reason: "Not selected",
				Strict: fmt.Sprintf("resource %q named by this result is not among the test's resources, so nothing checks it (a typo?)", m)})
		}
		for _, key := range keys {
			var out []Row
			skipped := false
			policyName := lastPart(res.Policy)
			for _, er := range trigger[key] {
				if er.Policy().GetName() != policyName {
					continue
				}
				var rules []engineapi.RuleResponse
				if res.Rule == "" || isRuleless(er.Policy().GetKind()) {
					rules = er.PolicyResponse.Rules
				} else {
					rules = matchingRules(res.Rule, er.PolicyResponse.Rules)
				}
				for _, rule := range rules {
					if rule.RuleType() != engineapi.Generation {
						actual := er.Resource
						if rule.RuleType() == engineapi.Mutation {
							actual = er.PatchedResource
						}
						row := compare(res, dir, er, rule, actual)
						if !res.FailOnMissingResources && strings.Contains(row.Message, "not found in manifest") {
							skipped = true
							continue
						}
						out = append(out, finish(row, res, rule.Name(), key))
						continue
					}
					generated := rule.GeneratedResources()
					if len(generated) == 0 {
						out = append(out, finish(compareResult(res, er, rule), res, rule.Name(), key))
					}
					for _, g := range generated {
						row := finish(compare(res, dir, er, rule, *g), res, rule.Name(), key)
						row.Resource = g.GetName()
						out = append(out, row)
					}
				}
				if len(out) == 0 && !skipped {
					out = append(out, excluded(res, key))
				}
			}
			for _, er := range ev.target[key] {
				parts := strings.Split(key, ",")
				r, rule := patchedTarget(parts[0], parts[1], parts[3], parts[2], er)
				if r == nil {
					continue
				}
				out = append(out, finish(compare(res, dir, er, *rule, *r), res, rule.Name(), key))
			}
			if len(out) == 0 && !skipped {
				row := Row{Policy: res.Policy, Rule: res.Rule, Resource: displayKey(key), Expected: string(res.Result)}
				if msg, invalid := ev.invalid[policyName]; invalid {
					row.Upstream, row.Reason, row.Message = "skip", "Invalid Policy", msg
					row.Strict = "the policy is invalid, so this result was never checked: " + msg
				} else {
					row.Upstream, row.Reason, row.Message = "fail", "Not found", "no response for this policy and resource"
				}
				out = append(out, row)
			}
			rows = append(rows, out...)
		}
	}
	return rows
}

// excluded is the row for a policy that produced no rule result for the
// resource. Upstream passes it; it is a failure when the test expected the
// rule to act, because the policy no longer covers what the test says.
func excluded(res v1alpha1.TestResult, key string) Row {
	row := Row{Policy: res.Policy, Rule: res.Rule, Resource: displayKey(key), Expected: string(res.Result),
		Upstream: "pass", Reason: "Excluded", Message: "Excluded"}
	switch res.Result {
	case "fail", "warn", "error":
		row.Strict = fmt.Sprintf("expected %s, but rule %q did not apply to this resource: the policy excludes or no longer matches it, or no rule has that name", res.Result, res.Rule)
	}
	return row
}

func finish(row Row, res v1alpha1.TestResult, rule, key string) Row {
	row.Policy, row.Rule, row.Resource, row.Expected = res.Policy, rule, displayKey(key), string(res.Result)
	return row
}

// compare checks a rule response against the result, including the
// patched or generated resource the result names.
func compare(res v1alpha1.TestResult, dir string, er engineapi.EngineResponse, rule engineapi.RuleResponse, actual unstructured.Unstructured) Row {
	if res.PatchedResources != "" {
		if row, ok := compareResource(actual, filepath.Join(dir, res.PatchedResources), "patched"); !ok {
			return row
		}
	}
	switch {
	case res.GeneratedResource != "" && len(res.GeneratedResources) == 0:
		if row, ok := compareResource(actual, filepath.Join(dir, res.GeneratedResource), "generated"); !ok {
			return row
		}
	case len(res.GeneratedResources) > 0:
		var last Row
		matched := false
		for _, p := range res.GeneratedResources {
			row, ok := compareResource(actual, filepath.Join(dir, p), "generated")
			if ok {
				matched = true
				break
			}
			last = row
		}
		if !matched {
			return last
		}
	}
	return compareResult(res, er, rule)
}

func compareResult(res v1alpha1.TestResult, er engineapi.EngineResponse, rule engineapi.RuleResponse) Row {
	got := report.ComputePolicyReportResult(false, er, rule)
	row := Row{Got: string(got.Result), Message: got.Description}
	if got.Result != res.Result {
		row.Upstream, row.Reason = "fail", fmt.Sprintf("Want %s, got %s", res.Result, got.Result)
		return row
	}
	row.Upstream, row.Reason = "pass", "Ok"
	if res.Result == "skip" {
		row.Upstream = "skip"
	}
	return row
}

// compareResource compares actual with the expected resource in file.
func compareResource(actual unstructured.Unstructured, file, what string) (Row, bool) {
	expected, err := clires.GetResourceFromPath(nil, file, actual.GetAPIVersion(), actual.GetKind(), actual.GetNamespace(), actual.GetName())
	if err != nil {
		return Row{Upstream: "fail", Reason: "Resource error", Message: fmt.Sprintf("failed to load %s resource (%s)", what, err)}, false
	}
	clires.FixupGenerateLabels(actual)
	clires.FixupGenerateLabels(*expected)
	equal, err := clires.Compare(actual, *expected, true)
	if err != nil {
		return Row{Upstream: "fail", Reason: "Resource error", Message: fmt.Sprintf("failed to compare %s resources (%s)", what, err)}, false
	}
	if !equal {
		return Row{Upstream: "fail", Reason: "Resource diff", Message: fmt.Sprintf("the %s resource differs from %s", what, filepath.Base(file))}, false
	}
	return Row{}, true
}

// selectResources returns the response keys a result checks, as upstream
// does: the resources it names (by name or namespace/name, or by resource
// spec), else every resource. It also returns the names that matched
// nothing, which upstream silently widens to "every resource".
func selectResources(res v1alpha1.TestResult, maps ...map[string][]engineapi.EngineResponse) (keys, missing []string) {
	// Like upstream, a resource that is both a trigger and a target is
	// checked twice.
	add := func(k string) { keys = append(keys, k) }
	for _, r := range res.Resources {
		found := false
		for _, m := range maps {
			for k := range m {
				parts := strings.Split(k, ",")
				nsName := strings.Split(r, "/")
				if (len(nsName) == 1 && r == parts[len(parts)-1]) ||
					(len(nsName) == 2 && nsName[0] == parts[len(parts)-2] && nsName[1] == parts[len(parts)-1]) {
					add(k)
					found = true
				}
			}
		}
		if !found {
			missing = append(missing, r)
		}
	}
	for _, spec := range res.ResourceSpecs {
		for _, m := range maps {
			for k := range m {
				parts := strings.Split(k, ",")
				gv := spec.Version
				if spec.Group != "" {
					gv = spec.Group + "/" + spec.Version
				}
				if gv == parts[0] && spec.Namespace == parts[len(parts)-2] && spec.Name == parts[len(parts)-1] {
					add(k)
				}
			}
		}
	}
	if len(keys) == 0 {
		for _, m := range maps {
			for k := range m {
				add(k)
			}
		}
	}
	sort.Strings(keys)
	return keys, missing
}

// narrow keeps the keys and missing names a selector's resource patterns
// match.
func narrow(s *Suite, keys, missing []string) (k, m []string) {
	for _, key := range keys {
		parts := strings.Split(key, ",")
		if len(parts) == 4 && s.selected(parts[2], parts[3]) {
			k = append(k, key)
		}
	}
	for _, name := range missing {
		ns, n, ok := strings.Cut(name, "/")
		if !ok {
			ns, n = "", name
		}
		if s.selected(ns, n) {
			m = append(m, name)
		}
	}
	return k, m
}

func matchingRules(name string, rules []engineapi.RuleResponse) []engineapi.RuleResponse {
	var out []engineapi.RuleResponse
	for _, r := range rules {
		if n := r.Name(); n == name || n == "autogen-"+name || n == "autogen-cronjob-"+name {
			out = append(out, r)
		}
	}
	return out
}

func isRuleless(kind string) bool {
	switch kind {
	case "ValidatingPolicy", "NamespacedValidatingPolicy", "ValidatingAdmissionPolicy",
		"MutatingPolicy", "NamespacedMutatingPolicy", "MutatingAdmissionPolicy",
		"ImageValidatingPolicy", "NamespacedImageValidatingPolicy",
		"GeneratingPolicy", "NamespacedGeneratingPolicy",
		"DeletingPolicy", "NamespacedDeletingPolicy":
		return true
	}
	return false
}

func lastPart(s string) string {
	parts := strings.Split(s, "/")
	return parts[len(parts)-1]
}

// displayKey turns "apiVersion,kind,namespace,name" into a readable id.
func displayKey(key string) string {
	parts := strings.Split(key, ",")
	if len(parts) != 4 {
		return key
	}
	kind, ns, name := parts[1], parts[2], parts[3]
	if ns != "" {
		return fmt.Sprintf("%s %s/%s", kind, ns, name)
	}
	return kind + " " + name
}
