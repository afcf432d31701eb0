package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// describe renders a resource's patches on one line each:
// "kustomization field[entry]@entryLine file:line type op path@line ...".
func describe(r *Resource) []string {
	var out []string
	for _, p := range r.Patches {
		s := fmt.Sprintf("%s %s[%d]@%d %s:%d %s", p.Kustomization, p.Field, p.Entry, p.EntryLine, p.File, p.Line, p.Type)
		for _, set := range p.Sets {
			s += fmt.Sprintf(" %s %s@%d", set.Op, set.Path, set.Line)
		}
		out = append(out, s)
	}
	return out
}

func TestPatchesOfFixtures(t *testing.T) {
	tests := []struct {
		dir, kind, name string
		want            []string
	}{
		// A component's patches apply before the kustomization's own.
		{"current", "ClusterPolicy", "require-labels", []string{
			"components/audit-off/kustomization.yaml patches[0]@4 components/audit-off/kustomization.yaml:4 json6902 add /spec/background@9",
			"current/kustomization.yaml patches[0]@12 current/kustomization.yaml:12 json6902 replace /spec/rules/0/validate/failureAction@18",
		}},
		{"current", "ConfigMap", "settings", nil},
		// A strategic merge document without target, on an object that
		// the overlay's namespace moved since.
		{"legacy", "ClusterPolicy", "require-labels", []string{
			"legacy/kustomization.yaml patchesStrategicMerge[0]@8 legacy/enforce.yaml:4 strategicMerge merge /spec/validationFailureAction@6",
		}},
		{"base", "ClusterPolicy", "require-labels", nil},
		{"plain", "ClusterPolicy", "require-labels", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dir+"/"+tt.name, func(t *testing.T) {
			res, err := Render(repoPath(t, tt.dir), Options{Root: repoPath(t)})
			if err != nil {
				t.Fatal(err)
			}
			r := find(res, tt.kind, tt.name)
			if r == nil {
				t.Skipf("no %s %s in %s", tt.kind, tt.name, tt.dir)
			}
			if got := describe(r); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("patches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

const patchPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: %s
  labels:
    tier: %s
  annotations:
    team: %s
spec:
  rules:
    - name: r
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        pattern:
          metadata:
            labels:
              team: "?*"
`

// Target selection as kustomize does it: each case is a patches entry (or
// legacy field) and the policies (gold-one, silver-two) it must reach.
func TestPatchTargets(t *testing.T) {
	const op = `- op: add
        path: /metadata/annotations/x
        value: "y"`
	tests := []struct {
		name, kustomization string
		files               map[string]string
		want                []string // policies with a patch
		wantSets            string   // the sets of gold-one's first patch, when given
	}{
		{name: "regex name", want: []string{"gold-one"},
			kustomization: "patches:\n  - target:\n      kind: ClusterPolicy\n      name: gold-.*\n    patch: |-\n      " + op + "\n"},
		{name: "name must match whole", want: nil,
			kustomization: "patches:\n  - target:\n      name: gold\n    patch: |-\n      " + op + "\n"},
		{name: "label selector", want: []string{"silver-two"},
			kustomization: "patches:\n  - target:\n      labelSelector: tier=silver\n    patch: |-\n      " + op + "\n"},
		{name: "annotation selector", want: []string{"gold-one"},
			kustomization: "patches:\n  - target:\n      annotationSelector: team in (a)\n    patch: |-\n      " + op + "\n"},
		{name: "group and version", want: []string{"gold-one", "silver-two"},
			kustomization: "patches:\n  - target:\n      group: kyverno.io\n      version: v1\n    patch: |-\n      " + op + "\n"},
		{name: "other version", want: nil,
			kustomization: "patches:\n  - target:\n      group: kyverno.io\n      version: v2beta1\n    patch: |-\n      " + op + "\n"},
		{name: "other kind", want: nil,
			kustomization: "patches:\n  - target:\n      kind: Policy\n    patch: |-\n      " + op + "\n"},
		{name: "namespace set by the overlay", want: []string{"gold-one", "silver-two"},
			kustomization: "namespace: kyverno\npatches:\n  - target:\n      namespace: kyverno\n    patch: |-\n      " + op + "\n"},
		{name: "one-line JSON patch", want: []string{"gold-one"}, wantSets: "add /spec/background@5",
			kustomization: "patches:\n  - target:\n      name: gold-one\n    patch: '[{\"op\": \"add\", \"path\": \"/spec/background\", \"value\": false}]'\n"},
		{name: "multi-document strategic merge file", want: []string{"gold-one", "silver-two"}, wantSets: "merge /spec/background@13",
			kustomization: "patches:\n  - path: smp.yaml\n",
			files: map[string]string{"smp.yaml": "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: silver-two\nspec:\n  background: false\n" +
				"---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: gold-one\nspec:\n  background: false\n"}},
		{name: "inline legacy strategic merge", want: []string{"gold-one"},
			wantSets: "replace /spec/rules@9 merge /spec/rules/0/name@10 delete /spec/background@11",
			kustomization: "patchesStrategicMerge:\n  - |-\n    apiVersion: kyverno.io/v1\n    kind: ClusterPolicy\n    metadata:\n      name: gold-one\n" +
				"    spec:\n      rules:\n        - name: r\n      background: null\n"},
		{name: "strategic merge with a target", want: []string{"gold-one", "silver-two"},
			kustomization: "patches:\n  - target:\n      kind: ClusterPolicy\n    patch: |-\n      kind: ClusterPolicy\n      metadata:\n        name: any\n      spec:\n        background: false\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{
				"base/kustomization.yaml":    "resources: [gold.yaml, silver.yaml]\n",
				"base/gold.yaml":             fmt.Sprintf(patchPolicy, "gold-one", "gold", "a"),
				"base/silver.yaml":           fmt.Sprintf(patchPolicy, "silver-two", "silver", "b"),
				"overlay/kustomization.yaml": "resources: [../base]\n" + tt.kustomization,
			}
			for k, v := range tt.files {
				files["overlay/"+k] = v
			}
			for p, c := range files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Render(filepath.Join(root, "overlay"), Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Resources {
				if len(r.Patches) > 0 {
					got = append(got, r.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("patched %v, want %v", got, tt.want)
			}
			if tt.wantSets != "" {
				r := find(res, "ClusterPolicy", "gold-one")
				var sets []string
				if len(r.Patches) > 0 {
					for _, s := range r.Patches[0].Sets {
						sets = append(sets, fmt.Sprintf("%s %s@%d", s.Op, s.Path, s.Line))
					}
				}
				if strings.Join(sets, " ") != tt.wantSets {
					t.Errorf("sets %q, want %q", strings.Join(sets, " "), tt.wantSets)
				}
			}
		})
	}
}
