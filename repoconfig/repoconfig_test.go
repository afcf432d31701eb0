package repoconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full"))
	if err != nil {
		t.Fatal(err)
	}
	if c.File != ".kyverno-gate.yaml" || len(c.Environments) != 3 {
		t.Fatalf("got %+v", c)
	}
	prod := c.Environment("production")
	if prod == nil || prod.Floors.ValidateAction != "Enforce" || prod.Floors.FailurePolicy != "Fail" ||
		prod.Floors.Exceptions != "approved" || prod.Floors.NotWeakerThan != "staging" {
		t.Fatalf("production: %+v", prod)
	}
	if c.Environment("development").Floors != nil || !c.Environment("development").Floors.Empty() {
		t.Fatal("development has no floors")
	}
	for _, tc := range []struct{ dir, want string }{
		{"overlays/production", "production"},
		{"./overlays/production/", "production"},
		{"overlays/staging", "staging"}, // declared as ./overlays/staging/
		{"overlays/staging/../development", "development"},
		{"overlays", ""},
		{"overlays/production/x", ""},
		{".", ""},
	} {
		got := ""
		if e := c.EnvironmentFor(tc.dir); e != nil {
			got = e.Name
		}
		if got != tc.want {
			t.Errorf("EnvironmentFor(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "none"))
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || len(c.Environments) != 0 || c.EnvironmentFor("overlays/production") != nil {
		t.Fatalf("got %+v", c)
	}
	var nilConfig *Config
	if nilConfig.EnvironmentFor("x") != nil || nilConfig.Environment("x") != nil {
		t.Fatal("nil config has no environments")
	}
}

func TestLoadStrict(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "bad-field"))
	if err == nil || !strings.Contains(err.Error(), ".kyverno-gate.yaml") || !strings.Contains(err.Error(), `unknown field "validateActions"`) {
		t.Fatalf("got %v", err)
	}
}

// A symlink to a file outside the repository is refused (one inside is
// read, like every other file of the repository).
func TestLoadSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "elsewhere.yaml")
	if err := os.WriteFile(target, []byte("apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, ".kyverno-gate.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "outside the repository root") {
		t.Fatalf("got %v", err)
	}
}

func TestParse(t *testing.T) {
	head := "apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n"
	env := func(body string) string { return head + "environments:\n" + body }
	for _, tc := range []struct {
		name, text, err string
	}{
		{"blank", "# nothing yet\n\n", ""},
		{"header only", head, ""},
		{"example repo", mustRead(t, "../examples/policy-repo/.kyverno-gate.yaml"), ""},
		{"wrong apiVersion", "apiVersion: v1\nkind: Config\n", `apiVersion is "v1"`},
		{"wrong kind", "apiVersion: kyverno-gate.io/v1alpha1\nkind: Settings\n", `kind is "Settings"`},
		{"unknown top-level", head + "environment: []\n", `unknown field "environment"`},
		{"no name", env("  - path: a\n"), "environments[0]: name is required"},
		{"no path", env("  - name: a\n"), "environment a: path is required"},
		{"dup name", env("  - {name: a, path: a}\n  - {name: a, path: b}\n"), "environment a: declared twice"},
		{"dup path", env("  - {name: a, path: x/y}\n  - {name: b, path: ./x/y/}\n"), "also the path of environment a"},
		{"absolute path", env("  - {name: a, path: /etc}\n"), "must be relative"},
		{"escaping path", env("  - {name: a, path: ../x}\n"), "outside the repository root"},
		{"bad action", env("  - {name: a, path: a, floors: {validateAction: Audit}}\n"), `floors.validateAction is "Audit"`},
		{"lowercase action", env("  - {name: a, path: a, floors: {validateAction: enforce}}\n"), `floors.validateAction is "enforce"`},
		{"bad failurePolicy", env("  - {name: a, path: a, floors: {failurePolicy: Ignore}}\n"), "floors.failurePolicy"},
		{"bad exceptions", env("  - {name: a, path: a, floors: {exceptions: none}}\n"), "floors.exceptions"},
		{"self", env("  - {name: a, path: a, floors: {notWeakerThan: a}}\n"), "names the environment itself"},
		{"later", env("  - {name: a, path: a, floors: {notWeakerThan: b}}\n  - {name: b, path: b}\n"), "names a later environment"},
		{"unknown env", env("  - {name: a, path: a, floors: {notWeakerThan: qa}}\n"), "qa is not a declared environment"},
		{"earlier ok", env("  - {name: a, path: a}\n  - {name: b, path: b, floors: {notWeakerThan: a}}\n"), ""},
		{"missingBaseline error", head + "missingBaseline: error\n", ""},
		{"missingBaseline per environment", env("  - {name: a, path: a, missingBaseline: warning}\n"), ""},
		{"bad missingBaseline", head + "missingBaseline: Error\n", `missingBaseline is "Error"; the values are warning, error`},
		{"bad environment missingBaseline", env("  - {name: a, path: a, missingBaseline: ignore}\n"), `environment a: missingBaseline is "ignore"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got error %v, want %q", err, tc.err)
			}
		})
	}
}

// missingBaseline: the environment's own setting, else the file's, else
// warning.
func TestMissingBaselineFor(t *testing.T) {
	c, err := Parse([]byte("apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nmissingBaseline: error\n" +
		"environments:\n  - {name: dev, path: d, missingBaseline: warning}\n  - {name: prod, path: p}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MissingBaselineFor(c.Environment("dev")); got != MissingBaselineWarning {
		t.Errorf("dev: %s", got)
	}
	if got := c.MissingBaselineFor(c.Environment("prod")); got != MissingBaselineError {
		t.Errorf("prod: %s", got)
	}
	var none *Config
	if got := none.MissingBaselineFor(nil); got != MissingBaselineWarning {
		t.Errorf("no config: %s", got)
	}
	if got := (&Config{}).MissingBaselineFor(&Environment{Name: "x"}); got != MissingBaselineWarning {
		t.Errorf("default: %s", got)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
