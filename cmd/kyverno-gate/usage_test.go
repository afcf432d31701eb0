package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// CLI manners (issue 13): mistakes get a "did you mean", the version says
// what the binary was built from.
func TestUsageMessages(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		stdout     string // substring ("" = empty)
		stderrHead string // first line of stderr ("" = empty)
	}{
		{args: []string{"gen"}, code: 2, stderrHead: `kyverno-gate: unknown command "gen"; did you mean "generate"?`},
		{args: []string{"lokc"}, code: 2, stderrHead: `kyverno-gate: unknown command "lokc"; did you mean "lock"?`},
		{args: []string{"frobnicate"}, code: 2, stderrHead: `kyverno-gate: unknown command "frobnicate"`},
		{args: []string{"generate", "--timeot", "3s", "."}, code: 2, stderrHead: "kyverno-gate: unknown flag --timeot; did you mean --timeout?"},
		{args: []string{"generate", "--allow-no-test", "."}, code: 2, stderrHead: "kyverno-gate: unknown flag --allow-no-test; did you mean --allow-no-tests?"},
		{args: []string{"check", "--outptu", "json"}, code: 2, stderrHead: "kyverno-gate: unknown flag --outptu; did you mean --output?"},
		{args: []string{"version"}, code: 0, stdout: "kyverno    v1.19.1"},
		{args: []string{"--version"}, code: 0, stdout: "kustomize  api v0."},
		{args: []string{"version"}, code: 0, stdout: "  go         go1."},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runGate(t, nil, tc.args...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != tc.code || first != tc.stderrHead || (tc.stdout == "") != (stdout == "") || !strings.Contains(stdout, tc.stdout) {
				t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant exit %d, stderr %q, stdout with %q", code, first, stdout, tc.code, tc.stderrHead, tc.stdout)
			}
		})
	}
}

// `check --output text` writes the report to stdout, so `> report.txt`
// holds it; without --output it goes to stderr.
func TestCheckTextGoesWhereAsked(t *testing.T) {
	repo := filepath.Join("..", "..", "examples", "policy-repo")
	code, stdout, stderr := runGate(t, nil, "check", "--output", "text", "--repo-root", repo, filepath.Join(repo, "overlays", "staging"))
	if code != 0 || !strings.Contains(stdout, "kyverno-gate check: vetted") || strings.Contains(stderr, "kyverno-gate check: vetted") {
		t.Errorf("--output text: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = runGate(t, nil, "check", "--repo-root", repo, filepath.Join(repo, "overlays", "staging"))
	if code != 0 || stdout != "" || !strings.Contains(stderr, "kyverno-gate check: vetted") {
		t.Errorf("default: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
