package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
)

// A small policy repository: one overlay with one enforced policy.
const basePolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
              namespaces: ["*"]
      validate:
        failureAction: Enforce
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
    - name: check-owner
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: "label owner is required"
        pattern:
          metadata:
            labels:
              owner: "?*"
`

const exception = `apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: let-legacy-in
  namespace: kyverno
spec:
  exceptions:
    - policyName: require-team
      ruleNames: [check-team]
  match:
    any:
      - resources:
          kinds: [Pod]
          namespaces: [legacy]
`

type gitRepo struct {
	t    *testing.T
	root string
	repo *git.Repository
	base string // the first commit
}

func newGitRepo(t *testing.T, files map[string]string) *gitRepo {
	t.Helper()
	root := repotest.WriteTree(t, files)
	repo, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	g := &gitRepo{t: t, root: root, repo: repo}
	g.base = g.commit("base")
	return g
}

func (g *gitRepo) write(path, content string) {
	if err := os.WriteFile(filepath.Join(g.root, path), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

func (g *gitRepo) commit(msg string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		g.t.Fatal(err)
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

func (g *gitRepo) generate(args ...string) (int, string) {
	code, stdout, stderr := runGate(g.t, nil, append([]string{"generate", "--allow-no-tests", "--repo-root", g.root, filepath.Join(g.root, "app")}, args...)...)
	if code != 0 && stdout != "" {
		g.t.Errorf("exit %d with %d bytes on stdout", code, len(stdout))
	}
	return code, stderr
}

var approvalKeyRE = regexp.MustCompile(`approve\.kyverno-gate\.io/[0-9a-f]{12}`)

// approve adds the annotations a rejection asked for to the policy file.
func approve(t *testing.T, policy string, keys ...string) string {
	var b strings.Builder
	b.WriteString("  annotations:\n")
	for _, k := range keys {
		b.WriteString("    " + k + ": \"reason=accepted in review; ticket=SEC-1\"\n")
	}
	return strings.Replace(policy, "  name: require-team\n", "  name: require-team\n"+b.String(), 1)
}

func TestWeakeningsAgainstAGitBaseline(t *testing.T) {
	tests := []struct {
		name      string
		policy    string // head policy.yaml
		extra     string // head extra.yaml (exceptions, new policies)
		wantCode  int
		wantInMsg string
	}{
		{name: "enforce to audit", policy: strings.Replace(basePolicy, "failureAction: Enforce", "failureAction: Audit", 1),
			wantCode: 1, wantInMsg: "from Enforce to Audit"},
		{name: "match narrowed to canary", policy: strings.Replace(basePolicy, `namespaces: ["*"]`, `namespaces: ["canary-*"]`, 1),
			wantCode: 1, wantInMsg: "check-team"},
		{name: "exclude added", policy: strings.Replace(basePolicy, "      validate:\n        failureAction: Enforce\n        message: \"label team",
			"      exclude:\n        any:\n          - resources:\n              namespaces: [apps]\n      validate:\n        failureAction: Enforce\n        message: \"label team", 1),
			wantCode: 1, wantInMsg: "check-team"},
		{name: "rule removed", policy: basePolicy[:strings.Index(basePolicy, "    - name: check-owner")],
			wantCode: 1, wantInMsg: "check-owner"},
		{name: "failurePolicy ignore", policy: strings.Replace(basePolicy, "spec:\n", "spec:\n  webhookConfiguration:\n    failurePolicy: Ignore\n", 1),
			wantCode: 1, wantInMsg: "Ignore"},
		{name: "new exception", policy: basePolicy, extra: exception, wantCode: 1, wantInMsg: "PolicyException"},
		{name: "message edit is neutral", policy: strings.Replace(basePolicy, "label team is required", "set the team label", 1), wantCode: 0},
		{name: "new policy is stricter", policy: basePolicy, extra: strings.Replace(basePolicy, "name: require-team", "name: require-team-2", 1), wantCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGitRepo(t, map[string]string{
				"app/kustomization.yaml": "resources: [policy.yaml, extra.yaml]\n",
				"app/policy.yaml":        basePolicy,
				"app/extra.yaml":         "",
			})
			base := g.base
			g.write("app/policy.yaml", tt.policy)
			g.write("app/extra.yaml", tt.extra)
			g.commit("change")
			code, stderr := g.generate("--baseline", "git:"+base)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, stderr)
			}
			if tt.wantCode == 0 {
				return
			}
			if !strings.Contains(stderr, tt.wantInMsg) || !strings.Contains(stderr, "REJECTED") {
				t.Errorf("stderr lacks %q:\n%s", tt.wantInMsg, stderr)
			}
			keys := approvalKeyRE.FindAllString(stderr, -1)
			if len(keys) == 0 {
				t.Fatalf("no approval to paste in:\n%s", stderr)
			}
			// The pasted approval makes the same change pass.
			if tt.policy != "" && strings.Contains(tt.policy, "name: require-team\n") {
				g.write("app/policy.yaml", approve(t, tt.policy, keys...))
			}
			if code, stderr := g.generate("--baseline", "git:"+base); code != 0 {
				t.Errorf("still rejected after approving %v:\n%s", keys, stderr)
			}
		})
	}
}

// An approval names one finding: it does not approve a second weakening,
// and an unrelated commit on top of an unapproved one launders nothing
// when the baseline is the lock.
func TestApprovalsAreBoundAndLocksDoNotLaunder(t *testing.T) {
	g := newGitRepo(t, map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml":        basePolicy,
	})
	if code, _, stderr := runGate(t, nil, "lock", "--allow-no-tests", "--repo-root", g.root, filepath.Join(g.root, "app")); code != 0 {
		t.Fatalf("lock: %s", stderr)
	}
	g.commit("lock")

	// Weaken one rule and approve it.
	weak := strings.Replace(basePolicy, "failureAction: Enforce", "failureAction: Audit", 1)
	g.write("app/policy.yaml", weak)
	_, stderr := g.generate()
	first := approvalKeyRE.FindAllString(stderr, -1)
	if len(first) != 1 {
		t.Fatalf("want one finding, got %v:\n%s", first, stderr)
	}
	// Weaken the second rule too: the first approval must not cover it.
	both := strings.Replace(weak, "failureAction: Enforce", "failureAction: Audit", 1)
	g.write("app/policy.yaml", approve(t, both, first...))
	code, stderr := g.generate()
	if code != 1 || !strings.Contains(stderr, "1 problem") || !strings.Contains(stderr, "check-owner") {
		t.Fatalf("the approval of check-team approved check-owner too (exit %d):\n%s", code, stderr)
	}

	// Commit the unapproved weakening, then an unrelated commit: the lock
	// is still the baseline, so it stays rejected.
	g.write("app/policy.yaml", weak)
	g.commit("weaken")
	g.write("README.md", "unrelated\n")
	g.commit("unrelated")
	if code, stderr := g.generate(); code != 1 || !strings.Contains(stderr, "from Enforce to Audit") {
		t.Fatalf("an unrelated commit laundered the weakening (exit %d):\n%s", code, stderr)
	}
	// A weaker lock cannot be written either.
	if code, _, stderr := runGate(t, nil, "lock", "--allow-no-tests", "--repo-root", g.root, filepath.Join(g.root, "app")); code != 1 || !strings.Contains(stderr, "lock not written") {
		t.Fatalf("lock accepted a weakening (exit %d):\n%s", code, stderr)
	}
}

// Widening a match from canary-* to every namespace is stricter: it passes.
func TestWideningFromCanaryPasses(t *testing.T) {
	g := newGitRepo(t, map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml":        strings.Replace(basePolicy, `namespaces: ["*"]`, `namespaces: ["canary-*"]`, 1),
	})
	g.write("app/policy.yaml", basePolicy)
	g.commit("roll out to every namespace")
	if code, stderr := g.generate("--baseline", "git:"+g.base); code != 0 {
		t.Fatalf("widening was rejected (exit %d):\n%s", code, stderr)
	}
}
