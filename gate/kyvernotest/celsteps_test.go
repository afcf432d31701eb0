package kyvernotest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
)

var celStepKind = regexp.MustCompile(`(?m)^kind: (Namespaced)?(Mutating|Generating)Policy\s*$`)

// TestCELStepsAgreeWithProcessor runs every corpus suite with Mutating or
// GeneratingPolicies twice, with those steps done by the test gate
// (celsteps.go) and inside Kyverno's processor (as before issue 18), and
// compares everything the suites report: each row with its message, and
// errors.
func TestCELStepsAgreeWithProcessor(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the corpus's CEL mutating and generating suites twice")
	}
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("corpus not present: %v", err)
	}
	root, err := filepath.Abs(corpus)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := Discover(repo, []string{"."}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var suites []*Suite
	for _, s := range all {
		if s.Err != nil || s.Test == nil {
			continue
		}
		for _, p := range path.GetFullPaths(s.Test.Policies, s.Dir(), false) {
			if b, err := repo.ReadFile(p); err == nil && celStepKind.Match(b) {
				suites = append(suites, s)
				break
			}
		}
	}
	if len(suites) < 30 {
		t.Fatalf("only %d suites with Mutating or GeneratingPolicies in the corpus", len(suites))
	}
	report := func(rs []*SuiteResult) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("err=%v stop=%q skipped=%q rows=%+v", r.Err, r.UpstreamStop, r.Skipped, r.Rows)
		}
		return out
	}
	before := celStepSuites.Load()
	ours := report(Run(suites, nil))
	if n := celStepSuites.Load() - before; n != int64(len(suites)) {
		t.Errorf("%d of %d suites took the test gate's CEL steps", n, len(suites))
	}
	processorCELSteps = true
	defer func() { processorCELSteps = false }()
	theirs := report(Run(suites, nil))
	t.Logf("%d suites", len(suites))
	for i, s := range suites {
		if ours[i] != theirs[i] {
			t.Errorf("%s:\n  test gate %s\n  processor %s", s.Rel, ours[i], theirs[i])
		}
	}
}
