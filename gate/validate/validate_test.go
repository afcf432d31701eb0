package validate

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

const goodPolicy = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-team
spec:
  rules:
    - name: check-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: "label team is required"
        pattern:
          metadata:
            labels:
              team: "?*"
`

// rendering is one document as render would give it.
func rendering(t *testing.T, doc string) *render.Result {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	av, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	return &render.Result{Dir: "app", Resources: []*render.Resource{{APIVersion: av, Kind: kind, Name: name, Object: obj,
		YAML: []byte(doc), Source: "app/policy.yaml"}}}
}

// Each broken policy is an error finding that names the file, the object
// and what is wrong; a good one has none (the deprecation warning of the
// kyverno.io kinds aside).
func TestGate(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // substrings of the error finding's message; none: no error
		field  string
	}{
		{name: "good", policy: goodPolicy},
		{name: "misspelt spec field",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  validationFailureActon: Enforce\n", 1),
			want:   []string{`unknown field "spec.validationFailureActon"`, `did you mean "validationFailureAction"`}, field: "spec.validationFailureActon"},
		{name: "misspelt rule field",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureActon: Enforce", 1),
			want:   []string{`spec.rules[0].validate.failureActon`, `did you mean "failureAction"`}},
		{name: "bad enforcement value",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureAction: Block", 1),
			want:   []string{"failureAction"}},
		{name: "fails Kyverno validation",
			policy: strings.Replace(goodPolicy, "        pattern:\n          metadata:\n            labels:\n              team: \"?*\"\n", "", 1),
			want:   []string{"Kyverno rejects it"}},
		{name: "CEL expression does not compile",
			policy: `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: require-team
spec:
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE]
        resources: [pods]
  validations:
    - expression: "object.metadata.labels.team =="
`,
			want: []string{"Kyverno rejects it"}},
		{name: "webhook matchConditions do not crash",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  webhookConfiguration:\n    matchConditions:\n      - name: bad\n        expression: \"this is not CEL\"\n", 1),
			want:   []string{"matchConditions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := rendering(t, tt.policy)
			out, err := gate.RunOne(context.Background(), &gate.Input{Dir: "app", Rendered: res}, Gate{})
			if err != nil {
				t.Fatal(err)
			}
			var errs []report.Finding
			for _, f := range out.Findings {
				if f.Gate != report.GateValidate {
					t.Errorf("finding of gate %s", f.Gate)
				}
				if f.Severity == report.Error {
					errs = append(errs, f)
				}
			}
			if len(tt.want) == 0 {
				if len(errs) != 0 {
					t.Fatalf("errors: %+v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want one error, got %+v", out.Findings)
			}
			f := errs[0]
			if f.File != "app/policy.yaml" || f.Subject != res.Resources[0].Subject() {
				t.Errorf("at %s %s", f.File, f.Subject)
			}
			for _, w := range tt.want {
				if !strings.Contains(f.Message, w) {
					t.Errorf("message lacks %q: %s", w, f.Message)
				}
			}
			if tt.field != "" && f.Field != tt.field {
				t.Errorf("field %q, want %q", f.Field, tt.field)
			}
		})
	}
}

// Kyverno's verdict is kept across runs under the object as rendered (and
// the binary): a hit gives the same findings as a run without the cache, a
// changed object or binary misses.
func TestValidateCache(t *testing.T) {
	broken := strings.Replace(goodPolicy, "failureAction: Enforce", "failureAction: Enforce\n        deny: {}", 1)
	st, err := cache.Open(filepath.Join(t.TempDir(), cache.DirName), cache.DefaultMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	findings := func(doc string, c *cache.Store) []report.Finding {
		objs, err := kyverno.Load(rendering(t, doc).Resources)
		if err != nil {
			t.Fatal(err)
		}
		return object(objs[0], c)
	}
	for _, doc := range []string{goodPolicy, broken} {
		want := findings(doc, nil)
		before := st.Stats()
		first, second := findings(doc, st), findings(doc, st)
		after := st.Stats()
		if after.Puts-before.Puts != 1 || after.Hits-before.Hits != 1 {
			t.Errorf("two runs: %+v then %+v, want one entry stored and one hit", before, after)
		}
		if !reflect.DeepEqual(first, want) || !reflect.DeepEqual(second, want) {
			t.Errorf("with the cache %+v and %+v, without %+v", first, second, want)
		}
	}
	if len(findings(broken, st)) == 0 {
		t.Fatal("the broken policy has no finding: the test proves nothing")
	}
	old := cache.Binary
	t.Cleanup(func() { cache.Binary = old })
	cache.Binary = func() string { return old() + " rebuilt" }
	before := st.Stats()
	findings(goodPolicy, st)
	if st.Stats().Hits != before.Hits {
		t.Error("a rebuilt binary hit an entry of the old one")
	}
}
