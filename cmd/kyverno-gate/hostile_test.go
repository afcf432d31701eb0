package main

import (
	"bufio"
	"bytes"
	"errors"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The hostile-repository suite (issue 11): a copy of the example policy
// repository, changed the way an attacker who can push to it (or edit the
// Application) would, run as the real command — the test binary re-executed
// as kyverno-gate, so the network filter and the memory ceiling are on. The
// checkout sits beside a secret and another tenant's checkout, as in
// cmp-server's work dir. Each case asserts the exit code, empty stdout, the
// one-line reason, that neither the secret nor a file outside the checkout
// was opened (strace), that no connection reached a loopback canary, and the
// time.

const hostileToken = "S3CRET-TOKEN-of-another-tenant"

type hostileCase struct {
	name string
	// files are written into the repository; OUT stands for the outside
	// secret's path, CANARY for the canary's http://host:port.
	files   map[string]string
	setup   func(t *testing.T, repo, outer string)
	dir     string   // rendered, relative to the repository; overlays/production by default
	args    []string // after "generate"; the rendered dir is added last
	environ []string
	argo    bool // run in the overlay as Argo CD does (ARGOCD_APP_* set)
	code    int
	want    string // in the first line of stderr
}

func hostileCases() []hostileCase {
	prod := "overlays/production/kustomization.yaml"
	k := func(extra string) map[string]string {
		return map[string]string{prod: "resources:\n  - ../../base\n" + extra}
	}
	suite := func(fields string) map[string]string {
		return map[string]string{"tests/evil/kyverno-test.yaml": "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: evil\npolicies: [../../base/validation/require-labels.yaml]\n" + fields +
			"results:\n  - policy: require-labels\n    rule: check-pod-labels\n    kind: ConfigMap\n    resources: [x/other-tenant]\n    result: fail\n"}
	}
	return []hostileCase{
		// The control: the untouched copy is vetted, and the trace sees the
		// repository's files (so the checks below can fail).
		{name: "control", code: 0, want: "vetted"},
		// Paths that leave the checkout.
		{name: "resource by relative path", files: k("  - ../../../secret.yaml\n"), code: 2, want: "secret.yaml is outside the repository root"},
		{name: "resource by absolute path", files: k("  - OUT\n"), code: 2, want: "is outside the repository root"},
		{name: "resource through a symlink", files: k("  - leak.yaml\n"), code: 2, want: "leak.yaml is outside the repository root",
			setup: func(t *testing.T, repo, outer string) {
				os.Symlink(filepath.Join(outer, "secret.yaml"), filepath.Join(repo, "overlays/production/leak.yaml"))
			}},
		{name: "base through a symlinked folder", files: k("  - tenant\n"), code: 2, want: "is outside the repository root",
			setup: func(t *testing.T, repo, outer string) {
				os.Symlink(filepath.Join(outer, "other-tenant"), filepath.Join(repo, "overlays/production/tenant"))
			}},
		{name: "patch file outside", files: map[string]string{prod: "resources: [../../base]\npatches:\n  - path: OUT\n"}, code: 2, want: "is outside the repository root"},
		{name: "configMapGenerator file outside", files: map[string]string{prod: "resources: [../../base]\nconfigMapGenerator:\n  - name: x\n    files: [OUT]\n"},
			code: 2, want: "is outside the repository root"},
		{name: "symlink loop", files: k("  - loop.yaml\n"), code: 2, want: "too many levels of symbolic links",
			setup: func(t *testing.T, repo, outer string) {
				os.Symlink("loop.yaml", filepath.Join(repo, "overlays/production/loop.yaml"))
			}},
		{name: "kustomization cycle", files: map[string]string{prod: "resources: [../../base, ../staging]\n", "overlays/staging/kustomization.yaml": "resources: [../production]\n"},
			code: 2, want: "cycle"},
		// Test files that name what is outside.
		{name: "test resources outside", files: suite("resources: [OUT]\n"), code: 1, want: "REJECTED"},
		{name: "test userinfo through ..", files: suite("resources: [../require-labels/resource.yaml]\nuserinfo: ../../../secret.yaml\n"), code: 1, want: "REJECTED"},
		{name: "test variables outside", files: suite("resources: [../require-labels/resource.yaml]\nvariables: OUT\n"), code: 1, want: "REJECTED"},
		{name: "test resource remote", files: suite("resources: [CANARY/x.yaml]\n"), code: 1, want: "REJECTED"},
		{name: "policy that looks something up during tests", code: 1, want: "network off",
			files: map[string]string{prod: "resources: [../../base, phone.yaml]\n",
				"overlays/production/phone.yaml": "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata:\n  name: phone-home\nspec:\n  validationActions: [Deny]\n  matchConstraints:\n    resourceRules:\n      - apiGroups: [\"\"]\n        apiVersions: [v1]\n        operations: [CREATE]\n        resources: [pods]\n  variables:\n    - name: r\n      expression: http.Get(\"http://kyverno-gate-canary.invalid/x\")\n  validations:\n    - expression: \"variables.r != null\"\n",
				"tests/phone/kyverno-test.yaml":  "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: phone\npolicies: [../../overlays/production/phone.yaml]\nresources: [../require-labels/resource.yaml]\nresults:\n  - policy: phone-home\n    isValidatingPolicy: true\n    kind: Pod\n    resources: [apps/pod-with-labels]\n    result: pass\n"}},
		// The network, in every spelling and place.
		{name: "remote resource", files: k("  - CANARY/x.yaml\n"), code: 2, want: "is remote"},
		{name: "remote resource, upper-case scheme", files: k("  - " + "HTTP" + "://CANARYHOST/x.yaml\n"), code: 2, want: "is remote"},
		{name: "remote git base", files: k("  - github.com/kyverno/policies//pod-security?ref=main\n"), code: 2, want: "is remote"},
		{name: "file URL base", files: k("  - file:///etc\n"), code: 2, want: "reads outside the repository"},
		{name: "remote patch", files: map[string]string{prod: "resources: [../../base]\npatches:\n  - path: CANARY/p.yaml\n"}, code: 2, want: "is remote"},
		{name: "generator config with a remote file", files: map[string]string{prod: "resources: [../../base]\ngenerators:\n  - gen.yaml\n",
			"overlays/production/gen.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata:\n  name: x\nfiles: [k=CANARY/f]\n"},
			code: 2, want: "names remote"},
		{name: "helm chart pulled", files: map[string]string{prod: "helmCharts:\n  - name: kyverno\n    repo: CANARY/charts\n"}, args: []string{"--enable-helm"},
			code: 2, want: "would be pulled from"},
		// Programs.
		{name: "exec KRM function", files: map[string]string{prod: "resources: [../../base]\ngenerators: [fn.yaml]\n",
			"overlays/production/fn.yaml": "apiVersion: example.com/v1\nkind: Gen\nmetadata:\n  name: g\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n"},
			code: 2, want: "never run"},
		{name: "legacy plugin", files: map[string]string{prod: "resources: [../../base]\ngenerators: [p.yaml]\n",
			"overlays/production/p.yaml": "apiVersion: someteam.example.com/v1\nkind: ChartInflator\nmetadata:\n  name: x\n"},
			code: 2, want: "never run"},
		// Parsers.
		{name: "alias bomb", files: map[string]string{prod: "resources: [../../base, bomb.yaml]\n", "overlays/production/bomb.yaml": aliasBomb()},
			code: 2, want: "YAML bomb"},
		{name: "nesting bomb", files: map[string]string{prod: "resources: [../../base, deep.yaml]\n",
			"overlays/production/deep.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a: " + strings.Repeat("[", 200_000) + "\n"},
			code: 2, want: "deep.yaml"},
		{name: "duplicate key in a Secret", files: map[string]string{prod: "resources: [../../base, s.yaml]\n",
			"overlays/production/s.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: " + hostileToken + "\n  token: " + hostileToken + "\n"},
			code: 2, want: `mapping key "token" already defined`},
		{name: "malformed separator", files: map[string]string{prod: "resources: [../../base, s.yaml]\n",
			"overlays/production/s.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n--- " + hostileToken + "\n"},
			code: 2, want: "invalid document separator"},
		{name: "invalid UTF-8", files: map[string]string{prod: "resources: [../../base, u.yaml]\n",
			"overlays/production/u.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \xff\xfe\n"},
			code: 2, want: "u.yaml"},
		{name: "oversized file", files: map[string]string{prod: "resources: [../../base, big.yaml]\n",
			"overlays/production/big.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  a: " + strings.Repeat("x", 17<<20) + "\n"},
			code: 2, want: "big.yaml is over the 16 MiB limit for one file"},
		{name: "FIFO", files: k("  - pipe.yaml\n"), code: 2, want: "pipe.yaml is not a regular file",
			setup: func(t *testing.T, repo, outer string) {
				syscall.Mkfifo(filepath.Join(repo, "overlays/production/pipe.yaml"), 0o644)
			}},
		{name: "device through a symlink", files: k("  - zero.yaml\n"), code: 2, want: "is outside the repository root",
			setup: func(t *testing.T, repo, outer string) {
				os.Symlink("/dev/zero", filepath.Join(repo, "overlays/production/zero.yaml"))
			}},
		// Parameters, as an Application sets them.
		{name: "tests parameter outside", argo: true, environ: []string{"PARAM_TESTS=../../../other-tenant"}, code: 2, want: "is outside the repository root"},
		{name: "repo-root parameter above the checkout", argo: true, environ: []string{"PARAM_REPO_ROOT=.."}, code: 2, want: "is outside the checkout"},
		{name: "repo-root parameter absolute", argo: true, environ: []string{"PARAM_REPO_ROOT=/"}, code: 2, want: "is outside the checkout"},
		{name: "baseline file outside", argo: true, environ: []string{"PARAM_BASELINE=file:OUT"}, code: 2, want: "is outside the repository root"},
		{name: "unknown parameter", argo: true, environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"exec","string":"/bin/sh"}]`}, code: 2, want: "unknown parameter exec"},
	}
}

// aliasBomb is a "billion laughs" document of a few hundred bytes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 12; i++ {
		b.WriteString("x" + itoa(i) + ": &a" + itoa(i) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + itoa(i-1))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// canary counts the connections it accepts and never answers them.
type canary struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newCanary(t *testing.T) *canary {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &canary{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			defer conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

func TestHostileRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the command ~35 times")
	}
	strace, _ := exec.LookPath("strace")
	if strace == "" && os.Getenv("CI") != "" {
		t.Fatal("strace is needed to prove that no outside file is opened (.ci/run installs it)")
	}
	can := newCanary(t)
	host := can.ln.Addr().String()
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			outer := t.TempDir()
			secret := filepath.Join(outer, "secret.yaml")
			writeFile(t, secret, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other-tenant\n  namespace: x\ndata:\n  token: "+hostileToken+"\n")
			writeFile(t, filepath.Join(outer, "other-tenant", "kustomization.yaml"), "resources: [../secret.yaml]\n")
			writeFile(t, filepath.Join(outer, "other-tenant", "kyverno-test.yaml"), "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: other\npolicies: [../secret.yaml]\nresources: [../secret.yaml]\nresults: []\n")
			repo := filepath.Join(outer, "repo")
			repotest.CopyTree(t, filepath.Join("..", "..", "examples", "policy-repo"), repo)
			for p, c := range tc.files {
				c = strings.NewReplacer("OUT", secret, "CANARYHOST", host, "CANARY", "http://"+host).Replace(c)
				writeFile(t, filepath.Join(repo, p), c)
			}
			if tc.setup != nil {
				tc.setup(t, repo, outer)
			}
			dir := tc.dir
			if dir == "" {
				dir = "overlays/production"
			}
			environ := []string{"TMPDIR=" + filepath.Join(outer, "tmp")}
			os.Mkdir(filepath.Join(outer, "tmp"), 0o700)
			for _, e := range tc.environ {
				environ = append(environ, strings.ReplaceAll(e, "OUT", secret))
			}
			args := append([]string{"generate"}, tc.args...)
			cwd := ""
			if tc.argo {
				cwd = filepath.Join(repo, dir)
				environ = append(environ, "ARGOCD_APP_NAME=policies-production", "ARGOCD_APP_NAMESPACE=argocd", "ARGOCD_APP_SOURCE_PATH="+dir)
			} else {
				args = append(args, filepath.Join(repo, dir))
			}
			before := can.accepted.Load()
			res := runTraced(t, strace, cwd, environ, args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", res.code, tc.code, res.stderr)
			}
			if control := tc.name == "control"; control != (res.stdout != "") {
				t.Errorf("stdout (control %v):\n%.500s", control, res.stdout)
			}
			first, _, _ := strings.Cut(res.stderr, "\n")
			t.Logf("%s", strings.ReplaceAll(first, outer, "<outer>"))
			if !strings.HasPrefix(first, "kyverno-gate: ") || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr lacks %q; first line:\n%s\nall:\n%s", tc.want, first, res.stderr)
			}
			if tc.code == 1 && !strings.Contains(res.stderr, "outside the repository root") && !strings.Contains(res.stderr, "is remote") && !strings.Contains(res.stderr, "network off") {
				t.Errorf("the rejection does not say what was refused:\n%s", res.stderr)
			}
			if strings.Contains(res.stderr, hostileToken) {
				t.Errorf("stderr carries the secret:\n%s", res.stderr)
			}
			if n := can.accepted.Load() - before; n != 0 {
				t.Errorf("%d connections reached the canary", n)
			}
			if res.took > 45*time.Second {
				t.Errorf("took %s, over the time budget", res.took)
			}
			if tc.name == "control" && strace != "" && !contains(res.opened, filepath.Join(repo, dir, "kustomization.yaml")) {
				t.Errorf("strace saw none of the repository's own files: the trace does not work (%d opens)", len(res.opened))
			}
			for _, p := range res.opened {
				if strings.HasPrefix(p, outer+"/") && !strings.HasPrefix(p, repo+"/") && p != repo && !strings.HasPrefix(p, filepath.Join(outer, "tmp")) {
					t.Errorf("opened %s, outside the checkout", p)
				}
			}
			// Only the result cache (bounded, keyed by content) may stay.
			entries, _ := os.ReadDir(filepath.Join(outer, "tmp"))
			for _, e := range entries {
				if e.Name() != cache.DirName {
					t.Errorf("left %s in TMPDIR", e.Name())
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type traced struct {
	code           int
	stdout, stderr string
	took           time.Duration
	opened         []string // absolute paths opened successfully (with strace)
}

var openLine = regexp.MustCompile(`open(?:at|at2)?\((?:AT_FDCWD|\d+), "([^"]+)".* = \d+`)

// runTraced runs the test binary as kyverno-gate, under strace when it is
// there, and returns what it printed and the files it opened.
func runTraced(t *testing.T, strace, cwd string, environ []string, args ...string) traced {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "strace.log")
	var cmd *exec.Cmd
	if strace != "" {
		cmd = exec.Command(strace, append([]string{"-f", "-qq", "-e", "trace=open,openat,openat2", "-o", log, self}, args...)...)
	} else {
		cmd = exec.Command(self, args...)
	}
	cmd.Dir = cwd
	cmd.Env = append(append(os.Environ(), "KYVERNO_GATE_MAIN=1"), environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	res := traced{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	if strace != "" {
		f, err := os.Open(log)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := openLine.FindStringSubmatch(sc.Text()); m != nil && filepath.IsAbs(m[1]) {
				res.opened = append(res.opened, filepath.Clean(m[1]))
			}
		}
	}
	return res
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
