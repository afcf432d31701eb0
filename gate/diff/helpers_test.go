package diff

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/render"
)

// parseDocs turns a "---"-separated YAML text into rendered resources
// whose Source is source.
func parseDocs(t *testing.T, text, source string) []*render.Resource {
	t.Helper()
	var res []*render.Resource
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
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

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
