package main

import (
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"strings"
	"testing"
)

const goodPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
`

// Gate I on the command line: each broken policy makes generate exit 1,
// names the file and the object, and prints nothing on stdout.
func TestGenerateRejectsInvalidPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // substrings of stderr
	}{
		{name: "misspelt spec field",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  validationFailureActon: Enforce\n", 1),
			want:   []string{"app/policy.yaml", "ClusterPolicy require-team", `unknown field "spec.validationFailureActon"`, `did you mean "validationFailureAction"`}},
		{name: "misspelt rule field",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureActon: Enforce", 1),
			want:   []string{"ClusterPolicy require-team", `spec.rules[0].validate.failureActon`, `did you mean "failureAction"`}},
		{name: "bad enforcement value",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureAction: Block", 1),
			want:   []string{"ClusterPolicy require-team", "failureAction"}},
		{name: "fails Kyverno validation",
			policy: strings.Replace(goodPolicy, "        pattern:\n          metadata:\n            labels:\n              team: \"?*\"\n", "", 1),
			want:   []string{"app/policy.yaml", "ClusterPolicy require-team", "Kyverno rejects it"}},
		{name: "CEL expression does not compile",
			policy: `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: vp-broken
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  validations:
    - expression: "object.metadata.labels.team =="
`,
			want: []string{"ValidatingPolicy vp-broken", "Kyverno rejects it"}},
		{name: "webhook matchConditions do not crash",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  webhookConfiguration:\n    matchConditions:\n      - name: bad\n        expression: \"this is not CEL\"\n", 1),
			want:   []string{"ClusterPolicy require-team", "matchConditions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := repotest.WriteTree(t, map[string]string{
				"app/kustomization.yaml": "resources: [policy.yaml]\n",
				"app/policy.yaml":        tt.policy,
			})
			code, stdout, stderr := runGate(t, nil, "generate", "--allow-no-tests", "--repo-root", root, root+"/app")
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %d bytes; want 1 and nothing\nstderr:\n%s", code, len(stdout), stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			// Argo CD shows the whole stderr after a long prefix: the
			// verdict must come before the (info-level) progress lines.
			if first, _, _ := strings.Cut(stderr, "\n"); !strings.Contains(first, "REJECTED") {
				t.Errorf("first stderr line is not the verdict: %q", first)
			}
		})
	}
}

func TestGenerateRequiresTests(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml":        goodPolicy,
	})
	code, stdout, stderr := runGate(t, nil, "generate", "--repo-root", root, root+"/app")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "no Kyverno test covers a policy of this overlay") {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
}

// The kyverno/policies layout keeps each policy's suite in
// <policy folder>/.kyverno-test: the default tests parameter finds it, and
// a failing suite there rejects the overlay that patches its policy.
func TestGenerateFindsSuitesBesidePolicies(t *testing.T) {
	suite := `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-team
policies: [../require-team.yaml]
resources: [resources.yaml]
results:
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [no-team]
    result: fail
`
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: no-team\nspec:\n  containers: [{name: c, image: nginx}]\n"
	files := func(excluded bool) map[string]string {
		overlay := "resources: [../../policies/require-team]\n"
		if excluded {
			overlay += `patches:
  - target: {kind: ClusterPolicy, name: require-team}
    patch: |-
      - op: add
        path: /spec/rules/0/exclude
        value: {any: [{resources: {names: [no-team]}}]}
`
		}
		return map[string]string{
			"policies/require-team/kustomization.yaml":              "resources: [require-team.yaml]\n",
			"policies/require-team/require-team.yaml":               goodPolicy,
			"policies/require-team/.kyverno-test/kyverno-test.yaml": suite,
			"policies/require-team/.kyverno-test/resources.yaml":    pod,
			"envs/prod/kustomization.yaml":                          overlay,
		}
	}
	root := repotest.WriteTree(t, files(false))
	code, _, stderr := runGate(t, nil, "generate", "--repo-root", root, root+"/envs/prod")
	if code != 0 || !strings.Contains(stderr, "ran 1 test suites") {
		t.Fatalf("exit %d, want 0 with the suite beside the policy run\nstderr:\n%s", code, stderr)
	}
	root = repotest.WriteTree(t, files(true))
	code, _, stderr = runGate(t, nil, "generate", "--repo-root", root, root+"/envs/prod")
	if code != 1 || !strings.Contains(stderr, "policies/require-team/.kyverno-test/kyverno-test.yaml") {
		t.Fatalf("exit %d, want 1 naming the suite beside the policy\nstderr:\n%s", code, stderr)
	}
}
