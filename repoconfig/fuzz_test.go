package repoconfig

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// FuzzParse checks Parse, the reader of the repository's .kyverno-gate.yaml:
// no panic, the same answer twice, an accepted configuration satisfies every
// rule check() promises, and it marshals back to a file that parses to the
// same configuration. See docs/fuzzing.md.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"full", "bad-field"} {
		if data, err := os.ReadFile(filepath.Join("testdata", dir, settings.ConfigFile)); err == nil {
			f.Add(data)
		}
	}
	for _, file := range fuzzseed.Files(f, fuzzseed.Named(settings.ConfigFile)) {
		f.Add(file.Data)
	}
	for _, s := range []string{
		"", "# only a comment\n---\n", "null", "apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n",
		"apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nenvironments:\n- name: a\n  path: ./x/../y/\n- name: b\n  path: y\n",
		"apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nenvironments:\n- name: a\n  path: a\n  floors: {notWeakerThan: b}\n- name: b\n  path: b\n",
		"apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nenvironments: [{name: a, path: ../a}]\n",
		"apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nenvironments: [{name: a, path: a, floors: {}}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		c2, err2 := Parse(data)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("not deterministic: %v %v / %v %v", c, err, c2, err2)
		}
		if err != nil {
			return
		}
		if c.APIVersion == "" && c.Kind == "" && len(c.Environments) == 0 {
			return // a blank file
		}
		if c.APIVersion != APIVersion || c.Kind != Kind {
			t.Fatalf("accepted %s %s", c.APIVersion, c.Kind)
		}
		names, paths := map[string]bool{}, map[string]bool{}
		for i := range c.Environments {
			e := &c.Environments[i]
			if e.Name == "" || names[e.Name] {
				t.Fatalf("environment %d: empty or repeated name %q", i, e.Name)
			}
			if p := e.Path; p == "" || path.Clean(p) != p || path.IsAbs(p) || p == ".." || len(p) > 2 && p[:3] == "../" || paths[p] {
				t.Fatalf("environment %s: path %q is not clean, relative, inside and unique", e.Name, p)
			}
			if got := c.EnvironmentFor(e.Path); got != e {
				t.Fatalf("EnvironmentFor(%q) = %v, want %s", e.Path, got, e.Name)
			}
			if got := c.Environment(e.Name); got != e {
				t.Fatalf("Environment(%q) = %v", e.Name, got)
			}
			if fl := e.Floors; fl != nil {
				if fl.ValidateAction != "" && fl.ValidateAction != ValidateActionEnforce || fl.FailurePolicy != "" && fl.FailurePolicy != FailurePolicyFail ||
					fl.Exceptions != "" && fl.Exceptions != ExceptionsApproved {
					t.Fatalf("environment %s: accepted floors %+v", e.Name, *fl)
				}
				if n := fl.NotWeakerThan; n != "" && !names[n] {
					t.Fatalf("environment %s: notWeakerThan %q is not an earlier environment", e.Name, n)
				}
			}
			names[e.Name], paths[e.Path] = true, true
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("accepted, but not its own marshalling:\n%s\n%v", out, err)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip differs:\n%+v\n%+v", c, back)
		}
	})
}
