//go:build loop

// Package loop runs the whole Argo CD loop on loopback with real parts only:
// kube-apiserver and etcd (internal/kubetest) with Argo CD's and Kyverno's
// CRDs, Argo CD v3.6.1's application controller, repo-server and
// cmp-server (this test binary re-executed as each, as Argo CD's own binary
// is multi-call), Redis, the repository's plugin.yaml and bin/kyverno-gate
// wired as examples/install wires them, and the example policy repository
// in a git repository the repo-server fetches. The example's Application
// files are applied with kubectl; the tests push commits and read what Argo
// CD reports and what is live. See docs/e2e.md.
package loop

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"sigs.k8s.io/yaml"
)

// Generous limits: the verdicts never depend on how fast the machine is.
const (
	syncLimit    = 5 * time.Minute
	refreshLimit = 4 * time.Minute
)

func TestLoop(t *testing.T) {
	began := time.Now()
	l := startLoop(t)
	t.Logf("started 3 API servers, Redis, cmp-server, repo-server and the controller in %s", time.Since(began).Round(time.Second))
	steps := []struct {
		name string
		run  func(*testing.T, *loop)
	}{
		{"EveryEnvironmentSyncs", testEveryEnvironmentSyncs},
		{"ServerSideDiffKeepsPoliciesSynced", testServerSideDiffKeepsPoliciesSynced},
		{"UnapprovedWeakeningChangesNothingLive", testUnapprovedWeakeningChangesNothingLive},
		{"ApprovedWeakeningSyncs", testApprovedWeakeningSyncs},
		{"EmptyOrFailedRenderingNeverPrunes", testEmptyOrFailedRenderingNeverPrunes},
	}
	// Each step starts from the state the previous one left (a story, as
	// a user lives it): after a failure the rest would only repeat it.
	for _, s := range steps {
		stepStart := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.run(t, l) })
		t.Logf("%s: %s", s.name, time.Since(stepStart).Round(time.Second))
		if !ok {
			t.FailNow()
		}
	}
	t.Logf("loop: %s in all", time.Since(began).Round(time.Second))
}

// ---- the scenarios

func testEveryEnvironmentSyncs(t *testing.T, l *loop) {
	mainSHA := l.repo.git(t, "rev-parse", "origin/main")
	prodSHA := l.repo.git(t, "rev-parse", "origin/release/production")
	for _, env := range envs {
		l.applyApplication(t, env)
	}
	// Development and staging sync themselves (automated, prune, selfHeal).
	for _, env := range []string{"development", "staging"} {
		l.waitApp(t, env, "Synced at "+short(mainSHA)+" by an automated sync", syncLimit, func(a *v1alpha1.Application) bool {
			return a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Sync.Revision == mainSHA &&
				a.Status.OperationState != nil && a.Status.OperationState.Phase == "Succeeded"
		})
	}
	// Production has no automated sync: it waits OutOfSync for a person.
	app := l.waitApp(t, "production", "OutOfSync at "+short(prodSHA), refreshLimit, func(a *v1alpha1.Application) bool {
		return a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync && a.Status.Sync.Revision == prodSHA
	})
	if app.Status.OperationState != nil {
		t.Errorf("production was synced without anyone pressing Sync: %+v", app.Status.OperationState)
	}
	l.pressSync(t, "production")
	l.waitApp(t, "production", "Synced at "+short(prodSHA)+" by the sync", syncLimit, func(a *v1alpha1.Application) bool {
		return a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Sync.Revision == prodSHA &&
			a.Status.OperationState != nil && a.Status.OperationState.Phase == "Succeeded"
	})

	want := map[string]map[string]string{
		"development": {"require-labels/check-pod-labels": "Audit", "require-resource-limits/check-container-limits": "Audit"},
		"staging":     {"restrict-image-registries/validate-registries": "Enforce"},
		"production": {"require-labels/check-pod-labels": "Enforce", "require-labels/check-deployment-labels": "Enforce",
			"require-resource-limits/check-container-limits": "Enforce", "restrict-image-registries/validate-registries": "Audit"},
	}
	for _, env := range envs {
		app := l.app(t, env)
		live := l.livePolicies(t, env)
		managed := 0
		for _, r := range app.Status.Resources {
			if r.Kind != "ClusterPolicy" {
				continue
			}
			managed++
			p, ok := live[r.Name]
			switch {
			case !ok:
				t.Errorf("%s: Argo CD manages ClusterPolicy %s, which is not live", env, r.Name)
			case p.Namespace != "":
				t.Errorf("%s: live ClusterPolicy %s has namespace %q", env, r.Name, p.Namespace)
			case !p.serverSideApplied():
				t.Errorf("%s: ClusterPolicy %s was not server-side applied by argocd-controller: managers %v", env, r.Name, p.managers())
			}
		}
		if managed < 8 || managed != len(live) {
			t.Errorf("%s: Argo CD manages %d ClusterPolicies, %d are live", env, managed, len(live))
		}
		actions := ruleActions(live)
		for rule, action := range want[env] {
			if actions[rule] != action {
				t.Errorf("%s: live rule %s has failureAction %q, want %q", env, rule, actions[rule], action)
			}
		}
		t.Logf("%s: %d ClusterPolicies live, health %s", env, len(live), app.Status.Health.Status)
	}
}

