package diff

// The posture column, as check shows it (moved from output/collect when the
// weaken gate began to fill it).

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// posture is the column's actions alone.
func posture(objs []*kyverno.Object) map[report.PolicyRule]string {
	out := map[report.PolicyRule]string{}
	for k, c := range Column(objs, nil, nil).Cells {
		out[k] = c.Action
	}
	return out
}

// testColumn is the column as the gate computes it, without witnesses.
func testColumn(head, base []*kyverno.Object) *report.Column {
	var changes []Change
	if base != nil {
		changes = Diff(base, head)
	}
	return Column(head, base, changes)
}

func load(t *testing.T, text string) []*kyverno.Object {
	t.Helper()
	var res []*render.Resource
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		meta, _ := obj["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		nm, _ := meta["name"].(string)
		av, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		res = append(res, &render.Resource{APIVersion: av, Kind: kind, Namespace: ns, Name: nm, Object: obj, YAML: []byte(doc), Source: "base/p.yaml"})
	}
	objs, err := kyverno.Load(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Err != nil {
			t.Fatalf("%s: %v", o.ID(), o.Err)
		}
	}
	return objs
}

// policy renders a ClusterPolicy with a validate rule check-team (action
// team), a validate rule check-owner (present when owner is not ""), a
// mutate rule, and spec-level extras.
func policy(team, owner, extra string) string {
	rule := func(name, action string) string {
		return `
  - name: ` + name + `
    match:
      any:
      - resources:
          kinds: [ConfigMap]
    validate:` + actionLine(action) + `
      message: label required
      pattern:
        metadata:
          labels:
            team: "?*"`
	}
	s := `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
spec:` + extra + `
  rules:` + rule("check-team", team)
	if owner != "" {
		s += rule("check-owner", owner)
	}
	s += `
  - name: add-default
    match:
      any:
      - resources:
          kinds: [ConfigMap]
    mutate:
      patchStrategicMerge:
        metadata:
          labels:
            +(team): none
`
	return s
}

func actionLine(a string) string {
	if a == "" {
		return ""
	}
	return "\n      failureAction: " + a
}

func vpol(name, actions string) string {
	return `---
apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata:
  name: ` + name + `
spec:
  validationActions: ` + actions + `
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  validations:
  - expression: "has(object.metadata.labels)"
    message: labels required
`
}

func pr(kind, policy, rule string) report.PolicyRule {
	return report.PolicyRule{Kind: kind, Policy: policy, Rule: rule}
}

