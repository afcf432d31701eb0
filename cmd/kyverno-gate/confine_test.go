package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The network filter and the memory watchdog are process-wide, so tests of
// them run the test binary again as the command itself: with
// KYVERNO_GATE_MAIN=1, TestMain calls main() with the arguments given.
func TestMain(m *testing.M) {
	if os.Getenv("KYVERNO_GATE_MAIN") == "1" {
		if os.Getenv("KYVERNO_GATE_DIVERGE") == "1" {
			divergeThread()
		}
		main()
	}
	os.Exit(m.Run())
}

// runMain runs the test binary as kyverno-gate with args and environ added.
func runMain(t *testing.T, environ []string, args ...string) (code int, stdout, stderr string, took time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "KYVERNO_GATE_MAIN=1"), environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	took = time.Since(start)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errb.String(), took
}

// hugeConfigMap is one ConfigMap of a million keys: 12 MiB, under the
// 16 MiB limit for one file, but well over 1 GB once kustomize holds it.
func hugeConfigMap() []byte {
	var b bytes.Buffer
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n")
	for i := 0; i < 1_000_000; i++ {
		fmt.Fprintf(&b, "  k%d: v\n", i)
	}
	return b.Bytes()
}

func TestProcessLimits(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big.yaml": // 17 MiB, one byte of YAML after another
			w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  a: \""))
			w.Write(bytes.Repeat([]byte("x"), 17<<20))
			w.Write([]byte("\"\n"))
		case "/small.yaml":
			w.Write([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remote-small\ndata:\n  a: b\n"))
		default:
			http.NotFound(w, r)
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	url := "http://" + l.Addr().String()

	root := repotest.WriteTree(t, map[string]string{
		"big/kustomization.yaml":   "resources: [" + url + "/big.yaml]\n",
		"small/kustomization.yaml": "resources: [" + url + "/small.yaml]\n",
		"ok/cm.yaml":               configMap,
		"policy.yaml": "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: p\nspec:\n  rules:\n" +
			"    - name: r\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n" +
			"      validate: {failureAction: Enforce, message: m, pattern: {metadata: {name: \"?*\"}}}\n",
		"suites/huge/kyverno-test.yaml": "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata:\n  name: t\n" +
			"policies: [../../policy.yaml]\nresources: [resource.yaml]\n" +
			"results: [{policy: p, rule: r, kind: ConfigMap, resources: [huge], result: pass}]\n",
	})
	for _, d := range []string{"huge", "huge-plain", "suites/huge"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
		name := "cm.yaml"
		if d == "suites/huge" {
			name = "resource.yaml"
		}
		if err := os.WriteFile(filepath.Join(root, d, name), hugeConfigMap(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "huge", "kustomization.yaml"), []byte("resources: [cm.yaml]\n"), 0o644)

	tests := []struct {
		name       string
		args       []string
		environ    []string
		wantCode   int
		wantStdout string // substring; "" means stdout must be empty
		wantStderr string // prefix of the first line
		within     time.Duration
		diverge    bool // a kernel that refuses the network filter
	}{
		{name: "offline, under the network filter", args: []string{"generate", filepath.Join(root, "ok")},
			wantCode: 0, wantStdout: "name: plain", within: 20 * time.Second},
		{name: "network filter refused: fail closed", args: []string{"generate", filepath.Join(root, "ok")}, diverge: true,
			wantCode: 2, wantStderr: "kyverno-gate: " + filepath.Join(root, "ok") + " could not be evaluated: the network could not be disabled (seccomp(SECCOMP_SET_MODE_FILTER): thread ",
			within: 20 * time.Second},
		{name: "network filter refused, allow-remote", args: []string{"generate", "--allow-remote", filepath.Join(root, "ok")}, diverge: true,
			wantCode: 0, wantStdout: "name: plain", within: 20 * time.Second},
		{name: "remote file within the limit", args: []string{"generate", "--allow-remote", filepath.Join(root, "small")},
			wantCode: 0, wantStdout: "name: remote-small", within: 20 * time.Second},
		{name: "remote file over the limit", args: []string{"generate", filepath.Join(root, "big")},
			environ:  []string{"PARAM_ALLOW_REMOTE=true"},
			wantCode: 2, wantStderr: "kyverno-gate: " + filepath.Join(root, "big") + " could not be evaluated: remote file " + url + "/big.yaml is larger than 16 MiB (",
			within: 20 * time.Second},
		{name: "memory ceiling, kustomization", args: []string{"generate", filepath.Join(root, "huge")},
			environ:  []string{"PARAM_MAX_MEMORY_MB=400", "PARAM_TIMEOUT=40s"},
			wantCode: 2, wantStderr: "kyverno-gate: " + filepath.Join(root, "huge") + " could not be evaluated: memory use passed the 400 MiB ceiling while rendering " + filepath.Join(root, "huge") + " (raise parameter max-memory-mb",
			within: 30 * time.Second},
		{name: "memory ceiling, plain folder", args: []string{"generate", "--max-memory-mb", "400", filepath.Join(root, "huge-plain")},
			environ:  []string{"PARAM_TIMEOUT=40s"},
			wantCode: 2, wantStderr: "kyverno-gate: " + filepath.Join(root, "huge-plain") + " could not be evaluated: memory use passed the 400 MiB ceiling while rendering ",
			within: 30 * time.Second},
		// The test command runs under gate.Within too (without a time
		// budget unless asked): it stops on its usual path, naming the stage.
		{name: "memory ceiling, test command", args: []string{"test", filepath.Join(root, "suites")},
			environ:  []string{"PARAM_MAX_MEMORY_MB=400"},
			wantCode: 2, wantStderr: "kyverno-gate: tests in " + filepath.Join(root, "suites") + " could not be evaluated: memory use passed the 400 MiB ceiling while running 1 test suite (raise parameter max-memory-mb",
			within: 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.diverge && !canDiverge {
				t.Skip("no seccomp filter on this platform")
			}
			environ := append([]string{"PARAM_ALLOW_NO_TESTS=true", "PARAM_REPO_ROOT=" + root}, tt.environ...)
			if tt.diverge {
				environ = append(environ, "KYVERNO_GATE_DIVERGE=1")
			}
			code, stdout, stderr, took := runMain(t, environ, tt.args...)
			t.Logf("exit %d in %s; stderr:\n%s", code, took.Round(time.Millisecond), stderr)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if tt.wantStdout == "" && stdout != "" {
				t.Errorf("stdout not empty: %.200s", stdout)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q: %.200s", tt.wantStdout, stdout)
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if !strings.HasPrefix(first, tt.wantStderr) {
				t.Errorf("first stderr line %q, want it to start with %q", first, tt.wantStderr)
			}
			if tt.diverge && code == 2 && !strings.Contains(first, "parameter allow-remote=true would skip this guard") {
				t.Errorf("first stderr line %q does not say how to skip the guard", first)
			}
			if took > tt.within {
				t.Errorf("took %s, more than %s", took, tt.within)
			}
		})
	}
}
