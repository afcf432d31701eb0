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

var legacyCELRule = regexp.MustCompile(`(?m)^\s+cel:\s*$`)

// TestLegacyCELAgreesWithProcessor runs every corpus suite whose policies
// have validate.cel rules twice, with those rules evaluated by the test gate
// (legacycel.go) and by Kyverno's engine, and compares everything the
// suites report: each row with its message, and errors.
func TestLegacyCELAgreesWithProcessor(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the corpus's validate.cel suites twice")
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
			if b, err := repo.ReadFile(p); err == nil && legacyCELRule.Match(b) {
				suites = append(suites, s)
				break
			}
		}
	}
	if len(suites) < 100 {
		t.Fatalf("only %d suites with validate.cel rules in the corpus", len(suites))
	}
	report := func(rs []*SuiteResult) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("err=%v stop=%q skipped=%q rows=%+v", r.Err, r.UpstreamStop, r.Skipped, r.Rows)
		}
		return out
	}
	before := legacyCELResponses.Load()
	ours := report(Run(suites, nil))
	replaced := legacyCELResponses.Load() - before
	processorLegacyCEL = true
	defer func() { processorLegacyCEL = false }()
	theirs := report(Run(suites, nil))
	t.Logf("%d suites, %d rule responses evaluated by the test gate", len(suites), replaced)
	if replaced < 200 {
		t.Errorf("only %d rule responses were evaluated by the test gate", replaced)
	}
	for i, s := range suites {
		if ours[i] != theirs[i] {
			t.Errorf("%s:\n  test gate %s\n  processor %s", s.Rel, ours[i], theirs[i])
		}
	}
}
