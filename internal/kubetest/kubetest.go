// Package kubetest starts a real kube-apiserver with etcd on loopback for
// tests of cluster features (no mocks, no fake clients): a static token for
// an administrator (system:masters) and for any further users a test asks
// for, RBAC authorization, so that a user without a grant is refused as on a
// real cluster, and Kyverno's CRDs applied server-side from the Kyverno
// module in the Go module cache.
//
// The binaries come from the tools module live/ (live/build.sh builds them,
// cached by version); `make live` passes their folder in LIVE_BIN. The
// package uses the standard library only, so that any module of this
// repository (the e2e module too) can import it.
package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"syscall"
	"testing"
	"time"
)

// User is a static-token user of the server. Users other than the
// administrator have no permission until a test grants one (RBAC).
type User struct {
	Name   string
	Groups []string
}

// Options configure Start.
type Options struct {
	// Users besides "admin" (system:masters); each gets a token and a
	// kubeconfig context of its name.
	Users []User
	// KyvernoCRDs applies Kyverno's policy CRDs (config/crds/kyverno and
	// config/crds/policies.kyverno.io of the Kyverno module) and waits
	// until they are served.
	KyvernoCRDs bool
	// KyvernoDir is the Kyverno module's folder; default: `go list -m`
	// of github.com/kyverno/kyverno from the working directory's module.
	KyvernoDir string
}

// Cluster is a running kube-apiserver and its etcd.
type Cluster struct {
	URL        string // https://127.0.0.1:<port>
	CAFile     string // the serving certificate's CA (apiserver.crt)
	Kubeconfig string // a kubeconfig with a context per user; current: admin
	Dir        string // the cluster's folder (data, certificates, logs)
	Bin        string // the folder with kube-apiserver, etcd and kubectl

	tokens map[string]string // user -> token
	client *http.Client
	procs  []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// BinDir returns the folder of the live binaries: LIVE_BIN, else the
// output of live/build.sh found above the working directory.
func BinDir() (string, error) {
	if d := os.Getenv("LIVE_BIN"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		script := filepath.Join(d, "live", "build.sh")
		if _, err := os.Stat(script); err == nil {
			out, err := exec.Command(script).Output()
			if err != nil {
				return "", fmt.Errorf("%s: %v", script, err)
			}
			return strings.TrimSpace(string(out)), nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("LIVE_BIN is not set and no live/build.sh above the working directory (run `make live`)")
		}
	}
}

// Start starts etcd and kube-apiserver in a folder of t and stops them when
// the test ends. It fails the test when they do not come up.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := start(t.TempDir(), opts)
	if c != nil {
		t.Cleanup(c.Stop)
	}
	if err != nil {
		if c != nil {
			t.Log(c.Logs())
		}
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	return c
}

func start(dir string, opts Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Bin: bin, tokens: map[string]string{}}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.run("etcd", filepath.Join(bin, "etcd"),
		"--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return c, err
	}
	if err := c.waitFor("etcd", 30*time.Second, func() error {
		resp, err := http.Get(etcdURL + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(b, []byte(`"health":"true"`)) {
			return fmt.Errorf("etcd /health: %s", b)
		}
		return nil
	}); err != nil {
		return c, err
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return c, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return c, err
	}
	saKey := filepath.Join(dir, "sa.key")
	saPub := filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return c, err
	}
	if err := os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return c, err
	}
	users := append([]User{{Name: "admin", Groups: []string{"system:masters"}}}, opts.Users...)
	var csv strings.Builder
	for i, u := range users {
		tok := randomToken()
		c.tokens[u.Name] = tok
		fmt.Fprintf(&csv, "%s,%s,%d,\"%s\"\n", tok, u.Name, 1000+i, strings.Join(u.Groups, ","))
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(csv.String()), 0o600); err != nil {
		return c, err
	}
	certs := filepath.Join(dir, "certs")
	c.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	c.CAFile = filepath.Join(certs, "apiserver.crt")
	if err := c.run("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]), "--cert-dir="+certs,
		"--etcd-servers="+etcdURL,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
	); err != nil {
		return c, err
	}
	// The serving certificate appears once the server has made it.
	if err := c.waitFor("kube-apiserver's certificate", 60*time.Second, func() error {
		_, err := os.Stat(c.CAFile)
		return err
	}); err != nil {
		return c, err
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return c, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return c, fmt.Errorf("%s holds no certificate", c.CAFile)
	}
	c.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := c.waitFor("kube-apiserver /readyz", 90*time.Second, func() error {
		b, code, err := c.Do("admin", http.MethodGet, "/readyz", "", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz %d: %s", code, b)
		}
		return nil
	}); err != nil {
		return c, err
	}
	if err := c.writeKubeconfig(users); err != nil {
		return c, err
	}
	if opts.KyvernoCRDs {
		if err := c.applyKyvernoCRDs(opts.KyvernoDir); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Token returns the static token of user.
func (c *Cluster) Token(user string) string { return c.tokens[user] }

// Do sends one request as user and returns the body and status code. A
// 429 (the server is still settling, or busy with parallel test
// packages) is retried for up to 10 s, as client-go does.
func (c *Cluster) Do(user, method, path, contentType string, body []byte) ([]byte, int, error) {
	for i := 0; ; i++ {
		b, code, err := c.do(user, method, path, contentType, body)
		if err != nil || code != http.StatusTooManyRequests || i == 50 {
			return b, code, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Cluster) do(user, method, path, contentType string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[user])
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// Kubectl runs the kubectl built with the server (same version) with the
// cluster's kubeconfig and returns its stdout; an error carries stderr.
func (c *Cluster) Kubectl(args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.Bin, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig, "--cache-dir", filepath.Join(c.Dir, "kubectl-cache")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// RSS returns the resident memory of kube-apiserver and etcd in bytes.
func (c *Cluster) RSS() map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range c.procs {
		if p.cmd.Process == nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				out[p.name] = kb << 10
			}
		}
	}
	return out
}

// Logs returns the last lines of each process's log, for a failed test.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		data, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Stop stops kube-apiserver, then etcd (SIGTERM, SIGKILL after 10 s).
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
}