// testServerSideDiffKeepsPoliciesSynced: the API server has added its
// defaults to every live policy; with the example's ServerSideApply=true
// (which makes Argo CD diff server-side) a fresh comparison still finds
// every policy Synced.
func testServerSideDiffKeepsPoliciesSynced(t *testing.T, l *loop) {
	for _, env := range envs {
		live := l.livePolicies(t, env)
		defaulted := 0
		for _, p := range live {
			if _, ok := p.Spec["admission"]; ok {
				defaulted++
			}
		}
		if defaulted == 0 {
			t.Fatalf("%s: no live policy carries the CRD's default spec.admission; nothing for the diff to get wrong", env)
		}
		app := l.hardRefresh(t, env)
		if app.Status.Sync.Status != v1alpha1.SyncStatusCodeSynced {
			t.Errorf("%s: after a hard refresh the sync status is %s: %s", env, app.Status.Sync.Status, outOfSync(app))
		}
		for _, r := range app.Status.Resources {
			if r.Status != v1alpha1.SyncStatusCodeSynced {
				t.Errorf("%s: %s %s is %s", env, r.Kind, r.Name, r.Status)
			}
		}
	}
}

// weakenProduction patches production's require-resource-limits back to
// Audit: the change the project exists to stop.
func weakenProduction(t *testing.T, work string) {
	replaceIn(t, filepath.Join(work, "overlays", "production", "kustomization.yaml"),
		"value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Enforce",
		"value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Audit")
}

var refusal string // the ComparisonError of the unapproved weakening

func testUnapprovedWeakeningChangesNothingLive(t *testing.T, l *loop) {
	before := l.livePolicies(t, "production")
	sha := l.repo.change(t, "release/production", "production: require-resource-limits back to Audit", func(work string) { weakenProduction(t, work) })
	verdict := "kyverno-gate: overlays/production (app policies-production, revision " + short(sha) + ") REJECTED: "
	app := l.refreshUntil(t, "production", "the ComparisonError naming "+short(sha), func(a *v1alpha1.Application) bool {
		return strings.Contains(comparisonError(a), verdict)
	})
	refusal = comparisonError(app)
	t.Logf("production's ComparisonError:\n%s", refusal)
	first := firstGateLine(refusal)
	if !strings.HasPrefix(first, verdict) {
		t.Errorf("kyverno-gate's first line is not the verdict: %q", first)
	}
	for _, want := range []string{"went from Enforce to Audit", "approve.kyverno-gate.io/"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("the ComparisonError does not say %q", want)
		}
	}
	if app.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced || app.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync {
		t.Errorf("sync status %s for a refused revision; want Unknown (no comparison)", app.Status.Sync.Status)
	}
	// Someone presses Sync anyway, with Prune: the operation fails and
	// nothing is applied or pruned.
	started := l.pressSync(t, "production")
	app = l.waitApp(t, "production", "the sync operation to end", syncLimit, func(a *v1alpha1.Application) bool {
		op := a.Status.OperationState
		return a.Operation == nil && op != nil && !op.StartedAt.Time.Before(started) && op.Phase.Completed()
	})
	op := app.Status.OperationState
	t.Logf("the sync pressed on the refused revision: %s: %s", op.Phase, op.Message)
	if op.Phase == "Succeeded" {
		t.Errorf("a sync of the refused revision succeeded: %s", op.Message)
	}
	if !strings.Contains(op.Message, "kyverno-gate: ") {
		t.Errorf("the failed sync does not say why with kyverno-gate's message: %s", op.Message)
	}
	sameLive(t, "production", before, l.livePolicies(t, "production"))
}

