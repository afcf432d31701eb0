package witness_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

const teamAndNamePolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
  annotations:
    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob
spec:
  rules:
  - name: check-labels
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      failureAction: Enforce
      message: name and team labels required
      pattern:
        metadata:
          labels:
            app.kubernetes.io/name: "?*"
            team: "?*"
`

// The migration dropped the name label's condition.
const teamOnlyVP = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: require-labels
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
`

const teamOnlyPod = `apiVersion: v1
kind: Pod
metadata:
  name: team-only
  namespace: apps
  labels:
    team: payments
spec:
  containers:
  - name: app
    image: registry.example.com/app:1.0
`

// A migration that loses a condition of the old pattern is proven weaker
// by a sample resource the old policy denied and the new one admits,
// through the ordinary witness search of the weakening gate.
func TestMigrationWitness(t *testing.T) {
	// Dropped condition: the sample proves it.
	mig := migrate(t, teamOnlyVP)
	if mig.Severity != report.Error || mig.Kind != report.KindWeaker || mig.Witness == nil ||
		mig.Witness.File != filepath.ToSlash("samples/pod.yaml") || !strings.Contains(mig.Message, "proven by witness") ||
		!strings.Contains(mig.Message, "was migrated to ValidatingPolicy require-labels") {
		t.Errorf("finding %+v (witness %+v)", *mig, mig.Witness)
	}
	// Both conditions kept: no witness, and still unknown (never
	// equivalent in this step).
	both := strings.Replace(teamOnlyVP, "'team' in object.metadata.labels", "'team' in object.metadata.labels && 'app.kubernetes.io/name' in object.metadata.labels", 1)
	mig = migrate(t, both)
	if mig.Severity != report.Error || mig.Kind != report.KindUnknown || mig.Witness != nil {
		t.Errorf("faithful migration: %+v (witness %+v)", *mig, mig.Witness)
	}
}

// A migration that keeps every condition but loses the
// ReplicationControllers that the ClusterPolicy's autogen covered is proven
// weaker by a Pod the search puts in a ReplicationController's template:
// the repository declares no such resource.
func TestMigrationWitnessInATemplate(t *testing.T) {
	withRC := strings.Replace(teamAndNamePolicy, "  annotations:\n    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob\n", "", 1)
	both := strings.Replace(teamOnlyVP, "'team' in object.metadata.labels", "'team' in object.metadata.labels && 'app.kubernetes.io/name' in object.metadata.labels", 1)
	mig := migrateFrom(t, withRC, both)
	w := mig.Witness
	if mig.Kind != report.KindWeaker || w == nil || w.Kind != "ReplicationController" || w.Template != "Pod apps/team-only" ||
		w.File != "samples/pod.yaml" || !strings.Contains(mig.Message, "now admits samples/pod.yaml (ReplicationController apps/team-only: the Pod apps/team-only in its template)") {
		t.Errorf("finding %+v (witness %+v)", *mig, w)
	}
}

// Without any declared resource, the search makes one from the old
// rule's pattern per leaf: the Pod without the name label proves the
// migration that dropped that condition weaker; the faithful migration
// stays unknown.
func TestMigrationWitnessFromThePattern(t *testing.T) {
	mig := migrateWith(t, teamAndNamePolicy, teamOnlyVP, nil)
	w := mig.Witness
	if mig.Kind != report.KindWeaker || w == nil || w.File != "" || w.Kind != "Pod" ||
		w.Pattern != "ClusterPolicy require-labels rule check-labels's pattern, violating metadata.labels.app.kubernetes.io/name" {
		t.Fatalf("finding %+v (witness %+v)", *mig, w)
	}
	both := strings.Replace(teamOnlyVP, "'team' in object.metadata.labels", "'team' in object.metadata.labels && 'app.kubernetes.io/name' in object.metadata.labels", 1)
	if mig := migrateWith(t, teamAndNamePolicy, both, nil); mig.Kind != report.KindUnknown || mig.Witness != nil {
		t.Errorf("faithful migration: %+v (witness %+v)", *mig, mig.Witness)
	}
}

// An exclusion moved into a wider matchCondition is proven by a resource
// made in a namespace the new exclusion covers and the old one did not.
func TestMigrationWitnessInAnExcludedNamespace(t *testing.T) {
	old := strings.Replace(teamAndNamePolicy, "    validate:\n", "    exclude:\n      any:\n      - resources:\n          namespaces: [kube-system]\n    validate:\n", 1)
	both := strings.Replace(teamOnlyVP, "'team' in object.metadata.labels", "'team' in object.metadata.labels && 'app.kubernetes.io/name' in object.metadata.labels", 1)
	wider := strings.Replace(both, "  validations:\n", "  matchConditions:\n  - name: not-system\n    expression: \"!object.metadata.namespace.startsWith('kube-')\"\n  validations:\n", 1)
	mig := migrateWith(t, old, wider, nil)
	if w := mig.Witness; mig.Kind != report.KindWeaker || w == nil || w.Namespace != "kube-x" || !strings.HasSuffix(w.Pattern, ", in namespace kube-x") {
		t.Errorf("finding %+v (witness %+v)", *mig, w)
	}
	if mig := migrateWith(t, old, strings.Replace(wider, "!object.metadata.namespace.startsWith('kube-')", "request.namespace != 'kube-system'", 1), nil); mig.Witness != nil {
		t.Errorf("the same exclusion: witness %+v", mig.Witness)
	}
}

// migrate renders the ClusterPolicy, then newPolicy in its place, and
// returns the weakening gate's finding for the ClusterPolicy.
func migrate(t *testing.T, newPolicy string) *report.Finding {
	t.Helper()
	return migrateFrom(t, teamAndNamePolicy, newPolicy)
}

func migrateFrom(t *testing.T, oldPolicy, newPolicy string) *report.Finding {
	t.Helper()
	return migrateWith(t, oldPolicy, newPolicy, map[string]string{"samples/pod.yaml": teamOnlyPod})
}

func migrateWith(t *testing.T, oldPolicy, newPolicy string, extra map[string]string) *report.Finding {
	t.Helper()
	files := map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml":        oldPolicy,
		"samples/.keep":          "",
	}
	for k, v := range extra {
		files[k] = v
	}
	repo := repotest.New(t, files)
	opts := render.Options{Root: repo.Dir}
	base, err := render.Render(repo.Path("app"), opts)
	if err != nil {
		t.Fatal(err)
	}
	repo.Write("app/policy.yaml", newPolicy)
	head, err := render.Render(repo.Path("app"), opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.Resolve(map[string][]string{"samples": {"samples"}, "allow-no-tests": {"true"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := &gate.Input{Root: repo.Dir, Dir: "app", Rendered: head, Baseline: base, BaselineName: "git:main", Settings: s}
	out, err := gate.RunOne(context.Background(), in, weaken.Gate{})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range out.Findings {
		if f.Subject.Kind == "ClusterPolicy" {
			return &out.Findings[i]
		}
	}
	t.Fatalf("no finding for the migrated policy: %+v", out.Findings)
	return nil
}
