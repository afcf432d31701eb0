package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pluginclient "github.com/argoproj/argo-cd/v3/cmpserver/apiclient"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	repoclient "github.com/argoproj/argo-cd/v3/reposerver/apiclient"
	"github.com/argoproj/argo-cd/v3/util/app/discovery"
	"github.com/argoproj/argo-cd/v3/util/cmp"
	utilio "github.com/argoproj/argo-cd/v3/util/io"
	grpc_retry "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"google.golang.org/protobuf/types/known/emptypb"
	"sigs.k8s.io/yaml"
)

// This file does what argocd-repo-server v3.6.1 does for a plugin source
// (reposerver/repository: newEnv, getPluginEnvs, runConfigManagementPluginSidecars,
// generateManifestsCMP, populatePluginAppDetails), with Argo CD's own types
// and client code; those functions are unexported, so their few lines of
// glue are repeated here.

// controlPlaneNamespace is where Argo CD runs; Applications elsewhere are
// named <namespace>_<name> (apps in any namespace).
const controlPlaneNamespace = "argocd"

// cluster is what the destination cluster reports to the repo-server.
type cluster struct {
	kubeVersion string   // as the controller sends it: Major.Minor.Patch
	apiVersions []string // group/version and group/version/kind strings
}

var kindCluster = cluster{
	kubeVersion: "1.34.0",
	apiVersions: []string{"v1", "apps/v1", "networking.k8s.io/v1", "kyverno.io/v1", "kyverno.io/v2", "policies.kyverno.io/v1"},
}

// loadApplication reads an Application manifest (one the repository ships).
func loadApplication(t *testing.T, path string) *v1alpha1.Application {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var app v1alpha1.Application
	if err := yaml.UnmarshalStrict(data, &app); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if app.Spec.Source == nil || app.Spec.Source.Plugin == nil {
		t.Fatalf("%s: not a plugin Application", path)
	}
	return &app
}

// generateEnv is the environment the repo-server sends with GenerateManifest.
func generateEnv(app *v1alpha1.Application, revision string, c cluster) ([]string, error) {
	src := app.Spec.Source
	env := v1alpha1.Env{
		{Name: "ARGOCD_APP_NAME", Value: app.InstanceName(controlPlaneNamespace)},
		{Name: "ARGOCD_APP_NAMESPACE", Value: app.Spec.Destination.Namespace},
		{Name: "ARGOCD_APP_PROJECT_NAME", Value: app.Spec.Project},
		{Name: "ARGOCD_APP_REVISION", Value: revision},
		{Name: "ARGOCD_APP_REVISION_SHORT", Value: shorten(revision, 7)},
		{Name: "ARGOCD_APP_REVISION_SHORT_8", Value: shorten(revision, 8)},
		{Name: "ARGOCD_APP_SOURCE_REPO_URL", Value: src.RepoURL},
		{Name: "ARGOCD_APP_SOURCE_PATH", Value: src.Path},
		{Name: "ARGOCD_APP_SOURCE_TARGET_REVISION", Value: src.TargetRevision},
	}
	vars := env.Environ()
	vars = append(vars, "KUBE_VERSION="+c.kubeVersion, "KUBE_API_VERSIONS="+strings.Join(c.apiVersions, ","))
	return pluginParamEnvs(vars, src.Plugin)
}

// announcementEnv is the smaller environment of GetParametersAnnouncement.
func announcementEnv(app *v1alpha1.Application) ([]string, error) {
	src := app.Spec.Source
	return pluginParamEnvs([]string{
		"ARGOCD_APP_NAME=" + app.InstanceName(controlPlaneNamespace),
		"ARGOCD_APP_SOURCE_REPO_URL=" + src.RepoURL,
		"ARGOCD_APP_SOURCE_PATH=" + src.Path,
		"ARGOCD_APP_SOURCE_TARGET_REVISION=" + src.TargetRevision,
	}, src.Plugin)
}

