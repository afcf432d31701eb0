package attribute

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// markLine returns the line of testdata/repo/file that carries the comment
// "mark:<mark>", so that the fixtures can change without renumbering.
func markLine(t *testing.T, file, mark string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "repo", filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), "mark:"+mark) {
			return i + 1
		}
	}
	t.Fatalf("%s has no mark:%s", file, mark)
	return 0
}

func TestFindings(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("testdata", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		team      = "ClusterPolicy require-team"
		base      = "base/require-team.yaml"
		teamField = "spec.rules[check-team].validate.failureAction"
	)
	tests := []struct {
		name      string
		overlay   string
		finding   report.Finding
		wantFile  string
		wantMark  string // the line: the mark's in wantFile
		wantVia   string
		wantPatch string // the JSON pointer of the chosen patch operation
	}{
		{name: "inline JSON patch, index resolved by the rendered object", overlay: "inline",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "inline JSON patch adding a block, index named by a test op", overlay: "inline",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-owner", Field: "spec.rules[check-owner].exclude"},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-owner-exclude", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/1/exclude"},
		{name: "a field inside what a patch adds", overlay: "inline",
			finding:  report.Finding{Gate: "floor", Subject: report.ParseSubject(team), Rule: "check-owner", Field: "spec.rules[check-owner].exclude.any[0].resources.namespaces"},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-owner-ns", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/1/exclude/any/0/resources/namespaces"},
		{name: "autogen rule is its parent's", overlay: "inline",
			finding:  report.Finding{Gate: "floor", Subject: report.ParseSubject(team), Rule: "autogen-check-team", Field: "spec.rules[autogen-check-team].validate.failureAction"},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "rule without field", overlay: "inline",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team"},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "validate's unknown field by index", overlay: "inline",
			finding:  report.Finding{Gate: "validate", Subject: report.ParseSubject(team), Field: "spec.rules[1].exclude"},
			wantFile: "overlays/inline/kustomization.yaml", wantMark: "inline-owner-exclude", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/1/exclude"},
		{name: "a field no patch sets stays on the base, at the field", overlay: "inline",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: "spec.rules[check-team].exclude"},
			wantFile: base, wantMark: "base-exclude", wantVia: report.OriginObject},
		{name: "whole object stays on the base, at the object", overlay: "inline",
			finding:  report.Finding{Gate: "validate", Subject: report.ParseSubject(team)},
			wantFile: base, wantMark: "base-object", wantVia: report.OriginObject},
		{name: "patch file via path", overlay: "pathfile",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: "overlays/pathfile/audit.yaml", wantMark: "pathfile-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "strategic merge patch, rule item in the replaced list", overlay: "smp",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: "overlays/smp/rules.yaml", wantMark: "smp-team-action", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "strategic merge patch replacing the list that held a rule", overlay: "smp",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-owner", Field: "spec.rules[check-owner]"},
			wantFile: "overlays/smp/rules.yaml", wantMark: "smp-rules", wantVia: report.OriginPatch, wantPatch: "/spec/rules"},
		{name: "approval annotation of a strategic merge document", overlay: "smp",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Field: "metadata.annotations[approve.kyverno-gate.io/aaaaaaaaaaaa]"},
			wantFile: "overlays/smp/annotate.yaml", wantMark: "smp-approval", wantVia: report.OriginPatch,
			wantPatch: "/metadata/annotations/approve.kyverno-gate.io~1aaaaaaaaaaaa"},
		{name: "legacy patchesJson6902, renamed object", overlay: "legacy",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject("ClusterPolicy prod-require-team"), Rule: "check-team", Field: teamField},
			wantFile: "overlays/legacy/audit.yaml", wantMark: "legacy-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "legacy patchesStrategicMerge naming the object before namePrefix", overlay: "legacy",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject("ClusterPolicy prod-require-team"), Field: "spec.background"},
			wantFile: "overlays/legacy/background.yaml", wantMark: "legacy-background", wantVia: report.OriginPatch,
			wantPatch: "/spec/background"},
		{name: "base change in a patched overlay stays on the base", overlay: "legacy",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject("ClusterPolicy prod-require-team"), Rule: "check-team", Field: "spec.rules[check-team].exclude"},
			wantFile: base, wantMark: "base-exclude", wantVia: report.OriginObject},
		{name: "chain: the outermost patch wins", overlay: "production",
			finding:  report.Finding{Gate: "floor", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: "overlays/production/kustomization.yaml", wantMark: "production-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
		{name: "chain: a field only the middle overlay patches", overlay: "production",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Field: "spec.background"},
			wantFile: "overlays/staging/kustomization.yaml", wantMark: "staging-background", wantVia: report.OriginPatch,
			wantPatch: "/spec/background"},
		{name: "chain: a field nobody patches", overlay: "production",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-owner", Field: "spec.rules[check-owner]"},
			wantFile: base, wantMark: "base-rule-owner", wantVia: report.OriginObject},
		{name: "patches of other objects are not chosen", overlay: "other",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: base, wantMark: "base-team-action", wantVia: report.OriginObject},
		{name: "label and annotation selectors of other objects are not chosen", overlay: "other",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Field: "spec.background"},
			wantFile: base, wantMark: "base-background", wantVia: report.OriginObject},
		{name: "removed rule: the remove without a test", overlay: "remove",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-owner", Field: "spec.rules[check-owner]"},
			wantFile: "overlays/remove/kustomization.yaml", wantMark: "remove-owner", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/1"},
		{name: "removing another rule does not touch a rendered one", overlay: "remove",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: base, wantMark: "base-team-action", wantVia: report.OriginObject},
		{name: "component patch", overlay: "component",
			finding:  report.Finding{Gate: "weaken", Subject: report.ParseSubject(team), Rule: "check-team", Field: teamField},
			wantFile: "components/audit/kustomization.yaml", wantMark: "component-team", wantVia: report.OriginPatch,
			wantPatch: "/spec/rules/0/validate/failureAction"},
	}
	renders := map[string]*render.Result{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := renders[tt.overlay]
			if !ok {
				var err error
				res, err = render.Render(filepath.Join(root, "overlays", tt.overlay), render.Options{Root: root})
				if err != nil {
					t.Fatal(err)
				}
				renders[tt.overlay] = res
			}
			f := tt.finding
			f.Severity, f.Message = report.Error, "m"
			f.File = Object(res, f.Subject).Source // as the gates set it
			id := report.FindingID(f)
			r := &report.Report{Overlays: []report.Overlay{{Path: res.Dir, Findings: []report.Finding{f}}}}
			Findings(r.Overlays[0].Findings, res)
			Locate(openRepo(t, root), r.Overlays[0].Findings)
			got := r.Overlays[0].Findings[0]
			want := markLine(t, tt.wantFile, tt.wantMark)
			if got.File != tt.wantFile || got.Line != want {
				t.Errorf("at %s:%d, want %s:%d", got.File, got.Line, tt.wantFile, want)
			}
			o := got.Origin
			if o == nil || o.Via != tt.wantVia || o.ObjectFile != base || o.ObjectLine != markLine(t, base, "base-object") {
				t.Fatalf("origin %+v, want via %s, object %s", o, tt.wantVia, base)
			}
			if tt.wantPatch != "" && (o.Patch == nil || o.Patch.Path != tt.wantPatch) {
				t.Errorf("patch %+v, want path %s", o.Patch, tt.wantPatch)
			}
			if tt.wantPatch == "" && o.Patch != nil {
				t.Errorf("patch %+v, want none", o.Patch)
			}
			if report.FindingID(got) != id {
				t.Errorf("id moved with the attribution: %s, was %s", report.FindingID(got), id)
			}
		})
	}
}

