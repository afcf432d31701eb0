package kyvernotest

import (
	"strings"
	"testing"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
)

func carryVP(name, annotation string) []byte {
	s := "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: " + name + "\n"
	if annotation != "" {
		s += "  annotations:\n    kyverno-gate.io/replaces: " + annotation + "\n"
	}
	return []byte(s + `spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  validations:
  - expression: "true"
`)
}

// Which results of a suite written for a ClusterPolicy run against the
// ValidatingPolicy that replaced it.
func TestCarryOver(t *testing.T) {
	result := func(policy, rule string) v1alpha1.TestResult {
		var r v1alpha1.TestResult
		r.Resources = []string{"x"}
		r.Policy, r.Rule, r.Kind, r.Result = policy, rule, "Pod", "pass"
		return r
	}
	for _, tt := range []struct {
		name    string
		docs    [][]byte
		results []v1alpha1.TestResult
		want    string // the mapped results, "policy/rule/vp" each
		notes   int
	}{
		{"same name, one rule", [][]byte{carryVP("a", "")}, []v1alpha1.TestResult{result("a", "r"), result("a", "autogen-r")}, "a//true a//true", 1},
		{"same name, two rules: ambiguous", [][]byte{carryVP("a", "")}, []v1alpha1.TestResult{result("a", "r1"), result("a", "r2")}, "a/r1/false a/r2/false", 0},
		{"split per rule", [][]byte{carryVP("a-r1", "ClusterPolicy/a#r1"), carryVP("a-r2", "ClusterPolicy/a#r2")},
			[]v1alpha1.TestResult{result("a", "r1"), result("a", "r2")}, "a-r1//true a-r2//true", 2},
		{"named by the annotation", [][]byte{carryVP("b", "ClusterPolicy/a")}, []v1alpha1.TestResult{result("a", "r")}, "b//true", 1},
		{"unrelated", [][]byte{carryVP("b", "")}, []v1alpha1.TestResult{result("a", "r")}, "a/r/false", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pols, err := loadPolicies(tt.docs)
			if err != nil {
				t.Fatal(err)
			}
			in := &v1alpha1.Test{Results: tt.results}
			out, notes := carryOver(in, pols)
			var got []string
			for _, r := range out.Results {
				got = append(got, r.Policy+"/"+r.Rule+"/"+map[bool]string{true: "true", false: "false"}[r.IsValidatingPolicy])
			}
			if strings.Join(got, " ") != tt.want || len(notes) != tt.notes {
				t.Errorf("got %v %v, want %s and %d notes", got, notes, tt.want, tt.notes)
			}
			if in.Results[0].Rule == "" {
				t.Error("the suite's own results were changed")
			}
		})
	}
}