// pluginParamEnvs adds plugin.env (ARGOCD_ENV_*, envsubst-ed) and the
// parameters (ARGOCD_APP_PARAMETERS, PARAM_*) as getPluginParamEnvs does.
func pluginParamEnvs(vars []string, plugin *v1alpha1.ApplicationSourcePlugin) ([]string, error) {
	parsed := make(v1alpha1.Env, len(vars))
	for i, v := range vars {
		e, err := v1alpha1.NewEnvEntry(v)
		if err != nil {
			return nil, err
		}
		parsed[i] = e
	}
	out := append([]string(nil), vars...)
	if plugin == nil {
		return out, nil
	}
	for _, e := range plugin.Env {
		out = append(out, fmt.Sprintf("ARGOCD_ENV_%s=%s", e.Name, parsed.Envsubst(e.Value)))
	}
	params, err := plugin.Parameters.Environ()
	if err != nil {
		return nil, err
	}
	return append(out, params...), nil
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// sidecar dials the plugin the Application names, as the repo-server does:
// <ARGOCD_PLUGINSOCKFILEPATH>/<plugin name>.sock, then checks its configuration.
func sidecar(ctx context.Context, t *testing.T, repo string, app *v1alpha1.Application, env, excluded []string) (utilio.Closer, pluginclient.ConfigManagementPluginServiceClient) {
	t.Helper()
	appPath := filepath.Join(repo, app.Spec.Source.Path)
	conn, client, err := discovery.DetectConfigManagementPlugin(ctx, appPath, repo, app.Spec.Source.Plugin.Name, env, excluded)
	if err != nil {
		t.Fatalf("repo-server cannot find the plugin: %v", err)
	}
	return conn, client
}

// generation is one GenerateManifest call's result.
type generation struct {
	manifests []string // one JSON document each, as cmp-server splits stdout
	err       error    // the gRPC error the repo-server receives
}

// generate runs what runConfigManagementPluginSidecars + generateManifestsCMP do.
func generate(ctx context.Context, t *testing.T, repo string, app *v1alpha1.Application, env, excluded []string) generation {
	t.Helper()
	conn, client := sidecar(ctx, t, repo, app, env, excluded)
	defer utilio.Close(conn)
	cfg, err := client.CheckPluginConfiguration(ctx, &emptypb.Empty{})
	if err != nil {
		t.Fatalf("CheckPluginConfiguration: %v", err)
	}
	if cfg.IsDiscoveryConfigured || cfg.ProvideGitCreds {
		t.Fatalf("plugin.yaml must not discover nor ask for git credentials: %+v", cfg)
	}
	stream, err := client.GenerateManifest(ctx, grpc_retry.Disable())
	if err != nil {
		t.Fatalf("GenerateManifest: %v", err)
	}
	appPath := filepath.Join(repo, app.Spec.Source.Path)
	if err := cmp.SendRepoStream(ctx, appPath, repo, stream, env, excluded); err != nil {
		return generation{err: err}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return generation{err: err}
	}
	return generation{manifests: resp.Manifests}
}

// announce runs what populatePluginAppDetails does for the UI's Parameters tab.
func announce(ctx context.Context, t *testing.T, repo string, app *v1alpha1.Application) []*repoclient.ParameterAnnouncement {
	t.Helper()
	env, err := announcementEnv(app)
	if err != nil {
		t.Fatal(err)
	}
	conn, client := sidecar(ctx, t, repo, app, env, nil)
	defer utilio.Close(conn)
	stream, err := client.GetParametersAnnouncement(ctx, grpc_retry.Disable())
	if err != nil {
		t.Fatal(err)
	}
	if err := cmp.SendRepoStream(ctx, filepath.Join(repo, app.Spec.Source.Path), repo, stream, env, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("GetParametersAnnouncement: %v", err)
	}
	return resp.ParameterAnnouncements
}
