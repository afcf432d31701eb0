// Package install holds the install manifests of the kyverno-gate sidecar;
// this test renders them over Argo CD's own install manifests.
package install

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	argoCDModule = "github.com/argoproj/argo-cd/v3"
	// upstreamURL is what the README's kustomization installs; the test
	// replaces it by the same file from the Go module cache.
	upstreamURL = "https://raw.githubusercontent.com/argoproj/argo-cd/%s/manifests/install.yaml"
	// componentURL is this folder at the documented release.
	componentURL = "https://github.com/kyverno-gate/kyverno-gate//examples/install?ref=v0.1.0"
	image        = "ghcr.io/kyverno-gate/kyverno-gate:v0.1.0"
)

// argoCDVersion is the Argo CD the e2e suite runs (e2e/go.mod).
func argoCDVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "e2e", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(argoCDModule) + `\s+(v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("e2e/go.mod does not require %s", argoCDModule)
	}
	return string(m[1])
}

// upstreamInstall returns manifests/install.yaml of Argo CD at version,
// from the module's zip that the Go command downloads (and verifies
// against the checksum database) into the module cache.
func upstreamInstall(t *testing.T, version string) []byte {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", argoCDModule+"@"+version)
	cmd.Dir = t.TempDir() // outside any module
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, _ := cmd.Output() // the module needs a newer go to build, not to download: Error is set, Zip is there
	var info struct{ Zip, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Zip == "" {
		t.Fatalf("go mod download %s@%s: %v %s\n%s", argoCDModule, version, err, info.Error, out)
	}
	zr, err := zip.OpenReader(info.Zip)
	if err != nil {
		t.Fatalf("%s (%s): %v", info.Zip, info.Error, err)
	}
	defer zr.Close()
	name := argoCDModule + "@" + version + "/manifests/install.yaml"
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	t.Fatalf("%s has no %s", info.Zip, name)
	return nil
}

type object = map[string]any

func id(o object) string {
	md, _ := o["metadata"].(object)
	return fmt.Sprintf("%v %v %v/%v", o["apiVersion"], o["kind"], md["namespace"], md["name"])
}

// build runs kustomize (in-process, the API kyverno-gate renders with) on
// dir of fs and returns the objects by id.
func build(t *testing.T, fs filesys.FileSystem, dir string) map[string]object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := map[string]object{}
	for _, r := range m.Resources() {
		o, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		out[id(o)] = o
	}
	return out
}

func writeFS(t *testing.T, fs filesys.FileSystem, path string, data []byte) {
	t.Helper()
	if err := fs.MkdirAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile(path, data); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The README's kustomize route, applied to a kustomize build of Argo CD's
// own install manifests, changes the argocd-repo-server Deployment (one
// container and two volumes more) and adds the plugin's ConfigMap:
// every other object is byte for byte what Argo CD ships.
func TestComponentChangesOnlyTheRepoServer(t *testing.T) {
	if testing.Short() {
		t.Skip("reads Argo CD's install.yaml (2 MB) from the Go module cache")
	}
	version := argoCDVersion(t)
	install := upstreamInstall(t, version)

	// Step 1 of the README's kustomize route, as written there, with the
	// two remote references replaced by their local copies.
	readme := string(read(t, filepath.Join("..", "..", "README.md")))
	m := regexp.MustCompile(`(?m)^( *)[^\n]*cat > argocd/kustomization\.yaml <<'EOF'\n((?:.*\n)*?)( *)EOF\n`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no `cat > argocd/kustomization.yaml <<'EOF'` block (the kustomize install route)")
	}
	var kust string
	for _, line := range strings.SplitAfter(m[2], "\n") {
		kust += strings.TrimPrefix(line, m[1])
	}
	url := fmt.Sprintf(upstreamURL, version)
	for _, ref := range []string{url, componentURL} {
		if !strings.Contains(kust, "  - "+ref) {
			t.Fatalf("the README's kustomization does not list %s (Argo CD as e2e/go.mod, the component at the documented release):\n%s", ref, kust)
		}
	}
	kust = strings.Replace(strings.Replace(kust, url, "install.yaml", 1), componentURL, "../install", 1)
	fs := filesys.MakeFsInMemory()
	for _, f := range []string{"kustomization.yaml", "argocd-repo-server-patch.yaml", "kyverno-gate-cmp.yaml"} {
		writeFS(t, fs, "/install/"+f, read(t, f))
	}
	writeFS(t, fs, "/argocd/kustomization.yaml", []byte(kust))
	writeFS(t, fs, "/argocd/install.yaml", install)
	// Argo CD alone: the same kustomization without the component.
	plain := regexp.MustCompile(`(?m)^components:\n(  - .*\n)+`).ReplaceAllString(kust, "")
	if plain == kust {
		t.Fatalf("the README's kustomization has no components: list:\n%s", kust)
	}
	writeFS(t, fs, "/upstream/kustomization.yaml", []byte(plain))
	writeFS(t, fs, "/upstream/install.yaml", install)

	with := build(t, fs, "/argocd")
	without := build(t, fs, "/upstream")
	if len(without) < 50 {
		t.Fatalf("Argo CD's install.yaml rendered only %d objects", len(without))
	}

	const (
		deployment = "apps/v1 Deployment argocd/argocd-repo-server"
		configMap  = "v1 ConfigMap argocd/kyverno-gate-cmp"
	)
	var added, changed, removed []string
	for k, o := range with {
		if u, ok := without[k]; !ok {
			added = append(added, k)
		} else if !reflect.DeepEqual(o, u) {
			changed = append(changed, k)
		}
	}
	for k := range without {
		if _, ok := with[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(changed)
	if !reflect.DeepEqual(added, []string{configMap}) || !reflect.DeepEqual(changed, []string{deployment}) || len(removed) != 0 {
		t.Fatalf("the component must add only %s and change only %s;\nadded %v\nchanged %v\nremoved %v", configMap, deployment, added, changed, removed)
	}

	// Inside the Deployment: exactly the sidecar and its two volumes.
	var patch struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []corev1.Container
					Volumes    []corev1.Volume
				}
			}
		}
	}
	if err := yaml.Unmarshal(read(t, "argocd-repo-server-patch.yaml"), &patch); err != nil {
		t.Fatal(err)
	}
	want := patch.Spec.Template.Spec
	if len(want.Containers) != 1 || len(want.Volumes) != 2 {
		t.Fatalf("the patch should add one container and two volumes, has %d and %d", len(want.Containers), len(want.Volumes))
	}
	d := with[deployment]
	pod := d["spec"].(object)["template"].(object)["spec"].(object)
	var sidecar []any
	pod["containers"], sidecar = split(t, pod["containers"], func(m object) bool { return m["name"] == want.Containers[0].Name })
	var vols []any
	pod["volumes"], vols = split(t, pod["volumes"], func(m object) bool {
		return m["name"] == want.Volumes[0].Name || m["name"] == want.Volumes[1].Name
	})
	if !reflect.DeepEqual(d, without[deployment]) {
		t.Errorf("the Deployment differs from Argo CD's beyond the sidecar and its volumes")
	}
	if len(sidecar) != 1 || len(vols) != 2 {
		t.Fatalf("rendered %d kyverno-gate containers and %d of its volumes", len(sidecar), len(vols))
	}
	var got corev1.Container
	roundTrip(t, sidecar[0], &got)
	if !reflect.DeepEqual(got, want.Containers[0]) {
		t.Errorf("rendered sidecar differs from the patch's:\n%+v\n%+v", got, want.Containers[0])
	}
	if v, ok := pod["automountServiceAccountToken"].(bool); !ok || v {
		t.Errorf("the repo-server pod mounts a service account token (%v): the sidecar would get one too", pod["automountServiceAccountToken"])
	}
	checkSidecar(t, "component", got, want.Volumes, "kyverno-gate-cmp", "plugin.yaml")

	// The added ConfigMap carries plugin.yaml.
	cm := with[configMap]
	if cm["data"].(object)["plugin.yaml"] != string(read(t, filepath.Join("..", "..", "plugin.yaml"))) {
		t.Errorf("ConfigMap kyverno-gate-cmp does not carry plugin.yaml")
	}
	if got.Image != image {
		t.Errorf("the component runs image %s, the docs name %s", got.Image, image)
	}
}

// split removes the items of list (a []any of maps) for which match is true
// and returns the rest and them.
func split(t *testing.T, list any, match func(object) bool) (rest, matched []any) {
	t.Helper()
	items, ok := list.([]any)
	if !ok {
		t.Fatalf("not a list: %T", list)
	}
	for _, it := range items {
		if m, ok := it.(object); ok && match(m) {
			matched = append(matched, it)
		} else {
			rest = append(rest, it)
		}
	}
	return rest, matched
}

func roundTrip(t *testing.T, from, into any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatal(err)
	}
}

// checkSidecar checks the container against what the e2e suite runs
// (e2e/main_test.go starts cmp-server the same way): Argo CD's
// cmp-server from the shared var-files volume, the socket folder the
// repo-server dials, plugin.yaml from cmName's key cmKey, its own /tmp
// as the work dir, uid 999 with a read-only root.
func checkSidecar(t *testing.T, route string, c corev1.Container, volumes []corev1.Volume, cmName, cmKey string) {
	t.Helper()
	if !reflect.DeepEqual(c.Command, []string{"/var/run/argocd/argocd-cmp-server"}) {
		t.Errorf("%s: command %v: the sidecar must run Argo CD's cmp-server (the image's entrypoint is the CLI)", route, c.Command)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 999 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: securityContext %+v: want uid 999, non-root, no privilege escalation, read-only root", route, sc)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if mounts["/home/argocd/cmp-server/plugins"].Name != "plugins" {
		t.Errorf("%s: plugins volume not mounted at /home/argocd/cmp-server/plugins", route)
	}
	if mounts["/var/run/argocd"].Name != "var-files" {
		t.Errorf("%s: var-files (where copyutil puts argocd-cmp-server) not mounted at /var/run/argocd", route)
	}
	m := mounts["/home/argocd/cmp-server/config/plugin.yaml"]
	vols := map[string]corev1.Volume{}
	for _, v := range volumes {
		vols[v.Name] = v
	}
	if v := vols[m.Name]; m.SubPath != cmKey || v.ConfigMap == nil || v.ConfigMap.Name != cmName {
		t.Errorf("%s: plugin.yaml is not mounted from ConfigMap %s key %s: %+v %+v", route, cmName, cmKey, m, v)
	}
	if v := vols[mounts["/tmp"].Name]; v.EmptyDir == nil {
		t.Errorf("%s: /tmp must be the sidecar's own emptyDir, got volume %+v", route, v)
	}
	workdir := ""
	for _, e := range c.Env {
		if e.Name == "ARGOCD_CMP_WORKDIR" {
			workdir = e.Value
		}
	}
	if workdir != "/tmp" {
		t.Errorf("%s: ARGOCD_CMP_WORKDIR = %q, want the sidecar's own /tmp", route, workdir)
	}
}

// helmValues are the argo-cd chart's keys that values-argo-cd.yaml may
// use, with the shapes the chart's values.yaml documents and its templates
// read: configs.cmp.{create,annotations,plugins} (templates/argocd-configs/
// argocd-cmp-cm.yaml writes data["<plugin>.yaml"] = ConfigManagementPlugin
// <plugin> with the given spec, in ConfigMap argocd-cmp-cm), configs.params
// (argocd-cmd-params-cm), repoServer.automountServiceAccountToken,
// repoServer.extraContainers (through tpl) and repoServer.volumes.
// Decoding is strict: a misspelt or unknown key fails.
type helmValues struct {
	Configs struct {
		CMP struct {
			Create      bool                      `json:"create"`
			Annotations map[string]string         `json:"annotations,omitempty"`
			Plugins     map[string]map[string]any `json:"plugins"`
		} `json:"cmp"`
		Params map[string]string `json:"params,omitempty"`
	} `json:"configs"`
	RepoServer struct {
		AutomountServiceAccountToken *bool              `json:"automountServiceAccountToken"`
		ExtraContainers              []corev1.Container `json:"extraContainers"`
		Volumes                      []corev1.Volume    `json:"volumes"`
	} `json:"repoServer"`
}

// The Helm route carries everything through the chart's own keys: the
// plugin definition in configs.cmp (no separate ConfigMap to apply), the
// same sidecar as the component, its volumes.
func TestHelmValuesUseTheChartsKeys(t *testing.T) {
	var v helmValues
	if err := yaml.UnmarshalStrict(read(t, "values-argo-cd.yaml"), &v); err != nil {
		t.Fatalf("values-argo-cd.yaml: %v", err)
	}
	if !v.Configs.CMP.Create {
		t.Errorf("configs.cmp.create must be true, or the chart writes no argocd-cmp-cm")
	}
	if len(v.Configs.CMP.Plugins) != 1 || v.Configs.CMP.Plugins["kyverno-gate"] == nil {
		t.Fatalf("configs.cmp.plugins must hold kyverno-gate alone, has %v", v.Configs.CMP.Plugins)
	}
	var plugin struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(read(t, filepath.Join("..", "..", "plugin.yaml")), &plugin); err != nil {
		t.Fatal(err)
	}
	if plugin.Metadata.Name != "kyverno-gate" {
		t.Fatalf("plugin.yaml names %s; the values key must follow", plugin.Metadata.Name)
	}
	if !reflect.DeepEqual(v.Configs.CMP.Plugins["kyverno-gate"], plugin.Spec) {
		t.Errorf("values-argo-cd.yaml configs.cmp.plugins.kyverno-gate is not plugin.yaml's spec: copy plugin.yaml's spec there (indented under it)")
	}
	if a := v.RepoServer.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("repoServer.automountServiceAccountToken must be false (the chart's default is true)")
	}
	if len(v.RepoServer.ExtraContainers) != 1 {
		t.Fatalf("want the one kyverno-gate container, got %d", len(v.RepoServer.ExtraContainers))
	}
	c := v.RepoServer.ExtraContainers[0]
	checkSidecar(t, "helm", c, v.RepoServer.Volumes, "argocd-cmp-cm", "kyverno-gate.yaml")
	if b, _ := json.Marshal(v.RepoServer.ExtraContainers); bytes.Contains(b, []byte("{{")) {
		t.Errorf("repoServer.extraContainers goes through tpl: no {{ in it")
	}

	// The same container as the component's patch, but for where
	// plugin.yaml comes from.
	var patch struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []corev1.Container
					Volumes    []corev1.Volume
				}
			}
		}
	}
	if err := yaml.Unmarshal(read(t, "argocd-repo-server-patch.yaml"), &patch); err != nil {
		t.Fatal(err)
	}
	pc := patch.Spec.Template.Spec.Containers[0]
	norm := func(c corev1.Container) corev1.Container {
		c.VolumeMounts = append([]corev1.VolumeMount(nil), c.VolumeMounts...)
		for i, m := range c.VolumeMounts {
			if m.MountPath == "/home/argocd/cmp-server/config/plugin.yaml" {
				c.VolumeMounts[i].Name, c.VolumeMounts[i].SubPath = "", ""
			}
		}
		return c
	}
	if !reflect.DeepEqual(norm(c), norm(pc)) {
		t.Errorf("the Helm values' sidecar differs from the component's:\n%+v\n%+v", c, pc)
	}
	tmp := func(vs []corev1.Volume) corev1.Volume {
		for _, v := range vs {
			if v.Name == "kyverno-gate-tmp" {
				return v
			}
		}
		return corev1.Volume{}
	}
	if !reflect.DeepEqual(tmp(v.RepoServer.Volumes), tmp(patch.Spec.Template.Spec.Volumes)) || tmp(v.RepoServer.Volumes).EmptyDir == nil {
		t.Errorf("the kyverno-gate-tmp volumes differ")
	}
}
