package kyvernotest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/repofs"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
	"sigs.k8s.io/yaml"
)

var legacyCELRule = regexp.MustCompile(`(?m)^\s+cel:\s*$`)

// TestLegacyCELAgreesWithProcessor runs every corpus suite whose policies
// have validate.cel rules twice, with those rules evaluated by the test gate
// (legacycel.go) and by Kyverno's engine, and compares everything the
// suites report: each row with its message, and errors.
func TestLegacyCELAgreesWithProcessor(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the corpus's validate.cel suites twice")
	}
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("corpus not present: %v", err)
	}
	root, err := filepath.Abs(corpus)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := Discover(repo, []string{"."}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var suites []*Suite
	for _, s := range all {
		if s.Err != nil || s.Test == nil {
			continue
		}
		for _, p := range path.GetFullPaths(s.Test.Policies, s.Dir(), false) {
			if b, err := repo.ReadFile(p); err == nil && legacyCELRule.Match(b) {
				suites = append(suites, s)
				break
			}
		}
	}
	if len(suites) < 100 {
		t.Fatalf("only %d suites with validate.cel rules in the corpus", len(suites))
	}
	report := func(rs []*SuiteResult) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("err=%v stop=%q skipped=%q rows=%+v", r.Err, r.UpstreamStop, r.Skipped, r.Rows)
		}
		return out
	}
	before := legacyCELResponses.Load()
	ours := report(Run(suites, nil))
	replaced := legacyCELResponses.Load() - before
	processorLegacyCEL = true
	defer func() { processorLegacyCEL = false }()
	theirs := report(Run(suites, nil))
	t.Logf("%d suites, %d rule responses evaluated by the test gate", len(suites), replaced)
	if replaced < 200 {
		t.Errorf("only %d rule responses were evaluated by the test gate", replaced)
	}
	for i, s := range suites {
		if ours[i] != theirs[i] {
			t.Errorf("%s:\n  test gate %s\n  processor %s", s.Rel, ours[i], theirs[i])
		}
	}
}

// TestLegacyCELEligible: policies with anything the handler's replica does
// not reproduce stay with Kyverno's engine.
func TestLegacyCELEligible(t *testing.T) {
	const base = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: p
spec:
  rules:
  - name: r
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      cel:
        expressions:
        - expression: "object.metadata.name != 'x'"
`
	cases := map[string]struct {
		edit string
		want bool
	}{
		"plain":         {"", true},
		"applyRules":    {"  applyRules: One\n", false},
		"context":       {"    context:\n    - name: c\n      variable:\n        value: 1\n", false},
		"preconditions": {"    preconditions:\n      all:\n      - key: a\n        operator: Equals\n        value: a\n", false},
		"authorizer":    {"authorizer", false},
		"params":        {"params", false},
		"mutate": {`  - name: m
    match:
      any:
      - resources:
          kinds: [Pod]
    mutate:
      patchStrategicMerge:
        metadata:
          labels:
            a: b
`, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			doc := base
			switch c.edit {
			case "":
			case "authorizer":
				doc = strings.Replace(doc, "object.metadata.name != 'x'", "authorizer.group('').resource('pods').check('get').allowed()", 1)
			case "params":
				doc += "        paramKind:\n          apiVersion: v1\n          kind: ConfigMap\n        paramRef:\n          name: c\n"
			default:
				if strings.HasPrefix(c.edit, "  applyRules") {
					doc = strings.Replace(doc, "spec:\n", "spec:\n"+c.edit, 1)
				} else if strings.HasPrefix(c.edit, "  - name") {
					doc += c.edit
				} else {
					doc = strings.Replace(doc, "    validate:\n", c.edit+"    validate:\n", 1)
				}
			}
			var p kyvernov1.ClusterPolicy
			if err := yaml.UnmarshalStrict([]byte(doc), &p); err != nil {
				t.Fatal(err)
			}
			if got := legacyCELEligible(&p); got != c.want {
				t.Errorf("eligible = %v, want %v", got, c.want)
			}
		})
	}
}
