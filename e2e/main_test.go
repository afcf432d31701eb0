// Package e2e proves kyverno-gate inside Argo CD's own plugin machinery: the
// real argocd-cmp-server (github.com/argoproj/argo-cd/v3 v3.6.1) runs the
// repository's plugin.yaml with the freshly built kyverno-gate on its PATH,
// and the tests talk to it over its unix socket the way argocd-repo-server
// does (named-socket discovery, CheckPluginConfiguration, GenerateManifest and
// GetParametersAnnouncement streaming a tarball of a git checkout, with the
// environment Argo CD's own types encode).
//
// It is its own Go module because Argo CD pins other Kubernetes libraries
// than Kyverno and needs Go 1.27. Run it with `make e2e` (see docs/e2e.md).
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmpserver "github.com/argoproj/argo-cd/v3/cmd/argocd-cmp-server/commands"
)

// roleEnv makes the test binary act as argocd-cmp-server: Argo CD's binary
// is multi-call too (it picks the component from ARGOCD_BINARY_NAME), and one
// link of Argo CD is expensive enough.
const roleEnv = "KYVERNO_GATE_E2E_ROLE"

// server is the one argocd-cmp-server all tests share, as the repo-server's
// sidecar is shared by every Application.
var server struct {
	sockDir string // ARGOCD_PLUGINSOCKFILEPATH, as mounted in the sidecar
	workDir string // ARGOCD_CMP_WORKDIR
	tmpDir  string // TMPDIR of cmp-server, which its commands inherit
	log     *syncBuffer
}

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "argocd-cmp-server" {
		cmd := cmpserver.NewCommand()
		cmd.SetArgs(os.Args[1:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stop, err := startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	code := m.Run()
	// cmp-server and kyverno-gate share this TMPDIR only with the suite:
	// anything in it now was left by a generation.
	if names, _ := leftInTemp(); len(names) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: kyverno-gate left %d entries in its TMPDIR: %s\n", len(names), strings.Join(names, ", "))
		if code == 0 {
			code = 1
		}
	}
	stop()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- argocd-cmp-server log ---\n%s", server.log.String())
	}
	return code
}

// repoRoot is the kyverno-gate checkout this module lives in.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// gateBinary is the kyverno-gate under test: KYVERNO_GATE_BIN, else the one
// `make build` writes.
func gateBinary() (string, error) {
	bin := os.Getenv("KYVERNO_GATE_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(), "bin", "kyverno-gate")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no kyverno-gate binary at %s: run `make e2e` (it builds one) or set KYVERNO_GATE_BIN", bin)
	}
	return bin, nil
}

// startServer starts argocd-cmp-server as the sidecar runs it: the
// repository's plugin.yaml in its config dir, kyverno-gate on PATH, its own
// work dir, and the socket dir shared with the repo-server (this process).
func startServer() (func(), error) {
	bin, err := gateBinary()
	if err != nil {
		return nil, err
	}
	// Unix socket paths are limited to 108 bytes: keep them short.
	base, err := os.MkdirTemp("", "kg-e2e")
	if err != nil {
		return nil, err
	}
	server.sockDir = filepath.Join(base, "plugins")
	server.workDir = filepath.Join(base, "tmp")
	server.tmpDir = filepath.Join(base, "gate-tmp")
	pathDir := filepath.Join(base, "bin")
	configDir := filepath.Join(base, "config")
	for _, d := range []string{server.sockDir, server.workDir, server.tmpDir, pathDir, configDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(bin, filepath.Join(pathDir, "kyverno-gate")); err != nil {
		return nil, err
	}
	pluginYAML, err := os.ReadFile(filepath.Join(repoRoot(), "plugin.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(configDir, "plugin.yaml"), pluginYAML, 0o644); err != nil {
		return nil, err
	}
	// The repo-server side (this process) dials the same socket dir.
	if err := os.Setenv("ARGOCD_PLUGINSOCKFILEPATH", server.sockDir); err != nil {
		return nil, err
	}

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "--config-dir-path", configDir, "--loglevel", "info", "--logformat", "text")
	cmd.Env = append(os.Environ(),
		roleEnv+"=argocd-cmp-server",
		"ARGOCD_PLUGINSOCKFILEPATH="+server.sockDir,
		"ARGOCD_CMP_WORKDIR="+server.workDir,
		"HOME="+server.workDir,
		// cmp-server passes its own environment to the command: what
		// kyverno-gate leaves in its temp dir is visible to the tests.
		"TMPDIR="+server.tmpDir,
		"PATH="+pathDir+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	server.log = &syncBuffer{}
	cmd.Stdout = server.log
	cmd.Stderr = server.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = os.RemoveAll(base)
	}

	sock := filepath.Join(server.sockDir, "kyverno-gate-v1.sock")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			return stop, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("argocd-cmp-server exited before listening (%v):\n%s", err, server.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("argocd-cmp-server did not listen on %s within 60s:\n%s", sock, server.log.String())
		}
	}
}

// syncBuffer collects the server's log from its output pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// since returns what the server logged after mark (a previous length).
func (b *syncBuffer) since(mark int) string {
	s := b.String()
	if mark > len(s) {
		return ""
	}
	return s[mark:]
}

func (b *syncBuffer) mark() int { return len(b.String()) }

// waitForLine polls the server log for a line holding every one of parts;
// the server logs after it replies. It returns the log since mark.
func (b *syncBuffer) waitForLine(t *testing.T, mark int, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got := b.since(mark)
		for _, line := range strings.Split(got, "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return got
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("argocd-cmp-server never logged a line with %q; its log:\n%s", parts, b.since(mark))
	return ""
}
