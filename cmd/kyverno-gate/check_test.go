package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// The example repository as it is: every environment vetted, the report in
// several formats at once, nothing but the report on stdout.
func TestCheckExampleRepo(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and gates three overlays")
	}
	dir := t.TempDir()
	md := filepath.Join(dir, "comment.md")
	code, stdout, stderr := runGate(t, []string{"NO_COLOR=1"}, "check", "--repo-root", example,
		"--output", "json", "--output", "markdown="+md)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if r.SchemaVersion != report.SchemaVersion || r.Verdict != report.Vetted || r.ExitCode != 0 || len(r.Overlays) != 3 {
		t.Fatalf("report: schema %d, verdict %s, exit %d, %d overlays", r.SchemaVersion, r.Verdict, r.ExitCode, len(r.Overlays))
	}
	for i, env := range []string{"development", "staging", "production"} {
		o := r.Overlays[i]
		if o.Environment != env || o.Path != "overlays/"+env || o.Verdict != report.Vetted || o.Tests == nil || o.Tests.Failed != 0 {
			t.Errorf("overlay %d: %+v", i, o)
		}
	}
	if r.Posture == nil || strings.Join(r.Posture.Environments, ",") != "development,staging,production" || len(r.Posture.Rows) == 0 {
		t.Errorf("posture %+v", r.Posture)
	}
	// The text report went to stderr, after the logs.
	if !strings.Contains(stderr, "kyverno-gate check: vetted: 3 overlays") || !strings.Contains(stderr, "Posture") {
		t.Errorf("no text report on stderr:\n%s", stderr)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	if !strings.HasPrefix(m, "<!-- kyverno-gate:check -->") || !strings.Contains(m, "| Policy | Rule | development | staging | production |") ||
		!strings.Contains(m, "validate-registries") {
		t.Errorf("markdown has no matrix:\n%s", m)
	}
}

func TestCheckOutputUsage(t *testing.T) {
	for _, args := range [][]string{
		{"check", "--output", "yaml", "overlays/x"},
		{"check", "--output", "json", "--output", "sarif", "overlays/x"},
		{"check", "--output", "json=", "overlays/x"},
	} {
		code, stdout, stderr := runGate(t, nil, args...)
		if code != 2 || stdout != "" || stderr == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// A pull request that weakens production against the commit before it:
// check rejects it, points SARIF at the base file that declares the
// policy, and agrees with generate on every overlay.
func TestCheckWeakeningAgainstGit(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and gates three overlays twice")
	}
	root := t.TempDir()
	repotest.CopyTree(t, example, root)
	g := &gitRepo{t: t, root: root}
	var err error
	if g.repo, err = git.PlainInit(root, false); err != nil {
		t.Fatal(err)
	}
	g.base = g.commit("base")
	kust := filepath.Join("overlays", "production", "kustomization.yaml")
	b, err := os.ReadFile(filepath.Join(root, kust))
	if err != nil {
		t.Fatal(err)
	}
	const enforceLimits = "        value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Enforce\n"
	if !strings.Contains(string(b), enforceLimits) {
		t.Fatalf("%s no longer enforces require-resource-limits as this test expects", kust)
	}
	g.write(kust, strings.Replace(string(b), enforceLimits, strings.Replace(enforceLimits, "Enforce", "Audit", 1), 1))
	g.commit("weaken")

	sarif := filepath.Join(t.TempDir(), "check.sarif")
	code, stdout, stderr := runGate(t, nil, "check", "--repo-root", root, "--baseline", "git:HEAD~1",
		"--output", "json", "--output", "sarif="+sarif)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	var r report.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Overlays) != 3 || r.Verdict != report.Rejected {
		t.Fatalf("verdict %s, %d overlays", r.Verdict, len(r.Overlays))
	}
	for _, o := range r.Overlays {
		gen, _, genErr := runGate(t, nil, "generate", "--repo-root", root, "--baseline", "git:HEAD~1", filepath.Join(root, o.Path))
		if gen != o.Verdict.ExitCode() {
			t.Errorf("%s: check says %s, generate exits %d:\n%s", o.Path, o.Verdict, gen, genErr)
		}
		if o.Baseline != "git:HEAD~1" && !strings.Contains(o.Baseline, "HEAD~1") {
			t.Errorf("%s: baseline %q", o.Path, o.Baseline)
		}
	}
	prod := r.Overlays[2]
	if prod.Environment != "production" || prod.Verdict != report.Rejected {
		t.Fatalf("production: %s %s", prod.Environment, prod.Verdict)
	}
	var weak *report.Finding
	for i, f := range prod.Findings {
		if f.Gate == "weaken" && f.Severity == report.Error && strings.Contains(f.Subject.String(), "require-resource-limits") {
			weak = &prod.Findings[i]
		}
	}
	if weak == nil || weak.File == "" || weak.Line == 0 || weak.Fingerprint == "" || weak.ApprovalToAdd == nil {
		t.Fatalf("no located weaken finding on require-resource-limits: %+v", prod.Findings)
	}
	cell := false
	for _, row := range r.Posture.Rows {
		if row.Policy == "require-resource-limits" && row.Rule == "check-container-limits" {
			c := row.Cells[2]
			cell = c.Action == "Audit" && c.Baseline == "Enforce" && c.Change == report.MarkWeaker
		}
	}
	if !cell {
		t.Errorf("posture does not mark production's check-container-limits weaker: %+v", r.Posture)
	}

	var log struct {
		Version string
		Runs    []struct {
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
				PartialFingerprints map[string]string
			}
		}
	}
	data, err := os.ReadFile(sarif)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("sarif: %v, version %q", err, log.Version)
	}
	found := false
	for _, res := range log.Runs[0].Results {
		if res.RuleID != "weaken/weaker" {
			continue
		}
		loc := res.Locations[0].PhysicalLocation
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(loc.ArtifactLocation.URI))); err != nil || loc.Region.StartLine < 1 {
			t.Errorf("sarif location %+v does not point at a file of the repository", loc)
		}
		if loc.ArtifactLocation.URI == weak.File && loc.Region.StartLine == weak.Line &&
			res.PartialFingerprints["kyvernoGate/v1"] == "overlays/production:"+weak.ID {
			found = true
		}
	}
	if !found {
		t.Errorf("no SARIF result at %s:%d:\n%s", weak.File, weak.Line, data)
	}
}
