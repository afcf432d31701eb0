//go:build live

package drift

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/cluster"
	"github.com/kyverno-gate/kyverno-gate/internal/kubetest"
	"github.com/kyverno-gate/kyverno-gate/render"
)

const repoRoot = ".."

var production = filepath.Join(repoRoot, "examples", "policy-repo", "overlays", "production")

func snapshot(t *testing.T, c *kubetest.Cluster) *cluster.Snapshot {
	t.Helper()
	client, err := cluster.Connect(cluster.Source{Kubeconfig: c.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := client.Read(ctx, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func kubectl(t *testing.T, c *kubetest.Cluster, args ...string) {
	t.Helper()
	if _, err := c.Kubectl(args...); err != nil {
		t.Fatal(err)
	}
}

// The states drift reports, each made on a real server the way it
// happens: out-of-band edits (kubectl patch, as kubectl edit sends), a
// deleted policy, an exception added by hand, a status Kyverno set.
func TestLiveDriftStates(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{KyvernoCRDs: true})
	vetted, err := render.Render(production, render.Options{Root: repoRoot})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "production.yaml")
	if err := os.WriteFile(f, baseline.Stream(vetted.Resources), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, c, "create", "namespace", "kyverno")
	kubectl(t, c, "apply", "--server-side", "-f", f)

	results, err := Compare(vetted, snapshot(t, c))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.State != Equal || r.NotReady() {
			t.Errorf("unchanged: %s is %s (ready %q), want equal: %v", r.Subject, r.State, r.Ready, r.Changes)
		}
	}
	if len(results) != 10 {
		t.Errorf("%d results, want 10", len(results))
	}

	// Out of band.
	kubectl(t, c, "patch", "clusterpolicy", "require-labels", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/rules/0/validate/failureAction","value":"Audit"}]`)
	kubectl(t, c, "patch", "clusterpolicy", "restrict-image-registries", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/rules/0/validate/failureAction","value":"Enforce"}]`)
	kubectl(t, c, "annotate", "clusterpolicy", "add-default-labels", "note=edited by hand")
	kubectl(t, c, "delete", "clusterpolicy", "add-networkpolicy")
	extra := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(extra, []byte(`apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: hotfix
  namespace: kyverno
spec:
  exceptions:
    - policyName: require-resource-limits
      ruleNames: ["*"]
  match:
    any:
      - resources:
          kinds: [Pod]
          namespaces: [payments]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl(t, c, "apply", "--server-side", "-f", extra)
	kubectl(t, c, "patch", "clusterpolicy", "inject-security-context", "--subresource=status", "--type=merge",
		"-p", `{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Failed","message":"policy cannot be compiled","lastTransitionTime":"2026-12-01T00:00:00Z"}]}}`)

	results, err = Compare(vetted, snapshot(t, c))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]State{
		"ClusterPolicy require-labels":              Weaker,
		"ClusterPolicy restrict-image-registries":   Stricter,
		"ClusterPolicy add-default-labels":          Equivalent,
		"ClusterPolicy add-networkpolicy":           Missing,
		"PolicyException.kyverno.io kyverno/hotfix": Extra,
		"ClusterPolicy inject-security-context":     Equal,
	}
	got := map[string]Result{}
	for _, r := range results {
		got[r.Subject.String()] = r
	}
	for s, st := range want {
		if got[s].State != st {
			t.Errorf("%s: %s, want %s (%v)", s, got[s].State, st, got[s].Changes)
		}
	}
	if r := got["ClusterPolicy inject-security-context"]; !r.NotReady() || r.Reason != "policy cannot be compiled" {
		t.Errorf("inject-security-context: ready %q %q, want False", r.Ready, r.Reason)
	}
	findings := Findings(results, "admin")
	var weakerField, extraErr, notReady bool
	for _, f := range findings {
		switch {
		case f.Subject.Name == "require-labels" && f.Field == "spec.rules[check-pod-labels].validate.failureAction":
			weakerField = strings.Contains(f.Message, "vetted Enforce, live Audit")
		case f.Subject.Name == "hotfix":
			extraErr = f.Severity == "error"
		case f.Kind == "not-ready":
			notReady = true
		}
	}
	if !weakerField || !extraErr || !notReady {
		for _, f := range findings {
			t.Logf("%s %s %s %s: %s", f.Severity, f.Kind, f.Subject, f.Field, f.Message)
		}
		t.Errorf("findings: weaker with its field %v, extra exception an error %v, not Ready %v", weakerField, extraErr, notReady)
	}
	t.Logf("summary: %s", Summary(results))
}
