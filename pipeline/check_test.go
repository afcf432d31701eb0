package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kyverno-gate/kyverno-gate/output"
	rep "github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// The base policy's metadata.name is on line 6.
const e2ePolicy = `# Every Pod names its team.
# Owned by the platform team.
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [ConfigMap]
      validate:
        failureAction: Enforce
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
`

const auditPatch = `
patches:
  - target:
      kind: ClusterPolicy
      name: require-team
    patch: |-
      - op: replace
        path: /spec/rules/0/validate/failureAction
        value: Audit
`

// TestCheckReportFromPipeline runs the real pipeline over a repository
// whose production overlay weakens a base policy against a git baseline,
// builds the report the way check does, and checks that the formats point
// at the overlay's patch, line of the value it sets, and carry the approval.
func TestCheckReportFromPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("renders and runs the gates")
	}
	root := t.TempDir()
	files := map[string]string{
		"base/policy.yaml":                       e2ePolicy,
		"base/kustomization.yaml":                "resources: [policy.yaml]\n",
		"overlays/staging/kustomization.yaml":    "resources: [../../base]\n",
		"overlays/production/kustomization.yaml": "resources: [../../base]\n",
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	commit := func() string {
		wt, _ := repo.Worktree()
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1700000000, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	base := commit()
	if err := os.WriteFile(filepath.Join(root, "overlays/production/kustomization.yaml"),
		[]byte("resources: [../../base]\n"+auditPatch), 0o644); err != nil {
		t.Fatal(err)
	}
	commit()

	ctx := context.Background()
	s, err := settings.Resolve(map[string][]string{"baseline": {"git:" + base}, "allow-no-tests": {"true"}, "repo-root": {root}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, env := range []string{"staging", "production"} {
		dirs = append(dirs, filepath.Join(root, "overlays", env))
	}
	report := Check(ctx, dirs, s, rep.DefaultTool("test"), func(string, ...any) {}, func(err error) string { return err.Error() })
	if report.Verdict != rep.Rejected || report.Overlays[0].Verdict != rep.Vetted {
		t.Fatalf("verdicts %s / %s %s", report.Verdict, report.Overlays[0].Verdict, report.Overlays[1].Verdict)
	}
	prod := report.Overlays[1]
	// The weakening, and the deprecation warning every ClusterPolicy gets.
	if prod.Count(rep.Error) != 1 || prod.Findings[0].Gate != "weaken" {
		t.Fatalf("production findings: %+v", prod.Findings)
	}
	f := prod.Findings[0]
	// On the overlay's patch, at the value it sets (line 10 of the
	// production kustomization); the policy is declared in the base.
	if f.Gate != "weaken" || f.File != "overlays/production/kustomization.yaml" || f.Line != 10 || f.Origin == nil ||
		f.Origin.Via != rep.OriginPatch || f.Origin.ObjectFile != "base/policy.yaml" || f.Origin.ObjectLine != 6 ||
		f.Field != "spec.rules[check-team].validate.failureAction" || f.Fingerprint == "" || f.ApprovalToAdd == nil ||
		f.ApprovalToAdd.Kustomization != "overlays/production/kustomization.yaml" || !strings.Contains(f.ApprovalToAdd.Patch, f.Fingerprint) {
		t.Errorf("finding %+v", f)
	}
	row := report.Posture.Rows[0]
	if row.Rule != "check-team" || row.Cells[0].Action != "Enforce" || row.Cells[0].Change != rep.MarkNone ||
		row.Cells[1].Action != "Audit" || row.Cells[1].Change != rep.MarkWeaker || row.Cells[1].Baseline != "Enforce" {
		t.Errorf("posture %+v", report.Posture)
	}
	for _, name := range output.Names() {
		fm, _ := output.Lookup(name)
		var b bytes.Buffer
		if err := fm.Write(&b, report); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "sarif" {
			var log struct {
				Runs []struct {
					Results []struct {
						RuleID    string
						Locations []struct {
							PhysicalLocation struct {
								ArtifactLocation struct{ URI string }
								Region           struct{ StartLine int }
							}
						}
					}
				}
			}
			if err := json.Unmarshal(b.Bytes(), &log); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range log.Runs[0].Results {
				if r.RuleID != "weaken/weaker" {
					continue
				}
				n++
				loc := r.Locations[0].PhysicalLocation
				if loc.ArtifactLocation.URI != "overlays/production/kustomization.yaml" || loc.Region.StartLine != 10 {
					t.Errorf("sarif location %+v", loc)
				}
			}
			if n != 1 {
				t.Errorf("%d weaken/weaker results", n)
			}
		}
		if name == "markdown" && !strings.Contains(b.String(), "approve.kyverno-gate.io/"+f.Fingerprint) {
			t.Errorf("markdown has no approval:\n%s", b.String())
		}
	}
}
