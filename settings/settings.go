// Package settings resolves kyverno-gate's parameters from command-line flags
// and from the environment Argo CD gives a Config Management Plugin, with one
// precedence for every parameter:
//
//	flag > PARAM_* (Application parameters) > ARGOCD_ENV_* (Application env) > default
//
// Argo CD never sends the defaults announced in plugin.yaml, so the defaults
// live here, in the same table that produces plugin.yaml's announcement.
package settings

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a parameter's value.
type Type string

const (
	String   Type = "string"
	Bool     Type = "bool"
	Int      Type = "int"
	Duration Type = "duration"
	Array    Type = "array"
)

// Param describes one parameter: its flag (--Name), its Argo CD parameter
// (Name) and environment variables (PARAM_<ESC(Name)>, ARGOCD_ENV_<ESC(Name)>).
type Param struct {
	Name    string
	Type    Type
	Default []string // one value, or the elements of an array
	Title   string
	Tooltip string
}

// Params is every parameter, in the order plugin.yaml and --help show them.
var Params = []Param{
	{Name: "baseline", Type: String, Default: []string{"auto"}, Title: "Baseline",
		Tooltip: "What the weakening gate compares with: auto (the overlay's kyverno-gate.lock.yaml when present, else none), git:<rev>, file:<path>, or none."},
	{Name: "tests", Type: Array, Title: "Test folders",
		Tooltip: "Folders, relative to the repository root, searched for Kyverno test files; {overlay} is the rendered path, {policy-dirs} each folder that declares a rendered policy. Default: every folder of the repository, keeping the test files whose policies are files (or folders) this rendering took a policy from, except those in other overlays' folders."},
	{Name: "samples", Type: Array, Title: "Sample resources",
		Tooltip: "Extra folders, relative to the repository root, of resources the weakening gate tries as witnesses (besides the tests' resources)."},
	{Name: "test-file-name", Type: String, Default: []string{"kyverno-test.yaml"}, Title: "Test file name",
		Tooltip: "Name of the Kyverno test files (cli.kyverno.io/v1alpha1 Test)."},
	{Name: "allow-no-tests", Type: Bool, Default: []string{"false"}, Title: "Allow no tests",
		Tooltip: "Vet an overlay even when no Kyverno test covers any of its policies."},
	{Name: "allow-empty", Type: Bool, Default: []string{"false"}, Title: "Allow empty output",
		Tooltip: "Succeed when the path renders no resources. Dangerous: Argo CD then prunes every policy of the app."},
	{Name: "allow-remote", Type: Bool, Default: []string{"false"}, Title: "Allow remote bases",
		Tooltip: "Let kustomize fetch remote bases and files (git and HTTP). Off: the repository is rendered offline."},
	{Name: "enable-helm", Type: Bool, Default: []string{"false"}, Title: "Enable Helm",
		Tooltip: "Let kustomize inflate helmCharts with the helm binary."},
	{Name: "cache", Type: Bool, Default: []string{"true"}, Title: "Cache results",
		Tooltip: "Keep test suites' results and Kyverno's validation verdicts across generations in the sidecar's temporary folder (kyverno-gate-cache, at most 128 MiB), under a key over every input, so that a re-generation evaluates only what a change reaches. Off: everything is evaluated every time."},
	{Name: "timeout", Type: Duration, Default: []string{"45s"}, Title: "Time budget",
		Tooltip: "Stop with a clear error after this long; keep it below Argo CD's repo-server timeout (60s by default)."},
	{Name: "max-memory-mb", Type: Int, Title: "Memory ceiling (MiB)",
		Tooltip: "Stop with a clear error when the process's memory passes this many MiB, before the sidecar's memory limit kills it without a word. Default: 768, or 75% of the container's memory limit when that is lower."},
	{Name: "log-level", Type: String, Default: []string{"info"}, Title: "Log level",
		Tooltip: "debug, info, warn or error. Logs go to stderr; debug also shows Kyverno's own logs."},
	{Name: "max-problems", Type: Int, Default: []string{"20"}, Title: "Problems shown",
		Tooltip: "How many problems the error message lists before '... and N more', to keep Argo CD's UI readable."},
	{Name: "repo-root", Type: String, Title: "Repository root",
		Tooltip: "No file outside this folder is read. Default: derived from Argo CD's source path, else the enclosing git checkout, else the rendered path."},
}

