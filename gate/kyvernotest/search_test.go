package kyvernotest

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

const searchPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: NAME
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

func searchSuite(name, policyPath string) string {
	return `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: ` + name + `
policies: [` + policyPath + `]
resources: [resources.yaml]
results:
  - policy: ` + name + `
    rule: check-team
    kind: Pod
    resources: [no-team]
    result: fail
`
}

const searchPod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: no-team\nspec:\n  containers: [{name: c, image: nginx}]\n"

// policyRepo lays out the places real repositories keep their tests:
// beside each policy under any folder name, in <group>/test, in a nested
// kyverno-policies/tests; plus another overlay's tests, a suite of a
// policy no overlay renders, and test files in .git and a dot folder.
func policyRepo(t *testing.T) string {
	pol := func(name string) string { return strings.Replace(searchPolicy, "NAME", name, 1) }
	return repotest.WriteTree(t, map[string]string{
		// beside the policy, folder named "unit"
		"policies/require-a/kustomization.yaml":     "resources: [require-a.yaml]\n",
		"policies/require-a/require-a.yaml":         pol("require-a"),
		"policies/require-a/unit/kyverno-test.yaml": searchSuite("require-a", "../require-a.yaml"),
		"policies/require-a/unit/resources.yaml":    searchPod,
		// <group>/test, policies named by folder
		"security/kustomization.yaml":        "resources: [require-b.yaml]\n",
		"security/require-b.yaml":            pol("require-b"),
		"security/test/kyverno-test.yaml":    searchSuite("require-b", ".."),
		"security/test/resources.yaml":       searchPod,
		"security/.git/kyverno-test.yaml":    "not: [a test",
		"security/.hidden/kyverno-test.yaml": "not: [a test",
		// <repo>/kyverno-policies/tests
		"kyverno-policies/require-c.yaml":                    pol("require-c"),
		"kyverno-policies/tests/require-c/kyverno-test.yaml": searchSuite("require-c", "../../require-c.yaml"),
		"kyverno-policies/tests/require-c/resources.yaml":    searchPod,
		// a policy nothing renders, with its suite
		"attic/require-z.yaml":          pol("require-z"),
		"attic/tests/kyverno-test.yaml": searchSuite("require-z", "../require-z.yaml"),
		"attic/tests/resources.yaml":    searchPod,
		// another policy set's policy of the same name, with its suite
		"vendor/upstream/require-a.yaml":          pol("require-a"),
		"vendor/upstream/tests/kyverno-test.yaml": searchSuite("require-a", "../require-a.yaml"),
		"vendor/upstream/tests/resources.yaml":    searchPod,
		// overlays; staging's test is staging's
		"overlays/production/kustomization.yaml":     "resources: [../../policies/require-a, ../../security, ../../kyverno-policies/require-c.yaml]\n",
		"overlays/staging/kustomization.yaml":        "resources: [../../policies/require-a]\n",
		"overlays/staging/tests/a/kyverno-test.yaml": searchSuite("require-a", "../../../../policies/require-a/require-a.yaml"),
		"overlays/staging/tests/a/resources.yaml":    searchPod,
		".git/kyverno-test.yaml":                     "not: [a test",
	})
}

// suiteRun is what a test summary says of one suite.
type suiteRun struct {
	Rel     string
	Skipped bool
	Err     string
}

func evaluateDefault(t *testing.T, root, dir string, flags map[string][]string) ([]suiteRun, []report.Finding, []string) {
	t.Helper()
	res, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.Resolve(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	in := &gate.Input{Root: root, Dir: dir, Rendered: res, Settings: s,
		Log: func(f string, a ...any) { logs = append(logs, strings.TrimSpace(fmt.Sprintf(f, a...))) }}
	out, err := gate.RunOne(context.Background(), in, Gate{})
	if err != nil {
		t.Fatal(err)
	}
	var runs []suiteRun
	for _, c := range out.Tests.Cases {
		if n := len(runs); n > 0 && runs[n-1].Rel == c.Suite {
			continue
		}
		r := suiteRun{Rel: c.Suite, Skipped: c.Status == "skip"}
		if c.Status == "error" {
			r.Err = c.Message
		}
		runs = append(runs, r)
	}
	return runs, out.Findings, logs
}

// Without the tests parameter, every test file of the repository that
// names a rendered policy runs, wherever it lives; other overlays' tests,
// suites of policies the overlay does not render, .git and dot folders are
// left out.
func TestSearchWholeRepository(t *testing.T) {
	root := policyRepo(t)
	results, findings, logs := evaluateDefault(t, root, "overlays/production", nil)
	var ran []string
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s: %v", r.Rel, r.Err)
		}
		if !r.Skipped {
			ran = append(ran, r.Rel)
		}
	}
	want := []string{"kyverno-policies/tests/require-c/kyverno-test.yaml", "policies/require-a/unit/kyverno-test.yaml", "security/test/kyverno-test.yaml"}
	if !reflect.DeepEqual(ran, want) {
		t.Errorf("ran %q, want %q", ran, want)
	}
	if len(findings) != 0 {
		t.Errorf("findings: %+v", findings)
	}
	if got := strings.Join(logs, "\n"); !strings.Contains(got, "ran 3 test suites against overlays/production; 2 name no policy it renders; 1 belongs to other overlays") {
		t.Errorf("logs:\n%s", got)
	}

	// Staging runs its own test, and the shared one of its policy.
	results, _, _ = evaluateDefault(t, root, "overlays/staging", nil)
	ran = nil
	for _, r := range results {
		if !r.Skipped {
			ran = append(ran, r.Rel)
		}
	}
	want = []string{"overlays/staging/tests/a/kyverno-test.yaml", "policies/require-a/unit/kyverno-test.yaml"}
	if !reflect.DeepEqual(ran, want) {
		t.Errorf("staging ran %q, want %q", ran, want)
	}
}

