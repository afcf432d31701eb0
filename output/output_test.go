package output

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

func TestTextCapsProblemsAndLeadsWithTheVerdict(t *testing.T) {
	var fs []report.Finding
	for i := 0; i < 5; i++ {
		fs = append(fs, report.Finding{Gate: "test", Severity: report.Error, File: "tests/a.yaml", Subject: report.ParseSubject("policy p"),
			Rule: "r", Resource: "Pod ns/x", Message: "expected fail:\n  Want fail, got pass", Hint: "fix it"})
	}
	var b bytes.Buffer
	o := &report.Overlay{Findings: fs}
	o.Finalize()
	Compact(&b, "overlays/prod", o, 3, "")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[0] != "kyverno-gate: overlays/prod REJECTED: 5 problems" {
		t.Errorf("first line = %q", lines[0])
	}
	if len(lines) != 5 || !strings.HasPrefix(lines[4], "... and 2 more") {
		t.Errorf("want 3 problems then '... and 2 more', got:\n%s", b.String())
	}
	if lines[1] != "- tests/a.yaml, policy p, rule r, resource Pod ns/x: expected fail: Want fail, got pass → fix it" {
		t.Errorf("problem line = %q", lines[1])
	}
}

func TestVerdictExitCodes(t *testing.T) {
	for v, want := range map[report.Verdict]int{report.Vetted: 0, report.Rejected: 1, report.Failed: 2} {
		if got := v.ExitCode(); got != want {
			t.Errorf("%s: exit %d, want %d", v, got, want)
		}
	}
}

func TestManifestsIsOneStream(t *testing.T) {
	got := string(Manifests([]*render.Resource{{YAML: []byte("a: 1\n")}, {YAML: []byte("b: 2")}}))
	if got != "---\na: 1\n---\nb: 2\n" {
		t.Errorf("got %q", got)
	}
}

// The check report's test line tells failed results from suites that
// could not run.
func TestTestLine(t *testing.T) {
	for _, tt := range []struct {
		c    report.TestCounts
		want string
	}{
		{report.TestCounts{Suites: 2, Results: 3}, "3 results in 2 suites, all passed"},
		{report.TestCounts{Suites: 3, Skipped: 1, Results: 3, FailedResults: 2, Errors: 1, Failed: 3}, "3 results in 3 suites (1 skipped), 2 failed, 1 suite could not run"},
		{report.TestCounts{Suites: 1, Errors: 1, Failed: 1}, "0 results in 1 suite, 1 suite could not run"},
	} {
		if got := testLine(&report.TestSummary{TestCounts: tt.c}); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.c, got, tt.want)
		}
	}
}
