package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/notifications-engine/pkg/triggers"
	"sigs.k8s.io/yaml"
)

// notificationTriggers reads the triggers of the example's
// argocd-notifications-cm.yaml as Argo CD's notifications engine does.
func notificationTriggers(t *testing.T) (map[string][]triggers.Condition, map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "policy-repo", "argocd", "notifications-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]triggers.Condition{}
	for k, v := range cm.Data {
		name, ok := strings.CutPrefix(k, "trigger.")
		if !ok {
			continue
		}
		var conds []triggers.Condition
		if err := yaml.UnmarshalStrict([]byte(v), &conds); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[name] = conds
	}
	return out, cm.Data
}

// comparisonError is an Application whose last comparison failed with msg,
// as the application controller records it.
func comparisonError(msg string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": "policies-production"},
		"spec":     map[string]any{"source": map[string]any{"targetRevision": "release/production"}},
		"status": map[string]any{
			// While generation fails the controller keeps the branch name here.
			"sync":       map[string]any{"status": "Unknown", "revision": "release/production"},
			"conditions": []any{map[string]any{"type": "ComparisonError", "message": msg}},
		},
	}
}

// What the application controller and the repo-server put before the
// plugin's error (argo-cd v3.6.1 controller/state.go, reposerver); the
// second and later failures of a revision say "(cached)".
const (
	controllerPrefix = "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = Manifest generation error: "
	cachedPrefix     = "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = Manifest generation error (cached): "
	sidecarPrefix    = "plugin sidecar failed. error generating manifests in cmp: rpc error: code = Unknown desc = "
)

// The example's notification triggers, run by Argo CD's notifications
// engine (the version Argo CD v3.6.1 builds with) on the refusal that the
// real cmp-server returns: a refusal fires on-policy-gate-rejected once per
// refused revision, whatever Argo CD's prefix; any other comparison error
// fires on-policy-comparison-error instead; production subscribes to
// every trigger.
func TestNotificationTriggers(t *testing.T) {
	conds, data := notificationTriggers(t)
	svc, err := triggers.NewService(conds)
	if err != nil {
		t.Fatalf("the notifications engine refuses the triggers: %v", err)
	}
	for name, cs := range conds {
		for _, c := range cs {
			if c.OncePer == "" {
				t.Errorf("trigger %s has no oncePer: it would notify on every change of its condition only, and say nothing of a second refusal", name)
			}
			for _, tmpl := range c.Send {
				if _, ok := data["template."+tmpl]; !ok {
					t.Errorf("trigger %s sends template %s, which the ConfigMap does not define", name, tmpl)
				}
			}
		}
	}
	run := func(trigger string, app map[string]any) (bool, string) {
		t.Helper()
		res, err := svc.Run(trigger, map[string]any{"app": app})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 {
			t.Fatalf("trigger %s: %d conditions", trigger, len(res))
		}
		return res[0].Triggered, res[0].OncePer
	}

	// Two refused commits of the real repository, through cmp-server.
	r := newPolicyRepo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	weaken(t, r)
	first := rejection(t, generateApp(ctx, t, r, application(t, "production")))
	r.edit(t, "README.md", "# Example", "# An example")
	r.commit(t, "docs")
	second := rejection(t, generateApp(ctx, t, r, application(t, "production")))

	fired, key := run("on-policy-gate-rejected", comparisonError(controllerPrefix+sidecarPrefix+first))
	if !fired || !strings.HasPrefix(key, "overlays/production (app policies-production, revision ") || !strings.HasSuffix(key, "REJECTED: 2 problems (1 warning)") {
		t.Fatalf("a refusal: fired %v, oncePer %q", fired, key)
	}
	if f, _ := run("on-policy-comparison-error", comparisonError(controllerPrefix+sidecarPrefix+first)); f {
		t.Errorf("a refusal also fired on-policy-comparison-error")
	}
	if _, cached := run("on-policy-gate-rejected", comparisonError(cachedPrefix+sidecarPrefix+first)); cached != key {
		t.Errorf("the cached failure of the same revision has another oncePer (%q, was %q): a second notification", cached, key)
	}
	if _, next := run("on-policy-gate-rejected", comparisonError(controllerPrefix+sidecarPrefix+second)); next == key || next == "" {
		t.Errorf("the next refused revision has the same oncePer %q: it would be silent", next)
	}

	// Not kyverno-gate's refusal: a git outage, a missing sidecar, a run
	// kyverno-gate could not evaluate.
	for _, msg := range []string{
		controllerPrefix + "rpc error: code = Unknown desc = failed to list refs: authentication required",
		controllerPrefix + "couldn't find cmp-server plugin with name \"kyverno-gate-v1\" supporting the given repository",
		controllerPrefix + sidecarPrefix + "error generating manifests: `kyverno-gate generate` failed exit status 2: kyverno-gate: overlays/production (app policies-production, revision 0123abc) could not be evaluated: gave up after 45s while rendering .",
	} {
		if f, _ := run("on-policy-gate-rejected", comparisonError(msg)); f {
			t.Errorf("on-policy-gate-rejected fired on %q", msg)
		}
		f, k := run("on-policy-comparison-error", comparisonError(msg))
		if !f {
			t.Errorf("on-policy-comparison-error did not fire on %q", msg)
		}
		cached := strings.Replace(msg, "Manifest generation error: ", "Manifest generation error (cached): ", 1)
		if _, k2 := run("on-policy-comparison-error", comparisonError(cached)); k2 != k {
			t.Errorf("the cached error has another oncePer: %q vs %q", k2, k)
		}
	}

	// A healthy Application fires neither.
	healthy := map[string]any{"status": map[string]any{"sync": map[string]any{"status": "Synced", "revision": "3f2a1bc"}}}
	for _, trig := range []string{"on-policy-gate-rejected", "on-policy-comparison-error", "on-policy-sync-failed", "on-policy-out-of-sync"} {
		if f, _ := run(trig, healthy); f {
			t.Errorf("%s fired on a synced Application", trig)
		}
	}

	// Production subscribes to every trigger (the ApplicationSet's
	// production app subscribes as this file: appset_test.go).
	prod := subscriptions(application(t, "production"))
	for name := range conds {
		if prod["notifications.argoproj.io/subscribe."+name+".slack"] == "" {
			t.Errorf("policies-production.yaml does not subscribe to %s", name)
		}
	}
}
