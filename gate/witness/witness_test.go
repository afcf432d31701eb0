package witness_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

func TestMain(m *testing.M) {
	kyverno.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// exampleRepo is examples/policy-repo.
func exampleRepo(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", "policy-repo")
}

// The production overlay's patch of require-labels, rule check-pod-labels.
const podLabelsPatch = `      - op: replace
        path: /spec/rules/0/validate/failureAction
        value: Enforce
`

// patchPodRule adds JSON patch operations after the production overlay's
// patch of rule check-pod-labels.
func patchPodRule(ops string) func(t *testing.T, root string) {
	return func(t *testing.T, root string) {
		repotest.At(t, root).Edit("overlays/production/kustomization.yaml", podLabelsPatch, podLabelsPatch+ops)
	}
}

const appsException = `---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: apps-unlabelled
  namespace: kyverno
spec:
  exceptions:
    - policyName: require-labels
      ruleNames:
        - check-pod-labels
  match:
    any:
      - resources:
          kinds:
            - Pod
          namespaces:
            - apps
`

// A repository with one ValidatingPolicy and its test suite.
const vpolRepoPolicy = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: require-team
spec:
  validationActions:
    - Deny
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods]
  validations:
    - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
      message: Pods must have a team label.
`

const vpolRepoTest = `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-team
policies:
  - ../../overlays/prod/require-team.yaml
resources:
  - resource.yaml
results:
  - policy: require-team
    kind: Pod
    resources:
      - apps/labelled
    result: pass
  - policy: require-team
    kind: Pod
    resources:
      - apps/unlabelled
    result: fail
`

const vpolRepoResources = `apiVersion: v1
kind: Pod
metadata:
  name: labelled
  namespace: apps
  labels:
    team: payments
spec:
  containers:
    - name: app
      image: registry.example.com/app:1
---
apiVersion: v1
kind: Pod
metadata:
  name: unlabelled
  namespace: apps
spec:
  containers:
    - name: app
      image: registry.example.com/app:1
`

func vpolRepo(t *testing.T, root string) {
	repotest.At(t, root).Write("overlays/prod/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - require-team.yaml\n")
	repotest.At(t, root).Write("overlays/prod/require-team.yaml", vpolRepoPolicy)
	repotest.At(t, root).Write("tests/require-team/kyverno-test.yaml", vpolRepoTest)
	repotest.At(t, root).Write("tests/require-team/resource.yaml", vpolRepoResources)
}

// want is one expected finding of the weaken gate.
type want struct {
	object  string // substring of Finding.Object
	rule    string // Finding.Rule
	witness string // "" for none, else the witness as printed
	proven  bool   // the message says "proven by witness"
}

func TestWitnesses(t *testing.T) {
	cases := []struct {
		name    string
		repo    func(t *testing.T, root string) // builds the repository; nil copies the example repo
		overlay string
		edit    func(t *testing.T, root string) // turns the baseline into the head
		samples []string
		want    []want
		// noErrors: the change must not be rejected at all.
		noErrors bool
	}{
		{
			name:    "enforce to audit in production",
			overlay: "overlays/production",
			edit: func(t *testing.T, root string) {
				repotest.At(t, root).Edit("overlays/production/kustomization.yaml", podLabelsPatch, strings.Replace(podLabelsPatch, "Enforce", "Audit", 1))
			},
			want: []want{{object: "require-labels", rule: "check-pod-labels", witness: "tests/require-labels/resource.yaml (Pod apps/pod-no-team)"}},
		},
		{
			name:    "exclude of namespace apps added",
			overlay: "overlays/production",
			edit: patchPodRule(`      - op: add
        path: /spec/rules/0/exclude
        value:
          any:
            - resources:
                namespaces:
                  - apps
`),
			want: []want{{object: "require-labels", rule: "check-pod-labels", witness: "tests/require-labels/resource.yaml (Pod apps/pod-no-team)"}},
		},
		{
			name:    "new exception for namespace apps",
			overlay: "overlays/production",
			edit: func(t *testing.T, root string) {
				p := filepath.Join(root, "overlays/production/policy-exceptions.yaml")
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				repotest.At(t, root).Write("overlays/production/policy-exceptions.yaml", string(data)+appsException)
			},
			want: []want{{object: "kyverno/apps-unlabelled", witness: "tests/require-labels/resource.yaml (Pod apps/pod-no-team)"}},
		},
		{
			name:    "pattern loosened: unknown proven weaker",
			overlay: "overlays/production",
			edit: patchPodRule(`      - op: remove
        path: /spec/rules/0/validate/pattern/metadata/labels/team
