package settings

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
)

// Fuzz targets for everything an Application (or a hand-made environment)
// controls: the environment variables Argo CD passes and the JSON list in
// ARGOCD_APP_PARAMETERS. See docs/fuzzing.md.

// FuzzResolve feeds Resolve an environment, one VAR=value per line; a line
// "--name=value" is a flag instead.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"",
		"ARGOCD_ENV_TIMEOUT=20s\nARGOCD_ENV_TESTS=a, b",
		"PARAM_TESTS_1=second\nPARAM_TESTS_0=first\nPARAM_ALLOW_NO_TESTS=true",
		"PARAM_BASELINE=git:main\nPARAM_TESTS=a,b\nPARAM_MAX_PROBLEMS=3\nPARAM_LOG_LEVEL=warn",
		"--timeout=5s\nPARAM_TIMEOUT=30s\nARGOCD_ENV_TIMEOUT=1h",
		"ARGOCD_APP_NAME=policies-production\nARGOCD_APP_SOURCE_PATH=overlays/production\nKUBE_API_VERSIONS=v1,kyverno.io/v1",
		"PARAM_BASLINE=none",
		"ARGOCD_ENV_ALLOW_EMPTY=yes\nARGOCD_ENV_ENABLE_HELM=off\nARGOCD_ENV_REPO_ROOT=",
		"--tests=a\n--tests=b\n--baseline=file:x.yaml",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var environ []string
		flags := map[string][]string{}
		for _, line := range strings.Split(in, "\n") {
			if name, v, ok := strings.Cut(strings.TrimPrefix(line, "--"), "="); ok && strings.HasPrefix(line, "--") {
				flags[name] = append(flags[name], v)
				continue
			}
			environ = append(environ, line)
		}
		checkResolve(t, flags, environ)
	})
}

// FuzzAppParameters feeds Resolve an ARGOCD_APP_PARAMETERS value, seeded
// with the parameter lists of the example Applications.
func FuzzAppParameters(f *testing.F) {
	for _, s := range []string{
		`[{"name":"baseline","string":"git:main"},{"array":["policies/tests"],"name":"tests"},{"name":"allow-empty","string":"yes"}]`,
		`[{"name":"tests","string":"a,b"}]`,
		`[{"name":"timeout","array":["1s"]}]`,
		`[{"name":"timeout","array":["1s","2s"]}]`,
		`[{"name":"baseline","map":{"a":"b"}}]`,
		`[{"name":"samples","array":[]},{"name":"samples","array":null}]`,
		`[{"name":"max-problems","string":" 7 "},{"name":"log-level","string":"debug"}]`,
		`[{"name":"basline","string":"none"}]`,
		`[{`, `null`, `{}`, `[]`, `[null]`,
	} {
		f.Add(s)
	}
	for _, file := range fuzzseed.Files(f, func(rel string) bool { return strings.HasPrefix(rel, "argocd/") }) {
		var app struct {
			Spec struct {
				Source struct {
					Plugin struct {
						Parameters json.RawMessage `json:"parameters"`
					} `json:"plugin"`
				} `json:"source"`
			} `json:"spec"`
		}
		if yaml.Unmarshal(file.Data, &app) == nil && len(app.Spec.Source.Plugin.Parameters) > 0 {
			f.Add(string(app.Spec.Source.Plugin.Parameters))
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s := checkResolve(t, nil, []string{"ARGOCD_APP_PARAMETERS=" + raw, "PARAM_IGNORED_WHEN_THE_LIST_IS_SET=x"})
		if s == nil {
			return
		}
		// What was accepted, sent back the way Argo CD sends it, resolves
		// to the same settings.
		var list []map[string]any
		for _, p := range Params {
			v := valuesOf(s, p)
			if v == nil && p.Type != Array {
				continue
			}
			if p.Type == Array {
				list = append(list, map[string]any{"name": p.Name, "array": v})
			} else {
				list = append(list, map[string]any{"name": p.Name, "string": v[0]})
			}
		}
		b, err := json.Marshal(list)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Resolve(nil, []string{"ARGOCD_APP_PARAMETERS=" + string(b)})
		if err != nil {
			t.Fatalf("%s: resolved, but its re-encoding %s does not: %v", raw, b, err)
		}
		if d := diffSettings(s, again); d != "" {
			t.Fatalf("%s: re-encoded as %s resolves differently: %s", raw, b, d)
		}
	})
}

