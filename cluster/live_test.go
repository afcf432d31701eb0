//go:build live

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/internal/kubetest"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// The live tests run against a real kube-apiserver and etcd (make live).

const repoRoot = ".."

var exampleProduction = filepath.Join(repoRoot, "examples", "policy-repo", "overlays", "production")

// kyvernoInstall is what a Kyverno installation adds besides its CRDs and
// what export records: its namespace, its ConfigMap, a webhook
// configuration it manages (matching nothing, so it never fires).
const kyvernoInstall = `apiVersion: v1
kind: Namespace
metadata:
  name: kyverno
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kyverno
  namespace: kyverno
data:
  resourceFilters: '[Event,*,*][*/*,kube-system,*][*/*,kyverno,*]'
  webhooks: '[{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system"]}]}}]'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: kyverno-resource-validating-webhook-cfg
  labels:
    webhook.kyverno.io/managed-by: kyverno
webhooks:
  - name: validate.kyverno.svc-fail
    failurePolicy: Fail
    timeoutSeconds: 10
    sideEffects: NoneOnDryRun
    admissionReviewVersions: [v1]
    clientConfig:
      url: https://127.0.0.1:1/validate
    rules:
      - apiGroups: [example.invalid]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [nothings]
`

// startKyverno starts a server with Kyverno's CRDs and installation.
func startKyverno(t *testing.T, users ...kubetest.User) *kubetest.Cluster {
	t.Helper()
	c := kubetest.Start(t, kubetest.Options{KyvernoCRDs: true, KyvernoDir: kyvernoDir(t), Users: users})
	apply(t, c, []byte(kyvernoInstall))
	return c
}

