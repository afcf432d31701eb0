package e2e

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The suite runs cmp-server the way the shipped install manifests run the
// sidecar; this keeps the two from drifting apart.
func TestInstallManifestsRunWhatIsTested(t *testing.T) {
	dir := filepath.Join(repoRoot(), "examples", "install")

	var patch appsv1.Deployment
	readStrict(t, filepath.Join(dir, "argocd-repo-server-patch.yaml"), &patch)
	var values struct {
		RepoServer struct {
			AutomountServiceAccountToken *bool              `json:"automountServiceAccountToken"`
			ExtraContainers              []corev1.Container `json:"extraContainers"`
			Volumes                      []corev1.Volume    `json:"volumes"`
		} `json:"repoServer"`
		Configs map[string]any `json:"configs"`
	}
	readStrict(t, filepath.Join(dir, "values-argo-cd.yaml"), &values)

	pod := patch.Spec.Template.Spec
	// The kustomize component leaves the pod's own settings to Argo CD's
	// install.yaml (which mounts no token: examples/install/install_test.go
	// checks the rendered pod); the chart's default is true, so the values
	// must turn it off.
	check := func(name string, containers []corev1.Container, volumes []corev1.Volume, automount *bool, cmName, cmKey string) {
		t.Run(name, func(t *testing.T) {
			if name == "helm values" && (automount == nil || *automount) {
				t.Errorf("the sidecar needs no service account token: set automountServiceAccountToken: false")
			}
			if name == "kustomize patch" && automount != nil {
				t.Errorf("the component must not change the repo-server pod's automountServiceAccountToken")
			}
			if len(containers) != 1 {
				t.Fatalf("want the one kyverno-gate container, got %d", len(containers))
			}
			c := containers[0]
			if len(c.Command) != 1 || c.Command[0] != "/var/run/argocd/argocd-cmp-server" {
				t.Errorf("command %v: the sidecar must run Argo CD's cmp-server", c.Command)
			}
			sc := c.SecurityContext
			if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 999 || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("securityContext %+v: want uid 999 and a read-only root filesystem", sc)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			// The socket dir the repo-server dials (ARGOCD_PLUGINSOCKFILEPATH in the suite).
			if mounts["/home/argocd/cmp-server/plugins"].Name != "plugins" {
				t.Errorf("plugins volume not mounted at /home/argocd/cmp-server/plugins")
			}
			if mounts["/var/run/argocd"].Name != "var-files" {
				t.Errorf("var-files (where copyutil puts argocd-cmp-server) not mounted at /var/run/argocd")
			}
			m := mounts["/home/argocd/cmp-server/config/plugin.yaml"]
			fromCM := false
			for _, v := range volumes {
				fromCM = fromCM || v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cmName
			}
			if m.SubPath != cmKey || !fromCM {
				t.Errorf("plugin.yaml not mounted from key %s of the %s ConfigMap: %+v", cmKey, cmName, m)
			}
			tmp := mounts["/tmp"].Name
			own := false
			for _, v := range volumes {
				if v.Name == tmp && v.EmptyDir != nil {
					own = true
				}
			}
			if !own {
				t.Errorf("/tmp must be the sidecar's own emptyDir, got volume %q", tmp)
			}
			workdir := ""
			for _, e := range c.Env {
				if e.Name == "ARGOCD_CMP_WORKDIR" {
					workdir = e.Value
				}
			}
			if workdir != "/tmp" {
				t.Errorf("ARGOCD_CMP_WORKDIR = %q, want the sidecar's own /tmp", workdir)
			}
		})
	}
	check("kustomize patch", pod.Containers, pod.Volumes, pod.AutomountServiceAccountToken, "kyverno-gate-cmp", "plugin.yaml")
	// configs.cmp makes the chart write argocd-cmp-cm, one key per plugin.
	check("helm values", values.RepoServer.ExtraContainers, values.RepoServer.Volumes, values.RepoServer.AutomountServiceAccountToken, "argocd-cmp-cm", "kyverno-gate.yaml")
}

func readStrict(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
