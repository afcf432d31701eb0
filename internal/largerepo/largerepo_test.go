package largerepo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const policy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  validationFailureAction: Audit
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Audit
        pattern:
          metadata:
            labels:
              team: "?*"
`

func TestGenerate(t *testing.T) {
	corpus := t.TempDir()
	write(t, corpus, map[string]string{
		"a/require-team/require-team.yaml": policy,
		// the same kind and name again: kustomize would refuse the base
		"b/require-team/require-team.yaml":   policy,
		"a/require-team/artifacthub-pkg.yml": "name: require-team\n",
		"a/require-team/.kyverno-test/kyverno-test.yaml": `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-team
policies:
- ../require-team.yaml
resources:
- resource.yaml
results:
- kind: Pod
  policy: require-team
  resources: [bad]
  result: fail
  rule: check-team
`,
		"a/require-team/.kyverno-test/resource.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n",
		"c/vpol/vpol.yaml": `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: deny-all
spec:
  validationActions: [Audit]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]
  validations:
  - expression: "false"
`,
	})
	dir := filepath.Join(t.TempDir(), "repo")
	sum, err := Generate(Options{Corpus: corpus, Dir: dir, Scale: 2, BaselineAuditEvery: 1, BaselineDropEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 4 || sum.Objects != 4 || sum.Suites != 2 {
		t.Errorf("summary %+v: want 4 files, 4 objects, 2 suites", sum)
	}
	if len(sum.Skipped) != 1 || sum.Skipped[0].File != "b/require-team/require-team.yaml" || !strings.Contains(sum.Skipped[0].Reason, "already declared") {
		t.Errorf("skipped %+v: want the duplicate", sum.Skipped)
	}
	if sum.PatchedRules != 2 || sum.BaselineAudit != 2 {
		t.Errorf("summary %+v: want the rule-level action patched in both copies, both ClusterPolicies Audit in the baseline", sum)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	base := read("base/kustomization.yaml")
	for _, want := range []string{"../policies/c1/a/require-team/require-team.yaml", "../policies/c2/c/vpol/vpol.yaml"} {
		if !strings.Contains(base, want) {
			t.Errorf("base does not list %s:\n%s", want, base)
		}
	}
	if strings.Contains(base, "/b/") || strings.Contains(base, "artifacthub") {
		t.Errorf("base lists a skipped file:\n%s", base)
	}
	overlay := read("overlays/production/kustomization.yaml")
	for _, want := range []string{"originAnnotations", "/spec/validationFailureAction", "/spec/rules/0/validate/failureAction", "name: require-team-c2", "validationActions"} {
		if !strings.Contains(overlay, want) {
			t.Errorf("overlay lacks %q:\n%s", want, overlay)
		}
	}
	if got := read("policies/c2/a/require-team/require-team.yaml"); !strings.Contains(got, "name: require-team-c2") {
		t.Errorf("copy 2's policy is not renamed:\n%s", got)
	}
	if got := read("policies/c2/a/require-team/.kyverno-test/kyverno-test.yaml"); !strings.Contains(got, "policy: require-team-c2") || strings.Contains(got, "name: bad-c2") {
		t.Errorf("copy 2's test does not name the renamed policy (and only it):\n%s", got)
	}
	if got := read("policies/c1/a/require-team/require-team.yaml"); got != policy {
		t.Errorf("copy 1 is not the corpus as is:\n%s", got)
	}
	bl := read("baseline.yaml")
	if strings.Count(bl, "validationFailureAction: Audit") != 2 || strings.Count(bl, "kind: ValidatingPolicy") != 2 {
		t.Errorf("baseline:\n%s", bl)
	}
}
