package main

import (
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
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

// A note about a shared base is printed once, not once per overlay (and
// not again for the baseline).
func TestCheckPrintsEachNoteOnce(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{
		"base/kustomization.yaml":       "commonLabels: {team: a}\nresources: [cm.yaml]\n",
		"base/cm.yaml":                  configMap,
		"overlays/a/kustomization.yaml": "resources: [../../base]\n",
		"overlays/b/kustomization.yaml": "resources: [../../base]\n",
		".kyverno-gate.yaml":            "apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n",
	})
	_, _, stderr := runGate(t, nil, "check", "--allow-no-tests", "--repo-root", root,
		filepath.Join(root, "overlays", "a"), filepath.Join(root, "overlays", "b"))
	if n := strings.Count(stderr, "base/kustomization.yaml: 'commonLabels' is deprecated"); n != 1 {
		t.Errorf("the base's note appears %d times:\n%s", n, stderr)
	}
}

// `generate --baseline DIR`: the missing value is named, not the folder.
func TestBaselineWithoutValue(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "policy-repo", "overlays", "production")
	code, _, stderr := runGate(t, nil, "generate", "--baseline", dir)
	if code != 2 || !strings.Contains(stderr, "it is a folder: give --baseline a value before the folder to render") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}

// Without .git or .kyverno-gate.yaml the root is the rendered folder, and
// the refusal of ../../base says how to name the real root.
func TestRootFallbackIsExplained(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{
		"base/cm.yaml":                     configMap,
		"base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"overlays/prod/kustomization.yaml": "resources: [../../base]\n",
	})
	code, _, stderr := runGate(t, nil, "generate", "--allow-no-tests", filepath.Join(root, "overlays", "prod"))
	if code != 2 || !strings.Contains(stderr, "is outside the repository root") || !strings.Contains(stderr, "set --repo-root to the repository's top folder") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
}