// A test file covers a rendered object by the file it comes from; by name
// only when the rendering does not know the file (a remote base).
func TestMayCover(t *testing.T) {
	root := t.TempDir()
	rendered := &render.Result{Dir: "app", Resources: []*render.Resource{
		{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "local", Source: "policies/local.yaml"},
		{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "remote"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "cm"},
	}}
	m := newMatcher(root, rendered)
	for _, tt := range []struct {
		file, content string
		want          bool
	}{
		{"policies/tests/kyverno-test.yaml", "policies: [../local.yaml]\nresults: [{policy: other}]\n", true},
		{"policies/tests/kyverno-test.yaml", "policies: [..]\n", true},
		{"policies/tests/kyverno-test.yaml", "policies: [../other.yaml]\nresults: [{policy: local}]\n", false},
		{"t/kyverno-test.yaml", "policies: [x.yaml]\nresults: [{policy: remote}]\n", true},
		{"t/kyverno-test.yaml", "policies: [x.yaml]\nresults: [{policy: cm}]\n", false},
		{"t/kyverno-test.yaml", "policies: [https://example.com/policies/local.yaml]\n", false},
		{"t/kyverno-test.yaml", "---\npolicies: [x.yaml]\n---\npolicies: [../policies/local.yaml]\n", true},
		{"t/kyverno-test.yaml", "policies: [unclosed\n", true}, // the loader reports it
	} {
		if got := m.mayCover(filepath.Join(root, tt.file), []byte(tt.content)); got != tt.want {
			t.Errorf("%s %q: %v, want %v", tt.file, tt.content, got, tt.want)
		}
	}
}

// An explicit tests parameter keeps its meaning: only those folders, and a
// suite there runs even when it lies in another overlay's folder.
func TestSearchExplicitFolders(t *testing.T) {
	root := policyRepo(t)
	results, _, _ := evaluateDefault(t, root, "overlays/production", map[string][]string{"tests": {"overlays/staging/tests"}})
	if len(results) != 1 || results[0].Skipped || results[0].Err != "" {
		t.Fatalf("results: %+v", results)
	}
}

// When nothing covers the overlay, the message says where it looked and
// which suites it left out, and why.
func TestNoTestsMessage(t *testing.T) {
	pol := strings.Replace(searchPolicy, "NAME", "require-q", 1)
	files := map[string]string{
		"app/kustomization.yaml":        "resources: [policy.yaml]\n",
		"app/policy.yaml":               pol,
		"other/kustomization.yaml":      "resources: [../app]\n",
		"other/tests/kyverno-test.yaml": searchSuite("require-q", "../../app/policy.yaml"),
	}
	for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
		files["attic/"+name+"/kyverno-test.yaml"] = searchSuite(name, "x.yaml")
		files["attic/"+name+"/x.yaml"] = strings.Replace(searchPolicy, "NAME", name, 1)
		files["attic/"+name+"/resources.yaml"] = searchPod
	}
	root := repotest.WriteTree(t, files)
	_, findings, _ := evaluateDefault(t, root, "app", nil)
	if len(findings) != 1 {
		t.Fatalf("findings: %+v", findings)
	}
	want := "no Kyverno test covers a policy of this overlay: looked for kyverno-test.yaml in every folder of the repository and found 6 test files; " +
		"5 name no policy this overlay renders (attic/p1/kyverno-test.yaml, attic/p2/kyverno-test.yaml, attic/p3/kyverno-test.yaml and 2 more); " +
		"1 lies in the folder of a kustomization this overlay does not use, so belongs to another overlay (other/tests/kyverno-test.yaml)"
	if findings[0].Message != want {
		t.Errorf("message\n%s\nwant\n%s", findings[0].Message, want)
	}

	// Explicit folders: listed as given, with the suites skipped.
	_, findings, _ = evaluateDefault(t, root, "app", map[string][]string{"tests": {"attic/p1", "nowhere"}})
	want = "no Kyverno test covers a policy of this overlay: looked for kyverno-test.yaml in attic/p1, nowhere and found 1 test file; 1 names no policy this overlay renders (attic/p1/kyverno-test.yaml)"
	if len(findings) != 1 || findings[0].Message != want {
		t.Errorf("findings %+v\nwant %s", findings, want)
	}
}

// BenchmarkSearch measures the default search on the corpus (492 test
// files) for a rendering of two of its policies, against loading every
// test file (Discover, before Run would skip most of them).
func BenchmarkSearch(b *testing.B) {
	root, _ := filepath.Abs(corpus)
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		b.Skip(err)
	}
	rendered := &render.Result{Dir: "."}
	for _, p := range []string{"best-practices/require-labels/require-labels.yaml", "best-practices/disallow-latest-tag/disallow-latest-tag.yaml"} {
		rendered.Resources = append(rendered.Resources, &render.Resource{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy",
			Name: filepath.Base(filepath.Dir(p)), Source: p})
	}
	b.Run("SearchWhole", func(b *testing.B) {
		for b.Loop() {
			f, err := SearchWhole(repo, "kyverno-test.yaml", rendered)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(f.Suites)), "loaded")
		}
	})
	b.Run("LoadAll", func(b *testing.B) {
		for b.Loop() {
			suites, err := Discover(repo, []string{"."}, "kyverno-test.yaml")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(suites)), "loaded")
		}
	})
}
