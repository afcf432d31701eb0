package settings

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResolvePrecedenceAndArgoCDEncoding(t *testing.T) {
	tests := []struct {
		name    string
		flags   map[string][]string
		environ []string
		check   func(t *testing.T, s *Settings)
	}{
		{name: "defaults", check: func(t *testing.T, s *Settings) {
			if s.Baseline != "auto" || s.Timeout != 45*time.Second || s.AllowEmpty || s.MaxProblems != 20 ||
				s.TestFileName != "kyverno-test.yaml" || len(s.Tests) != 0 {
				t.Errorf("defaults wrong: %+v", s)
			}
			if s.Origin["baseline"] != "default" {
				t.Errorf("origin = %q", s.Origin["baseline"])
			}
		}},
		{name: "ARGOCD_ENV beats default", environ: []string{"ARGOCD_ENV_TIMEOUT=20s", "ARGOCD_ENV_TESTS=a, b"},
			check: func(t *testing.T, s *Settings) {
				if s.Timeout != 20*time.Second || !reflect.DeepEqual(s.Tests, []string{"a", "b"}) {
					t.Errorf("got %v %v", s.Timeout, s.Tests)
				}
			}},
		{name: "PARAM beats ARGOCD_ENV", environ: []string{"ARGOCD_ENV_TIMEOUT=20s", "PARAM_TIMEOUT=30s"},
			check: func(t *testing.T, s *Settings) {
				if s.Timeout != 30*time.Second || s.Origin["timeout"] != "PARAM_TIMEOUT" {
					t.Errorf("got %v from %s", s.Timeout, s.Origin["timeout"])
				}
			}},
		{name: "flag beats PARAM", flags: map[string][]string{"timeout": {"5s"}}, environ: []string{"PARAM_TIMEOUT=30s"},
			check: func(t *testing.T, s *Settings) {
				if s.Timeout != 5*time.Second {
					t.Errorf("got %v", s.Timeout)
				}
			}},
		{name: "PARAM array elements", environ: []string{"PARAM_TESTS_1=second", "PARAM_TESTS_0=first", "PARAM_ALLOW_NO_TESTS=true"},
			check: func(t *testing.T, s *Settings) {
				if !reflect.DeepEqual(s.Tests, []string{"first", "second"}) || !s.AllowNoTests {
					t.Errorf("got %v %v", s.Tests, s.AllowNoTests)
				}
			}},
		{name: "ARGOCD_APP_PARAMETERS is authoritative", environ: []string{
			`ARGOCD_APP_PARAMETERS=[{"name":"baseline","string":"git:main"},{"array":["policies/tests"],"name":"tests"},{"name":"allow-empty","string":"yes"}]`,
			"PARAM_BASELINE=git:main", "PARAM_TESTS_0=policies/tests", "PARAM_ALLOW_EMPTY=yes"},
			check: func(t *testing.T, s *Settings) {
				if s.Baseline != "git:main" || !reflect.DeepEqual(s.Tests, []string{"policies/tests"}) || !s.AllowEmpty {
					t.Errorf("got %+v", s)
				}
			}},
		{name: "memory ceiling", environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"max-memory-mb","string":"600"}]`},
			check: func(t *testing.T, s *Settings) {
				if s.MaxMemoryMB != 600 {
					t.Errorf("got %d", s.MaxMemoryMB)
				}
			}},
		{name: "memory ceiling not given", check: func(t *testing.T, s *Settings) {
			if s.MaxMemoryMB != 0 || s.Origin["max-memory-mb"] != "default" {
				t.Errorf("got %d from %s", s.MaxMemoryMB, s.Origin["max-memory-mb"])
			}
		}},
		{name: "array parameter given as a string", environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"tests","string":"a,b"}]`},
			check: func(t *testing.T, s *Settings) {
				if !reflect.DeepEqual(s.Tests, []string{"a", "b"}) {
					t.Errorf("got %v", s.Tests)
				}
			}},
		{name: "empty ARGOCD_ENV value is a value", environ: []string{"ARGOCD_ENV_REPO_ROOT="},
			check: func(t *testing.T, s *Settings) {
				if s.RepoRoot != "" || s.Origin["repo-root"] != "ARGOCD_ENV_REPO_ROOT" {
					t.Errorf("got %q from %s", s.RepoRoot, s.Origin["repo-root"])
				}
			}},
		{name: "app info", environ: []string{"ARGOCD_APP_NAME=argocd_policies-prod", "ARGOCD_APP_NAMESPACE=kyverno",
			"ARGOCD_APP_REVISION=0123456789abcdef", "ARGOCD_APP_SOURCE_PATH=overlays/production",
			"KUBE_VERSION=1.32.1", "KUBE_API_VERSIONS=v1,kyverno.io/v1,kyverno.io/v1/ClusterPolicy"},
			check: func(t *testing.T, s *Settings) {
				a := s.App
				if !a.UnderArgoCD() || a.Name != "argocd_policies-prod" || a.SourcePath != "overlays/production" ||
					a.KubeVersion != "1.32.1" || len(a.KubeAPIVersions) != 3 || a.Namespace != "kyverno" {
					t.Errorf("got %+v", a)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(tt.flags, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestResolveRejectsBadValues(t *testing.T) {
	tests := []struct {
		name    string
		flags   map[string][]string
		environ []string
		want    string
	}{
		{name: "unknown Application parameter", environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"basline","string":"none"}]`},
			want: "unknown parameter basline"},
		{name: "unknown PARAM variable", environ: []string{"PARAM_BASLINE=none"}, want: "unknown parameter basline"},
		{name: "bad bool", environ: []string{"PARAM_ALLOW_EMPTY=maybe"}, want: `allow-empty (from PARAM_ALLOW_EMPTY): "maybe" is not true or false`},
		{name: "bad duration", environ: []string{"ARGOCD_ENV_TIMEOUT=soon"}, want: "timeout (from ARGOCD_ENV_TIMEOUT)"},
		{name: "negative duration", flags: map[string][]string{"timeout": {"-1s"}}, want: "positive duration"},
		{name: "bad baseline", environ: []string{"PARAM_BASELINE=HEAD~1"}, want: "not auto, none, git:<rev>, file:<path> or cluster[:<context>]"},
		{name: "cluster baseline without a context name", flags: map[string][]string{"baseline": {"cluster:"}}, want: "not auto, none"},
		{name: "cluster baseline under Argo CD", environ: []string{"ARGOCD_APP_NAME=policies", "PARAM_BASELINE=cluster:production"},
			want: "parameter baseline (from PARAM_BASELINE): cluster:production is a CLI feature: the Argo CD sidecar has no cluster access"},
		{name: "map for a string", environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"baseline","map":{"a":"b"}}]`}, want: "not a map"},
		{name: "array for a string", environ: []string{`ARGOCD_APP_PARAMETERS=[{"name":"timeout","array":["1s","2s"]}]`}, want: "not an array"},
		{name: "garbled JSON", environ: []string{`ARGOCD_APP_PARAMETERS=[{`}, want: "ARGOCD_APP_PARAMETERS"},
		{name: "hole in array", environ: []string{"PARAM_TESTS_1=x"}, want: "PARAM_TESTS_0 is missing"},
		{name: "bad log level", environ: []string{"PARAM_LOG_LEVEL=loud"}, want: "log-level"},
		{name: "bad test file name", flags: map[string][]string{"test-file-name": {"a/b.yaml"}}, want: "not a file name"},
		{name: "bad memory ceiling", environ: []string{"PARAM_MAX_MEMORY_MB=1Gi"}, want: `max-memory-mb (from PARAM_MAX_MEMORY_MB): "1Gi" is not a positive number of MiB`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.flags, tt.environ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEscapeMatchesArgoCD(t *testing.T) {
	for in, want := range map[string]string{"image.tag": "IMAGE_TAG", "values-files": "VALUES_FILES", "allow-no-tests": "ALLOW_NO_TESTS", "a_b": "A_B"} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoot(t *testing.T) {
	repo := t.TempDir()
	overlay := filepath.Join(repo, "overlays", "production")
	os.MkdirAll(overlay, 0o755)
	os.Mkdir(filepath.Join(repo, ".git"), 0o755)
	plain := t.TempDir()
	nested := filepath.Join(repo, "policies")
	os.MkdirAll(filepath.Join(nested, "overlays", "prod"), 0o755)
	os.WriteFile(filepath.Join(nested, ConfigFile), []byte("{}\n"), 0o644)
	os.Symlink(plain, filepath.Join(repo, "elsewhere"))
	// cmp-server's layout: <work>/_cmp_server/<uuid>/<source path>, and a
	// repository that holds a folder of the same name.
	work := t.TempDir()
	req := filepath.Join(work, "_cmp_server", "8a3c")
	cmpOverlay := filepath.Join(req, "overlays", "production")
	evil := filepath.Join(req, "_cmp_server", "x", "overlays", "production")
	os.MkdirAll(cmpOverlay, 0o755)
	os.MkdirAll(evil, 0o755)
	argo := func(sourcePath string) []string {
		return []string{"ARGOCD_APP_NAME=p", "ARGOCD_APP_SOURCE_PATH=" + sourcePath}
	}
	rootParam := func(v string) map[string][]string { return map[string][]string{"repo-root": {v}} }

	tests := []struct {
		name    string
		environ []string
		flags   map[string][]string
		dir     string
		want    string
		wantErr string
	}{
		{name: "argo cd source path", dir: overlay, want: repo, environ: argo("overlays/production/")},
		{name: "argo cd repo root app", dir: plain, want: plain, environ: argo(".")},
		{name: "argo cd work dir", dir: cmpOverlay, want: req, environ: argo("overlays/production")},
		{name: "argo cd work dir, folder of the same name in the repo", dir: evil, want: req, environ: argo("_cmp_server/x/overlays/production")},
		{name: "argo cd narrowed tree", dir: filepath.Join(nested, "overlays", "prod"), want: nested, environ: argo("team/overlays/prod")},
		{name: "argo cd source path not found", dir: plain, environ: argo("overlays/production"), wantErr: "cannot tell which folder is the checkout"},
		{name: "argo cd repo-root inside", dir: overlay, want: nested, environ: argo("overlays/production"), flags: rootParam("policies")},
		{name: "argo cd repo-root above the checkout", dir: overlay, environ: argo("overlays/production"), flags: rootParam("../"),
			wantErr: `parameter repo-root "../" is outside the checkout`},
		{name: "argo cd repo-root absolute", dir: overlay, environ: argo("overlays/production"), flags: rootParam("/"),
			wantErr: "is outside the checkout"},
		{name: "argo cd repo-root through a symlink", dir: overlay, environ: argo("overlays/production"), flags: rootParam("elsewhere"),
			wantErr: "is outside the checkout"},
		{name: "argo cd repo-root param in the environment", dir: overlay, environ: append(argo("overlays/production"), "PARAM_REPO_ROOT=/etc"),
			wantErr: "is outside the checkout"},
		{name: "enclosing git checkout", dir: overlay, want: repo},
		{name: "config file inside a checkout", dir: filepath.Join(nested, "overlays", "prod"), want: nested},
		{name: "no checkout", dir: plain, want: plain},
		{name: "explicit", dir: overlay, want: filepath.Join(repo, "overlays"), flags: rootParam(filepath.Join(repo, "overlays"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(tt.flags, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Root(tt.dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Root = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Root = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
