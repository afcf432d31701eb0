package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

func repoPath(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"testdata", "repo"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func find(res *Result, kind, name string) *Resource {
	for _, r := range res.Resources {
		if r.Kind == kind && r.Name == name {
			return r
		}
	}
	return nil
}

func TestRenderAcceptsRealKustomizations(t *testing.T) {
	tests := []struct {
		dir        string
		wantIDs    []string // in output order
		wantLabel  string
		wantAction string // require-labels rule 0
		wantNotes  int
	}{
		{dir: "legacy", wantIDs: []string{"ConfigMap kyverno/settings", "ClusterPolicy require-labels", "PolicyException kyverno/allow-system"},
			wantLabel: "legacy", wantAction: "Audit", wantNotes: 4}, // 3 deprecated fields + the stripped namespace
		{dir: "current", wantIDs: []string{"ConfigMap kyverno/settings", "ClusterPolicy require-labels", "PolicyException kyverno/allow-system"},
			wantLabel: "current", wantAction: "Enforce", wantNotes: 1},
		{dir: "base", wantIDs: []string{"ConfigMap settings", "ClusterPolicy require-labels", "PolicyException allow-system"},
			wantAction: "Audit"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			res, err := Render(repoPath(t, tt.dir), Options{Root: repoPath(t)})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range res.Resources {
				ids = append(ids, r.ID())
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("resources = %v, want %v", ids, tt.wantIDs)
			}
			pol := find(res, "ClusterPolicy", "require-labels")
			if pol.Source != "base/require-labels.yaml" {
				t.Errorf("Source = %q, want base/require-labels.yaml", pol.Source)
			}
			if bytes.Contains(pol.YAML, []byte("config.kubernetes.io/origin")) {
				t.Errorf("origin annotation leaked into the output:\n%s", pol.YAML)
			}
			if pol.Namespace != "" || bytes.Contains(pol.YAML, []byte("namespace:")) {
				t.Errorf("ClusterPolicy keeps a namespace:\n%s", pol.YAML)
			}
			labels, _ := pol.Object["metadata"].(map[string]any)["labels"].(map[string]any)
			if tt.wantLabel != "" && labels["env"] != tt.wantLabel {
				t.Errorf("label env = %v, want %s", labels["env"], tt.wantLabel)
			}
			rule := pol.Object["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)
			if got := rule["validate"].(map[string]any)["failureAction"]; got != tt.wantAction {
				t.Errorf("failureAction = %v, want %s", got, tt.wantAction)
			}
			if len(res.Notes) != tt.wantNotes {
				t.Errorf("notes = %q, want %d", res.Notes, tt.wantNotes)
			}
		})
	}
}

func TestRenderCurrentFieldsApplyComponentsAndReplacements(t *testing.T) {
	res, err := Render(repoPath(t, "current"), Options{Root: repoPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	pol := find(res, "ClusterPolicy", "require-labels")
	spec := pol.Object["spec"].(map[string]any)
	if spec["background"] != false {
		t.Errorf("component patch not applied: background = %v", spec["background"])
	}
	if got := pol.Object["metadata"].(map[string]any)["annotations"].(map[string]any)["answer"]; got != "42" {
		t.Errorf("replacement not applied: answer = %v", got)
	}
}

func TestRenderPlainDirectory(t *testing.T) {
	res, err := Render(repoPath(t, "plain"), Options{Root: repoPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range res.Resources {
		ids = append(ids, r.ID())
	}
	want := "ConfigMap from-json,ClusterPolicy plain-policy,ConfigMap second-doc"
	if strings.Join(ids, ",") != want {
		t.Errorf("resources = %v, want %s", ids, want)
	}
	if len(res.Notes) != 2 { // the stripped namespace and the skipped Test
		t.Errorf("notes = %q", res.Notes)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 5; i++ {
		res, err := Render(repoPath(t, "current"), Options{Root: repoPath(t)})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, r := range res.Resources {
			out = append(append(out, "---\n"...), r.YAML...)
		}
		if i == 0 {
			first = out
		} else if !bytes.Equal(first, out) {
			t.Fatalf("run %d differs:\n%s\n---- vs ----\n%s", i, first, out)
		}
	}
}

// writeRepo lays out files (path -> content) in a fresh directory.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const policy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: p
spec:
  rules: []
`

func TestRenderRefusesUnsafeInput(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		setup func(t *testing.T, root string) // extra layout, e.g. symlinks
		dir   string
		opts  Options
		want  string // substring of the error
	}{
		{name: "parent outside root", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [../../secret.yaml]\n"},
			want:  "outside the repository root"},
		{name: "absolute path outside root", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [/etc/passwd]\n"},
			want:  "outside the repository root"},
		{name: "patch file outside root", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\npatches:\n- path: ../../x.yaml\n", "app/p.yaml": policy},
			want:  "outside the repository root"},
		{name: "symlink escaping root", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [link.yaml]\n"},
			setup: func(t *testing.T, root string) {
				target := filepath.Join(t.TempDir(), "secret.yaml")
				os.WriteFile(target, []byte(policy), 0o644)
				if err := os.Symlink(target, filepath.Join(root, "app", "link.yaml")); err != nil {
					t.Fatal(err)
				}
			},
			want: "outside the repository root"},
		{name: "symlinked directory escaping root", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [../linked]\n"},
			setup: func(t *testing.T, root string) {
				outside := t.TempDir()
				os.WriteFile(filepath.Join(outside, "kustomization.yaml"), []byte("resources: []\n"), 0o644)
				if err := os.Symlink(outside, filepath.Join(root, "linked")); err != nil {
					t.Fatal(err)
				}
			},
			want: "outside the repository root"},
		{name: "http resource", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [https://example.com/policy.yaml]\n"},
			want:  "is remote"},
		{name: "git remote base", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources:\n- github.com/kyverno/policies//pod-security?ref=main\n"},
			want:  "is remote"},
		{name: "git ssh base in nested base", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [../base]\n",
				"base/kustomization.yaml": "bases: [git@github.com:org/repo.git//base]\n"},
			want: "is remote"},
		{name: "remote patch file", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\npatchesStrategicMerge: [https://example.com/p.yaml]\n", "app/p.yaml": policy},
			want:  "is remote"},
		{name: "exec KRM function", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\ngenerators: [fn.yaml]\n", "app/p.yaml": policy,
				"app/fn.yaml": "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: g\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n"},
			want: "never run"},
		{name: "containerized KRM function", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\ntransformers: [fn.yaml]\n", "app/p.yaml": policy,
				"app/fn.yaml": "apiVersion: example.com/v1\nkind: T\nmetadata:\n  name: t\n  annotations:\n    config.kubernetes.io/function: |\n      container:\n        image: evil/image\n"},
			want: "never run"},
		{name: "legacy plugin", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\ngenerators: [plugin.yaml]\n", "app/p.yaml": policy,
				"app/plugin.yaml": "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: x\n"},
			want: "never run"},
		{name: "helm disabled", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "helmCharts:\n- name: kyverno\n  repo: https://kyverno.github.io/kyverno\n"},
			want:  "enable-helm=true"},
		{name: "helm generator disabled", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "generators: [helm.yaml]\n",
				"app/helm.yaml": "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: x\nchartName: kyverno\n"},
			want: "enable-helm=true"},
		{name: "dir outside root", dir: "../", files: map[string]string{"k.yaml": policy},
			want: "inside the repository root"},
		{name: "fifo in repo", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [pipe.yaml]\n"},
			setup: func(t *testing.T, root string) {
				if err := mkfifo(filepath.Join(root, "app", "pipe.yaml")); err != nil {
					t.Skip("no mkfifo:", err)
				}
			},
			want: "not a regular file"},
		{name: "oversized file", dir: "app", opts: Options{MaxFileBytes: 64},
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\n", "app/p.yaml": policy},
			want:  "app/p.yaml is over the 64-byte limit"},
		{name: "upper-case scheme resource", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [HTTP://127.0.0.1:9/x.yaml]\n"},
			want:  "is remote"},
		{name: "upper-case scheme patch", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\npatches:\n- path: HTTPS://127.0.0.1:9/p.yaml\n", "app/p.yaml": policy},
			want:  "is remote"},
		{name: "file URL base", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [file:///etc]\n"},
			want:  "outside the repository"},
		{name: "inline generator with remote file", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata:\n    name: x\n  files:\n  - k=http://127.0.0.1:9/x\n"},
			want:  "remote \"http://127.0.0.1:9/x\""},
		{name: "generator config file with remote env", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "generators: [gen.yaml]\n",
				"app/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: x\nenvs: [Https://127.0.0.1:9/e.env]\n"},
			want: "app/gen.yaml: generators config names remote"},
		{name: "inline transformer with remote patch path", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [p.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata:\n    name: x\n  path: http://127.0.0.1:9/p.yaml\n  target: {kind: ClusterPolicy}\n", "app/p.yaml": policy},
			want:  "transformers config names remote"},
		{name: "helm chart pulled from a repo", dir: "app", opts: Options{EnableHelm: true},
			files: map[string]string{"app/kustomization.yaml": "helmCharts:\n- name: kyverno\n  repo: https://kyverno.github.io/kyverno\n"},
			want:  "would be pulled from https://kyverno.github.io/kyverno"},
		{name: "helm values file outside", dir: "app", opts: Options{EnableHelm: true},
			files: map[string]string{"app/kustomization.yaml": "helmCharts:\n- name: c\n  valuesFile: ../../secret.yaml\n", "app/charts/c/Chart.yaml": "name: c\n"},
			want:  "outside the repository root"},
		{name: "helm chart home outside", dir: "app", opts: Options{EnableHelm: true},
			files: map[string]string{"app/kustomization.yaml": "helmGlobals: {chartHome: /etc}\nhelmCharts:\n- name: c\n"},
			want:  "outside the repository root"},
		{name: "symlink loop", dir: "app",
			files: map[string]string{"app/kustomization.yaml": "resources: [a.yaml]\n"},
			setup: func(t *testing.T, root string) {
				os.Symlink("b.yaml", filepath.Join(root, "app", "a.yaml"))
				os.Symlink("a.yaml", filepath.Join(root, "app", "b.yaml"))
			},
			want: "too many levels of symbolic links"},
		{name: "invalid yaml in plain dir", dir: "app",
			files: map[string]string{"app/bad.yaml": "a: [unclosed\n"},
			want:  "bad.yaml: not valid YAML"},
		{name: "non-object in plain dir", dir: "app",
			files: map[string]string{"app/list.yaml": "- a\n- b\n"},
			want:  "app/list.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeRepo(t, tt.files)
			if tt.setup != nil {
				tt.setup(t, root)
			}
			opts := tt.opts
			opts.Root = root
			res, err := Render(filepath.Join(root, tt.dir), opts)
			if err == nil {
				t.Fatalf("rendered %d resources, want error containing %q", len(res.Resources), tt.want)
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("error is %T, want *render.Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRenderOutsideFixtureIsNeverRead(t *testing.T) {
	_, err := Render(repoPath(t, "outside-ref"), Options{Root: repoPath(t)})
	if err == nil || !strings.Contains(err.Error(), "outside.yaml is outside the repository root") {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderAllowsSymlinksInsideRoot(t *testing.T) {
	root := writeRepo(t, map[string]string{"base/p.yaml": policy, "app/kustomization.yaml": "resources: [p.yaml]\n"})
	if err := os.Symlink(filepath.Join(root, "base", "p.yaml"), filepath.Join(root, "app", "p.yaml")); err != nil {
		t.Fatal(err)
	}
	res, err := Render(filepath.Join(root, "app"), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) != 1 {
		t.Fatalf("got %d resources", len(res.Resources))
	}
}

func TestIsRemote(t *testing.T) {
	for ref, want := range map[string]bool{
		"../../base":                       false,
		"base/validation":                  false,
		"policy.yaml":                      false,
		"https://example.com/x.yaml":       true,
		"github.com/org/repo//dir?ref=v1":  true,
		"git@github.com:org/repo.git//dir": true,
		"ssh://git@example.com/org/repo":   true,
	} {
		if got := isRemote(ref); got != want {
			t.Errorf("isRemote(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestRenderKeepsOriginAnnotationsWhenAsked(t *testing.T) {
	root := writeRepo(t, map[string]string{"base/p.yaml": policy, "app/kustomization.yaml": "resources: [../base/p.yaml]\nbuildMetadata: [originAnnotations]\n"})
	res, err := Render(filepath.Join(root, "app"), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Resources[0]
	if r.Source != "base/p.yaml" || !bytes.Contains(r.YAML, []byte("config.kubernetes.io/origin")) {
		t.Errorf("Source = %q, YAML:\n%s", r.Source, r.YAML)
	}
}

func TestRenderRefusesYAMLBombs(t *testing.T) {
	bomb := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		bomb += fmt.Sprintf("  %s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", name, name, prev, prev, prev, prev, prev, prev, prev, prev, prev)
		prev = name
	}
	for name, files := range map[string]map[string]string{
		"kustomization": {"app/kustomization.yaml": "resources: [bomb.yaml]\n", "app/bomb.yaml": bomb},
		"plain dir":     {"app/bomb.yaml": bomb},
	} {
		t.Run(name, func(t *testing.T) {
			root := writeRepo(t, files)
			_, err := Render(filepath.Join(root, "app"), Options{Root: root})
			if err == nil || !strings.Contains(err.Error(), "app/bomb.yaml") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v; want a one-line refusal naming the file", err)
			}
		})
	}
}

// The YAML encoder prints a folded block with more-indented lines with an
// extra blank line. The rendering must be what is printed, or a lock file
// of an unchanged overlay would differ from the overlay it was made from.
func TestRenderedObjectIsWhatIsPrinted(t *testing.T) {
	root := writeRepo(t, map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml": `apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata:
  name: folded
spec:
  mutations:
    - patchType: ApplyConfiguration
      applyConfiguration:
        expression: >-
          Object{
            spec: Object.spec{
              x: 1
            }
          }
`,
	})
	res, err := Render(filepath.Join(root, "app"), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Resources {
		printed, err := kyaml.Parse(string(r.YAML))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := printed.Map()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(obj, r.Object) {
			t.Errorf("%s: Object is not the printed YAML read back:\nprinted:\n%s\nobject: %v", r.ID(), r.YAML, r.Object)
		}
	}
}

// kyverno-gate's own configuration at the root of a plain folder is not a
// manifest (generate at the repository root).
func TestRenderPlainDirSkipsDotFiles(t *testing.T) {
	root := writeRepo(t, map[string]string{".kyverno-gate.yaml": "apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n",
		".pre-commit-config.yaml": "repos: []\n", "p.yaml": policy})
	res, err := Render(root, Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) != 1 || len(res.Notes) != 2 {
		t.Errorf("%d resources, notes %q", len(res.Resources), res.Notes)
	}
}
