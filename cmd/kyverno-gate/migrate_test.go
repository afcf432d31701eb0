package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// migratedFrom is an enforced ClusterPolicy written with legacy
// validate.cel; migratedTo its faithful ValidatingPolicy, with autogen,
// operations, the exclusion and the enforcement carried over.
const migratedFrom = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
  annotations:
    pod-policies.kyverno.io/autogen-controllers: DaemonSet,Deployment,Job,StatefulSet,ReplicaSet,CronJob
spec:
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
              operations: [CREATE, UPDATE]
      exclude:
        any:
          - resources:
              namespaces: [kube-system]
      validate:
        failureAction: Enforce
        cel:
          expressions:
            - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
              message: label team is required
`

const migratedTo = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: require-team
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods]
  matchConditions:
    - name: not-kube-system
      expression: "request.namespace != 'kube-system'"
  validations:
    - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
      message: label team is required
`

// suiteFor is a kyverno test suite written for the ClusterPolicy: its
// results name the policy and its rule.
const suiteFor = `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: require-team
policies: [../../app/policy.yaml]
resources: [resource.yaml]
results:
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [with-team]
    result: pass
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [without-team]
    result: fail
  - policy: require-team
    rule: autogen-check-team
    kind: Deployment
    resources: [deploy-without-team]
    result: fail
`

const suiteResources = `apiVersion: v1
kind: Pod
metadata: {name: with-team, namespace: apps, labels: {team: a}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: without-team, namespace: apps}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: deploy-without-team, namespace: apps}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: c, image: nginx}]}
`

// A migration from ClusterPolicy to ValidatingPolicy is judged as one
// change against the baseline, by check and generate alike: the faithful
// one passes with no approval and says "equivalent"; one that loses
// something is rejected naming the rule and what it lost. The suite
// written for the ClusterPolicy runs against its successor unchanged.
func TestMigrationAgainstAGitBaseline(t *testing.T) {
	for _, tt := range []struct {
		name, head string
		code       int
		verdict    string
		want       string // in check's text report
	}{
		{"faithful", migratedTo, 0, "equivalent", "migration: ClusterPolicy require-team → ValidatingPolicy require-team: equivalent (check-team (Enforce → Deny) equivalent)"},
		{"audit", strings.Replace(migratedTo, "[Deny]", "[Audit]", 1), 1, "weaker", "violations are no longer blocked"},
		{"without UPDATE", strings.Replace(migratedTo, "[CREATE, UPDATE]", "[CREATE]", 1), 1, "weaker", "no longer acts on UPDATE"},
		{"exclusion widened", strings.Replace(migratedTo, "request.namespace != 'kube-system'", "!request.namespace.startsWith('kube-')", 1), 1, "weaker", "now admits Pod kube-x/without-team, made from the Pod apps/without-team of tests/require-team/resource.yaml, in namespace kube-x"},
		{"condition dropped", strings.Replace(migratedTo, "'team' in object.metadata.labels", "true", 1), 1, "weaker", "weakens enforcement (proven by witness)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGitRepo(t, map[string]string{
				"app/kustomization.yaml":               "resources: [policy.yaml]\n",
				"app/policy.yaml":                      migratedFrom,
				"tests/require-team/kyverno-test.yaml": suiteFor,
				"tests/require-team/resource.yaml":     suiteResources,
			})
			base := g.base
			g.write("app/policy.yaml", tt.head)
			g.commit("migrate")
			code, stderr := g.generate("--baseline", "git:"+base)
			if code != tt.code {
				t.Fatalf("generate: exit %d, want %d\n%s", code, tt.code, stderr)
			}
			if code != 0 && !strings.Contains(stderr, "ClusterPolicy require-team was migrated to ValidatingPolicy require-team") {
				t.Errorf("generate's rejection does not name the migration:\n%s", stderr)
			}
			if !strings.Contains(stderr, "tests/require-team/kyverno-test.yaml: results written for ClusterPolicy require-team → ValidatingPolicy require-team") {
				t.Errorf("the suite was not carried over:\n%s", stderr)
			}
			args := []string{"check", "--allow-no-tests", "--repo-root", g.root, "--baseline", "git:" + base}
			code, _, text := runGate(t, []string{"NO_COLOR=1"}, append(args, filepath.Join(g.root, "app"))...)
			if code != tt.code || !strings.Contains(text, tt.want) {
				t.Errorf("check: exit %d, want %d; report lacks %q:\n%s", code, tt.code, tt.want, text)
			}
			// The posture matrix carries the old policy's action on to its successor.
			cell := map[string]string{"equivalent": "(changed, was Enforce as ClusterPolicy require-team)"}[tt.verdict]
			if cell == "" {
				cell = "(weaker, was Enforce as ClusterPolicy require-team)"
			}
			if !strings.Contains(text, cell) {
				t.Errorf("posture lacks %q:\n%s", cell, text)
			}
			_, out, _ := runGate(t, nil, append(args, "--output", "json", filepath.Join(g.root, "app"))...)
			var rep struct {
				Overlays []struct {
					Tests struct {
						Results, FailedResults int
						CarriedOver            []string
					}
					Migrations []struct {
						From, Verdict string
						Rules         []struct{ Rule, Verdict string }
					}
				}
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Overlays) != 1 || len(rep.Overlays[0].Migrations) != 1 {
				t.Fatalf("json report: %v\n%s", err, out)
			}
			if ts := rep.Overlays[0].Tests; ts.Results != 3 || len(ts.CarriedOver) != 1 || (ts.FailedResults == 0) != (tt.name != "condition dropped") {
				t.Errorf("tests %+v", ts)
			}
			if m := rep.Overlays[0].Migrations[0]; m.From != "ClusterPolicy require-team" || m.Verdict != tt.verdict || len(m.Rules) != 1 || m.Rules[0].Verdict != tt.verdict {
				t.Errorf("migration %+v, want verdict %s", m, tt.verdict)
			}
		})
	}
}

// examples/migration is a repository in the middle of a migration: its
// lock still holds the ClusterPolicy, its base the ValidatingPolicy. What
// its README promises holds.
func TestMigrationExample(t *testing.T) {
	const repo = "../../examples/migration"
	code, stdout, stderr := runGate(t, nil, "generate", "--repo-root", repo, filepath.Join(repo, "overlays", "production"))
	if code != 0 || !strings.Contains(stdout, "kind: ValidatingPolicy") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	for _, want := range []string{
		"weaken: ClusterPolicy require-team was migrated to ValidatingPolicy require-team: equivalent; rule check-team (Enforce → Deny) equivalent",
		"test: tests/require-team/kyverno-test.yaml: results written for ClusterPolicy require-team → ValidatingPolicy require-team",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
	lock, err := os.ReadFile(filepath.Join(repo, "overlays", "production", "kyverno-gate.lock.yaml"))
	if err != nil || !strings.Contains(string(lock), "kind: ClusterPolicy\nmetadata:\n  name: require-team") {
		t.Errorf("the lock no longer holds the ClusterPolicy the migration is judged against (%v)", err)
	}
}