var approvalKey = regexp.MustCompile("`(approve\\.kyverno-gate\\.io/[0-9a-f]+): ")

func testApprovedWeakeningSyncs(t *testing.T, l *loop) {
	keys := map[string]bool{}
	for _, m := range approvalKey.FindAllStringSubmatch(refusal, -1) {
		keys[m[1]] = true
	}
	if len(keys) == 0 {
		t.Fatalf("the refusal names no approval annotation:\n%s", refusal)
	}
	var annotations strings.Builder
	for _, k := range sortedKeys(keys) {
		fmt.Fprintf(&annotations, "    %s: \"reason=limits move to Audit while the quota rollout lands; ticket=PLAT-77; by=security-team\"\n", k)
	}
	sha := l.repo.change(t, "release/production", "production: approve require-resource-limits at Audit", func(work string) {
		dir := filepath.Join(work, "overlays", "production")
		writeFile(t, filepath.Join(dir, "approvals-limits.yaml"),
			"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: require-resource-limits\n  annotations:\n"+annotations.String())
		replaceIn(t, filepath.Join(dir, "kustomization.yaml"), "  - path: approvals.yaml\n", "  - path: approvals.yaml\n  - path: approvals-limits.yaml\n")
	})
	l.refreshUntil(t, "production", "OutOfSync at "+short(sha), func(a *v1alpha1.Application) bool {
		return a.Status.Sync.Revision == sha && a.Status.Sync.Status == v1alpha1.SyncStatusCodeOutOfSync
	})
	l.pressSync(t, "production")
	l.waitApp(t, "production", "Synced at "+short(sha), syncLimit, func(a *v1alpha1.Application) bool {
		return a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && a.Status.Sync.Revision == sha &&
			a.Status.OperationState != nil && a.Status.OperationState.Phase == "Succeeded" &&
			a.Status.OperationState.SyncResult != nil && a.Status.OperationState.SyncResult.Revision == sha
	})
	live := l.livePolicies(t, "production")
	actions := ruleActions(live)
	if got := actions["require-resource-limits/check-container-limits"]; got != "Audit" {
		t.Errorf("after the approved sync check-container-limits is %q, want Audit", got)
	}
	if got := actions["require-labels/check-pod-labels"]; got != "Enforce" {
		t.Errorf("check-pod-labels is %q, want Enforce", got)
	}
	for k := range keys {
		if _, ok := live["require-resource-limits"].Annotations[k]; !ok {
			t.Errorf("the live policy lacks the approval %s", k)
		}
	}
}

// testEmptyOrFailedRenderingNeverPrunes: staging syncs itself with prune;
// a commit that renders nothing, and one that cannot be evaluated, leave
// every live policy where it was.
func testEmptyOrFailedRenderingNeverPrunes(t *testing.T, l *loop) {
	kustomization := filepath.Join("overlays", "staging", "kustomization.yaml")
	cases := []struct {
		name, content, says string
	}{
		{"renders nothing", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n", "rendered no resources"},
		{"cannot be evaluated", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n  - missing-file.yaml\n", "could not be evaluated"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			before := l.livePolicies(t, "staging")
			prev := l.app(t, "staging").Status.OperationState
			sha := l.repo.change(t, "main", "staging: a kustomization that "+c.name, func(work string) {
				writeFile(t, filepath.Join(work, kustomization), c.content)
			})
			verdict := "kyverno-gate: overlays/staging (app policies-staging, revision " + short(sha) + ") "
			app := l.refreshUntil(t, "staging", "the ComparisonError naming "+short(sha), func(a *v1alpha1.Application) bool {
				return strings.Contains(comparisonError(a), verdict)
			})
			msg := comparisonError(app)
			t.Logf("staging's ComparisonError:\n%s", msg)
			if c.says != "" && !strings.Contains(firstGateLine(msg), c.says) {
				t.Errorf("the verdict does not say %q: %s", c.says, firstGateLine(msg))
			}
			if app.Status.Sync.Status != v1alpha1.SyncStatusCodeUnknown {
				t.Errorf("sync status %s, want Unknown: %s", app.Status.Sync.Status, outOfSync(app))
			}
			// The automated sync had its chance: a refresh later, still
			// no new operation and every policy live.
			app = l.hardRefresh(t, "staging")
			if op := app.Status.OperationState; op != nil && prev != nil && !op.StartedAt.Equal(&prev.StartedAt) {
				t.Errorf("an operation ran on the refused revision: %s: %s", op.Phase, op.Message)
			}
			sameLive(t, "staging", before, l.livePolicies(t, "staging"))
		})
	}
}

