package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/cmpserver/plugin"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// policyRepo is a git checkout of examples/policy-repo, as the repo-server
// has it when it generates: the tests stream it whole, .git included.
type policyRepo struct {
	dir string
}

func newPolicyRepo(t *testing.T) *policyRepo {
	t.Helper()
	r := &policyRepo{dir: t.TempDir()}
	src := filepath.Join(repoRoot(), "examples", "policy-repo")
	if out, err := exec.Command("cp", "-a", src+"/.", r.dir).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v\n%s", src, err, out)
	}
	r.git(t, "init", "-q", "-b", "main")
	r.commit(t, "policies")
	return r
}

func (r *policyRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com",
		"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit commits everything and returns the commit SHA (ARGOCD_APP_REVISION).
func (r *policyRepo) commit(t *testing.T, msg string) string {
	t.Helper()
	r.git(t, "add", "-A")
	r.git(t, "commit", "-q", "-m", msg)
	return r.git(t, "rev-parse", "HEAD")
}

// edit replaces old with new in a repository file; old must be there.
func (r *policyRepo) edit(t *testing.T, rel, old, new string) {
	t.Helper()
	p := filepath.Join(r.dir, rel)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s no longer contains the text this test edits:\n%s", rel, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// application is one of the Applications the example repository ships.
func application(t *testing.T, env string) *v1alpha1.Application {
	return loadApplication(t, filepath.Join(repoRoot(), "examples", "policy-repo", "argocd", "policies-"+env+".yaml"))
}

// generateApp sends a generation for app at the repository's HEAD.
func generateApp(ctx context.Context, t *testing.T, r *policyRepo, app *v1alpha1.Application, excluded ...string) generation {
	t.Helper()
	env, err := generateEnv(app, r.git(t, "rev-parse", "HEAD"), kindCluster)
	if err != nil {
		t.Fatal(err)
	}
	return generate(ctx, t, r.dir, app, env, excluded)
}

// cliGenerate runs the same binary at a terminal, as an operator would.
func cliGenerate(t *testing.T, r *policyRepo, path string) []string {
	t.Helper()
	bin, err := gateBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "generate", path)
	cmd.Dir = r.dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kyverno-gate generate %s: %v", path, err)
	}
	var docs []string
	for _, d := range strings.Split("\n"+string(out), "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(j))
	}
	return docs
}

func objects(t *testing.T, manifests []string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, m := range manifests {
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON([]byte(m)); err != nil {
			t.Fatalf("the repo-server could not parse a manifest: %v\n%s", err, m)
		}
		objs = append(objs, &u)
	}
	return objs
}

func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

// ruleActions maps "policy/rule" to the rule's validate.failureAction.
func ruleActions(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "ClusterPolicy" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "spec", "rules")
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			action, _, _ := unstructured.NestedString(rule, "validate", "failureAction")
			if action != "" {
				out[o.GetName()+"/"+fmt.Sprint(rule["name"])] = action
			}
		}
	}
	return out
}

func TestEveryExampleOverlayIsVetted(t *testing.T) {
	r := newPolicyRepo(t)
	want := map[string]map[string]string{
		"development": {"require-labels/check-pod-labels": "Audit", "require-resource-limits/check-container-limits": "Audit"},
		"staging":     {"restrict-image-registries/validate-registries": "Enforce"},
		"production": {"require-labels/check-pod-labels": "Enforce", "require-labels/check-deployment-labels": "Enforce",
			"require-resource-limits/check-container-limits": "Enforce", "restrict-image-registries/validate-registries": "Audit"},
	}
	for _, env := range []string{"development", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			app := application(t, env)
			got := generateApp(ctx, t, r, app)
			if got.err != nil {
				t.Fatalf("generation failed: %v", got.err)
			}
			objs := objects(t, got.manifests)
			if len(objs) < 10 {
				t.Errorf("only %d objects came back: %v", len(objs), ids(objs))
			}
			// Nothing lost or changed on the way through Argo CD.
			if terminal := ids(objects(t, cliGenerate(t, r, app.Spec.Source.Path))); !reflect.DeepEqual(ids(objs), terminal) {
				t.Errorf("Argo CD got %v\nthe CLI prints %v", ids(objs), terminal)
			}
			actions := ruleActions(t, objs)
			for rule, action := range want[env] {
				if actions[rule] != action {
					t.Errorf("rule %s: failureAction %q, want %q", rule, actions[rule], action)
				}
			}
			for _, o := range objs {
				if o.GetKind() == "ClusterPolicy" && o.GetNamespace() != "" {
					t.Errorf("ClusterPolicy %s keeps namespace %q", o.GetName(), o.GetNamespace())
				}
			}
		})
	}
}

