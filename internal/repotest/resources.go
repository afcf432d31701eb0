package repotest

import (
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/render"
)

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// Resources turns a "---"-separated YAML text into rendered resources, as
// render would give them, whose Source is source: for gate tests that do
// not need kustomize.
func Resources(t testing.TB, text, source string) []*render.Resource {
	t.Helper()
	var res []*render.Resource
	for _, doc := range docSep.Split(text, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if obj == nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		nm, _ := meta["name"].(string)
		av, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		res = append(res, &render.Resource{APIVersion: av, Kind: kind, Namespace: ns, Name: nm, Object: obj, YAML: []byte(doc), Source: source})
	}
	return res
}

// Annotate sets an annotation on the resource called name; the test fails
// when there is none.
func Annotate(t testing.TB, rs []*render.Resource, name, key, value string) {
	t.Helper()
	for _, r := range rs {
		if r.Name != name {
			continue
		}
		meta, _ := r.Object["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
			meta["annotations"] = ann
		}
		ann[key] = value
		return
	}
	t.Fatalf("no object %s", name)
}