func (c *Cluster) run(name, path string, args ...string) error {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, and killed with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	c.procs = append(c.procs, p)
	return nil
}

// waitFor polls ready every 100 ms until it succeeds, a process exits or
// the time is up.
func (c *Cluster) waitFor(what string, limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = ready(); last == nil {
			return nil
		}
		for _, p := range c.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited while waiting for %s (log %s)", p.name, what, p.log)
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v", what, limit, last)
}

func (c *Cluster) writeKubeconfig(users []User) error {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: live\n  cluster:\n    server: %s\n    certificate-authority: %s\n", c.URL, c.CAFile)
	b.WriteString("users:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "- name: %s\n  user:\n    token: %s\n", u.Name, c.tokens[u.Name])
	}
	b.WriteString("contexts:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "- name: %s\n  context:\n    cluster: live\n    user: %s\n", u.Name, u.Name)
	}
	b.WriteString("current-context: admin\n")
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return os.WriteFile(c.Kubeconfig, []byte(b.String()), 0o600)
}

// KyvernoCRDFiles lists the CRD files of Kyverno's policy kinds in the
// Kyverno module folder dir (config/crds/kyverno and
// config/crds/policies.kyverno.io; not the report kinds), sorted.
func KyvernoCRDFiles(dir string) ([]string, error) {
	var files []string
	for _, sub := range []string{"kyverno", "policies.kyverno.io"} {
		m, err := filepath.Glob(filepath.Join(dir, "config", "crds", sub, "*.yaml"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("no CRDs in %s", filepath.Join(dir, "config", "crds", sub))
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	return files, nil
}

// KyvernoModuleDir returns the Kyverno module's folder in the module cache,
// as the module of the working directory requires it.
func KyvernoModuleDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m github.com/kyverno/kyverno: %v: %s", err, ee.Stderr)
		}
		return "", err
	}
	d := strings.TrimSpace(string(out))
	if d == "" {
		return "", errors.New("github.com/kyverno/kyverno is not downloaded (go mod download)")
	}
	return d, nil
}

func (c *Cluster) applyKyvernoCRDs(dir string) error {
	if dir == "" {
		var err error
		if dir, err = KyvernoModuleDir(); err != nil {
			return err
		}
	}
	files, err := KyvernoCRDFiles(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		name := metadataName(data)
		if name == "" {
			return fmt.Errorf("%s: no metadata.name", f)
		}
		if err := c.ApplyYAML("admin", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, data); err != nil {
			return fmt.Errorf("%s: %v", filepath.Base(f), err)
		}
		names = append(names, name)
	}
	for _, name := range names {
		if err := c.waitFor("CRD "+name+" Established", 60*time.Second, func() error {
			b, code, err := c.Do("admin", http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, "", nil)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("%d: %s", code, b)
			}
			var crd struct {
				Spec struct {
					Group    string
					Names    struct{ Plural string }
					Versions []struct {
						Name   string
						Served bool
					}
				}
				Status struct {
					Conditions []struct{ Type, Status string }
				}
			}
			if err := json.Unmarshal(b, &crd); err != nil {
				return err
			}
			established := false
			for _, cond := range crd.Status.Conditions {
				if cond.Type == "Established" && cond.Status == "True" {
					established = true
				}
			}
			if !established {
				return errors.New("not Established yet")
			}
			// Discovery lags behind Established.
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				b, code, err := c.Do("admin", http.MethodGet, "/apis/"+crd.Spec.Group+"/"+v.Name, "", nil)
				if err != nil {
					return err
				}
				if code != http.StatusOK || !bytes.Contains(b, []byte(`"name":"`+crd.Spec.Names.Plural+`"`)) {
					return fmt.Errorf("%s/%s %s not in discovery yet", crd.Spec.Group, v.Name, crd.Spec.Names.Plural)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// ApplyYAML applies one object (YAML or JSON) server-side at path (the
// object's own URL) as user, with field manager kubetest, forcing
// conflicts.
func (c *Cluster) ApplyYAML(user, path string, object []byte) error {
	b, code, err := c.Do(user, http.MethodPatch, path+"?fieldManager=kubetest&force=true", "application/apply-patch+yaml", object)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("apply %s: %d: %s", path, code, strings.TrimSpace(string(b)))
	}
	return nil
}

// metadataName returns metadata.name of a YAML document written in the
// usual block style (two-space indent under metadata).
func metadataName(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	inMeta := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "metadata:":
			inMeta = true
		case inMeta && strings.HasPrefix(line, "  name: "):
			return strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "  name: ")), `"'`)
		case inMeta && line != "" && !strings.HasPrefix(line, " "):
			inMeta = false
		}
	}
	return ""
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// WithTimeout is a context for a test's cluster calls.
func WithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