// ---- Argo CD side

// applyApplication applies the example's Application file for env with
// kubectl, pointed at the test's repository (and, for development and
// staging, at their registered clusters), as the README tells a user.
func (l *loop) applyApplication(t *testing.T, env string) {
	var app map[string]any
	readYAML(t, filepath.Join(l.root, "examples", "policy-repo", "argocd", "policies-"+env+".yaml"), &app)
	spec := app["spec"].(map[string]any)
	spec["source"].(map[string]any)["repoURL"] = l.repo.URL
	if env != "production" {
		spec["destination"].(map[string]any)["server"] = l.clusters[env].URL
	}
	l.apply(t, "production", app)
}

func (l *loop) app(t *testing.T, env string) *v1alpha1.Application {
	t.Helper()
	out := l.kubectl(t, "production", "-n", "argocd", "get", "application", "policies-"+env, "-o", "json")
	var a v1alpha1.Application
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

// waitApp polls the Application until ok holds.
func (l *loop) waitApp(t *testing.T, env, what string, limit time.Duration, ok func(*v1alpha1.Application) bool) *v1alpha1.Application {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		a := l.app(t, env)
		if ok(a) {
			return a
		}
		l.exited(t)
		if time.Now().After(deadline) {
			t.Fatalf("policies-%s: %s not reached within %s; status: %s", env, what, limit, summary(a))
		}
		time.Sleep(time.Second)
	}
}

// hardRefresh asks for a hard refresh (what the UI's Hard Refresh does)
// and returns the Application once the controller has consumed it.
func (l *loop) hardRefresh(t *testing.T, env string) *v1alpha1.Application {
	t.Helper()
	asked := time.Now().Truncate(time.Second)
	l.kubectl(t, "production", "-n", "argocd", "annotate", "--overwrite", "application", "policies-"+env,
		v1alpha1.AnnotationKeyRefresh+"="+string(v1alpha1.RefreshTypeHard))
	return l.waitApp(t, env, "the hard refresh", refreshLimit, func(a *v1alpha1.Application) bool {
		_, pending := a.Annotations[v1alpha1.AnnotationKeyRefresh]
		return !pending && a.Status.ReconciledAt != nil && !a.Status.ReconciledAt.Time.Before(asked)
	})
}

// refreshUntil hard-refreshes until ok holds: a push reaches the
// repo-server through git, so the first refresh may still see the old tip.
func (l *loop) refreshUntil(t *testing.T, env, what string, ok func(*v1alpha1.Application) bool) *v1alpha1.Application {
	t.Helper()
	deadline := time.Now().Add(refreshLimit)
	for {
		a := l.hardRefresh(t, env)
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("policies-%s: %s not reached within %s; status: %s", env, what, refreshLimit, summary(a))
		}
	}
}

// pressSync starts a sync as the UI's Sync button does (the Application's
// sync options, Prune ticked) and returns when it was asked.
func (l *loop) pressSync(t *testing.T, env string) time.Time {
	t.Helper()
	app := l.app(t, env)
	var opts []string
	if app.Spec.SyncPolicy != nil {
		opts = app.Spec.SyncPolicy.SyncOptions
	}
	patch, _ := json.Marshal(map[string]any{"operation": map[string]any{
		"initiatedBy": map[string]any{"username": "loop"},
		"sync":        map[string]any{"revision": app.Spec.Source.TargetRevision, "prune": true, "syncOptions": opts},
	}})
	asked := time.Now().Truncate(time.Second)
	l.kubectl(t, "production", "-n", "argocd", "patch", "application", "policies-"+env, "--type", "merge", "-p", string(patch))
	return asked
}

