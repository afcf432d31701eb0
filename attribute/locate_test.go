package attribute

import (
	"github.com/kyverno-gate/kyverno-gate/report"
	"os"
	"path/filepath"
	"testing"
)

const policies = `# two policies
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  annotations:
    name: not-this
  name: require-labels
spec:
  rules: []
---
apiVersion: kyverno.io/v1
kind: Policy
metadata:
  name: require-labels
  namespace: apps
---
apiVersion: kyverno.io/v1
kind: Policy
metadata:
  namespace: other
  name: "require-labels"
`

func TestObjectLine(t *testing.T) {
	for _, c := range []struct {
		kind, ns, name string
		want           int
	}{
		{"ClusterPolicy", "", "require-labels", 7},
		{"Policy", "apps", "require-labels", 14},
		{"Policy", "other", "require-labels", 21},
		{"Policy", "", "require-labels", 14},
		// namePrefix: the only ClusterPolicy of the file.
		{"ClusterPolicy", "", "prod-require-labels", 7},
		// two Policies, neither named so: unknown.
		{"Policy", "apps", "prod-require-labels", 0},
		{"ConfigMap", "", "require-labels", 0},
	} {
		if got := ObjectLine([]byte(policies), c.kind, c.ns, c.name); got != c.want {
			t.Errorf("%s %s/%s: line %d, want %d", c.kind, c.ns, c.name, got, c.want)
		}
	}
	// Not YAML the parser accepts: the textual search.
	broken := "kind: ClusterPolicy\nmetadata:\n  name: require-labels\nspec: [\n"
	if got := ObjectLine([]byte(broken), "ClusterPolicy", "", "require-labels"); got != 3 {
		t.Errorf("broken: line %d, want 3", got)
	}
}

const testFile = `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-labels
policies:
- ../../base/validation/require-labels.yaml
resources:
- resource.yaml
results:
- policy: require-labels
  rule: check-team
  resources:
  - pod-with-team
  result: pass
- policy: require-labels
  rule: check-team
  resources:
  - pod-no-team
  result: fail
`

func TestFindingLine(t *testing.T) {
	for _, c := range []struct {
		f    report.Finding
		want int
	}{
		{report.Finding{Subject: report.ParseSubject("policy require-labels"), Rule: "check-team", Resource: "pod-no-team"}, 15},
		{report.Finding{Subject: report.ParseSubject("policy require-labels"), Rule: "check-team", Resource: "pod-with-team"}, 10},
		{report.Finding{Subject: report.ParseSubject("Test require-labels")}, 4},
		{report.Finding{Subject: report.ParseSubject("policy nope")}, 0},
	} {
		if got := FindingLine([]byte(testFile), &c.f); got != c.want {
			t.Errorf("%+v: line %d, want %d", c.f, got, c.want)
		}
	}
}

func TestLocate(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "base"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "base", "p.yaml"), []byte(policies), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(filepath.Dir(root), "outside.yaml")
	_ = os.WriteFile(outside, []byte(policies), 0o644)
	defer os.Remove(outside)
	r := &report.Report{Overlays: []report.Overlay{{Path: "o", Findings: []report.Finding{
		{File: "base/p.yaml", Subject: report.ParseSubject("Policy apps/require-labels"),
			Witness: &report.Witness{File: "base/p.yaml", Kind: "ClusterPolicy", Name: "require-labels"}},
		{File: "../outside.yaml", Subject: report.ParseSubject("ClusterPolicy require-labels")},
		{File: "base/missing.yaml", Subject: report.ParseSubject("ClusterPolicy require-labels")},
		{File: "base/p.yaml", Line: 99, Subject: report.ParseSubject("ClusterPolicy require-labels")},
	}}}}
	Locate(openRepo(t, root), r.Overlays[0].Findings)
	fs := r.Overlays[0].Findings
	for i, want := range []int{14, 0, 0, 99} {
		if fs[i].Line != want {
			t.Errorf("finding %d: line %d, want %d", i, fs[i].Line, want)
		}
	}
	if fs[0].Witness.Line != 7 {
		t.Errorf("witness line %d", fs[0].Witness.Line)
	}
}