func TestPosture(t *testing.T) {
	objs := load(t, policy("Enforce", "Audit", "")+vpol("deny-it", "[Deny]")+vpol("warn-it", "[Audit, Warn]"))
	got := posture(objs)
	want := map[report.PolicyRule]string{
		pr("ClusterPolicy", "require-labels", "check-team"):  "Enforce",
		pr("ClusterPolicy", "require-labels", "check-owner"): "Audit",
		pr("ValidatingPolicy", "deny-it", ""):                "Deny",
		pr("ValidatingPolicy", "warn-it", ""):                "Warn+Audit",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// Admission off: nothing blocks.
	off := posture(load(t, policy("Enforce", "", "\n  admission: false")))
	if a := off[pr("ClusterPolicy", "require-labels", "check-team")]; a != ActionOff {
		t.Errorf("admission off: %q", a)
	}
	// Overrides.
	ov := posture(load(t, policy("Audit", "", `
  validationFailureActionOverrides:
  - action: Enforce
    namespaces: [prod-*]`)))
	// A rule-level failureAction wins over spec-level overrides, as in Kyverno.
	if a := ov[pr("ClusterPolicy", "require-labels", "check-team")]; a != "Audit" {
		t.Errorf("overrides: %q", a)
	}
	// Without one, the spec's overrides apply.
	specOv := `
  validationFailureAction: Audit
  validationFailureActionOverrides:
  - action: Enforce
    namespaces: [prod-*]`
	ov = posture(load(t, policy("", "", specOv)))
	if a := ov[pr("ClusterPolicy", "require-labels", "check-team")]; a != "Enforce in namespaces [prod-*], otherwise Audit" {
		t.Errorf("spec overrides: %q", a)
	}
	// Enforce everywhere to Enforce in prod-* only: weaker; the other way
	// round: stricter.
	all := load(t, policy("", "", "\n  validationFailureAction: Enforce"))
	some := load(t, policy("", "", specOv))
	k := pr("ClusterPolicy", "require-labels", "check-team")
	if c := testColumn(some, all).Cells[k]; c.Change != report.MarkWeaker || c.Baseline != "Enforce" {
		t.Errorf("Enforce to overrides: %+v", c)
	}
	if c := testColumn(all, some).Cells[k]; c.Change != report.MarkStricter {
		t.Errorf("overrides to Enforce: %+v", c)
	}
}

func TestColumn(t *testing.T) {
	base := load(t, policy("Enforce", "", "")+vpol("deny-it", "[Deny]")+vpol("audit-it", "[Audit]")+vpol("gone", "[Deny]"))
	head := load(t, policy("Audit", "Enforce", "")+vpol("deny-it", "[Audit]")+vpol("audit-it", "[Warn]"))
	col := testColumn(head, base)
	cell := func(k report.PolicyRule) report.Cell {
		c, ok := col.Cells[k]
		if !ok {
			t.Fatalf("no cell %s in %v", k, col.Cells)
		}
		return c
	}
	for k, want := range map[report.PolicyRule]struct {
		action, baseline string
		mark             report.ChangeMark
	}{
		pr("ClusterPolicy", "require-labels", "check-team"):  {"Audit", "Enforce", report.MarkWeaker},
		pr("ClusterPolicy", "require-labels", "check-owner"): {"Enforce", report.ActionAbsent, report.MarkNew},
		pr("ValidatingPolicy", "deny-it", ""):                {"Audit", "Deny", report.MarkWeaker},
		pr("ValidatingPolicy", "audit-it", ""):               {"Warn", "Audit", report.MarkChanged},
		pr("ValidatingPolicy", "gone", ""):                   {report.ActionAbsent, "Deny", report.MarkRemoved},
	} {
		c := cell(k)
		if c.Action != want.action || c.Baseline != want.baseline || c.Change != want.mark {
			t.Errorf("%s: %+v, want %+v", k, c, want)
		}
	}
	if fps := cell(pr("ClusterPolicy", "require-labels", "check-team")).Fingerprints; len(fps) != 1 {
		t.Errorf("check-team fingerprints %v", fps)
	}
	// No baseline: actions only.
	nb := testColumn(head, nil)
	if c := nb.Cells[pr("ClusterPolicy", "require-labels", "check-team")]; c.Change != "" || c.Action != "Audit" {
		t.Errorf("no baseline: %+v", c)
	}
	// Same action, narrowed match: weaker all the same.
	narrowed := strings.Replace(policy("Enforce", "", ""), "kinds: [ConfigMap]", "kinds: [ConfigMap]\n          namespaces: [apps]", 1)
	c := testColumn(load(t, narrowed), load(t, policy("Enforce", "", ""))).Cells[pr("ClusterPolicy", "require-labels", "check-team")]
	if c.Change != report.MarkWeaker || c.Action != "Enforce" || c.Baseline != "" || len(c.Fingerprints) != 1 {
		t.Errorf("narrowed: %+v", c)
	}
	// Unchanged.
	c = testColumn(load(t, policy("Enforce", "", "")), load(t, policy("Enforce", "", ""))).Cells[pr("ClusterPolicy", "require-labels", "check-team")]
	if c.Change != report.MarkNone || c.Baseline != "" || c.Fingerprints != nil {
		t.Errorf("unchanged: %+v", c)
	}
	m := report.NewMatrix(*nb, *col)
	if len(m.Rows) != 5 || m.Rows[0].Kind != "ClusterPolicy" || len(m.Rows[0].Cells) != 2 {
		t.Errorf("matrix %+v", m)
	}
}
