package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
)

// checkGoldenFormats are the report formats of check and the extension of
// their golden files (as in output/testdata/golden).
var checkGoldenFormats = []struct{ format, ext string }{
	{"text", "txt"},
	{"json", "json"},
	{"markdown", "md"},
	{"sarif", "sarif"},
	{"junit", "junit.xml"},
	{"github", "github.txt"},
}

// Golden tests pin every format of check on the example repository: as it
// is (clean) and with a pull request that weakens production against the
// commit before it (weakening).
func TestCheckExampleGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and gates three overlays twice")
	}
	// The tool version is part of every report; pin it whatever the
	// build's -ldflags set.
	v := version
	version = "dev"
	t.Cleanup(func() { version = v })

	t.Run("clean", func(t *testing.T) {
		// A pull request that changes no policy: every overlay against
		// the commit before it.
		root, repo, base := exampleGitRepo(t)
		readme := filepath.Join(root, "README.md")
		b, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readme, append(b, "\nA line a pull request adds.\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
		fixedCommit(t, repo, "docs")

		reports := checkAllFormats(t, root, 0, "--baseline", "git:"+base)
		normaliseCommit(reports, base)
		compareCheckGoldens(t, "clean", root, reports)
		if !strings.Contains(reports["markdown"], "| Policy | Rule |") {
			t.Errorf("markdown has no posture matrix:\n%s", reports["markdown"])
		}
	})
	t.Run("weakening", func(t *testing.T) {
		root, repo, base := exampleGitRepo(t)
		kust := filepath.Join(root, "overlays", "production", "kustomization.yaml")
		b, err := os.ReadFile(kust)
		if err != nil {
			t.Fatal(err)
		}
		const enforceLimits = "        value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Enforce\n"
		if !strings.Contains(string(b), enforceLimits) {
			t.Fatalf("%s no longer enforces require-resource-limits as this test expects", kust)
		}
		auditLimits := strings.Replace(enforceLimits, "Enforce", "Audit", 1)
		weak := strings.Replace(string(b), enforceLimits, auditLimits, 1)
		// The line of the weakening `value: Audit`, the block's last: where
		// the findings must point.
		auditLine := strings.Count(weak[:strings.Index(weak, auditLimits)+len(auditLimits)], "\n")
		if err := os.WriteFile(kust, []byte(weak), 0o644); err != nil {
			t.Fatal(err)
		}
		fixedCommit(t, repo, "weaken")

		reports := checkAllFormats(t, root, 1, "--baseline", "git:"+base)
		normaliseCommit(reports, base)
		compareCheckGoldens(t, "weakening", root, reports)
		if !strings.Contains(reports["markdown"], "| Policy | Rule |") {
			t.Errorf("markdown has no posture matrix:\n%s", reports["markdown"])
		}
		checkWeakeningSARIF(t, reports["sarif"], auditLine)
	})
}

// exampleGitRepo copies the example repository to a temporary git
// repository and commits it: the root, the repository and the commit.
func exampleGitRepo(t *testing.T) (string, *git.Repository, string) {
	t.Helper()
	root := t.TempDir()
	repotest.CopyTree(t, example, root)
	repo, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	return root, repo, fixedCommit(t, repo, "base")
}

// normaliseCommit replaces the base commit, full and abbreviated, by BASE.
// Its hash is stable (fixed content, author and time) but would change in
// every golden with any change of the example.
func normaliseCommit(reports map[string]string, base string) {
	for k, v := range reports {
		v = strings.ReplaceAll(v, base, "BASE")
		reports[k] = strings.ReplaceAll(v, "("+base[:7]+")", "(BASE)")
	}
}

