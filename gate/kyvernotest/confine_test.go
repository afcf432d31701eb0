package kyvernotest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// The secret lives beside the repository, as another Application's
// checkout does in cmp-server's work dir; a policy message would print it.
const (
	leakPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: leak
spec:
  rules:
    - name: leak
      match:
        any:
          - resources:
              kinds: [ConfigMap]
      validate:
        failureAction: Enforce
        message: "token is {{ request.object.data.token }}"
        deny: {}
`
	secret = `apiVersion: v1
kind: ConfigMap
metadata:
  name: other-tenant
  namespace: x
data:
  token: s3cr3t-of-another-tenant
`
)

func TestSuitePathsStayInTheRepository(t *testing.T) {
	result := "results:\n  - policy: leak\n    rule: leak\n    resources: [other-tenant]\n    kind: ConfigMap\n    result: fail\n"
	for _, tc := range []struct {
		name, field string
		test        string // the test file, with OUT for the outside secret's path
		setup       func(t *testing.T, repo, out string)
		want        string
	}{
		{name: "absolute resource", test: "policies: [../policy.yaml]\nresources: [OUT]\n" + result,
			want: `resources entry "OUT": ` + "OUT is outside the repository root"},
		{name: "relative resource", test: "policies: [../policy.yaml]\nresources: [../../secret.yaml]\n" + result,
			want: `resources entry "../../secret.yaml"`},
		{name: "symlinked resource", test: "policies: [../policy.yaml]\nresources: [link.yaml]\n" + result,
			setup: func(t *testing.T, repo, out string) { symlink(t, out, filepath.Join(repo, "tests", "link.yaml")) },
			want:  `resources entry "link.yaml"`},
		{name: "symlinked folder of resources", test: "policies: [../policy.yaml]\nresources: [dir]\n" + result,
			setup: func(t *testing.T, repo, out string) {
				symlink(t, filepath.Dir(out), filepath.Join(repo, "tests", "dir"))
			},
			want: `resources entry "dir"`},
		{name: "folder holding a link out", test: "policies: [../policy.yaml]\nresources: [res]\n" + result,
			setup: func(t *testing.T, repo, out string) {
				os.Mkdir(filepath.Join(repo, "tests", "res"), 0o755)
				symlink(t, out, filepath.Join(repo, "tests", "res", "x.yaml"))
			},
			want: `resources entry "res"`},
		{name: "policies", test: "policies: [OUT]\nresources: [../policy.yaml]\n" + result, want: `policies entry "OUT"`},
		{name: "exceptions", test: "policies: [../policy.yaml]\nexceptions: [OUT]\n" + result, want: `exceptions entry "OUT"`},
		{name: "variables", test: "policies: [../policy.yaml]\nvariables: OUT\n" + result, want: `variables entry "OUT"`},
		{name: "userinfo", test: "policies: [../policy.yaml]\nuserinfo: ../../secret.yaml\n" + result, want: `userinfo entry`},
		{name: "context", test: "policies: [../policy.yaml]\ncontext: OUT\n" + result, want: `context entry`},
		{name: "clusterResources", test: "policies: [../policy.yaml]\nclusterResources: [OUT]\n" + result, want: `clusterResources entry`},
		{name: "targetResources", test: "policies: [../policy.yaml]\ntargetResources: [OUT]\n" + result, want: `targetResources entry`},
		{name: "paramResources", test: "policies: [../policy.yaml]\nparamResources: [OUT]\n" + result, want: `paramResources entry`},
		{name: "patchedResources", test: "policies: [../policy.yaml]\n" + result + "    patchedResources: OUT\n", want: `results[0].patchedResources entry`},
		{name: "generatedResource", test: "policies: [../policy.yaml]\n" + result + "    generatedResource: OUT\n", want: `results[0].generatedResource entry`},
		{name: "cloneSourceResource", test: "policies: [../policy.yaml]\n" + result + "    cloneSourceResource: OUT\n", want: `results[0].cloneSourceResource entry`},
		{name: "global context entry files", test: "policies: [../policy.yaml]\nglobalContextEntries:\n  - name: g\n    resourceFiles: [OUT]\n" + result,
			want: `globalContextEntries[g].resourceFiles entry`},
		{name: "remote resource", test: "policies: [../policy.yaml]\nresources: [HTTP://127.0.0.1:9/x.yaml]\n" + result, want: `is remote`},
		{name: "crds of a cluster resources file", test: "policies: [../policy.yaml]\nclusterResources: [cr.yaml]\n" + result,
			setup: func(t *testing.T, repo, out string) {
				write(t, filepath.Join(repo, "tests", "cr.yaml"), "apiVersion: cli.kyverno.io/v1alpha1\nkind: ClusterResource\nspec:\n  crds: ["+out+"]\n")
			},
			want: `clusterResources spec.crds entry`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outer := t.TempDir()
			out := filepath.Join(outer, "secret.yaml")
			write(t, out, secret)
			root := filepath.Join(outer, "repo")
			write(t, filepath.Join(root, "policy.yaml"), leakPolicy)
			test := strings.ReplaceAll("apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: t\n"+tc.test, "OUT", out)
			write(t, filepath.Join(root, "tests", "kyverno-test.yaml"), test)
			if tc.setup != nil {
				tc.setup(t, root, out)
			}
			repo, err := repofs.Open(root, repofs.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			suites, err := Discover(repo, []string{"tests"}, "kyverno-test.yaml")
			if err != nil || len(suites) != 1 {
				t.Fatalf("%d suites, %v", len(suites), err)
			}
			res := Run(suites, nil)[0]
			if res.Err == nil {
				t.Fatalf("the suite ran: %+v", res.Rows)
			}
			msg := res.Err.Error()
			if want := strings.ReplaceAll(tc.want, "OUT", out); !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
			for _, f := range Findings([]*SuiteResult{res}) {
				if strings.Contains(f.Message+f.Hint, "s3cr3t") {
					t.Errorf("a finding carries the outside file's content: %s", f.Message)
				}
			}
		})
	}
}

// A test folder given as a parameter may not lead outside either.
func TestDiscoverRefusesOutsideFolders(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "repo")
	write(t, filepath.Join(outer, "other", "kyverno-test.yaml"), "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\n")
	os.MkdirAll(root, 0o755)
	symlink(t, filepath.Join(outer, "other"), filepath.Join(root, "tests"))
	repo, _ := repofs.Open(root, repofs.Limits{})
	for _, d := range []string{"../other", filepath.Join(outer, "other"), "tests", "/"} {
		if suites, err := Discover(repo, []string{d}, "kyverno-test.yaml"); err == nil || !strings.Contains(err.Error(), "outside the repository root") {
			t.Errorf("%s: %d suites, %v", d, len(suites), err)
		}
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// The control: the same suite with the ConfigMap inside the repository runs,
// and its policy message does print the token — which is what the cases
// above keep away from files outside.
func TestLeakPolicyPrintsWhatItReads(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "policy.yaml"), leakPolicy)
	write(t, filepath.Join(root, "tests", "secret.yaml"), secret)
	write(t, filepath.Join(root, "tests", "kyverno-test.yaml"), "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: t\npolicies: [../policy.yaml]\nresources: [secret.yaml]\nresults:\n  - policy: leak\n    rule: leak\n    resources: [other-tenant]\n    kind: ConfigMap\n    result: pass\n")
	repo, _ := repofs.Open(root, repofs.Limits{})
	suites, err := Discover(repo, []string{"tests"}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := Run(suites, nil)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var all string
	for _, f := range Findings([]*SuiteResult{res}) {
		all += f.Message
	}
	if !strings.Contains(all, "s3cr3t") {
		t.Fatalf("the control did not print the token: %q", all)
	}
}
