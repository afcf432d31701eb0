package weaken

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// headSep separates a fixture's baseline from its head.
var headSep = regexp.MustCompile(`(?m)^#### head\s*$`)

// gateFixture reads testdata/gate/<name>.yaml: a baseline and a head
// rendering separated by "#### head".
func gateFixture(t *testing.T, name string) (base, head []*render.Resource) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gate", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parts := headSep.Split(string(data), -1)
	if len(parts) != 2 {
		t.Fatalf("%s: want exactly one '#### head' line", name)
	}
	return repotest.Resources(t, parts[0], "lock.yaml"), repotest.Resources(t, parts[1], "policies/"+name+".yaml")
}

const lockName = "lock overlays/production/kyverno-gate.lock.yaml"

func gateInput(t *testing.T, base, head []*render.Resource) (*gate.Input, *[]string) {
	var logs []string
	in := &gate.Input{Root: t.TempDir(), Dir: "overlays/production", Rendered: &render.Result{Dir: "overlays/production", Resources: head},
		BaselineName: lockName, Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	if base != nil {
		in.Baseline = &render.Result{Dir: "overlays/production", Resources: base}
	}
	return in, &logs
}

var (
	fpAudit   = diff.Fingerprint("ClusterPolicy", "require-labels", "check-team", "spec.rules[check-team].validate.failureAction", "Enforce", "Audit")
	fpExclude = diff.Fingerprint("ClusterPolicy", "require-labels", "check-team", "spec.rules[check-team].exclude", "nothing", "{namespaces=[legacy]}")
)

func day(s string) func() time.Time {
	return func() time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
}

// wantFinding describes a finding; empty fields are not checked, Message
// and Hint are substrings.
type wantFinding struct {
	severity report.Severity
	file     string
	object   string
	rule     string
	message  string
	hint     string
}

func (w wantFinding) matches(f report.Finding) bool {
	return f.Severity == w.severity && (w.file == "" || f.File == w.file) && (w.object == "" || f.Subject.String() == w.object) &&
		(w.rule == "" || f.Rule == w.rule) && strings.Contains(f.Message, w.message) && strings.Contains(f.Hint, w.hint)
}

func TestGate(t *testing.T) {
	approve := func(name, fp, value string) func(*testing.T, []*render.Resource) {
		return func(t *testing.T, head []*render.Resource) {
			repotest.Annotate(t, head, name, diff.ApprovalKey(fp), value)
		}
	}
	both := func(fs ...func(*testing.T, []*render.Resource)) func(*testing.T, []*render.Resource) {
		return func(t *testing.T, head []*render.Resource) {
			for _, f := range fs {
				f(t, head)
			}
		}
	}
	auditMsg := "effective failure action of rule check-team went from Enforce to Audit: violations are reported but no longer blocked (baseline: " + lockName + ")"
	rejectedAudit := wantFinding{severity: report.Error, file: "policies/enforce-to-audit.yaml", object: "ClusterPolicy require-labels", rule: "check-team",
		message: auditMsg, hint: "add the annotation `approve.kyverno-gate.io/" + fpAudit + `: "reason=<why>; ticket=<id>; expires=<YYYY-MM-DD>"` + "` to ClusterPolicy require-labels (metadata.annotations, e.g. a patch in "}
	for _, tc := range []struct {
		name    string
		fixture string
		noBase  bool
		edit    func(*testing.T, []*render.Resource)
		now     func() time.Time
		want    []wantFinding
		log     string
	}{
		{name: "no baseline", fixture: "enforce-to-audit", noBase: true},
		{name: "unchanged", fixture: "unchanged"},
		{name: "enforce to audit rejected", fixture: "enforce-to-audit", want: []wantFinding{rejectedAudit}},
		{name: "enforce to audit approved", fixture: "enforce-to-audit",
			edit: approve("require-labels", fpAudit, "reason=JIRA-123 loosen for migration; expires=2026-12-31"), now: day("2026-06-01T00:00:00Z"),
			log: "approved by approve.kyverno-gate.io/" + fpAudit + " on ClusterPolicy require-labels (reason=JIRA-123 loosen for migration; expires=2026-12-31)"},
		{name: "approval on any Kyverno object counts", fixture: "enforce-to-audit", edit: approve("disallow-latest", fpAudit, "")},
		{name: "approval on the last day counts", fixture: "enforce-to-audit",
			edit: approve("require-labels", fpAudit, "expires=2026-12-31"), now: day("2026-12-31T23:59:59Z")},
		{name: "expired approval", fixture: "enforce-to-audit",
			edit: approve("require-labels", fpAudit, "reason=x; expires=2026-12-31"), now: day("2027-01-01T00:00:00Z"),
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: "; its approval approve.kyverno-gate.io/" + fpAudit + " on ClusterPolicy require-labels expired on 2026-12-31",
				hint: "renew the approval with a later expires= date"}}},
		{name: "invalid approval", fixture: "enforce-to-audit", edit: approve("require-labels", fpAudit, "reason=x; until=2026-12-31"),
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: `is not valid: unknown key "until"`}}},
		{name: "pasted placeholder does not count", fixture: "enforce-to-audit", edit: approve("require-labels", fpAudit, diff.SuggestedValue),
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: "fill in the placeholder"}}},
		{name: "approving one does not approve another", fixture: "two-weakenings", edit: approve("require-labels", fpAudit, ""),
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: "exclude of rule check-team", hint: fpExclude}}},
		{name: "both approved", fixture: "two-weakenings",
			edit: both(approve("require-labels", fpAudit, ""), approve("require-labels", fpExclude, "ticket=SEC-9"))},
		{name: "unrelated change on top does not launder", fixture: "unrelated-on-top",
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: "went from Enforce to Audit", hint: fpAudit}}},
		{name: "unrelated change on top, approved", fixture: "unrelated-on-top", edit: approve("require-probes", fpAudit, "")},
		{name: "stale approval", fixture: "unchanged", edit: approve("require-labels", fpAudit, "reason=old"),
			want: []wantFinding{{severity: report.Warning, object: "ClusterPolicy require-labels", file: "policies/unchanged.yaml",
				message: "stale approval approve.kyverno-gate.io/" + fpAudit + ": no current finding has this fingerprint", hint: "remove it"}}},
		{name: "not a fingerprint", fixture: "unchanged", edit: approve("require-labels", "check-team", ""),
			want: []wantFinding{{severity: report.Warning, message: `annotation approve.kyverno-gate.io/check-team is not an approval: "check-team" is not a fingerprint`}}},
		{name: "stricter and neutral changes pass", fixture: "stricter-only", log: "weaken: 3 stricter change(s) compared with " + lockName},
		{name: "unknown change rejected", fixture: "unknown-change",
			want: []wantFinding{{severity: report.Error, rule: "check-team", message: "may weaken enforcement (cannot be decided structurally, so it counts as weaker): "}}},
		{name: "policy removed", fixture: "policy-removed",
			want: []wantFinding{{severity: report.Error, file: "lock.yaml", object: "ClusterPolicy require-labels", message: "ClusterPolicy require-labels was removed",
				hint: "to any Kyverno object the overlay still renders, e.g. ClusterPolicy disallow-latest (a patch in the overlay's kustomization), or to all of them with commonAnnotations"}}},
		{name: "policy removed, approved elsewhere", fixture: "policy-removed",
			edit: approve("disallow-latest", diff.Fingerprint("ClusterPolicy", "require-labels", "", "", "present", "absent"), "reason=retired")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, head := gateFixture(t, tc.fixture)
			if tc.noBase {
				base = nil
			}
			if tc.edit != nil {
				tc.edit(t, head)
			}
			in, logs := gateInput(t, base, head)
			findings, err := check(Gate{Now: tc.now}, in)
			if err != nil {
				t.Fatal(err)
			}
			used := make([]bool, len(findings))
			for _, w := range tc.want {
				ok := false
				for i, f := range findings {
					if !used[i] && w.matches(f) {
						used[i], ok = true, true
						break
					}
				}
				if !ok {
					t.Errorf("missing finding %+v", w)
				}
			}
			for i, f := range findings {
				if f.Gate != "weaken" {
					t.Errorf("gate %q", f.Gate)
				}
				if !used[i] {
					t.Errorf("unexpected finding %+v", f)
				}
			}
			if tc.log != "" && !strings.Contains(strings.Join(*logs, "\n"), tc.log) {
				t.Errorf("log %q missing from:\n%s", tc.log, strings.Join(*logs, "\n"))
			}
		})
	}
}