// fixedCommit commits the whole worktree with a fixed author and committer
// so that the hash depends on the content alone.
func fixedCommit(t *testing.T, repo *git.Repository, msg string) string {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0).UTC()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// checkAllFormats runs check on root once with every format written to a
// file and returns the reports by format.
func checkAllFormats(t *testing.T, root string, wantCode int, extra ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"check", "--repo-root", root}
	args = append(args, extra...)
	for _, f := range checkGoldenFormats {
		args = append(args, "--output", f.format+"="+filepath.Join(dir, "report."+f.ext))
	}
	code, stdout, stderr := runGate(t, []string{"NO_COLOR=1"}, args...)
	if code != wantCode {
		t.Fatalf("exit %d, want %d:\n%s", code, wantCode, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout is not empty:\n%s", stdout)
	}
	reports := map[string]string{}
	for _, f := range checkGoldenFormats {
		b, err := os.ReadFile(filepath.Join(dir, "report."+f.ext))
		if err != nil {
			t.Fatal(err)
		}
		reports[f.format] = string(b)
	}
	return reports
}

// compareCheckGoldens compares every report with
// testdata/golden/check/<name>.<ext>, after replacing root by ROOT.
func compareCheckGoldens(t *testing.T, name, root string, reports map[string]string) {
	t.Helper()
	for _, f := range checkGoldenFormats {
		got := normaliseRoot(reports[f.format], root)
		golden := filepath.Join("testdata", "golden", "check", name+"."+f.ext)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s report differs from %s (go test ./cmd/kyverno-gate -run Golden -update to accept):\n%s",
				f.format, golden, got)
		}
	}
}

// normaliseRoot replaces the temporary repository root (and its JSON
// escaped form) by ROOT.
func normaliseRoot(s, root string) string {
	roots := []string{root, filepath.ToSlash(root)}
	if real, err := filepath.EvalSymlinks(root); err == nil && real != root {
		roots = append(roots, real, filepath.ToSlash(real))
	}
	for _, r := range roots {
		if esc, err := json.Marshal(r); err == nil {
			s = strings.ReplaceAll(s, strings.Trim(string(esc), `"`), "ROOT")
		}
		s = strings.ReplaceAll(s, r, "ROOT")
	}
	return s
}

// checkWeakeningSARIF asserts that the weakening of production, and the
// floor it violates, are SARIF results on the overlay patch that weakens
// it (overlays/production/kustomization.yaml, line of the value it sets),
// with the base file that declares the policy as a related location.
func checkWeakeningSARIF(t *testing.T, data string, line int) {
	t.Helper()
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct{ URI string }
			Region           struct{ StartLine int }
		}
	}
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID           string
				Locations        []location
				RelatedLocations []location
				Properties       struct{ Object, Rule string }
			}
		}
	}
	if err := json.Unmarshal([]byte(data), &log); err != nil || len(log.Runs) != 1 {
		t.Fatalf("sarif: %v, %d runs", err, len(log.Runs))
	}
	found := map[string]bool{}
	for _, res := range log.Runs[0].Results {
		if res.Properties.Object != "ClusterPolicy require-resource-limits" || res.Properties.Rule != "check-container-limits" {
			continue
		}
		found[res.RuleID] = true
		loc := res.Locations[0].PhysicalLocation
		if loc.ArtifactLocation.URI != "overlays/production/kustomization.yaml" || loc.Region.StartLine != line {
			t.Errorf("%s result at %s:%d, want overlays/production/kustomization.yaml:%d", res.RuleID,
				loc.ArtifactLocation.URI, loc.Region.StartLine, line)
		}
		declared := false
		for _, r := range res.RelatedLocations {
			declared = declared || r.PhysicalLocation.ArtifactLocation.URI == "base/validation/require-resource-limits.yaml"
		}
		if !declared {
			t.Errorf("%s result has no related location in base/validation/require-resource-limits.yaml", res.RuleID)
		}
	}
	if !found["weaken/weaker"] || !found["floor/violation"] {
		t.Errorf("no weaken/weaker and floor/violation results for require-resource-limits (found %v):\n%s", found, data)
	}
}