func kyvernoDir(t *testing.T) string {
	d, err := kubetest.KyvernoModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// apply applies a YAML stream server-side with kubectl, as Argo CD's
// ServerSideApply does.
func apply(t *testing.T, c *kubetest.Cluster, stream []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "apply.yaml")
	if err := os.WriteFile(f, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl("apply", "--server-side", "-f", f); err != nil {
		t.Fatal(err)
	}
}

func renderDir(t *testing.T, dir string) *render.Result {
	t.Helper()
	root := dir
	if strings.HasPrefix(dir, repoRoot) {
		root = repoRoot
	}
	res, err := render.Render(dir, render.Options{Root: root})
	if err != nil {
		t.Fatalf("render %s: %v", dir, err)
	}
	return res
}

func snapshot(t *testing.T, c *kubetest.Cluster, context string) *Snapshot {
	t.Helper()
	client, err := Connect(Source{Kubeconfig: c.Kubeconfig, Context: context})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout()
	defer cancel()
	snap, err := client.Read(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func contextWithTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// key names an object the same way on both sides of a comparison.
func key(obj map[string]any) string {
	apiVersion, _ := obj["apiVersion"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	kind, _ := obj["kind"].(string)
	return group + "/" + kind + " " + metaString(obj, "namespace") + "/" + metaString(obj, "name")
}

func canonical(t *testing.T, objs map[string]map[string]any) map[string]string {
	out := map[string]string{}
	for k, o := range objs {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(b)
	}
	return out
}

// The round trip: the example's production rendering (and one
// object of each further kind) applied, exported, the export rendered:
// the same objects; restored into a fresh server with the README's
// command, exported again: the same bytes.
func TestLiveExportRoundTrip(t *testing.T) {
	begin := time.Now()
	a := startKyverno(t)
	t.Logf("server A ready with Kyverno's CRDs in %s, RSS %v", time.Since(begin).Round(100*time.Millisecond), a.RSS())
	prod := renderDir(t, exampleProduction)
	kinds := renderDir(t, "testdata/kinds")
	resources := append(append([]*render.Resource{}, prod.Resources...), kinds.Resources...)
	apply(t, a, stream(resources))

	snapA := snapshot(t, a, "")
	if got, want := len(snapA.Objects), len(resources); got != want {
		t.Fatalf("exported %d objects, applied %d", got, want)
	}
	// The server added its defaults; export leaves them out again.
	raw, err := a.Kubectl("get", "clusterpolicy", "require-labels", "-o", "yaml", "--show-managed-fields")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"admission: true", "emitWarning: false", "managedFields"} {
		if !strings.Contains(string(raw), d) {
			t.Errorf("the live object lacks the server's %q; the test no longer shows stripping", d)
		}
	}
	filesA, err := Layout(snapA)
	if err != nil {
		t.Fatal(err)
	}
	dirA := filepath.Join(t.TempDir(), "backup")
	if err := WriteLayout(dirA, filesA); err != nil {
		t.Fatal(err)
	}
	for _, f := range filesA {
		for _, server := range []string{"managedFields", "resourceVersion", "creationTimestamp", "uid:", "generation:", LastApplied, "status:", "admission: true", "emitWarning"} {
			if bytes.Contains(f.Data, []byte(server)) {
				t.Errorf("%s holds %q", f.Path, server)
			}
		}
	}
	if !hasFile(filesA, ConfigDir+"/configmap.yaml") || !hasFile(filesA, ConfigDir+"/webhooks.yaml") {
		t.Errorf("Kyverno's configuration not recorded: %v", paths(filesA))
	}
	if f := fileData(filesA, ConfigDir+"/webhooks.yaml"); !strings.Contains(f, "failurePolicy: Fail") {
		t.Errorf("webhooks.yaml:\n%s", f)
	}

	// The export renders to the same objects as the repository's rendering.
	exported := map[string]map[string]any{}
	for _, r := range renderDir(t, dirA).Resources {
		exported[key(r.Object)] = r.Object
	}
	want := map[string]map[string]any{}
	for _, r := range resources {
		n, k := snapA.NormalizeObject(r.Object)
		if k == nil {
			t.Fatalf("%s: not a Kyverno kind the server serves", r.ID())
		}
		want[key(n)] = n
	}
	if g, w := canonical(t, exported), canonical(t, want); !reflect.DeepEqual(g, w) {
		for k := range w {
			if g[k] != w[k] {
				t.Errorf("%s:\n export: %s\n   repo: %s", k, g[k], w[k])
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s only in the export", k)
			}
		}
	}

	// Restore into a fresh server, as the README says, and export again.
	b := startKyverno(t)
	if out, err := b.Kubectl("apply", "--server-side", "-k", dirA); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("restore: kubectl apply --server-side -k: %d lines", strings.Count(string(out), "\n"))
	}
	filesB, err := Layout(snapshot(t, b, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(paths(filesA), paths(filesB)) {
		t.Fatalf("files after restore differ:\n%v\n%v", paths(filesA), paths(filesB))
	}
	for i := range filesA {
		if !bytes.Equal(filesA[i].Data, filesB[i].Data) {
			t.Errorf("%s differs after restore:\n%s\n---\n%s", filesA[i].Path, filesA[i].Data, filesB[i].Data)
		}
	}
	// And the stream form holds the same objects.
	streamA, err := Stream(snapA)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(streamA, []byte("---\n")); n != len(snapA.Objects) {
		t.Errorf("stream has %d documents, want %d", n, len(snapA.Objects))
	}
	t.Logf("round trip of %d objects in %s; RSS A %v", len(snapA.Objects), time.Since(begin).Round(100*time.Millisecond), a.RSS())
}

func hasFile(files []File, p string) bool { return fileData(files, p) != "" }

func fileData(files []File, p string) string {
	for _, f := range files {
		if f.Path == p {
			return string(f.Data)
		}
	}
	return ""
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	sort.Strings(out)
	return out
}

// readerRBAC grants user what the CronJob examples grant (get and list on
// the Kyverno kinds, get on their CRDs), without kyverno.io's
// policyexceptions.
const readerRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: policy-reader-but-exceptions
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
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: policy-reader-but-exceptions
subjects:
  - kind: User
    name: limited
    apiGroup: rbac.authorization.k8s.io
`

// A user who may not list one kind gets no snapshot, and the error names
// the kind; Kyverno's configuration, which that user may not read either,
// is only a note.
func TestLiveReadWithoutListPermission(t *testing.T) {
	c := startKyverno(t, kubetest.User{Name: "limited"})
	apply(t, c, []byte(readerRBAC))
	apply(t, c, stream(renderDir(t, exampleProduction).Resources))
	client, err := Connect(Source{Kubeconfig: c.Kubeconfig, Context: "limited"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout()
	defer cancel()
	// RBAC bindings take effect asynchronously.
	var readErr error
	for i := 0; i < 50; i++ {
		_, readErr = client.Read(ctx, Options{})
		if readErr != nil && strings.Contains(readErr.Error(), "policyexceptions.kyverno.io") && !strings.Contains(readErr.Error(), "clusterpolicies") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ae *AccessError
	if !errors.As(readErr, &ae) || len(ae.Failures) != 1 || ae.Failures[0].What != "PolicyException (policyexceptions.kyverno.io)" {
		t.Fatalf("got %v, want an AccessError for PolicyException (policyexceptions.kyverno.io) only", readErr)
	}
	if !strings.Contains(ae.Error(), "forbidden") || !strings.Contains(ae.Error(), "nothing written") {
		t.Errorf("message: %s", ae)
	}
}

// A server without Kyverno's CRDs: a clear error, not an empty backup.
func TestLiveReadWithoutKyverno(t *testing.T) {
	c := kubetest.Start(t, kubetest.Options{})
	client, err := Connect(Source{Kubeconfig: c.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout()
	defer cancel()
	_, err = client.Read(ctx, Options{})
	var ne *NotInstalledError
	if !errors.As(err, &ne) {
		t.Fatalf("got %v, want NotInstalledError", err)
	}
}

// stream is resources as one YAML stream (as baseline.Stream, which
// imports this package).
func stream(resources []*render.Resource) []byte {
	var b bytes.Buffer
	for _, r := range resources {
		b.WriteString("---\n")
		b.Write(bytes.TrimRight(r.YAML, "\n"))
		b.WriteString("\n")
	}
	return b.Bytes()
}
