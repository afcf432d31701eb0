package main

import (
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"strings"
	"testing"
)

// With default settings, generate finds the suites where real repositories
// keep them: beside each policy under any folder name, in <group>/test, in
// <repo>/kyverno-policies/tests. A failing one rejects the overlay, so
// they really ran.
func TestGenerateFindsSuitesWhereverTheyAre(t *testing.T) {
	suite := func(policyPath string) string {
		return `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-team
policies: [` + policyPath + `]
resources: [resources.yaml]
results:
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [no-team]
    result: fail
`
	}
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: no-team\nspec:\n  containers: [{name: c, image: nginx}]\n"
	exclude := `patches:
  - target: {kind: ClusterPolicy, name: require-team}
    patch: |-
      - op: add
        path: /spec/rules/0/exclude
        value: {any: [{resources: {names: [no-team]}}]}
`
	layouts := []struct {
		name     string
		files    map[string]string
		resource string // what the overlay lists
		suite    string // the test file
	}{
		{"beside the policy, any folder name", map[string]string{
			"policies/require-team/require-team.yaml":        goodPolicy,
			"policies/require-team/checks/kyverno-test.yaml": suite("../require-team.yaml"),
			"policies/require-team/checks/resources.yaml":    pod,
		}, "../../policies/require-team/require-team.yaml", "policies/require-team/checks/kyverno-test.yaml"},
		{"<group>/test", map[string]string{
			"security/kustomization.yaml":     "resources: [require-team.yaml]\n",
			"security/require-team.yaml":      goodPolicy,
			"security/test/kyverno-test.yaml": suite("../require-team.yaml"),
			"security/test/resources.yaml":    pod,
		}, "../../security", "security/test/kyverno-test.yaml"},
		{"<repo>/kyverno-policies/tests", map[string]string{
			"kyverno-policies/require-team.yaml":                    goodPolicy,
			"kyverno-policies/tests/require-team/kyverno-test.yaml": suite("../../require-team.yaml"),
			"kyverno-policies/tests/require-team/resources.yaml":    pod,
		}, "../../kyverno-policies/require-team.yaml", "kyverno-policies/tests/require-team/kyverno-test.yaml"},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			files := map[string]string{"envs/prod/kustomization.yaml": "resources: [" + l.resource + "]\n"}
			for k, v := range l.files {
				files[k] = v
			}
			root := repotest.WriteTree(t, files)
			code, _, stderr := runGate(t, nil, "generate", "--repo-root", root, root+"/envs/prod")
			if code != 0 || !strings.Contains(stderr, "ran 1 test suites against envs/prod") {
				t.Fatalf("exit %d, want 0 with the suite run\nstderr:\n%s", code, stderr)
			}
			files["envs/prod/kustomization.yaml"] += exclude
			root = repotest.WriteTree(t, files)
			code, _, stderr = runGate(t, nil, "generate", "--repo-root", root, root+"/envs/prod")
			if code != 1 || !strings.Contains(stderr, l.suite) {
				t.Fatalf("exit %d, want 1 naming %s\nstderr:\n%s", code, l.suite, stderr)
			}
		})
	}
}
