//go:build loop

package loop

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/internal/kubetest"
)

// envs are the example's environments. Each has its own cluster: the
// example's three Applications render the same cluster-scoped
// ClusterPolicies, so one Argo CD that manages all three must send them to
// three clusters (production is the in-cluster destination the example
// names; development and staging are registered clusters).
var envs = []string{"development", "staging", "production"}

// loop is everything the suite started.
type loop struct {
	root     string                       // the kyverno-gate checkout
	dir      string                       // short temp dir (unix socket paths)
	clusters map[string]*kubetest.Cluster // by environment; production runs Argo CD
	repo     *gitRepo
	procs    []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// repoRoot is the kyverno-gate checkout (this package is e2e/loop).
func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

func gateBinary(t *testing.T, root string) string {
	bin := os.Getenv("KYVERNO_GATE_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "kyverno-gate")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no kyverno-gate binary at %s: run `make loop` (it builds one) or set KYVERNO_GATE_BIN", bin)
	}
	return bin
}

// moduleDir is the folder of module mod as the module in dir requires it.
func moduleDir(t *testing.T, dir, mod string) string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s in %s: %v", mod, dir, err)
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		t.Fatalf("%s is not downloaded (go mod download in %s)", mod, dir)
	}
	return d
}

func startLoop(t *testing.T) *loop {
	l := &loop{root: repoRoot(t), clusters: map[string]*kubetest.Cluster{}}
	gate := gateBinary(t, l.root)
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
	}
	// Unix socket paths are limited to 108 bytes.
	l.dir, err = os.MkdirTemp("", "kg-loop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(l.dir) })
	t.Cleanup(func() {
		if t.Failed() {
			l.dumpLogs(t)
		}
		l.stop()
	})

	// The live binaries are built by the main module's Go (this module's
	// Go 1.27 would key, and build, another copy of them).
	if os.Getenv("LIVE_BIN") == "" {
		cmd := exec.Command(filepath.Join(l.root, "live", "build.sh"))
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("live/build.sh: %v", err)
		}
		t.Setenv("LIVE_BIN", strings.TrimSpace(string(out)))
	}
	kyvernoDir := moduleDir(t, l.root, "github.com/kyverno/kyverno")
	argoDir := moduleDir(t, filepath.Join(l.root, "e2e"), "github.com/argoproj/argo-cd/v3")
	for _, env := range envs {
		l.clusters[env] = kubetest.Start(t, kubetest.Options{KyvernoCRDs: true, KyvernoDir: kyvernoDir})
		// The Kyverno install's namespace (PolicyExceptions live there).
		l.apply(t, env, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "kyverno"}})
	}
	prod := l.clusters["production"]

	// Argo CD's CRDs and its namespace's ConfigMaps and Secrets from its own
	// install.yaml (the API server would create server.secretkey and the
	// default project on its first start; no API server runs here).
	for _, f := range []string{"application-crd.yaml", "appproject-crd.yaml", "applicationset-crd.yaml"} {
		l.kubectl(t, "production", "apply", "--server-side", "-f", filepath.Join(argoDir, "manifests", "crds", f))
	}
	// Established, then served (discovery lags behind the condition).
	l.waitFor(t, "Argo CD's CRDs served", 2*time.Minute, func() bool {
		_, err := prod.Kubectl("get", "applications.argoproj.io,appprojects.argoproj.io,applicationsets.argoproj.io", "-A")
		return err == nil
	})
	l.apply(t, "production", map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "argocd"}})
	install, err := os.ReadFile(filepath.Join(argoDir, "manifests", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(install), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil || obj == nil {
			continue
		}
		if k := obj["kind"]; k != "ConfigMap" && k != "Secret" {
			continue
		}
		meta := obj["metadata"].(map[string]any)
		meta["namespace"] = "argocd"
		if meta["name"] == "argocd-secret" {
			obj["stringData"] = map[string]any{"server.secretkey": randomString()}
		}
		l.apply(t, "production", obj)
	}
	l.apply(t, "production", map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
		"metadata": map[string]any{"name": "default", "namespace": "argocd"},
		"spec": map[string]any{
			"sourceRepos":              []string{"*"},
			"destinations":             []any{map[string]any{"server": "*", "namespace": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
		},
	})
	// Development and staging: clusters registered as Argo CD does
	// (`argocd cluster add` writes such a Secret), with the admin token.
	for _, env := range []string{"development", "staging"} {
		c := l.clusters[env]
		ca, err := os.ReadFile(c.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := json.Marshal(map[string]any{
			"bearerToken":     c.Token("admin"),
			"tlsClientConfig": map[string]any{"caData": base64.StdEncoding.EncodeToString(ca)},
		})
		l.apply(t, "production", map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": "cluster-" + env, "namespace": "argocd",
				"labels": map[string]any{"argocd.argoproj.io/secret-type": "cluster"}},
			"stringData": map[string]any{"name": env, "server": c.URL, "config": string(cfg)},
		})
	}

	// Redis, as Argo CD's install runs it: a real server, no persistence.
	redisPort := freePort(t)
	l.run(t, "redis", nil, redisBin, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", l.mkdir(t, "redis"))
	l.waitTCP(t, "redis", redisPort)
	redisAddr := "127.0.0.1:" + strconv.Itoa(redisPort)

	// The sidecar, as examples/install wires it: argocd-cmp-server with its
	// args, plugin.yaml from the kyverno-gate-cmp ConfigMap, the socket dir
	// shared with the repo-server, its own /tmp as ARGOCD_CMP_WORKDIR, and
	// kyverno-gate on PATH (the image has it in /usr/local/bin).
	sidecar := l.sidecar(t)
	sockDir := l.mkdir(t, "plugins")
	configDir := l.mkdir(t, "cmp-config")
	if err := os.WriteFile(filepath.Join(configDir, "plugin.yaml"), []byte(sidecar.pluginYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	pathDir := l.mkdir(t, "cmp-bin")
	if err := os.Symlink(gate, filepath.Join(pathDir, "kyverno-gate")); err != nil {
		t.Fatal(err)
	}
	cmpTmp := l.mkdir(t, "cmp-tmp")
	cmpEnv := []string{
		"ARGOCD_PLUGINSOCKFILEPATH=" + sockDir,
		"HOME=" + l.mkdir(t, "cmp-home"),
		"TMPDIR=" + cmpTmp,
		"PATH=" + pathDir + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	for k, v := range sidecar.env {
		if v == "/tmp" {
			v = cmpTmp
		}
		cmpEnv = append(cmpEnv, k+"="+v)
	}
	l.runRole(t, "argocd-cmp-server", cmpEnv, append(sidecar.args, "--config-dir-path", configDir, "--logformat", "text")...)
	l.waitFile(t, "argocd-cmp-server", filepath.Join(sockDir, "kyverno-gate-v1.sock"))

	// argocd-repo-server: plain gRPC on loopback, the same socket dir, and
	// on PATH the image's git-verify-wrapper.sh, which v3.6.1 runs for
	// every generation even with GPG off (a missing one fails it with
	// "permission denied").
	repoPort := freePort(t)
	repoBin := l.mkdir(t, "repo-bin")
	wrapper, err := os.ReadFile(filepath.Join(argoDir, "hack", "git-verify-wrapper.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoBin, "git-verify-wrapper.sh"), wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	l.runRole(t, "argocd-repo-server", []string{
		"ARGOCD_PLUGINSOCKFILEPATH=" + sockDir,
		"ARGOCD_GPG_ENABLED=false",
		"HOME=" + l.mkdir(t, "repo-home"),
		"TMPDIR=" + l.mkdir(t, "repo-tmp"),
		"ARGOCD_TLS_DATA_PATH=" + l.mkdir(t, "tls"),
		"ARGOCD_SSH_DATA_PATH=" + l.mkdir(t, "ssh"),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"PATH=" + repoBin + string(os.PathListSeparator) + os.Getenv("PATH"),
		// Its git credential socket, by default /tmp/reposerver-ask-pass.sock.
		"ARGOCD_ASK_PASS_SOCK=" + filepath.Join(l.dir, "ask-pass.sock"),
	}, "--address", "127.0.0.1", "--port", strconv.Itoa(repoPort),
		// --disable-tls refuses the default --client-ca-path (v3.6.1).
		"--client-ca-path=",
		"--metrics-address", "127.0.0.1", "--metrics-port", strconv.Itoa(freePort(t)),
		"--redis", redisAddr, "--disable-tls", "--loglevel", "info", "--logformat", "text")
	l.waitTCP(t, "argocd-repo-server", repoPort)

	// argocd-application-controller: the production cluster is its own
	// (in-cluster, kubernetes.default.svc), through the kubeconfig as
	// Argo CD's own local runs do (ARGOCD_FAKE_IN_CLUSTER).
	l.runRole(t, "argocd-application-controller", []string{
		"ARGOCD_FAKE_IN_CLUSTER=true",
		"KUBECONFIG=" + prod.Kubeconfig,
		"HOME=" + l.mkdir(t, "controller-home"),
		"TMPDIR=" + l.mkdir(t, "controller-tmp"),
	}, "--kubeconfig", prod.Kubeconfig, "--namespace", "argocd",
		"--repo-server", "127.0.0.1:"+strconv.Itoa(repoPort), "--repo-server-plaintext",
		"--redis", redisAddr, "--metrics-port", strconv.Itoa(freePort(t)),
		"--status-processors", "4", "--operation-processors", "2",
		"--loglevel", "info", "--logformat", "text")

	l.repo = newGitRepo(t, l.root, l.mkdir(t, "git"))
	return l
}

// sidecarSpec is what examples/install gives the kyverno-gate container.
type sidecarSpec struct {
	args       []string
	env        map[string]string
	pluginYAML string
}

func (l *loop) sidecar(t *testing.T) sidecarSpec {
	var patch struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name    string
						Command []string
						Args    []string
						Env     []struct{ Name, Value string }
					}
				}
			}
		}
	}
	readYAML(t, filepath.Join(l.root, "examples", "install", "argocd-repo-server-patch.yaml"), &patch)
	var cm struct{ Data map[string]string }
	readYAML(t, filepath.Join(l.root, "examples", "install", "kyverno-gate-cmp.yaml"), &cm)
	for _, c := range patch.Spec.Template.Spec.Containers {
		if c.Name != "kyverno-gate" {
			continue
		}
		if len(c.Command) != 1 || filepath.Base(c.Command[0]) != "argocd-cmp-server" {
			t.Fatalf("the install's sidecar runs %v, not argocd-cmp-server", c.Command)
		}
		s := sidecarSpec{args: c.Args, env: map[string]string{}, pluginYAML: cm.Data["plugin.yaml"]}
		for _, e := range c.Env {
			s.env[e.Name] = e.Value
		}
		if s.pluginYAML == "" {
			t.Fatal("the kyverno-gate-cmp ConfigMap has no plugin.yaml")
		}
		return s
	}
	t.Fatal("examples/install has no kyverno-gate container")
	return sidecarSpec{}
}

