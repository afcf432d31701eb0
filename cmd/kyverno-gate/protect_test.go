package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"sigs.k8s.io/yaml"
)

// exampleAbs is the example repository, absolute: these tests change the
// working directory as Argo CD does.
var exampleAbs = func() string {
	p, err := filepath.Abs(example)
	if err != nil {
		panic(err)
	}
	return p
}()

// exampleEnvironments are the overlays of the example repository.
var exampleEnvironments = []string{"development", "staging", "production"}

// argoCDEnviron is the environment cmp-server gives the plugin command for
// the example's Application of env: the app's name and source path, and
// its plugin parameters as ARGOCD_APP_PARAMETERS (the JSON list Argo CD
// sends), read from examples/policy-repo/argocd/policies-<env>.yaml, each
// string parameter of set ("name=value") replacing the Application's.
func argoCDEnviron(t *testing.T, env string, set ...string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(exampleAbs, "argocd", "policies-"+env+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var app struct {
		Metadata struct{ Name string }
		Spec     struct {
			Source struct {
				Path   string
				Plugin struct {
					Name       string
					Parameters []map[string]any
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &app); err != nil {
		t.Fatal(err)
	}
	ps := app.Spec.Source.Plugin.Parameters
	for _, kv := range set {
		name, value, _ := strings.Cut(kv, "=")
		kept := ps[:0]
		for _, p := range ps {
			if p["name"] != name {
				kept = append(kept, p)
			}
		}
		ps = append(kept, map[string]any{"name": name, "string": value})
	}
	params, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"ARGOCD_APP_NAME=" + app.Metadata.Name, "ARGOCD_APP_NAMESPACE=kyverno",
		"ARGOCD_APP_SOURCE_PATH=" + app.Spec.Source.Path, "ARGOCD_APP_REVISION=0123456789abcdef0123456789abcdef01234567",
		"ARGOCD_APP_PARAMETERS=" + string(params), "NO_COLOR=1",
	}
}

// generateAsArgoCD runs generate the way cmp-server does: in the
// overlay's folder of the checkout, with the Application's environment.
func generateAsArgoCD(t *testing.T, root, env string) (int, string, string) {
	t.Helper()
	t.Chdir(filepath.Join(root, "overlays", env))
	return runGate(t, argoCDEnviron(t, env), "generate")
}

// The example ships a lock for every overlay, and they are what `lock`
// writes today: a stale lock would compare Argo CD's renderings with
// policies the repository no longer has.
func TestShippedLocksAreCurrent(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, exampleAbs, root)
	t.Chdir(root)
	dirs, err := filepath.Glob("overlays/*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	if len(dirs) != len(exampleEnvironments) {
		t.Fatalf("overlays/* is %v, want the %d environments", dirs, len(exampleEnvironments))
	}
	// lock compares with the existing lock: a weakening since it was
	// written is rejected here (approve it or revert it), anything else
	// rewrites it.
	if code, _, stderr := runGate(t, nil, append([]string{"lock"}, dirs...)...); code != 0 {
		t.Fatalf("kyverno-gate lock overlays/*: exit %d\n%s", code, stderr)
	}
	for _, env := range exampleEnvironments {
		rel := filepath.Join("overlays", env, "kyverno-gate.lock.yaml")
		want, err := os.ReadFile(filepath.Join(exampleAbs, rel))
		if err != nil {
			t.Errorf("the example ships no %s: run `make locks` and commit it", rel)
			continue
		}
		got, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/policy-repo/%s is stale: run `make locks` and commit it", rel)
		}
	}
}

// The README's quick start on a copy of the example: lock every overlay in
// one command, then a change of staging back to Audit is rejected as
// Argo CD runs the plugin (working directory the overlay, ARGOCD_APP_*).
func TestQuickStartRejectsStagingToAuditUnderArgoCD(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, exampleAbs, root)
	for _, env := range exampleEnvironments {
		os.Remove(filepath.Join(root, "overlays", env, "kyverno-gate.lock.yaml"))
	}

	// Before the quick start: no lock, and the example's configuration
	// (missingBaseline: error) refuses to run an environment unguarded.
	code, stdout, stderr := generateAsArgoCD(t, root, "staging")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "overlays/staging (app policies-staging, revision 0123456) REJECTED") ||
		!strings.Contains(stderr, "- .kyverno-gate.yaml, environment staging: no baseline: overlays/staging/kyverno-gate.lock.yaml does not exist") || !strings.Contains(stderr, "run `kyverno-gate lock overlays/staging`") {
		t.Fatalf("without a lock: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// The quick start: kyverno-gate lock overlays/* at the root.
	t.Chdir(root)
	dirs, _ := filepath.Glob("overlays/*")
	if code, _, stderr := runGate(t, nil, append([]string{"lock"}, dirs...)...); code != 0 {
		t.Fatalf("kyverno-gate lock overlays/*: exit %d\n%s", code, stderr)
	}
	for _, env := range exampleEnvironments {
		if _, err := os.Stat(filepath.Join(root, "overlays", env, "kyverno-gate.lock.yaml")); err != nil {
			t.Errorf("lock overlays/* wrote no lock for %s: %v", env, err)
		}
		if code, stdout, stderr := generateAsArgoCD(t, root, env); code != 0 || stdout == "" {
			t.Errorf("%s after the quick start: exit %d\n%s", env, code, stderr)
		}
	}

	// Staging back to Audit.
	patch := filepath.Join(root, "overlays", "staging", "enforce-restrict-image-registries.yaml")
	b, err := os.ReadFile(patch)
	if err != nil {
		t.Fatal(err)
	}
	const enforce = "path: /spec/rules/0/validate/failureAction\n  value: Enforce\n"
	if !bytes.Contains(b, []byte(enforce)) {
		t.Fatalf("%s no longer enforces as this test expects:\n%s", patch, b)
	}
	if err := os.WriteFile(patch, bytes.Replace(b, []byte(enforce), []byte(strings.Replace(enforce, "Enforce", "Audit", 1)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = generateAsArgoCD(t, root, "staging")
	if code != 1 || stdout != "" {
		t.Fatalf("staging at Audit: exit %d, stdout %d bytes\n%s", code, len(stdout), stderr)
	}
	for _, want := range []string{
		"kyverno-gate: overlays/staging (app policies-staging, revision 0123456) REJECTED",
		"ClusterPolicy restrict-image-registries, rule validate-registries",
		"went from Enforce to Audit",
		"baseline: lock overlays/staging/kyverno-gate.lock.yaml",
		"approve.kyverno-gate.io/",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the rejection lacks %q:\n%s", want, stderr)
		}
	}
	// Nor can the weakened overlay be locked in.
	t.Chdir(root)
	if code, _, stderr := runGate(t, nil, "lock", "overlays/staging"); code != 1 || !strings.Contains(stderr, "lock not written") {
		t.Errorf("lock of the weakened staging: exit %d\n%s", code, stderr)
	}
}

// Without missingBaseline: error, an environment without a baseline is
// still a visible warning under Argo CD (not only a log line), and nothing
// at a terminal, where the log says it.
func TestMissingBaselineIsAWarningByDefault(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, exampleAbs, root)
	os.Remove(filepath.Join(root, "overlays", "staging", "kyverno-gate.lock.yaml"))
	cfgPath := filepath.Join(root, ".kyverno-gate.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(cfg), "\n") {
		if !strings.HasPrefix(line, "missingBaseline:") {
			kept = append(kept, line)
		}
	}
	if len(kept) == len(strings.Split(string(cfg), "\n")) {
		t.Fatalf("the example's .kyverno-gate.yaml sets no missingBaseline")
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := generateAsArgoCD(t, root, "staging")
	if code != 0 || stdout == "" || !strings.Contains(stderr, "overlays/staging (app policies-staging, revision 0123456) vetted") ||
		!strings.Contains(stderr, "- warning: .kyverno-gate.yaml, environment staging: no baseline: overlays/staging/kyverno-gate.lock.yaml does not exist") ||
		!strings.Contains(stderr, "`missingBaseline: error` in .kyverno-gate.yaml makes this a rejection") {
		t.Errorf("under Argo CD: exit %d\n%s", code, stderr)
	}
	// An explicit baseline=none from the Application is no way around it.
	t.Chdir(filepath.Join(root, "overlays", "production"))
	code, _, stderr = runGate(t, argoCDEnviron(t, "production", "baseline=none"), "generate")
	if code != 0 || !strings.Contains(stderr, "environment production: no baseline: the Application sets parameter baseline=none") {
		t.Errorf("baseline=none under Argo CD: exit %d\n%s", code, stderr)
	}
	// At a terminal: no finding.
	t.Chdir(root)
	code, _, stderr = runGate(t, []string{"NO_COLOR=1"}, "generate", "overlays/staging")
	if code != 0 || strings.Contains(stderr, "no baseline:") {
		t.Errorf("at a terminal: exit %d\n%s", code, stderr)
	}
}

// lock takes several folders, and refuses a file among them without
// stopping the others.
func TestLockSeveralDirs(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, exampleAbs, root)
	for _, env := range exampleEnvironments {
		os.Remove(filepath.Join(root, "overlays", env, "kyverno-gate.lock.yaml"))
	}
	if err := os.WriteFile(filepath.Join(root, "overlays", "README.md"), []byte("overlays\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	code, _, stderr := runGate(t, []string{"NO_COLOR=1"}, "lock", "overlays/README.md", "overlays/development", "overlays/staging")
	if code != 2 || !strings.Contains(stderr, "overlays/README.md could not be evaluated: not a directory") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	for env, want := range map[string]bool{"development": true, "staging": true, "production": false} {
		_, err := os.Stat(filepath.Join(root, "overlays", env, "kyverno-gate.lock.yaml"))
		if (err == nil) != want {
			t.Errorf("%s: lock written %v, want %v", env, err == nil, want)
		}
	}
}
