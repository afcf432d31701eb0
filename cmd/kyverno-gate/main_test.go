package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// runGate runs the CLI in-process the way a shell would.
func runGate(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"kyverno-gate"}, args...), &out, &errb, environ)
	return code, out.String(), errb.String()
}

const configMap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  a: b\n"

func TestExitCodesAndStreams(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{
		"ok/cm.yaml":                 configMap,
		"empty/README.md":            "nothing here",
		"outside/kustomization.yaml": "resources: [../../elsewhere.yaml]\n",
		"remote/kustomization.yaml":  "resources: [https://example.com/x.yaml]\n",
		"exec/kustomization.yaml":    "resources: [cm.yaml]\ngenerators: [fn.yaml]\n",
		"exec/cm.yaml":               configMap,
		"exec/fn.yaml":               "apiVersion: x/v1\nkind: F\nmetadata:\n  name: f\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
	})
	tests := []struct {
		name       string
		args       []string
		environ    []string
		wantCode   int
		wantStdout string // substring; "" means stdout must be empty
		wantStderr string // substring
	}{
		{name: "vetted", args: []string{"generate", "--allow-no-tests", "--repo-root", root, filepath.Join(root, "ok")},
			wantCode: 0, wantStdout: "name: plain"},
		{name: "flags after the path", args: []string{"generate", filepath.Join(root, "ok"), "--repo-root", root, "--allow-no-tests"},
			wantCode: 0, wantStdout: "name: plain"},
		{name: "empty rendering", args: []string{"generate", "--repo-root", root, filepath.Join(root, "empty")},
			wantCode: 2, wantStderr: "rendered no resources"},
		{name: "empty allowed", args: []string{"generate", "--repo-root", root, "--allow-empty", "--allow-no-tests", filepath.Join(root, "empty")},
			wantCode: 0},
		{name: "outside the root", args: []string{"generate", "--repo-root", root, filepath.Join(root, "outside")},
			wantCode: 2, wantStderr: "outside the repository root"},
		{name: "remote base", args: []string{"generate", "--repo-root", root, filepath.Join(root, "remote")},
			wantCode: 2, wantStderr: "allow-remote=true"},
		{name: "exec function", args: []string{"generate", "--repo-root", root, filepath.Join(root, "exec")},
			wantCode: 2, wantStderr: "never run"},
		{name: "bad parameter from Argo CD", args: []string{"generate", filepath.Join(root, "ok")},
			environ: []string{"PARAM_TIMEOUT=soon"}, wantCode: 2, wantStderr: "parameter timeout (from PARAM_TIMEOUT)"},
		{name: "unknown Application parameter", args: []string{"generate", filepath.Join(root, "ok")},
			environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"basline","string":"none"}]`}, wantCode: 2, wantStderr: "unknown parameter basline"},
		{name: "usage error", args: []string{"generate", "a", "b"}, wantCode: 2, wantStderr: "one DIR"},
		{name: "unknown flag", args: []string{"generate", "--bogus"}, wantCode: 2, wantStderr: "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runGate(t, tt.environ, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr)
			}
			if tt.wantStdout == "" && stdout != "" {
				t.Errorf("stdout must be empty, got:\n%s", stdout)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if code != 0 && !strings.HasPrefix(stderr, "kyverno-gate: ") {
				t.Errorf("stderr must start with the one-line summary, got:\n%s", stderr)
			}
		})
	}
}

// Under Argo CD the command runs in <root>/<source path> with parameters in
// the environment; the summary names the source path and the app.
func TestRunsAsArgoCDRunsIt(t *testing.T) {
	root := repotest.WriteTree(t, map[string]string{
		"overlays/prod/kustomization.yaml": "resources: [../../base]\n",
		"base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"base/cm.yaml":                     configMap,
	})
	t.Chdir(filepath.Join(root, "overlays", "prod"))
	environ := []string{
		"ARGOCD_APP_NAME=policies-prod", "ARGOCD_APP_NAMESPACE=kyverno", "ARGOCD_APP_SOURCE_PATH=overlays/prod",
		"ARGOCD_APP_REVISION=0123456789", "KUBE_VERSION=1.32.0", "KUBE_API_VERSIONS=v1,apps/v1",
	}
	// The base is reached through ../../base: the root comes from the source path.
	code, stdout, stderr := runGate(t, append(environ, "PARAM_ALLOW_NO_TESTS=true"), "generate")
	if code != 0 || !strings.Contains(stdout, "name: plain") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Parameters from the Application change behaviour: allow-remote lets a
	// remote resource through to kustomize, and the time budget ends the
	// rendering that waits for it. The server never answers, so no machine
	// is fast enough to finish first.
	overlay := "resources: [" + neverAnswers(t, "cm.yaml") + ", ../../base]\n"
	if err := os.WriteFile(filepath.Join(root, "overlays", "prod", "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runGate(t, append(environ, "PARAM_ALLOW_NO_TESTS=true", "PARAM_ALLOW_REMOTE=true", "PARAM_TIMEOUT=200ms"), "generate")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "overlays/prod (app policies-prod, revision 0123456789) could not be evaluated: gave up after 200ms while rendering") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// neverAnswers returns an http:// URL on a loopback server that accepts
// connections and never writes a byte, holding them until the test ends:
// kustomize's HTTP loader waits on it until a deadline ends the run. When
// the test ends the connections close, and a rendering abandoned on it
// fails and returns.
func neverAnswers(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				conn.Close()
			} else {
				conns = append(conns, conn)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/" + path
}

func TestGenerateIsDeterministic(t *testing.T) {
	dir := filepath.Join("..", "..", "render", "testdata", "repo", "current")
	var first string
	for i := 0; i < 3; i++ {
		code, stdout, stderr := runGate(t, nil, "generate", "--allow-no-tests", dir)
		if code != 0 {
			t.Fatalf("code %d: %s", code, stderr)
		}
		if i == 0 {
			first = stdout
		} else if stdout != first {
			t.Fatalf("run %d differs", i)
		}
	}
}

// plugin.yaml, the install ConfigMap and the Dockerfile must agree with the
// binary's parameter table and install path.
func TestShippedPluginConfigAgrees(t *testing.T) {
	want := settings.PluginYAML()
	got, err := os.ReadFile(filepath.Join("..", "..", "plugin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plugin.yaml is stale; run `make plugin.yaml`")
	}
	cmData, err := os.ReadFile(filepath.Join("..", "..", "examples", "install", "kyverno-gate-cmp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(cmData, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["plugin.yaml"] != string(want) {
		t.Errorf("examples/install/kyverno-gate-cmp.yaml does not carry plugin.yaml; regenerate it")
	}
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"COPY --from=build /out/kyverno-gate /usr/local/bin/" + settings.Command,
		"COPY plugin.yaml /home/argocd/cmp-server/config/plugin.yaml",
		"USER 999:999",
		`ENTRYPOINT ["/usr/local/bin/` + settings.Command + `"]`,
		"go build -trimpath", // more in TestDockerfileRules
	} {
		if !bytes.Contains(dockerfile, []byte(line)) {
			t.Errorf("Dockerfile lacks %q", line)
		}
	}
	// The image's entrypoint is the CLI; the sidecar runs cmp-server
	// because the install manifests say so.
	for _, f := range []string{"argocd-repo-server-patch.yaml", "values-argo-cd.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "install", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("command: [/var/run/argocd/argocd-cmp-server]")) {
			t.Errorf("examples/install/%s does not run the sidecar as argocd-cmp-server", f)
		}
	}
	if !bytes.Contains(want, []byte("command: ["+settings.Command+", generate]")) {
		t.Errorf("plugin.yaml does not run %s generate", settings.Command)
	}
	if bytes.Contains(want, []byte("discover")) {
		t.Errorf("plugin.yaml must not declare discovery: it would claim other apps")
	}
}

func TestNormalizeArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"kyverno-gate generate dir --timeout 5s", "kyverno-gate generate --timeout 5s dir"},
		{"kyverno-gate generate dir --allow-empty --timeout=5s", "kyverno-gate generate --allow-empty --timeout=5s dir"},
		{"kyverno-gate generate --tests a dir --tests b", "kyverno-gate generate --tests a --tests b dir"},
		{"kyverno-gate generate -- --weird-dir", "kyverno-gate generate --weird-dir"},
	}
	for _, tt := range tests {
		if got := strings.Join(normalizeArgs(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