// DefaultMaxMemoryMB is the memory ceiling when max-memory-mb is not given
// and 75% of the container's memory limit is not lower: 75% of the shipped
// sidecar's 1Gi. The quarter left is for allocations that land between two
// samples (up to 170 MiB at once measured on a hostile repository) and for
// argocd-cmp-server, which shares the limit.
const DefaultMaxMemoryMB = 768

// Lookup returns the parameter called name.
func Lookup(name string) (Param, bool) {
	for _, p := range Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// App is what Argo CD says about the Application being generated.
type App struct {
	Name, Namespace, Project      string
	Revision, SourcePath, RepoURL string
	TargetRevision                string
	KubeVersion                   string
	KubeAPIVersions               []string
	underArgoCD                   bool
}

// UnderArgoCD reports whether the process runs as Argo CD's plugin command.
func (a App) UnderArgoCD() bool { return a.underArgoCD }

// Settings is the resolved configuration of one run.
type Settings struct {
	Baseline     string
	Tests        []string
	Samples      []string
	TestFileName string
	AllowNoTests bool
	AllowEmpty   bool
	AllowRemote  bool
	EnableHelm   bool
	// Cache keeps test results across runs (parameter cache) in CacheDir,
	// which the command sets (empty, as for in-process runs: no cache).
	Cache    bool
	CacheDir string
	Timeout  time.Duration
	// MaxMemoryMB is the memory ceiling in MiB; 0 when not given (the
	// command derives it, see DefaultMaxMemoryMB).
	MaxMemoryMB int
	LogLevel    string
	MaxProblems int
	RepoRoot    string
	App         App
	// Origin says where each parameter's value came from, for debugging.
	Origin map[string]string
}

// Resolve combines explicitly given flags (name -> values) with environ
// (os.Environ form) and the defaults.
func Resolve(flags map[string][]string, environ []string) (*Settings, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	params, err := appParameters(env)
	if err != nil {
		return nil, err
	}
	s := &Settings{Origin: map[string]string{}, App: appInfo(env)}
	for _, p := range Params {
		values, origin := p.Default, "default"
		if v, ok := env["ARGOCD_ENV_"+Escape(p.Name)]; ok {
			values, origin = splitList(p, v), "ARGOCD_ENV_"+Escape(p.Name)
		}
		if v, ok := params[p.Name]; ok {
			values, origin = v.values, v.origin
		}
		if v, ok := flags[p.Name]; ok {
			values, origin = v, "--"+p.Name
		}
		if err := s.set(p, values); err != nil {
			return nil, fmt.Errorf("parameter %s (from %s): %w", p.Name, origin, err)
		}
		s.Origin[p.Name] = origin
	}
	if strings.HasPrefix(s.Baseline, "cluster") && s.App.UnderArgoCD() {
		return nil, fmt.Errorf("parameter baseline (from %s): %s is a CLI feature: the Argo CD sidecar has no cluster access; use auto, git:<rev> or file:<path>", s.Origin["baseline"], s.Baseline)
	}
	return s, nil
}

func splitList(p Param, v string) []string {
	if p.Type != Array {
		return []string{v}
	}
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (s *Settings) set(p Param, values []string) error {
	one := ""
	if p.Type != Array {
		if len(values) > 1 {
			return fmt.Errorf("takes one value, got %d", len(values))
		}
		if len(values) == 1 {
			one = strings.TrimSpace(values[0])
		}
	}
	switch p.Name {
	case "baseline":
		if err := checkBaseline(one); err != nil {
			return err
		}
		s.Baseline = one
	case "tests":
		s.Tests = values
	case "samples":
		s.Samples = values
	case "test-file-name":
		if one == "" || strings.ContainsRune(one, filepath.Separator) {
			return fmt.Errorf("%q is not a file name", one)
		}
		s.TestFileName = one
	case "allow-no-tests":
		return parseBool(one, &s.AllowNoTests)
	case "allow-empty":
		return parseBool(one, &s.AllowEmpty)
	case "allow-remote":
		return parseBool(one, &s.AllowRemote)
	case "enable-helm":
		return parseBool(one, &s.EnableHelm)
	case "cache":
		return parseBool(one, &s.Cache)
	case "timeout":
		d, err := time.ParseDuration(one)
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a positive duration such as 45s or 2m", one)
		}
		s.Timeout = d
	case "max-memory-mb":
		if one == "" {
			s.MaxMemoryMB = 0
			return nil
		}
		n, err := strconv.Atoi(one)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive number of MiB", one)
		}
		s.MaxMemoryMB = n
	case "log-level":
		switch one {
		case "debug", "info", "warn", "warning", "error":
		default:
			return fmt.Errorf("%q is not one of debug, info, warn, error", one)
		}
		s.LogLevel = one
	case "max-problems":
		n, err := strconv.Atoi(one)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive number", one)
		}
		s.MaxProblems = n
	case "repo-root":
		s.RepoRoot = one
	default:
		return fmt.Errorf("no setting for parameter %s", p.Name) // a Params entry without a case: a bug
	}
	return nil
}