func readYAML(t *testing.T, path string, into any) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func (l *loop) mkdir(t *testing.T, name string) string {
	d := filepath.Join(l.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// runRole starts this test binary as one of Argo CD's components.
func (l *loop) runRole(t *testing.T, role string, env []string, args ...string) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l.run(t, role, append(env, roleEnv+"="+role), self, args...)
}

func (l *loop) run(t *testing.T, name string, env []string, path string, args ...string) {
	logPath := filepath.Join(l.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	l.procs = append(l.procs, p)
}

// stop stops the processes in reverse order (the controller first).
func (l *loop) stop() {
	for i := len(l.procs) - 1; i >= 0; i-- {
		p := l.procs[i]
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	l.procs = nil
}

// exited fails the test when a component is gone.
func (l *loop) exited(t *testing.T) {
	for _, p := range l.procs {
		select {
		case <-p.done:
			t.Fatalf("%s exited (log %s)", p.name, p.log)
		default:
		}
	}
}

func (l *loop) dumpLogs(t *testing.T) {
	for _, p := range l.procs {
		data, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("--- %s (last %d lines)\n%s", p.name, len(lines), strings.Join(lines, "\n"))
	}
	for _, env := range envs {
		if c := l.clusters[env]; c != nil {
			t.Logf("--- cluster %s\n%s", env, c.Logs())
		}
	}
}

func (l *loop) waitTCP(t *testing.T, name string, port int) {
	l.waitFor(t, name+" listening", 2*time.Minute, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (l *loop) waitFile(t *testing.T, name, path string) {
	l.waitFor(t, name+" socket", 2*time.Minute, func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

// waitFor polls ok every second until it holds; a component that exits
// or the (generous) limit fails the test.
func (l *loop) waitFor(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		l.exited(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s", what, limit)
		}
		time.Sleep(time.Second)
	}
}

func (l *loop) kubectl(t *testing.T, env string, args ...string) []byte {
	t.Helper()
	out, err := l.clusters[env].Kubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apply applies one object server-side with kubectl, as a user would.
func (l *loop) apply(t *testing.T, env string, obj any) {
	t.Helper()
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(l.dir, "apply-"+randomString()+".yaml")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f)
	l.kubectl(t, env, "apply", "--server-side", "--force-conflicts", "-f", f)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func randomString() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// gitRepo is the policy repository: a bare repository that the
// repo-server fetches from (file://, as Argo CD's own e2e suite does), and a
// working clone the tests commit in and push from.
type gitRepo struct {
	bare, work string
	URL        string
}

func newGitRepo(t *testing.T, root, dir string) *gitRepo {
	r := &gitRepo{bare: filepath.Join(dir, "policies.git"), work: filepath.Join(dir, "work")}
	r.URL = "file://" + r.bare
	r.gitIn(t, dir, "init", "-q", "--bare", "-b", "main", r.bare)
	if out, err := exec.Command("cp", "-a", filepath.Join(root, "examples", "policy-repo")+"/.", r.work).CombinedOutput(); err != nil {
		t.Fatalf("copy the example: %v\n%s", err, out)
	}
	r.git(t, "init", "-q", "-b", "main")
	r.git(t, "remote", "add", "origin", r.bare)
	r.commit(t, "policies")
	r.git(t, "push", "-q", "origin", "main", "main:release/production")
	return r
}

func (r *gitRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	return r.gitIn(t, r.work, args...)
}

func (r *gitRepo) gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=loop", "GIT_AUTHOR_EMAIL=loop@example.com",
		"GIT_COMMITTER_NAME=loop", "GIT_COMMITTER_EMAIL=loop@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) commit(t *testing.T, msg string) string {
	t.Helper()
	r.git(t, "add", "-A")
	r.git(t, "commit", "-q", "-m", msg)
	return r.git(t, "rev-parse", "HEAD")
}

// on checks out branch (tracking origin) in the working clone.
func (r *gitRepo) on(t *testing.T, branch string) {
	t.Helper()
	r.git(t, "fetch", "-q", "origin")
	r.git(t, "checkout", "-q", "-B", branch, "origin/"+branch)
}

// change edits files on branch, commits and pushes; it returns the commit.
func (r *gitRepo) change(t *testing.T, branch, msg string, edit func(work string)) string {
	t.Helper()
	r.on(t, branch)
	edit(r.work)
	sha := r.commit(t, msg)
	r.git(t, "push", "-q", "origin", "HEAD:"+branch)
	return sha
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s no longer contains the text this test edits:\n%s", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lastLines returns the last n lines of a file, for messages.
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
