package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// withChunkSize sets ChunkSize for one test.
func withChunkSize(t *testing.T, n int) {
	old := ChunkSize
	ChunkSize = n
	t.Cleanup(func() { ChunkSize = old })
}

// renderBoth renders dir in slices of one entry and whole, and fails
// unless both give the same objects, sources, patches and error.
func renderBoth(t *testing.T, root, dir string) (sliced *Result) {
	t.Helper()
	withChunkSize(t, 0)
	whole, werr := Render(dir, Options{Root: root})
	ChunkSize = 1
	sliced, serr := Render(dir, Options{Root: root})
	if fmt.Sprint(werr) != fmt.Sprint(serr) {
		t.Fatalf("error sliced = %v, whole = %v", serr, werr)
	}
	if werr != nil {
		return nil
	}
	if len(whole.Resources) != len(sliced.Resources) {
		t.Fatalf("%d objects sliced, %d whole", len(sliced.Resources), len(whole.Resources))
	}
	for i, w := range whole.Resources {
		s := sliced.Resources[i]
		if !bytes.Equal(w.YAML, s.YAML) || w.Source != s.Source || !reflect.DeepEqual(w.Patches, s.Patches) {
			t.Fatalf("object %d differs:\nsliced %s (from %s, %v)\nwhole  %s (from %s, %v)", i, s.YAML, s.Source, s.Patches, w.YAML, w.Source, w.Patches)
		}
	}
	if !reflect.DeepEqual(whole.Notes, sliced.Notes) {
		t.Fatalf("notes sliced %v, whole %v", sliced.Notes, whole.Notes)
	}
	return sliced
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func cpol(name string) string {
	return "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: " + name +
		"\nspec:\n  validationFailureAction: Audit\n  rules:\n  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n    validate:\n      message: m\n      pattern:\n        metadata:\n          labels:\n            app: \"?*\"\n"
}

const baseFiles = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- p/zeta.yaml
- p/alpha.yaml
- p/ns.yaml
- p/cm.yaml
- p/pol.yaml
- p/exc.yaml
- p/mid.yaml
- folder
`

// The base of most cases: kinds the legacy order ranks differently, a
// namespaced policy, and a folder with its own name prefix and patch.
func baseTree(extra map[string]string) map[string]string {
	files := map[string]string{
		"base/kustomization.yaml":        baseFiles,
		"base/p/zeta.yaml":               cpol("zeta"),
		"base/p/alpha.yaml":              cpol("alpha"),
		"base/p/mid.yaml":                cpol("mid") + "---\n" + cpol("mid-two"),
		"base/p/ns.yaml":                 "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kyverno\n",
		"base/p/cm.yaml":                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: kyverno\ndata:\n  a: b\n",
		"base/p/pol.yaml":                "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata:\n  name: local\n  namespace: team\nspec:\n  rules: []\n",
		"base/p/exc.yaml":                "apiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata:\n  name: allow\n  namespace: kyverno\nspec:\n  exceptions: []\n  match: {}\n",
		"base/folder/kustomization.yaml": "namePrefix: team-\nresources: [a.yaml]\npatches:\n- patch: |\n    - op: add\n      path: /metadata/labels\n      value: {team: a}\n  target: {kind: ClusterPolicy}\n",
		"base/folder/a.yaml":             cpol("folder-policy"),
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

const overlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
buildMetadata: [originAnnotations]
commonAnnotations:
  example.com/env: prod
commonLabels:
  tier: policies
resources:
- ../base
- extra.yaml
patches:
- patch: |
    - op: replace
      path: /spec/validationFailureAction
      value: Enforce
  target:
    group: kyverno.io
    kind: ClusterPolicy
- path: smp.yaml
  target:
    group: kyverno.io
    version: v1
    kind: ClusterPolicy
    name: "a.*"
`

const smp = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: any\nspec:\n  background: false\n"

func TestSlicedBuildIsTheWholeBuild(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		dir    string
		sliced bool // built in slices, not fallen back to one build
		fails  bool // the whole build fails, with errHas in its error
		errHas string
	}{
		{name: "overlay over a long base", dir: "overlay", sliced: true, files: baseTree(map[string]string{
			"overlay/kustomization.yaml": overlay, "overlay/smp.yaml": smp, "overlay/extra.yaml": cpol("extra")})},
		{name: "the long base itself", dir: "base", sliced: true, files: baseTree(nil)},
		{name: "fifo order", dir: "overlay", sliced: true, files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\nsortOptions: {order: fifo}\n"})},
		{name: "legacy order with own kinds", dir: "overlay", sliced: true, files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\nsortOptions:\n  order: legacy\n  legacySortOptions:\n    orderFirst: [ClusterPolicy, Policy]\n    orderLast: [Namespace, ClusterPolicy]\n"})},
		{name: "the same ID in two slices", dir: "base", fails: true, errHas: "already registered id", files: baseTree(map[string]string{
			"base/p/ns.yaml": cpol("alpha")})},
		{name: "no namespace and default are one ID", dir: "base", fails: true, errHas: "already registered id", files: baseTree(map[string]string{
			"base/p/ns.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\n",
			"base/p/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"})},
		{name: "a patch without target needs its one object", dir: "overlay", files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\npatches:\n- path: smp.yaml\n", "overlay/smp.yaml": strings.Replace(smp, "any", "zeta", 1)})},
		{name: "a kind the name reference transformer reads", dir: "base", files: baseTree(map[string]string{
			"base/p/ns.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n      containers: []\n"})},
		{name: "vars in a folder reach the parent", dir: "base", files: baseTree(map[string]string{
			"base/folder/kustomization.yaml": "resources: [a.yaml]\nvars:\n- name: POLICY\n  objref: {apiVersion: kyverno.io/v1, kind: ClusterPolicy, name: folder-policy}\n"})},
		{name: "a patch that renames", dir: "overlay", files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\npatches:\n- patch: '[{\"op\": \"replace\", \"path\": \"/metadata/name\", \"value\": \"x\"}]'\n  target: {kind: Namespace}\n"})},
		{name: "a patch that changes apiVersion", dir: "overlay", files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\npatches:\n- path: smp.yaml\n  target: {kind: ClusterPolicy}\n", "overlay/smp.yaml": smp})},
		{name: "a namespace transformer", dir: "overlay", files: baseTree(map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\nnamespace: other\n"})},
		{name: "a slice that fails alone", dir: "base", fails: true, errHas: "missing.yaml", files: baseTree(map[string]string{
			"base/folder/kustomization.yaml": "resources: [missing.yaml]\n"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			res := renderBoth(t, root, filepath.Join(root, tt.dir))
			if res == nil {
				if _, err := Render(filepath.Join(root, tt.dir), Options{Root: root}); !tt.fails || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("render failed: %v", err)
				}
				return
			}
			if tt.fails {
				t.Fatalf("want the error %q", tt.errHas)
			}
			if got := res.builds > 1; got != tt.sliced {
				t.Errorf("built in slices = %v (%d builds), want %v", got, res.builds, tt.sliced)
			}
		})
	}
}

// TestSlicedFixturesAndExample: every overlay of the fixtures and the
// example repository renders the same in slices.
func TestSlicedFixturesAndExample(t *testing.T) {
	dirs := map[string]string{}
	for _, d := range []string{"base", "current", "legacy", "components/audit-off"} {
		dirs[repoPath(t, d)] = repoPath(t)
	}
	example, _ := filepath.Abs("../examples/policy-repo")
	for _, d := range []string{"development", "staging", "production"} {
		dirs[filepath.Join(example, "overlays", d)] = example
	}
	for dir, root := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) { renderBoth(t, root, dir) })
	}
}