// weaken patches production's require-resource-limits back to Audit, the
// change this project exists to stop.
func weaken(t *testing.T, r *policyRepo) {
	t.Helper()
	r.edit(t, "overlays/production/kustomization.yaml",
		"value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Enforce",
		"value: check-container-limits\n      - op: replace\n        path: /spec/rules/0/validate/failureAction\n        value: Audit")
	r.commit(t, "production: require-resource-limits back to Audit")
}

// rejection is the message Argo CD shows for a failed generation (the part
// after "error generating manifests in cmp: ").
func rejection(t *testing.T, g generation) string {
	t.Helper()
	if g.err == nil {
		t.Fatalf("the generation was vetted (%d manifests); want a rejection", len(g.manifests))
	}
	if len(g.manifests) != 0 {
		t.Errorf("a failed generation returned %d manifests", len(g.manifests))
	}
	st, ok := status.FromError(g.err)
	if !ok || st.Code() != codes.Unknown {
		t.Fatalf("want a gRPC Unknown status as cmp-server returns for a failed command, got %v", g.err)
	}
	return st.Message()
}

func TestUnapprovedWeakeningIsRejected(t *testing.T) {
	r := newPolicyRepo(t)
	weaken(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msg := rejection(t, generateApp(ctx, t, r, application(t, "production")))

	// What the Application's ComparisonError ends with, verbatim. The
	// example ships a lock per overlay, so the weakening is found twice:
	// against the lock, and by production's validateAction floor.
	wantFirst := "error generating manifests: `kyverno-gate generate` failed exit status 1: " +
		"kyverno-gate: overlays/production (app policies-production, revision " + r.git(t, "rev-parse", "--short=7", "HEAD") + ") REJECTED: 2 problems (1 warning)"
	lines := strings.Split(msg, "\n")
	if lines[0] != wantFirst {
		t.Errorf("first line of the error:\n got: %s\nwant: %s", lines[0], wantFirst)
	}
	// Where: the overlay line that set Audit, not the base that declares the policy.
	const where = "- overlays/production/kustomization.yaml:61, ClusterPolicy require-resource-limits, rule check-container-limits: "
	if len(lines) < 3 || !strings.HasPrefix(lines[1], where+"effective failure action of rule check-container-limits went from Enforce to Audit") ||
		!strings.Contains(lines[1], "(baseline: lock overlays/production/kyverno-gate.lock.yaml)") ||
		!strings.Contains(lines[1], "add the annotation `approve.kyverno-gate.io/") ||
		!strings.HasPrefix(lines[2], where+"rule check-container-limits resolves to Audit") ||
		!strings.Contains(lines[2], "production floor validateAction") ||
		!strings.Contains(lines[2], "add the annotation `approve.kyverno-gate.io/") {
		t.Errorf("the problem lines do not say where, what and what to do:\n%s", msg)
	}
	if strings.Contains(msg, server.workDir) {
		t.Errorf("the error leaks the sidecar's work dir %s:\n%s", server.workDir, msg)
	}
}

func TestApplicationParametersChangeTheRun(t *testing.T) {
	r := newPolicyRepo(t)
	weaken(t, r)
	param := func(name, value string) v1alpha1.ApplicationSourcePluginParameter {
		return v1alpha1.ApplicationSourcePluginParameter{Name: name, String_: &value}
	}
	tests := []struct {
		name   string
		change func(*v1alpha1.ApplicationSourcePlugin)
		want   []string // substrings of the error
	}{
		{name: "baseline git:HEAD~1 compares with the previous commit instead of the lock",
			change: func(p *v1alpha1.ApplicationSourcePlugin) {
				setParam(p, param("baseline", "git:HEAD~1"))
			},
			want: []string{"REJECTED: 2 problems", "went from Enforce to Audit", "baseline: git:HEAD~1"}},
		{name: "max-problems caps the list",
			change: func(p *v1alpha1.ApplicationSourcePlugin) {
				setParam(p, param("baseline", "git:HEAD~1"))
				setParam(p, param("max-problems", "1"))
			},
			want: []string{"REJECTED: 2 problems", "... and 2 more (set parameter max-problems"}},
		{name: "plugin.env reaches the binary as ARGOCD_ENV_",
			change: func(p *v1alpha1.ApplicationSourcePlugin) {
				p.Env = append(p.Env, &v1alpha1.EnvEntry{Name: "BASELINE", Value: "git:HEAD~1"})
				removeParam(p, "baseline")
			},
			want: []string{"REJECTED: 2 problems", "baseline: git:HEAD~1"}},
		{name: "an unknown parameter is an error, not a silently ignored setting",
			change: func(p *v1alpha1.ApplicationSourcePlugin) {
				setParam(p, param("basline", "none"))
			},
			want: []string{"failed exit status 2", "unknown parameter basline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := application(t, "production")
			tt.change(app.Spec.Source.Plugin)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			msg := rejection(t, generateApp(ctx, t, r, app))
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
		})
	}
}

func setParam(p *v1alpha1.ApplicationSourcePlugin, param v1alpha1.ApplicationSourcePluginParameter) {
	removeParam(p, param.Name)
	p.Parameters = append(p.Parameters, param)
}

func removeParam(p *v1alpha1.ApplicationSourcePlugin, name string) {
	kept := p.Parameters[:0]
	for _, q := range p.Parameters {
		if q.Name != name {
			kept = append(kept, q)
		}
	}
	p.Parameters = kept
}

func TestAnnouncedParametersArePluginYAMLs(t *testing.T) {
	r := newPolicyRepo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := announce(ctx, t, r.dir, application(t, "production"))

	cfg, err := plugin.ReadPluginConfig(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.MarshalIndent(got, "", "  ")
	wantJSON, _ := json.MarshalIndent(cfg.Spec.Parameters.Static, "", "  ")
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("announced:\n%s\nplugin.yaml declares:\n%s", gotJSON, wantJSON)
	}
	if len(got) < 10 {
		t.Errorf("only %d parameters announced", len(got))
	}

	// The plugin.yaml under test is the one the install manifests ship.
	shipped, err := os.ReadFile(filepath.Join(repoRoot(), "examples", "install", "kyverno-gate-cmp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(shipped, &cm); err != nil {
		t.Fatal(err)
	}
	tested, err := os.ReadFile(filepath.Join(repoRoot(), "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["plugin.yaml"] != string(tested) {
		t.Errorf("examples/install/kyverno-gate-cmp.yaml ships a different plugin.yaml than the one tested")
	}
}

// Argo CD gives the whole generation one gRPC deadline (60 s by default).
// cmp-server v3.6.1 runs the command with exec.CommandContext at that
// deadline minus 100 ms, which SIGKILLs it: a plugin that is still working
// then says nothing, and the user reads "context deadline exceeded". So the
// only way to a clear message is to stop first: the timeout parameter.
//
// Both cases need a generation that cannot finish before its deadline on any
// machine, fast or slow, idle or loaded. Production's overlay gets a remote
// resource on a canary server that accepts the connection and never answers;
// the Application sets allow-remote=true, which lets the URL through to
// kustomize, whose HTTP loader then waits for the response until a deadline
// ends the run. What stops it is the deadline, never the machine's speed.
func TestDeadlines(t *testing.T) {
	c := newCanary(t)
	r := newPolicyRepo(t)
	// First, so that kyverno-gate reaches the canary as early as it can.
	r.edit(t, "overlays/production/kustomization.yaml",
		"resources:\n  - ../../base\n",
		"resources:\n  - "+c.url("policy.yaml")+"\n  - ../../base\n")
	r.commit(t, "production: a remote resource on a server that never answers")
	waiting := func(t *testing.T) *v1alpha1.Application {
		app := application(t, "production")
		setParam(app.Spec.Source.Plugin, v1alpha1.ApplicationSourcePluginParameter{Name: "allow-remote", String_: ptr("true")})
		return app
	}

	t.Run("timeout parameter below Argo CD's deadline gives our message", func(t *testing.T) {
		app := waiting(t)
		setParam(app.Spec.Source.Plugin, v1alpha1.ApplicationSourcePluginParameter{Name: "timeout", String_: ptr("2s")})
		tmp := tempEntries(t)
		// Far above the budget: only kyverno-gate's own timeout can end this.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		msg := rejection(t, generateApp(ctx, t, r, app))
		for _, w := range []string{
			"`kyverno-gate generate` failed exit status 2: kyverno-gate: overlays/production (app policies-production, revision " +
				r.git(t, "rev-parse", "--short=7", "HEAD") + ") could not be evaluated: gave up after 2s while rendering",
			"raise parameter timeout",
		} {
			if !strings.Contains(msg, w) {
				t.Errorf("error lacks %q:\n%s", w, msg)
			}
		}
		noTempLeft(t, tmp)
	})

	t.Run("Argo CD's deadline first: killed, nothing served", func(t *testing.T) {
		app := waiting(t) // parameter timeout stays 45s, far beyond the deadline
		seen := c.state()
		tmp := tempEntries(t)
		mark := server.log.mark()
		// Generous: cmp-server has long started the command when it kills it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g := generateApp(ctx, t, r, app)
		// The kill and the caller's deadline are 100 ms apart: the repo-server
		// sees one or the other.
		if code := status.Code(g.err); code != codes.DeadlineExceeded && !(code == codes.Unknown && strings.Contains(g.err.Error(), "failed signal: killed")) {
			t.Fatalf("want DeadlineExceeded or the kill at the repo-server, got %v", g.err)
		}
		if len(g.manifests) != 0 {
			t.Errorf("a timed-out generation returned manifests")
		}
		log := server.log.waitForLine(t, mark, `msg="finished call"`, "grpc.method=GenerateManifest ")
		// kyverno-gate was running, and waiting on the canary, when the
		// deadline came.
		got := c.waitFor(func(s canaryState) bool { return len(s.requests) > len(seen.requests) })
		if len(got.requests) == len(seen.requests) {
			t.Fatalf("kyverno-gate never asked the canary for the remote resource (%d connections accepted before, %d now): it did not run, or did not reach kustomize's loader:\n%s",
				seen.accepted, got.accepted, log)
		}
		if req := got.requests[len(seen.requests)]; !strings.HasPrefix(req, "GET /policy.yaml ") {
			t.Errorf("the canary got %q, want kustomize's GET of /policy.yaml", req)
		}
		// If this changes (argoproj/argo-cd#20577 and friends), kyverno-gate's
		// SIGTERM handling starts to matter: it reports the stage it was in.
		if !strings.Contains(log, "failed signal: killed") {
			t.Errorf("cmp-server no longer kills the command at the deadline:\n%s", log)
		}
		// The kill took the process: the kernel closed its connection.
		if got := c.waitFor(func(s canaryState) bool { return s.hungUp == s.accepted }); got.hungUp != got.accepted {
			t.Errorf("%d of %d connections to the canary are still open: kyverno-gate outlived the kill", got.accepted-got.hungUp, got.accepted)
		}
		entries, err := os.ReadDir(filepath.Join(server.workDir, "_cmp_server"))
		if err != nil || len(entries) != 0 {
			t.Errorf("cmp-server left %d work dirs after the kill (%v)", len(entries), err)
		}
		// A SIGKILLed process cleans nothing up: kyverno-gate's own scratch
		// folder (kyverno-gate-<pid>-…, its private TMPDIR) stays, and must
		// hold nothing; the next run removes it.
		left := newEntries(t, tmp)
		if len(left) > 1 {
			t.Errorf("the killed run left %d entries in kyverno-gate's TMPDIR, want at most its own scratch folder: %v", len(left), left)
		}
		for _, n := range left {
			inside, err := os.ReadDir(filepath.Join(server.tmpDir, n))
			switch {
			case !strings.HasPrefix(n, "kyverno-gate-") || err != nil:
				t.Errorf("the killed run left %s in kyverno-gate's TMPDIR, not a scratch folder (%v)", n, err)
			case len(inside) > 0:
				t.Errorf("the killed run's scratch folder %s is not empty: %d entries", n, len(inside))
			default:
				t.Logf("the killed run left its empty scratch folder %s; the next run must remove it", n)
			}
		}
		// The next run: the same generation without allow-remote, refused
		// before anything is fetched.
		seen = c.state()
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		msg := rejection(t, generateApp(ctx, t, r, application(t, "production")))
		for _, w := range []string{"failed exit status 2", "is remote", "allow-remote=true"} {
			if !strings.Contains(msg, w) {
				t.Errorf("without allow-remote, the error lacks %q:\n%s", w, msg)
			}
		}
		if now := c.state(); now.accepted != seen.accepted {
			t.Errorf("without allow-remote, kyverno-gate connected to the canary")
		}
		noTempLeft(t, tmp)
	})
}

// newEntries lists what kyverno-gate's TMPDIR holds that was not in before.
func newEntries(t *testing.T, before []string) []string {
	t.Helper()
	old := map[string]bool{}
	for _, n := range before {
		old[n] = true
	}
	var fresh []string
	for _, n := range tempEntries(t) {
		if !old[n] {
			fresh = append(fresh, n)
		}
	}
	return fresh
}

// tempEntries lists kyverno-gate's TMPDIR (cmp-server's, see startServer),
// but for the result cache, which is meant to stay.
func tempEntries(t *testing.T) []string {
	t.Helper()
	names, err := leftInTemp()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// cacheDirName is kyverno-gate's result cache in its TMPDIR
// (internal/cache.DirName): bounded, keyed by content, kept across
// generations on purpose.
const cacheDirName = "kyverno-gate-cache"

// leftInTemp lists what is in kyverno-gate's TMPDIR besides the cache.
func leftInTemp() ([]string, error) {
	entries, err := os.ReadDir(server.tmpDir)
	var names []string
	for _, e := range entries {
		if e.Name() != cacheDirName {
			names = append(names, e.Name())
		}
	}
	return names, err
}

// noTempLeft fails when kyverno-gate's TMPDIR is not empty; before is what
// was there before this test's generation.
func noTempLeft(t *testing.T, before []string) {
	t.Helper()
	if after := tempEntries(t); len(after) > 0 {
		t.Errorf("kyverno-gate's TMPDIR %s is not empty: %v; new since this test began: %v", server.tmpDir, after, newEntries(t, before))
	}
}

func ptr(s string) *string { return &s }

func TestWithoutDotGit(t *testing.T) {
	// reposerver.plugin.tar.exclusions: .git, as Argo CD's docs recommend.
	r := newPolicyRepo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Lock-file and floor gates need no history: the default works.
	if g := generateApp(ctx, t, r, application(t, "production"), ".git"); g.err != nil {
		t.Fatalf("without .git, baseline auto failed: %v", g.err)
	}
	// A git baseline cannot work and says so.
	app := application(t, "production")
	setParam(app.Spec.Source.Plugin, v1alpha1.ApplicationSourcePluginParameter{Name: "baseline", String_: ptr("git:HEAD~1")})
	msg := rejection(t, generateApp(ctx, t, r, app, ".git"))
	for _, w := range []string{"failed exit status 2", "no git history", "lock"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
}

func TestParallelGenerationsStayIsolated(t *testing.T) {
	clean := newPolicyRepo(t)
	weakened := newPolicyRepo(t)
	weaken(t, weakened)
	type run struct {
		repo   *policyRepo
		env    string
		reject bool
	}
	runs := []run{
		{clean, "production", false}, {weakened, "production", true},
		{clean, "development", false}, {weakened, "staging", false},
	}
	results := make([]generation, len(runs))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, rn := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = generateApp(ctx, t, rn.repo, application(t, rn.env))
		}()
	}
	wg.Wait()
	for i, rn := range runs {
		g := results[i]
		switch {
		case rn.reject && g.err == nil:
			t.Errorf("%s of the weakened repo was vetted", rn.env)
		case rn.reject && !strings.Contains(g.err.Error(), "(app policies-"+rn.env+", revision "+rn.repo.git(t, "rev-parse", "--short=7", "HEAD")+") REJECTED"):
			t.Errorf("%s: wrong rejection: %v", rn.env, g.err)
		case !rn.reject && g.err != nil:
			t.Errorf("%s: %v", rn.env, g.err)
		case !rn.reject:
			want := ids(objects(t, cliGenerate(t, rn.repo, "overlays/"+rn.env)))
			if got := ids(objects(t, g.manifests)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s got another app's output:\n%v\nwant %v", rn.env, got, want)
			}
		}
	}
	// Each request had its own work dir, and cmp-server removed them all.
	entries, _ := os.ReadDir(filepath.Join(server.workDir, "_cmp_server"))
	if len(entries) != 0 {
		t.Errorf("%d work dirs left behind in the sidecar", len(entries))
	}
}