// An approval placed on a non-Kyverno object of the rendering does not
// count: approvals live on the policies (or exceptions) they concern.
func TestApprovalOnlyOnKyvernoObjects(t *testing.T) {
	base, head := gateFixture(t, "enforce-to-audit")
	cm := repotest.Resources(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n", "cm.yaml")
	head = append(head, cm...)
	repotest.Annotate(t, head, "notes", diff.ApprovalKey(fpAudit), "")
	in, _ := gateInput(t, base, head)
	findings, err := check(Gate{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Severity != report.Error {
		t.Fatalf("got %+v", findings)
	}
}

func TestEvaluateItems(t *testing.T) {
	base, head := gateFixture(t, "two-weakenings")
	repotest.Annotate(t, head, "require-labels", diff.ApprovalKey(fpAudit), "by=alice")
	in, _ := gateInput(t, base, head)
	ev, err := evaluate(Gate{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Items) != 2 || len(ev.Findings) != 1 {
		t.Fatalf("items %+v findings %+v", ev.Items, ev.Findings)
	}
	for _, it := range ev.Items {
		s := it.ApprovalToAdd
		if it.Approved {
			if s != nil {
				t.Errorf("approved, yet a suggestion %+v", s)
			}
		} else if s == nil || s.Key != diff.ApprovalKey(it.Fingerprint) || s.Value != diff.SuggestedValue ||
			s.Object != "ClusterPolicy require-labels" || s.Target == nil || s.Target.APIVersion != "kyverno.io/v1" {
			t.Errorf("suggestion %+v", s)
		}
		switch it.Fingerprint {
		case fpAudit:
			if !it.Approved || it.Approval == nil || it.Approval.By != "alice" {
				t.Errorf("audit item %+v", it)
			}
		case fpExclude:
			if it.Approved {
				t.Errorf("exclude approved")
			}
		default:
			t.Errorf("unexpected %s", it.Change)
		}
	}
}

// TestSuggestionPatchApplies pastes the suggested patch into an overlay's
// kustomization, fills in the value, renders, and checks that the approval
// lands on the object and approves the finding.
func TestSuggestionPatchApplies(t *testing.T) {
	base, head := gateFixture(t, "enforce-to-audit")
	in, _ := gateInput(t, base, head)
	ev, err := evaluate(Gate{}, in)
	if err != nil || len(ev.Items) != 1 {
		t.Fatalf("%v %+v", err, ev)
	}
	patch := strings.Replace(ev.Items[0].ApprovalToAdd.Patch, diff.SuggestedValue, "reason=accepted; ticket=SEC-1", 1)

	root := t.TempDir()
	_, headText, _ := strings.Cut(mustReadFile(t, filepath.Join("testdata", "gate", "enforce-to-audit.yaml")), "#### head\n")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("base/policies.yaml", headText)
	write("overlays/production/kustomization.yaml", "resources:\n  - ../../base/policies.yaml\npatches:\n"+patch)
	res, err := render.Render(filepath.Join(root, "overlays", "production"), render.Options{Root: root})
	if err != nil {
		t.Fatalf("%v\n%s", err, patch)
	}
	in, _ = gateInput(t, base, res.Resources)
	in.Root = root
	findings, err := check(Gate{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 0 {
		t.Fatalf("still rejected after pasting:\n%s\n%+v", patch, findings)
	}
	// The hint names the overlay's kustomization now that it exists.
	in.Rendered.Resources = head
	ev, _ = evaluate(Gate{}, in)
	if k := ev.Items[0].ApprovalToAdd.Kustomization; k != "overlays/production/kustomization.yaml" || !strings.Contains(ev.Findings[0].Hint, "a patch in overlays/production/kustomization.yaml") {
		t.Fatalf("kustomization %q, hint %q", k, ev.Findings[0].Hint)
	}
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