// Findings not about a rendered object are left alone.
func TestFindingsLeaveOthers(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("testdata", "repo"))
	res, err := render.Render(filepath.Join(root, "overlays", "inline"), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	fs := []report.Finding{
		{Gate: "test", File: "tests/kyverno-test.yaml", Subject: report.ParseSubject("policy require-team"), Rule: "check-team"},
		{Gate: "weaken", File: "base/gone.yaml", Subject: report.ParseSubject("ClusterPolicy gone"), Field: "spec.rules[x]"},
		{Gate: "test", Message: "no tests"},
	}
	want := append([]report.Finding{}, fs...)
	Findings(fs, res)
	for i := range fs {
		if fs[i].File != want[i].File || fs[i].Origin != nil || fs[i].Line != 0 {
			t.Errorf("finding %d changed: %+v", i, fs[i])
		}
	}
}

func TestTouches(t *testing.T) {
	obj := map[string]any{"spec": map[string]any{"rules": []any{
		map[string]any{"name": "a", "validate": map[string]any{"failureAction": "Audit"}},
		map[string]any{"name": "b"},
	}}}
	tests := []struct {
		pointer, op, field string
		hints              map[string]string
		want               bool
	}{
		{"/spec/rules/0/validate/failureAction", "replace", "spec.rules[a].validate.failureAction", nil, true},
		{"/spec/rules/1/validate/failureAction", "replace", "spec.rules[a].validate.failureAction", nil, false},
		{"/spec/rules/1/validate/failureAction", "replace", "spec.rules[a].validate.failureAction", map[string]string{"/spec/rules/1": "a"}, true},
		{"/spec/rules/0", "replace", "spec.rules[a].validate.failureAction", nil, true},
		{"/spec/rules", "replace", "spec.rules[b]", nil, true},
		{"/spec/rules/0/validate", "add", "spec.rules[a].validate.failureAction", nil, true},
		{"/spec/rules/0/match", "add", "spec.rules[a].validate.failureAction", nil, false},
		{"/spec/rules/2", "remove", "spec.rules[gone]", nil, true},
		{"/spec/rules/2", "remove", "spec.rules[a]", nil, false},
		{"/spec/rules/-", "add", "spec.rules[c]", nil, true},
		{"/spec/rules/-", "add", "spec.rules[c]", map[string]string{"/spec/rules/-": "d"}, false},
		{"/spec/rules/0/name", "replace", "spec.rules[a]", nil, true},
		{"/metadata/annotations/a~1b", "add", "metadata.annotations[a/b]", nil, true},
		{"/metadata/annotations/a~1c", "add", "metadata.annotations[a/b]", nil, false},
		{"/spec/background", "replace", "spec.rules[a]", nil, false},
	}
	for _, tt := range tests {
		_, got := touches(patchSegs(obj, tt.pointer, tt.hints, tt.op), fieldSegs(obj, ParseField(tt.field)))
		if got != tt.want {
			t.Errorf("%s %s touches %s = %v, want %v", tt.op, tt.pointer, tt.field, got, tt.want)
		}
	}
}

func TestNameHints(t *testing.T) {
	p := &render.PatchSource{Sets: []render.PatchSet{
		{Op: "replace", Path: "/spec/rules/0/name", Value: "renamed"},
		{Op: "test", Path: "/spec/rules/0/name", Value: "tested"},
		{Op: "add", Path: "/spec/rules/-/name", Value: "x"},
		{Op: "add", Path: "/spec/rules/-/name", Value: "y"},
		{Op: "add", Path: "/metadata/name", Value: "not-an-item"},
	}}
	got := nameHints(p)
	if len(got) != 1 || got["/spec/rules/0"] != "tested" {
		t.Errorf("hints %v, want the test's name for rule 0 only (two appends are ambiguous)", got)
	}
}

func openRepo(t *testing.T, root string) *repofs.Root {
	t.Helper()
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}
