package floor_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Helpers shared with gate/weaken's and gate/diff's tests (copied: an
// external test package, since these tests run the weaken gate, which
// imports this package).

// evaluation is one gate's outcome as the tests look at it: the findings
// that reject or warn, and every enforcement change or floor violation,
// approved or not.
type evaluation struct {
	Findings []report.Finding
	Items    []report.Finding
}

func evaluate(g gate.Gate, in *gate.Input) (*evaluation, error) {
	out, err := gate.RunOne(context.Background(), in, g)
	if err != nil {
		return nil, err
	}
	return &evaluation{Findings: out.Problems(), Items: out.Changes(g.Name())}, nil
}

// check is what a gate reports that is not approved.
func check(g gate.Gate, in *gate.Input) ([]report.Finding, error) {
	ev, err := evaluate(g, in)
	if err != nil {
		return nil, err
	}
	return ev.Findings, nil
}

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

// annotate adds an annotation to the object called name.
func annotate(t *testing.T, rs []*render.Resource, name, key, value string) {
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

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func show(c diff.Change) string {
	return string(c.Class) + " " + c.Kind + " " + c.Policy + " rule=" + c.Rule + " field=" + c.Field + " [" + c.Before + " -> " + c.After + "] " + c.Message + " #" + c.Fingerprint
}

// wantFinding describes a finding; empty fields are not checked, Message
// and Hint are substrings.
type wantFinding struct {
	severity report.Severity
	file     string
	object   string
	rule     string
	message  string
	hint     string
}

func (w wantFinding) matches(f report.Finding) bool {
	return f.Severity == w.severity && (w.file == "" || f.File == w.file) && (w.object == "" || f.Subject.String() == w.object) &&
		(w.rule == "" || f.Rule == w.rule) && strings.Contains(f.Message, w.message) && strings.Contains(f.Hint, w.hint)
}
