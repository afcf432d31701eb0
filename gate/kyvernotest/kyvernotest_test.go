package kyvernotest

import (
	"bytes"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	testcmd "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/commands/test"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

func init() { kyverno.SetLogger(logr.Discard()) }

func discover(t *testing.T, dir string) []*Suite {
	t.Helper()
	root, _ := filepath.Abs("testdata")
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	suites, err := Discover(repo, []string{dir}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(suites) == 0 {
		t.Fatalf("no suite in %s", dir)
	}
	return suites
}

func TestRunSuitesAsWritten(t *testing.T) {
	tests := []struct {
		dir        string
		wantErr    string // suite error
		wantRows   int
		wantFailed int
		wantStrict string
	}{
		{dir: "suite-ok", wantRows: 2},
		// A policy folder with a kustomization and a hidden file, as upstream reads it.
		{dir: "suite-dir", wantRows: 2},
		{dir: "suite-badfile", wantErr: "does not load"},
		// Upstream skips an invalid policy and counts its results as passed.
		{dir: "suite-invalid", wantRows: 2, wantFailed: 2, wantStrict: "the policy is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			res := Run(discover(t, tt.dir), nil)[0]
			if tt.wantErr != "" {
				if res.Err == nil || !strings.Contains(res.Err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", res.Err, tt.wantErr)
				}
				return
			}
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			failed := 0
			for _, r := range res.Rows {
				if r.Failed() {
					failed++
					if !strings.Contains(r.Strict, tt.wantStrict) {
						t.Errorf("strict = %q, want %q", r.Strict, tt.wantStrict)
					}
				}
			}
			if len(res.Rows) != tt.wantRows || failed != tt.wantFailed {
				t.Errorf("rows = %d, failed = %d; want %d, %d: %+v", len(res.Rows), failed, tt.wantRows, tt.wantFailed, res.Rows)
			}
		})
	}
}

const excludingApps = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  background: true
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      exclude:
        any:
          - resources:
              namespaces: [apps]
      validate:
        failureAction: Enforce
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
`

// The overlay's version of a policy replaces the suite's file. An exclude
// that covers the test's failing resource makes upstream report "Excluded"
// and pass; kyverno-gate fails it.
func TestOverlaySubstitutionCatchesExcludedExpectation(t *testing.T) {
	ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "require-team"}, Doc: []byte(excludingApps)}}}
	res := Run(discover(t, "suite-ok"), ov)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Substituted) != 1 {
		t.Fatalf("substituted = %v", res.Substituted)
	}
	var strict []Row
	for _, r := range res.Rows {
		if r.Strict != "" {
			strict = append(strict, r)
		}
		if r.Upstream == "fail" {
			t.Errorf("upstream would fail row %+v; the point is that it passes", r)
		}
	}
	if len(strict) != 1 || strict[0].Resource != "Pod apps/pod-no-team" || !strings.Contains(strict[0].Strict, "did not apply") {
		t.Fatalf("strict rows = %+v", strict)
	}

	// Upstream `kyverno test` passes the same suite with the same policy.
	dir := t.TempDir()
	for _, f := range []string{"kyverno-test.yaml", "resource.yaml"} {
		data, _ := os.ReadFile(filepath.Join("testdata", "suite-ok", f))
		os.WriteFile(filepath.Join(dir, f), data, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(excludingApps), 0o644)
	cmd := testcmd.Command()
	cmd.SetArgs([]string{dir, "--remove-color"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("upstream kyverno test failed, so this test proves nothing: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Excluded") {
		t.Errorf("upstream output lacks the Excluded row:\n%s", out.String())
	}
}

func TestOverlayWithoutTheSuitesPoliciesSkipsIt(t *testing.T) {
	ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "other"}, Doc: []byte("kind: ClusterPolicy\n")}}}
	res := Run(discover(t, "suite-ok"), ov)[0]
	if res.Skipped == "" || len(res.Rows) != 0 {
		t.Fatalf("want skipped, got %+v", res)
	}
}

func TestOverlaySubstitutesInsidePolicyFolders(t *testing.T) {
	ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "require-team"}, Doc: []byte(excludingApps)}}}
	res := Run(discover(t, "suite-dir"), ov)[0]
	if res.Err != nil || len(res.Substituted) != 1 {
		t.Fatalf("err %v, substituted %v", res.Err, res.Substituted)
	}
}

// kustomize's namePrefix renames policies; the suite still runs, matched by
// the file that declared the policy.
func TestOverlayMatchesRenamedPoliciesBySourceFile(t *testing.T) {
	src, _ := filepath.Abs(filepath.Join("testdata", "suite-ok", "policy.yaml"))
	renamed := strings.Replace(excludingApps, "name: require-team", "name: prod-require-team", 1)
	ov := &Overlay{Entries: []Entry{{Object: Object{Kind: "ClusterPolicy", Name: "prod-require-team"}, Source: src, Doc: []byte(renamed)}}}
	res := Run(discover(t, "suite-ok"), ov)[0]
	if res.Err != nil || res.Skipped != "" || len(res.Substituted) != 1 {
		t.Fatalf("err %v, skipped %q, substituted %v", res.Err, res.Skipped, res.Substituted)
	}
	strict := 0
	for _, r := range res.Rows {
		if r.Strict != "" {
			strict++
		}
	}
	if strict != 1 {
		t.Errorf("the renamed overlay policy was not the one tested: %+v", res.Rows)
	}
}