func comparisonError(a *v1alpha1.Application) string {
	for _, c := range a.Status.Conditions {
		if c.Type == v1alpha1.ApplicationConditionComparisonError {
			return c.Message
		}
	}
	return ""
}

// firstGateLine is the line of msg that starts kyverno-gate's stderr.
func firstGateLine(msg string) string {
	i := strings.Index(msg, "kyverno-gate: ")
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(msg[i:], "\n")
	return line
}

func summary(a *v1alpha1.Application) string {
	s := fmt.Sprintf("sync %s at %s, health %s", a.Status.Sync.Status, a.Status.Sync.Revision, a.Status.Health.Status)
	if op := a.Status.OperationState; op != nil {
		s += fmt.Sprintf(", operation %s (%s)", op.Phase, op.Message)
	}
	for _, c := range a.Status.Conditions {
		s += fmt.Sprintf(", condition %s: %s", c.Type, c.Message)
	}
	return s
}

func outOfSync(a *v1alpha1.Application) string {
	var out []string
	for _, r := range a.Status.Resources {
		if r.Status != v1alpha1.SyncStatusCodeSynced {
			out = append(out, r.Kind+"/"+r.Name+" "+string(r.Status))
		}
	}
	return strings.Join(out, ", ")
}

func short(sha string) string { return sha[:7] }

// ---- the live side

type livePolicy struct {
	Name, Namespace, ResourceVersion string
	Annotations                      map[string]string
	Spec                             map[string]any
	ManagedFields                    []struct{ Manager, Operation string }
}

func (l *loop) livePolicies(t *testing.T, env string) map[string]livePolicy {
	t.Helper()
	out := l.kubectl(t, env, "get", "clusterpolicies.kyverno.io", "--show-managed-fields", "-o", "json")
	var list struct {
		Items []struct {
			Metadata struct {
				Name, Namespace, ResourceVersion string
				Annotations                      map[string]string
				ManagedFields                    []struct{ Manager, Operation string }
			}
			Spec map[string]any
		}
	}
	if err := yaml.Unmarshal(out, &list); err != nil {
		t.Fatal(err)
	}
	m := map[string]livePolicy{}
	for _, it := range list.Items {
		m[it.Metadata.Name] = livePolicy{Name: it.Metadata.Name, Namespace: it.Metadata.Namespace,
			ResourceVersion: it.Metadata.ResourceVersion, Annotations: it.Metadata.Annotations,
			Spec: it.Spec, ManagedFields: it.Metadata.ManagedFields}
	}
	return m
}

func (p livePolicy) serverSideApplied() bool {
	if _, ok := p.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; ok {
		return false
	}
	for _, f := range p.ManagedFields {
		if f.Manager == "argocd-controller" && f.Operation == "Apply" {
			return true
		}
	}
	return false
}

func (p livePolicy) managers() []string {
	var out []string
	for _, f := range p.ManagedFields {
		out = append(out, f.Manager+"/"+f.Operation)
	}
	return out
}

// ruleActions maps policy/rule to its validate.failureAction.
func ruleActions(live map[string]livePolicy) map[string]string {
	out := map[string]string{}
	for name, p := range live {
		rules, _ := p.Spec["rules"].([]any)
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			v, _ := rule["validate"].(map[string]any)
			if a, ok := v["failureAction"].(string); ok {
				out[fmt.Sprintf("%s/%v", name, rule["name"])] = a
			}
		}
	}
	return out
}

// sameLive fails unless every policy is still live, unmodified.
func sameLive(t *testing.T, env string, before, after map[string]livePolicy) {
	t.Helper()
	for name, p := range before {
		q, ok := after[name]
		switch {
		case !ok:
			t.Errorf("%s: ClusterPolicy %s was pruned", env, name)
		case q.ResourceVersion != p.ResourceVersion:
			t.Errorf("%s: ClusterPolicy %s was changed (resourceVersion %s -> %s)", env, name, p.ResourceVersion, q.ResourceVersion)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s: ClusterPolicy %s was added", env, name)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
