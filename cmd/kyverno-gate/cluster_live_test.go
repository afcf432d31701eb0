//go:build live

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/internal/kubetest"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// The cluster commands on a real kube-apiserver (make live): export,
// --baseline cluster and drift, as a person or a CronJob runs them.

const exampleRepo = "../../examples/policy-repo"

// cronJobUser is the user name of examples/cronjobs' service account: a
// static token with it gets what the RBAC grants the service account.
const cronJobUser = "system:serviceaccount:kyverno-gate:kyverno-gate"

const limitedRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader-without-exceptions
rules:
  - apiGroups: [apiextensions.k8s.io]
    resources: [customresourcedefinitions]
    verbs: [get]
  - apiGroups: [kyverno.io]
    resources: [clusterpolicies, policies, clustercleanuppolicies, cleanuppolicies, globalcontextentries]
    verbs: [get, list]
  - apiGroups: [policies.kyverno.io]
    resources: ["*"]
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: limited
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader-without-exceptions}
subjects:
  - {kind: User, name: limited, apiGroup: rbac.authorization.k8s.io}
`

func kubectlApply(t *testing.T, c *kubetest.Cluster, stream []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "apply.yaml")
	if err := os.WriteFile(f, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl("apply", "--server-side", "-f", f); err != nil {
		t.Fatal(err)
	}
}

func startProduction(t *testing.T) *kubetest.Cluster {
	t.Helper()
	c := kubetest.Start(t, kubetest.Options{KyvernoCRDs: true, Users: []kubetest.User{{Name: "limited"}, {Name: cronJobUser}}})
	res, err := render.Render(filepath.Join(exampleRepo, "overlays", "production"), render.Options{Root: exampleRepo})
	if err != nil {
		t.Fatal(err)
	}
	kubectlApply(t, c, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kyverno\n"))
	kubectlApply(t, c, baseline.Stream(res.Resources))
	kubectlApply(t, c, []byte(limitedRBAC))
	return c
}

func TestLiveClusterCommands(t *testing.T) {
	begin := time.Now()
	c := startProduction(t)
	t.Setenv("KUBECONFIG", c.Kubeconfig)
	kc := "--kubeconfig=" + c.Kubeconfig

	t.Run("export without list permission on one kind", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "backup")
		var code int
		var stdout, stderr bytes.Buffer
		// RBAC bindings take effect asynchronously.
		for i := 0; i < 50; i++ {
			stdout.Reset()
			stderr.Reset()
			code = run([]string{"kyverno-gate", "export", kc, "--context", "limited", "--output", out}, &stdout, &stderr, nil)
			if strings.Contains(stderr.String(), "could not read 1 kind(s)") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code != 2 || !strings.Contains(stderr.String(), "PolicyException (policyexceptions.kyverno.io): list policyexceptions.kyverno.io: forbidden") || stdout.Len() != 0 {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s was written (%v)", out, err)
		}
		if entries, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(entries) != 0 {
			t.Errorf("left behind: %v", entries)
		}
	})

	t.Run("export twice: the same bytes; dated folder; stream", func(t *testing.T) {
		dir := t.TempDir()
		for _, sub := range []string{"one", "two"} {
			var stderr bytes.Buffer
			if code := run([]string{"kyverno-gate", "export", kc, "--output", filepath.Join(dir, sub)}, &bytes.Buffer{}, &stderr, nil); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
		}
		one, two := readTree(t, filepath.Join(dir, "one")), readTree(t, filepath.Join(dir, "two"))
		if len(one) != 12 || !equalTrees(one, two) {
			t.Errorf("exports differ or are incomplete: %d and %d files", len(one), len(two))
		}
		if code := run([]string{"kyverno-gate", "export", kc, "--output", filepath.Join(dir, "one")}, &bytes.Buffer{}, &bytes.Buffer{}, nil); code != 2 {
			t.Errorf("export into a non-empty folder: exit %d, want 2", code)
		}
		var stderr bytes.Buffer
		if code := run([]string{"kyverno-gate", "export", kc, "--output", filepath.Join(dir, "dated"), "--dated"}, &bytes.Buffer{}, &stderr, nil); code != 0 {
			t.Fatalf("--dated: exit %d: %s", code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "dated", time.Now().UTC().Format("2006-01-02"), "kustomization.yaml")); err != nil {
			t.Error(err)
		}
		var stdout bytes.Buffer
		if code := run([]string{"kyverno-gate", "export", kc, "-o", "-"}, &stdout, &bytes.Buffer{}, nil); code != 0 || bytes.Count(stdout.Bytes(), []byte("---\n")) != 10 {
			t.Errorf("--output -: exit %d, %d documents", code, bytes.Count(stdout.Bytes(), []byte("---\n")))
		}
	})

	t.Run("export without Kyverno's CRDs", func(t *testing.T) {
		bare := kubetest.Start(t, kubetest.Options{})
		var stdout, stderr bytes.Buffer
		code := run([]string{"kyverno-gate", "export", "--kubeconfig", bare.Kubeconfig, "--output", filepath.Join(t.TempDir(), "b")}, &stdout, &stderr, nil)
		if code != 2 || !strings.Contains(stderr.String(), "Kyverno's CRDs are not installed") {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	})

	t.Run("the CronJob examples are valid and their RBAC is enough", func(t *testing.T) {
		kubectlApply(t, c, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kyverno-gate\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kyverno\n  namespace: kyverno\ndata:\n  resourceFilters: '[Event,*,*]'\n"))
		if _, err := c.Kubectl("apply", "--server-side", "-k", "../../examples/cronjobs"); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "backup")
		var code int
		var stderr bytes.Buffer
		for i := 0; i < 50; i++ { // RBAC bindings take effect asynchronously
			stderr.Reset()
			code = run([]string{"kyverno-gate", "export", kc, "--context", cronJobUser, "--output", out}, &bytes.Buffer{}, &stderr, nil)
			if code == 0 && !strings.Contains(stderr.String(), "not readable") {
				break
			}
			os.RemoveAll(out)
			time.Sleep(100 * time.Millisecond)
		}
		if code != 0 || strings.Contains(stderr.String(), "not readable") {
			t.Fatalf("export as the CronJob's service account: exit %d:\n%s", code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(out, "kyverno-config", "configmap.yaml")); err != nil {
			t.Error(err)
		}
		if _, err := c.Kubectl("auth", "can-i", "--as", cronJobUser, "create", "clusterpolicies.kyverno.io"); err == nil {
			t.Error("the CronJob's service account may create policies")
		}
	})

	// A copy of the example, and a PR of it that weakens production.
	repo := repotest.Copy(t, exampleRepo)
	repo.Commit("policies")
	overlay := repo.Path("overlays/production")

	t.Run("cluster baseline of the unchanged rendering finds nothing (confined, as main runs it)", func(t *testing.T) {
		code, stdout, stderr, _ := runMain(t, []string{"KUBECONFIG=" + c.Kubeconfig}, "generate", overlay, "--baseline", "cluster")
		if code != 0 || stdout == "" || strings.Contains(findingLines(stderr), "went from") || !strings.Contains(stderr, "baseline: cluster admin") {
			t.Fatalf("exit %d:\n%s", code, stderr)
		}
	})

	repo.Edit("overlays/production/kustomization.yaml", "value: Enforce", "value: Audit")
	t.Run("a weakening PR: rejected against the cluster as against git", func(t *testing.T) {
		code, stdout, stderr, _ := runMain(t, []string{"KUBECONFIG=" + c.Kubeconfig}, "generate", overlay, "--baseline", "cluster:admin")
		gcode, _, gstderr, _ := runMain(t, nil, "generate", overlay, "--baseline", "git:HEAD")
		if code != 1 || stdout != "" || !strings.Contains(stderr, "from Enforce to Audit") {
			t.Fatalf("cluster baseline: exit %d:\n%s", code, stderr)
		}
		if gcode != 1 || findingLines(gstderr) != findingLines(stderr) {
			t.Errorf("git baseline: exit %d; findings differ:\n%s\n---\n%s", gcode, findingLines(gstderr), findingLines(stderr))
		}
	})
	repo.Edit("overlays/production/kustomization.yaml", "value: Audit", "value: Enforce")

	t.Run("drift: equal, then weaker live with the field", func(t *testing.T) {
		code, stdout, stderr, _ := runMain(t, nil, "drift", overlay, kc)
		if code != 0 || !strings.Contains(stderr, "10 equal") {
			t.Fatalf("unchanged: exit %d:\n%s\n%s", code, stdout, stderr)
		}
		if _, err := c.Kubectl("patch", "clusterpolicy", "require-labels", "--type=json",
			"-p", `[{"op":"replace","path":"/spec/rules/0/validate/failureAction","value":"Audit"}]`); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr, _ = runMain(t, nil, "drift", overlay, kc)
		if code != 1 || !strings.Contains(stdout, "spec.rules[check-pod-labels].validate.failureAction") || !strings.Contains(stdout, "weaker live") {
			t.Fatalf("after the edit: exit %d:\n%s\n%s", code, stdout, stderr)
		}
		code, stdout, _, _ = runMain(t, nil, "drift", overlay, kc, "--output", "json")
		if code != 1 || !strings.Contains(stdout, `"kind": "weaker-live"`) {
			t.Errorf("json: exit %d:\n%s", code, stdout)
		}
		for _, format := range []string{"markdown", "sarif", "junit", "github"} {
			var out, errb bytes.Buffer
			if code := run([]string{"kyverno-gate", "drift", overlay, kc, "--output", format}, &out, &errb, nil); code != 1 || !strings.Contains(out.String(), "require-labels") {
				t.Errorf("%s: exit %d:\n%s\n%s", format, code, out.String(), errb.String())
			}
		}
		t.Logf("text report:\n%s", stdout)
	})
	t.Logf("suite in %s; server RSS %v", time.Since(begin).Round(100*time.Millisecond), c.RSS())
}

// findingLines are the "- " lines of a compact report, without the
// baseline's name.
func findingLines(stderr string) string {
	var out []string
	name := regexp.MustCompile(`\(baseline: [^()]*\([^()]*\)\)`)
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "- ") {
			out = append(out, name.ReplaceAllString(l, "(baseline: B)"))
		}
	}
	return strings.Join(out, "\n")
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