func checkBaseline(v string) error {
	switch {
	case v == "auto", v == "none":
		return nil
	case strings.HasPrefix(v, "git:") && len(v) > len("git:"):
		return nil
	case strings.HasPrefix(v, "file:") && len(v) > len("file:"):
		return nil
	case v == "cluster" || strings.HasPrefix(v, "cluster:") && len(v) > len("cluster:"):
		return nil
	}
	if info, err := os.Stat(v); err == nil && info.IsDir() {
		// `generate --baseline overlays/prod`: the value went missing and
		// the folder to render took its place.
		return fmt.Errorf("%q is not auto, none, git:<rev>, file:<path> or cluster[:<context>]; it is a folder: give --baseline a value before the folder to render (e.g. --baseline git:origin/main %s)", v, v)
	}
	return fmt.Errorf("%q is not auto, none, git:<rev>, file:<path> or cluster[:<context>]", v)
}

func parseBool(v string, dst *bool) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		switch strings.ToLower(v) {
		case "yes", "on":
			b, err = true, nil
		case "no", "off":
			b, err = false, nil
		default:
			return fmt.Errorf("%q is not true or false", v)
		}
	}
	*dst = b
	return nil
}

type paramValue struct {
	values []string
	origin string
}

// appParameters reads the Application's plugin parameters. ARGOCD_APP_PARAMETERS
// keeps the names as written, so it is preferred; the PARAM_* variables are
// the fallback for a hand-made environment. An unknown name is an error: a
// misspelt parameter must not silently leave a gate at its default.
func appParameters(env map[string]string) (map[string]paramValue, error) {
	out := map[string]paramValue{}
	if raw, ok := env["ARGOCD_APP_PARAMETERS"]; ok && strings.TrimSpace(raw) != "" {
		var list []struct {
			Name   string            `json:"name"`
			String *string           `json:"string"`
			Array  []string          `json:"array"`
			Map    map[string]string `json:"map"`
		}
		if err := json.Unmarshal([]byte(raw), &list); err != nil {
			return nil, fmt.Errorf("ARGOCD_APP_PARAMETERS is not Argo CD's JSON parameter list: %v", err)
		}
		for _, e := range list {
			p, ok := Lookup(e.Name)
			if !ok {
				return nil, unknownParam(e.Name)
			}
			var values []string
			switch {
			case e.String != nil:
				values = splitList(p, *e.String)
			case e.Map != nil:
				return nil, fmt.Errorf("parameter %s: takes a %s, not a map", p.Name, p.Type)
			default:
				values = e.Array
				if p.Type != Array && len(values) != 1 {
					return nil, fmt.Errorf("parameter %s: takes a %s, not an array", p.Name, p.Type)
				}
			}
			out[p.Name] = paramValue{values, "Application parameter " + p.Name}
		}
		return out, nil
	}
	// PARAM_<ESC(name)> for strings, PARAM_<ESC(name)>_<i> for array elements.
	byEsc := map[string]Param{}
	for _, p := range Params {
		byEsc[Escape(p.Name)] = p
	}
	arrays := map[string]map[int]string{}
	var keys []string
	for k := range env {
		if strings.HasPrefix(k, "PARAM_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.TrimPrefix(k, "PARAM_")
		if p, ok := byEsc[name]; ok {
			out[p.Name] = paramValue{splitList(p, env[k]), k}
			continue
		}
		i := strings.LastIndexByte(name, '_')
		if i > 0 {
			if p, ok := byEsc[name[:i]]; ok && p.Type == Array {
				if n, err := strconv.Atoi(name[i+1:]); err == nil && n >= 0 {
					if arrays[p.Name] == nil {
						arrays[p.Name] = map[int]string{}
					}
					arrays[p.Name][n] = env[k]
					continue
				}
			}
		}
		return nil, unknownParam(strings.ToLower(strings.ReplaceAll(name, "_", "-")) + " (" + k + ")")
	}
	names := make([]string, 0, len(arrays))
	for name := range arrays {
		names = append(names, name)
	}
	sort.Strings(names) // the same error every time when several arrays have holes
	for _, name := range names {
		elems := arrays[name]
		values := make([]string, len(elems))
		for i := range values {
			v, ok := elems[i]
			if !ok {
				return nil, fmt.Errorf("parameter %s: PARAM_%s_%d is missing", name, Escape(name), i)
			}
			values[i] = v
		}
		out[name] = paramValue{values, "PARAM_" + Escape(name) + "_*"}
	}
	return out, nil
}

func unknownParam(name string) error {
	var known []string
	for _, p := range Params {
		known = append(known, p.Name)
	}
	return fmt.Errorf("unknown parameter %s; known parameters: %s", name, strings.Join(known, ", "))
}

// Escape is Argo CD's escaping of a parameter name into an environment
// variable suffix: upper case, every character outside [A-Z0-9_] becomes _.
func Escape(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func appInfo(env map[string]string) App {
	a := App{
		Name: env["ARGOCD_APP_NAME"], Namespace: env["ARGOCD_APP_NAMESPACE"], Project: env["ARGOCD_APP_PROJECT_NAME"],
		Revision: env["ARGOCD_APP_REVISION"], SourcePath: env["ARGOCD_APP_SOURCE_PATH"],
		RepoURL: env["ARGOCD_APP_SOURCE_REPO_URL"], TargetRevision: env["ARGOCD_APP_SOURCE_TARGET_REVISION"],
		KubeVersion: env["KUBE_VERSION"],
	}
	for _, v := range strings.Split(env["KUBE_API_VERSIONS"], ",") {
		if v = strings.TrimSpace(v); v != "" {
			a.KubeAPIVersions = append(a.KubeAPIVersions, v)
		}
	}
	_, a.underArgoCD = env["ARGOCD_APP_NAME"]
	return a
}

// ConfigFile is the repository configuration file; the folder holding it is
// the repository root, even inside a larger checkout (a monorepo, or this
// project's own examples).
const ConfigFile = ".kyverno-gate.yaml"

// Root is the repository root for rendering dir. Under Argo CD it is the
// checkout Argo CD sent (see Checkout) or, with the repo-root parameter, a
// folder inside it: a parameter comes from whoever edits the Application
// and may never widen what is read. Elsewhere it is the repo-root
// parameter (the operator's own flag); else the nearest enclosing folder
// with a .kyverno-gate.yaml, else with a .git; else dir itself.
func (s *Settings) Root(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if s.App.underArgoCD {
		checkout, err := s.App.Checkout(abs)
		if err != nil {
			return "", err
		}
		if s.RepoRoot == "" {
			return checkout, nil
		}
		r := s.RepoRoot
		if !filepath.IsAbs(r) {
			r = filepath.Join(checkout, r)
		}
		real, err := filepath.EvalSymlinks(r)
		if err != nil {
			return "", fmt.Errorf("parameter repo-root %q: %v", s.RepoRoot, err)
		}
		if !within(checkout, real) {
			return "", fmt.Errorf("parameter repo-root %q is outside the checkout Argo CD sent (%s); under Argo CD it may only name a folder inside the repository", s.RepoRoot, checkout)
		}
		return real, nil
	}
	if s.RepoRoot != "" {
		return filepath.Abs(s.RepoRoot)
	}
	for _, marker := range []string{ConfigFile, ".git"} {
		for d := abs; ; d = filepath.Dir(d) {
			if _, err := os.Lstat(filepath.Join(d, marker)); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return abs, nil
}

// cmpWorkDir is the folder argocd-cmp-server makes for each request's
// checkout (<work>/_cmp_server/<uuid>).
const cmpWorkDir = "_cmp_server"

// Checkout returns the root of the files Argo CD sent for the command run
// in dir (absolute, symlinks resolved): the request's folder under
// cmp-server's _cmp_server work dir (the leftmost such component, so that a
// repository folder of that name cannot move it); else dir minus the
// Application's source path; else, when Argo CD sent a narrowed tree
// (reposerver.plugin.use.manifest.generate.paths), dir minus the longest
// tail of the source path it ends with.
func (a App) Checkout(dir string) (string, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	parts := strings.Split(real, string(filepath.Separator))
	for i, p := range parts {
		if p == cmpWorkDir && i+1 < len(parts) {
			return strings.Join(parts[:i+2], string(filepath.Separator)), nil
		}
	}
	sp := filepath.Clean(a.SourcePath)
	if sp == "." || sp == "" {
		return real, nil
	}
	spParts := strings.Split(sp, string(filepath.Separator))
	for k := len(spParts); k > 0; k-- {
		tail := string(filepath.Separator) + filepath.Join(spParts[len(spParts)-k:]...)
		if strings.HasSuffix(real, tail) {
			return strings.TrimSuffix(real, tail), nil
		}
	}
	return "", fmt.Errorf("cannot tell which folder is the checkout: the working directory %s does not end with the source path %q", real, a.SourcePath)
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// Plugin identifies the plugin to Argo CD. Applications name it as
// spec.source.plugin.name: <PluginName>-<PluginVersion>. The version moves
// only when the parameters change incompatibly.
const (
	PluginName    = "kyverno-gate"
	PluginVersion = "v1"
	// Command is what plugin.yaml runs, looked up on the sidecar's PATH (the
	// image installs it in /usr/local/bin), so the same plugin.yaml works in
	// the image, in the e2e suite and in a hand-made sidecar.
	Command = "kyverno-gate"
)

// PluginYAML returns plugin.yaml: a named plugin without discovery (so it
// never claims other apps), running generate, announcing every parameter
// with its default so that Argo CD's UI shows them.
func PluginYAML() []byte {
	var b strings.Builder
	b.WriteString(`# Argo CD Config Management Plugin definition for kyverno-gate.
# Generated by 'kyverno-gate plugin-config'; edit settings.Params instead.
# Applications use it with spec.source.plugin.name: ` + PluginName + "-" + PluginVersion + `
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: ` + PluginName + `
spec:
  version: ` + PluginVersion + `
  generate:
    command: [` + Command + `, generate]
  parameters:
    static:
`)
	for _, p := range Params {
		fmt.Fprintf(&b, "      - name: %s\n        title: %s\n        tooltip: %s\n", p.Name, strconv.Quote(p.Title), strconv.Quote(p.Tooltip))
		if p.Type == Array {
			b.WriteString("        collectionType: array\n        array:\n")
			for _, d := range p.Default {
				fmt.Fprintf(&b, "          - %s\n", strconv.Quote(d))
			}
			continue
		}
		def := ""
		if len(p.Default) == 1 {
			def = p.Default[0]
		}
		fmt.Fprintf(&b, "        collectionType: string\n        string: %s\n", strconv.Quote(def))
	}
	return []byte(b.String())
}