// checkResolve resolves several times (map order must not matter), checks
// the invariants of an accepted configuration and that feeding the result
// back as flags gives the same settings. It returns nil on an error.
func checkResolve(t *testing.T, flags map[string][]string, environ []string) *Settings {
	t.Helper()
	s, err := Resolve(flags, environ)
	for i := 0; i < 8; i++ {
		s2, err2 := Resolve(flags, environ)
		if fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("not deterministic: error %v, then %v", err, err2)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("not deterministic: %+v, then %+v", s, s2)
		}
	}
	if err != nil {
		if s != nil {
			t.Fatalf("settings %+v with error %v", s, err)
		}
		return nil
	}
	if checkBaseline(s.Baseline) != nil || strings.TrimSpace(s.Baseline) != s.Baseline {
		t.Errorf("accepted baseline %q", s.Baseline)
	}
	if s.TestFileName == "" || strings.ContainsRune(s.TestFileName, filepath.Separator) {
		t.Errorf("accepted test-file-name %q", s.TestFileName)
	}
	if s.Timeout <= 0 || s.MaxProblems < 1 {
		t.Errorf("accepted timeout %v, max-problems %d", s.Timeout, s.MaxProblems)
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "warning", "error":
	default:
		t.Errorf("accepted log-level %q", s.LogLevel)
	}
	for _, p := range Params {
		o := s.Origin[p.Name]
		if o != "default" && o != "--"+p.Name && o != "ARGOCD_ENV_"+Escape(p.Name) && o != "Application parameter "+p.Name &&
			!strings.HasPrefix(o, "PARAM_"+Escape(p.Name)) {
			t.Errorf("parameter %s has origin %q", p.Name, o)
		}
	}
	if len(s.Origin) != len(Params) {
		t.Errorf("origins %v, want one per parameter", s.Origin)
	}
	// Accepted values are accepted again as flags, unchanged.
	again := map[string][]string{}
	for _, p := range Params {
		if v := valuesOf(s, p); v != nil || p.Type == Array {
			again[p.Name] = v
		}
	}
	s2, err := Resolve(again, nil)
	if err != nil {
		t.Fatalf("resolved %+v, but not as flags %v: %v", s, again, err)
	}
	if d := diffSettings(s, s2); d != "" {
		t.Fatalf("resolved values given back as flags %v differ: %s", again, d)
	}
	return s
}

// valuesOf returns the value of p in s in the form a flag takes.
func valuesOf(s *Settings, p Param) []string {
	switch p.Name {
	case "baseline":
		return []string{s.Baseline}
	case "tests":
		return append([]string{}, s.Tests...)
	case "samples":
		return append([]string{}, s.Samples...)
	case "test-file-name":
		return []string{s.TestFileName}
	case "allow-no-tests":
		return []string{strconv.FormatBool(s.AllowNoTests)}
	case "allow-empty":
		return []string{strconv.FormatBool(s.AllowEmpty)}
	case "allow-remote":
		return []string{strconv.FormatBool(s.AllowRemote)}
	case "enable-helm":
		return []string{strconv.FormatBool(s.EnableHelm)}
	case "cache":
		return []string{strconv.FormatBool(s.Cache)}
	case "timeout":
		return []string{s.Timeout.String()}
	case "log-level":
		return []string{s.LogLevel}
	case "max-memory-mb":
		if s.MaxMemoryMB == 0 {
			return []string{""}
		}
		return []string{strconv.Itoa(s.MaxMemoryMB)}
	case "max-problems":
		return []string{strconv.Itoa(s.MaxProblems)}
	case "repo-root":
		return []string{s.RepoRoot}
	}
	return nil // a parameter this test does not know yet: not compared
}

// diffSettings compares the parameter values of a and b (not their origin
// or the Application), an empty and a nil list being the same.
func diffSettings(a, b *Settings) string {
	var d []string
	for _, p := range Params {
		va, vb := valuesOf(a, p), valuesOf(b, p)
		if len(va) != 0 || len(vb) != 0 {
			if !reflect.DeepEqual(va, vb) {
				d = append(d, fmt.Sprintf("%s: %q vs %q", p.Name, va, vb))
			}
		}
	}
	return strings.Join(d, "; ")
}