`),
			want: []want{{object: "require-labels", rule: "check-pod-labels", witness: "tests/require-labels/resource.yaml (Pod apps/pod-no-team)", proven: true}},
		},
		{
			name:    "pattern tightened: unknown stays unknown",
			overlay: "overlays/production",
			edit: patchPodRule(`      - op: add
        path: /spec/rules/0/validate/pattern/metadata/labels/owner
        value: "?*"
`),
			want: []want{{object: "require-labels", rule: "check-pod-labels"}},
		},
		{
			name:    "stricter: registries enforced in production",
			overlay: "overlays/production",
			edit: func(t *testing.T, root string) {
				repotest.At(t, root).Edit("overlays/production/kustomization.yaml", "  # Strategic merge patch for metadata only", `  - target:
      group: kyverno.io
      version: v1
      kind: ClusterPolicy
      name: restrict-image-registries
    patch: |-
      - op: replace
        path: /spec/rules/0/validate/failureAction
        value: Enforce
  # Strategic merge patch for metadata only`)
			},
			noErrors: true,
		},
		{
			name:    "exclude of namespace web: witness from the samples",
			overlay: "overlays/production",
			edit: func(t *testing.T, root string) {
				patchPodRule(`      - op: add
        path: /spec/rules/0/exclude
        value:
          any:
            - resources:
                namespaces:
                  - web
`)(t, root)
				repotest.At(t, root).Write("samples/web/pods.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: pod-web-no-team
  namespace: web
  labels:
    app.kubernetes.io/name: frontend
spec:
  containers:
    - name: frontend
      image: registry.example.com/web/frontend:1.0.0
`)
				repotest.At(t, root).Write("samples/broken.yaml", "kind: [unterminated\n")
				repotest.At(t, root).Write("samples/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [web/pods.yaml]\n")
			},
			samples: []string{"samples", "../outside", "missing"},
			want:    []want{{object: "require-labels", rule: "check-pod-labels", witness: "samples/web/pods.yaml (Pod web/pod-web-no-team)"}},
		},
		{
			name:    "exclude of namespace web without samples: no witness",
			overlay: "overlays/production",
			edit: patchPodRule(`      - op: add
        path: /spec/rules/0/exclude
        value:
          any:
            - resources:
                namespaces:
                  - web
`),
			want: []want{{object: "require-labels", rule: "check-pod-labels"}},
		},
		{
			name:    "ValidatingPolicy loses Deny",
			repo:    vpolRepo,
			overlay: "overlays/prod",
			edit: func(t *testing.T, root string) {
				repotest.At(t, root).Edit("overlays/prod/require-team.yaml", "    - Deny", "    - Audit")
			},
			want: []want{{object: "require-team", witness: "tests/require-team/resource.yaml (Pod apps/unlabelled)"}},
		},
		{
			name:    "ValidatingPolicy expression edited: unknown proven weaker",
			repo:    vpolRepo,
			overlay: "overlays/prod",
			edit: func(t *testing.T, root string) {
				repotest.At(t, root).Edit("overlays/prod/require-team.yaml", `has(object.metadata.labels) && 'team' in object.metadata.labels`, `object.metadata.namespace == 'apps' || (has(object.metadata.labels) && 'team' in object.metadata.labels)`)
			},
			want: []want{{object: "require-team", witness: "tests/require-team/resource.yaml (Pod apps/unlabelled)", proven: true}},
		},
		{
			name:    "new CEL exception",
			repo:    vpolRepo,
			overlay: "overlays/prod",
			edit: func(t *testing.T, root string) {
				repotest.At(t, root).Write("overlays/prod/exception.yaml", `apiVersion: policies.kyverno.io/v1
kind: PolicyException
metadata:
  name: apps-without-team
  namespace: kyverno
spec:
  policyRefs:
    - name: require-team
      kind: ValidatingPolicy
  matchConditions:
    - name: apps
      expression: "object.metadata.namespace == 'apps'"
`)
				repotest.At(t, root).Edit("overlays/prod/kustomization.yaml", "  - require-team.yaml\n", "  - require-team.yaml\n  - exception.yaml\n")
			},
			want: []want{{object: "kyverno/apps-without-team", witness: "tests/require-team/resource.yaml (Pod apps/unlabelled)"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.repo != nil {
				tc.repo(t, root)
			} else {
				repotest.CopyTree(t, exampleRepo(t), root)
			}
			opts := render.Options{Root: root}
			base, err := render.Render(filepath.Join(root, tc.overlay), opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(t, root)
			head, err := render.Render(filepath.Join(root, tc.overlay), opts)
			if err != nil {
				t.Fatal(err)
			}
			s, err := settings.Resolve(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var logs []string
			in := &gate.Input{Root: root, Dir: head.Dir, Rendered: head, Baseline: base, BaselineName: "git:main", Settings: s,
				Log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
			g := weaken.Gate{Samples: tc.samples}
			findings := evaluate(t, g, in).Problems()
			defer func() { // shown with -v or on failure
				for _, f := range findings {
					t.Logf("finding: %s %s [%s] %s", f.Severity, f.Subject, f.Rule, f.Message)
				}
				for _, l := range logs {
					t.Logf("log: %s", l)
				}
			}()
			var errs []report.Finding
			for _, f := range findings {
				if f.Severity == report.Error {
					errs = append(errs, f)
				}
			}
			if tc.noErrors {
				if len(errs) > 0 {
					t.Errorf("want no rejection, got %d error findings", len(errs))
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("want findings, got none")
			}
			for _, w := range tc.want {
				var f *report.Finding
				for i := range errs {
					if strings.Contains(errs[i].Subject.String(), w.object) && errs[i].Rule == w.rule {
						f = &errs[i]
						break
					}
				}
				if f == nil {
					t.Errorf("no finding for %s rule %q", w.object, w.rule)
					continue
				}
				admits := "now admits "
				switch {
				case w.witness == "" && strings.Contains(f.Message, admits):
					t.Errorf("want no witness, got %q", f.Message)
				case w.witness != "" && !strings.Contains(f.Message, "now admits "+w.witness+", which the baseline denied"):
					t.Errorf("want witness %s, got %q", w.witness, f.Message)
				}
				if w.witness != "" {
					id := w.witness[strings.Index(w.witness, "(")+1 : len(w.witness)-1]
					if f.Resource != id {
						t.Errorf("Resource = %q, want %q", f.Resource, id)
					}
				}
				if got := strings.Contains(f.Message, "proven by witness"); got != w.proven {
					t.Errorf("proven = %v, want %v: %q", got, w.proven, f.Message)
				}
				if !w.proven && w.witness == "" && strings.Contains(f.Message, "cannot be decided") != strings.HasPrefix(f.Message, "may weaken") {
					t.Errorf("inconsistent unknown message %q", f.Message)
				}
			}
		})
	}
}

// pair renders overlay of a copy of the example repository before and
// after edit.
func pair(t *testing.T, overlay string, edit func(t *testing.T, root string)) *gate.Input {
	t.Helper()
	root := t.TempDir()
	repotest.CopyTree(t, exampleRepo(t), root)
	opts := render.Options{Root: root}
	base, err := render.Render(filepath.Join(root, overlay), opts)
	if err != nil {
		t.Fatal(err)
	}
	edit(t, root)
	head, err := render.Render(filepath.Join(root, overlay), opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.Resolve(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &gate.Input{Root: root, Dir: head.Dir, Rendered: head, Baseline: base, BaselineName: "git:main", Settings: s,
		Log: func(f string, a ...any) { t.Logf("log: "+f, a...) }}
}

func evaluate(t *testing.T, g weaken.Gate, in *gate.Input) *report.Overlay {
	t.Helper()
	out, err := gate.RunOne(context.Background(), in, g)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func item(t *testing.T, ev *report.Overlay, rule, field string) report.Finding {
	t.Helper()
	items := ev.Changes(report.GateWeaken)
	for _, it := range items {
		if it.Change.Rule == rule && strings.HasSuffix(it.Change.Field, field) {
			return it
		}
	}
	for _, it := range items {
		t.Logf("item: %+v", *it.Change)
	}
	t.Fatalf("no item for rule %q field %q", rule, field)
	return report.Finding{}
}

// A witness turns an unknown change weaker without touching its
// fingerprint: the approval computed without witnesses still approves it,
// and the search gives the same answer every time.
func TestWitnessKeepsFingerprintAndApprovals(t *testing.T) {
	in := pair(t, "overlays/production", patchPodRule(`      - op: remove
        path: /spec/rules/0/validate/pattern/metadata/labels/team
`))
	without := item(t, evaluate(t, weaken.Gate{NoWitnesses: true}, in), "check-pod-labels", "validate.pattern")
	with := item(t, evaluate(t, weaken.Gate{}, in), "check-pod-labels", "validate.pattern")
	if without.Change.Class != string(diff.Unknown) || without.Witness != nil {
		t.Fatalf("without witnesses: class %s, witness %v", without.Change.Class, without.Witness)
	}
	if with.Change.Class != string(diff.Weaker) || with.Witness == nil || !with.Witness.Exclusive {
		t.Fatalf("with witnesses: class %s, witness %+v", with.Change.Class, with.Witness)
	}
	if with.Fingerprint != without.Fingerprint {
		t.Fatalf("fingerprint changed: %s -> %s", without.Fingerprint, with.Fingerprint)
	}
	w := with.Witness
	if w.File != "tests/require-labels/resource.yaml" || w.ID() != "Pod apps/pod-no-team" || w.Policy != "require-labels" || w.Rule != "check-pod-labels" || w.Message == "" {
		t.Errorf("witness %+v", w)
	}
	again := item(t, evaluate(t, weaken.Gate{}, in), "check-pod-labels", "validate.pattern")
	if *again.Witness != *w {
		t.Errorf("not deterministic: %+v then %+v", w, again.Witness)
	}
	// Approve it on the head object, as the rejection message says.
	for _, r := range in.Rendered.Resources {
		if r.Kind == "ClusterPolicy" && r.Name == "require-labels" {
			meta := r.Object["metadata"].(map[string]any)
			ann, _ := meta["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				meta["annotations"] = ann
			}
			ann[diff.ApprovalKey(without.Fingerprint)] = "reason=test"
		}
	}
	out, err := gate.RunOne(context.Background(), in, weaken.Gate{})
	var findings []report.Finding
	if out != nil {
		findings = out.Problems()
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if f.Severity == report.Error {
			t.Errorf("approved change still rejected: %s", f.Message)
		}
	}
}

func TestWitnessSearchDetails(t *testing.T) {
	auditPodLabels := func(t *testing.T, root string) {
		repotest.At(t, root).Edit("overlays/production/kustomization.yaml", podLabelsPatch, strings.Replace(podLabelsPatch, "Enforce", "Audit", 1))
	}
	t.Run("a head policy that still denies it is no witness", func(t *testing.T) {
		in := pair(t, "overlays/production", func(t *testing.T, root string) {
			auditPodLabels(t, root)
			repotest.At(t, root).Write("overlays/production/require-team.yaml", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
    - name: team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: team label required
        pattern:
          metadata:
            labels:
              team: "?*"
`)
			repotest.At(t, root).Edit("overlays/production/kustomization.yaml", "  - policy-exceptions.yaml\n", "  - policy-exceptions.yaml\n  - require-team.yaml\n")
		})
		it := item(t, evaluate(t, weaken.Gate{}, in), "check-pod-labels", "failureAction")
		if it.Witness != nil {
			t.Errorf("want no witness, got %+v", it.Witness)
		}
	})
	t.Run("candidate cap: first resource in file order", func(t *testing.T) {
		in := pair(t, "overlays/production", auditPodLabels)
		it := item(t, evaluate(t, weaken.Gate{MaxWitnessCandidates: 1}, in), "check-pod-labels", "failureAction")
		if it.Witness == nil || it.Witness.String() != "tests/add-default-labels/resource.yaml (Pod apps/pod-unlabelled)" {
			t.Errorf("want the first candidate as witness, got %+v", it.Witness)
		}
	})
	t.Run("two changes of one rule: shown, not proven", func(t *testing.T) {
		in := pair(t, "overlays/production", patchPodRule(`      - op: replace
        path: /spec/rules/0/validate/failureAction
        value: Audit
      - op: remove
        path: /spec/rules/0/validate/pattern/metadata/labels/team
`))
		ev := evaluate(t, weaken.Gate{}, in)
		pattern := item(t, ev, "check-pod-labels", "validate.pattern")
		if pattern.Change.Class != string(diff.Unknown) || pattern.Witness == nil || pattern.Witness.Exclusive {
			t.Errorf("pattern change: class %s, witness %+v", pattern.Change.Class, pattern.Witness)
		}
		var msg string
		for _, f := range ev.Findings {
			if strings.Contains(f.Message, "pattern of rule check-pod-labels") {
				msg = f.Message
			}
		}
		if !strings.HasPrefix(msg, "may weaken enforcement") || !strings.Contains(msg, "now admits tests/require-labels/resource.yaml (Pod apps/pod-no-team), which the baseline denied (this or another change") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("no budget left: nothing searched, nothing fails", func(t *testing.T) {
		in := pair(t, "overlays/production", auditPodLabels)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// Straight into the gate: gate.Run would stop at the cancelled
		// context before the gate starts.
		ev := &report.Overlay{}
		if err := (weaken.Gate{}).Check(ctx, in, ev); err != nil {
			t.Fatal(err)
		}
		if it := item(t, ev, "check-pod-labels", "failureAction"); it.Witness != nil {
			t.Errorf("want no witness, got %+v", it.Witness)
		}
	})
}
