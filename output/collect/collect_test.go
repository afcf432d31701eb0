package collect

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/gate/witness"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/render"
)

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

func pr(kind, policy, rule string) output.PolicyRule {
	return output.PolicyRule{Kind: kind, Policy: policy, Rule: rule}
}

func TestPosture(t *testing.T) {
	objs := load(t, policy("Enforce", "Audit", "")+vpol("deny-it", "[Deny]")+vpol("warn-it", "[Audit, Warn]"))
	got := Posture("production", objs)
	want := map[output.PolicyRule]string{
		pr("ClusterPolicy", "require-labels", "check-team"):  "Enforce",
		pr("ClusterPolicy", "require-labels", "check-owner"): "Audit",
		pr("ValidatingPolicy", "deny-it", ""):                "Deny",
		pr("ValidatingPolicy", "warn-it", ""):                "Warn+Audit",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	// Admission off: nothing blocks.
	off := Posture("production", load(t, policy("Enforce", "", "\n  admission: false")))
	if a := off[pr("ClusterPolicy", "require-labels", "check-team")]; a != weaken.ActionOff {
		t.Errorf("admission off: %q", a)
	}
	// Overrides.
	ov := Posture("staging", load(t, policy("Audit", "", `
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
	ov = Posture("staging", load(t, policy("", "", specOv)))
	if a := ov[pr("ClusterPolicy", "require-labels", "check-team")]; a != "Enforce in namespaces [prod-*], otherwise Audit" {
		t.Errorf("spec overrides: %q", a)
	}
	// Enforce everywhere to Enforce in prod-* only: weaker; the other way
	// round: stricter.
	all := load(t, policy("", "", "\n  validationFailureAction: Enforce"))
	some := load(t, policy("", "", specOv))
	k := pr("ClusterPolicy", "require-labels", "check-team")
	if c := Column("staging", some, all).Cells[k]; c.Change != output.MarkWeaker || c.Baseline != "Enforce" {
		t.Errorf("Enforce to overrides: %+v", c)
	}
	if c := Column("staging", all, some).Cells[k]; c.Change != output.MarkStricter {
		t.Errorf("overrides to Enforce: %+v", c)
	}
}

func TestColumn(t *testing.T) {
	base := load(t, policy("Enforce", "", "")+vpol("deny-it", "[Deny]")+vpol("audit-it", "[Audit]")+vpol("gone", "[Deny]"))
	head := load(t, policy("Audit", "Enforce", "")+vpol("deny-it", "[Audit]")+vpol("audit-it", "[Warn]"))
	col := Column("production", head, base)
	cell := func(k output.PolicyRule) output.Cell {
		c, ok := col.Cells[k]
		if !ok {
			t.Fatalf("no cell %s in %v", k, col.Cells)
		}
		return c
	}
	for k, want := range map[output.PolicyRule]struct {
		action, baseline string
		mark             output.ChangeMark
	}{
		pr("ClusterPolicy", "require-labels", "check-team"):  {"Audit", "Enforce", output.MarkWeaker},
		pr("ClusterPolicy", "require-labels", "check-owner"): {"Enforce", output.ActionAbsent, output.MarkNew},
		pr("ValidatingPolicy", "deny-it", ""):                {"Audit", "Deny", output.MarkWeaker},
		pr("ValidatingPolicy", "audit-it", ""):               {"Warn", "Audit", output.MarkChanged},
		pr("ValidatingPolicy", "gone", ""):                   {output.ActionAbsent, "Deny", output.MarkRemoved},
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
	nb := Column("production", head, nil)
	if c := nb.Cells[pr("ClusterPolicy", "require-labels", "check-team")]; c.Change != "" || c.Action != "Audit" {
		t.Errorf("no baseline: %+v", c)
	}
	// Same action, narrowed match: weaker all the same.
	narrowed := strings.Replace(policy("Enforce", "", ""), "kinds: [ConfigMap]", "kinds: [ConfigMap]\n          namespaces: [apps]", 1)
	c := Column("production", load(t, narrowed), load(t, policy("Enforce", "", ""))).Cells[pr("ClusterPolicy", "require-labels", "check-team")]
	if c.Change != output.MarkWeaker || c.Action != "Enforce" || c.Baseline != "" || len(c.Fingerprints) != 1 {
		t.Errorf("narrowed: %+v", c)
	}
	// Unchanged.
	c = Column("production", load(t, policy("Enforce", "", "")), load(t, policy("Enforce", "", ""))).Cells[pr("ClusterPolicy", "require-labels", "check-team")]
	if c.Change != output.MarkNone || c.Baseline != "" || c.Fingerprints != nil {
		t.Errorf("unchanged: %+v", c)
	}
	m := output.NewMatrix(nb, col)
	if len(m.Rows) != 5 || m.Rows[0].Kind != "ClusterPolicy" || len(m.Rows[0].Cells) != 2 {
		t.Errorf("matrix %+v", m)
	}
}

func TestFindings(t *testing.T) {
	weakChange := weaken.Change{Class: weaken.Weaker, Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team",
		Field: "spec.rules[check-team].validate.failureAction", Before: "Enforce", After: "Audit", Message: "went from Enforce to Audit", Fingerprint: "aaaaaaaaaaaa"}
	sugg := weaken.Suggestion{Key: weaken.ApprovalKey("aaaaaaaaaaaa"), Value: weaken.SuggestedValue, APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy",
		Name: "require-labels", Object: "ClusterPolicy require-labels", Kustomization: "overlays/production/kustomization.yaml", Patch: "- target: ...\n"}
	expired := &weaken.Approval{Fingerprint: "aaaaaaaaaaaa", Reason: "old", Expires: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		Object: "ClusterPolicy require-labels", File: "overlays/production/approve.yaml"}
	approvedChange := weaken.Change{Class: weaken.Unknown, Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-owner",
		Field: "spec.rules[check-owner].validate.pattern", Message: "pattern changed", Fingerprint: "bbbbbbbbbbbb"}
	valid := &weaken.Approval{Fingerprint: "bbbbbbbbbbbb", Reason: "ok", Ticket: "SEC-1", Object: "ClusterPolicy require-labels", File: "base/p.yaml"}
	floorChange := weaken.Change{Class: weaken.Weaker, Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team", Message: "floor", Fingerprint: "cccccccccccc"}
	floorSugg := weaken.Suggestion{Key: weaken.ApprovalKey("cccccccccccc"), Value: weaken.SuggestedValue}

	fs := []gate.Finding{
		{Gate: "weaken", Severity: gate.Error, File: "base/p.yaml", Object: "ClusterPolicy require-labels", Rule: "check-team",
			Message: "went from Enforce to Audit; its approval expired", Hint: "renew; " + sugg.Hint()},
		{Gate: "floor", Severity: gate.Error, File: "base/p.yaml", Object: "ClusterPolicy require-labels", Rule: "check-team",
			Message: "floor", Hint: floorSugg.Hint()},
		{Gate: "test", Severity: gate.Error, File: "tests/k.yaml", Object: "policy require-labels", Message: "expected fail"},
		{Gate: "weaken", Severity: gate.Warning, Object: "ClusterPolicy x", Message: "stale approval approve.kyverno-gate.io/dddddddddddd: no current finding"},
	}
	w := &witness.Witness{File: "tests/r.yaml", APIVersion: "v1", Kind: "ConfigMap", Namespace: "apps", Name: "cm", Exclusive: true}
	out := Findings(fs,
		[]weaken.Item{{Change: weakChange, Approval: expired, Suggestion: sugg, Witness: w}, {Change: approvedChange, Approved: true, Approval: valid}},
		[]weaken.Item{{Change: floorChange, Suggestion: floorSugg}})
	if len(out) != 5 {
		t.Fatalf("%d findings: %+v", len(out), out)
	}
	f := out[0]
	if f.Fingerprint != "aaaaaaaaaaaa" || f.ID != f.Fingerprint || f.Kind != "weaker" || f.Approved ||
		f.Approval == nil || f.Approval.Status != "expired" || f.Approval.Expires != "2020-01-01" ||
		f.ApprovalToAdd == nil || f.ApprovalToAdd.Target == nil || f.ApprovalToAdd.Patch == "" ||
		f.Witness == nil || f.Witness.Name != "cm" || f.Change == nil || f.Change.Before != "Enforce" {
		t.Errorf("weaken finding: %+v", f)
	}
	if f := out[1]; f.Fingerprint != "cccccccccccc" || f.Kind != "violation" || f.ApprovalToAdd == nil || f.ApprovalToAdd.Target != nil {
		t.Errorf("floor finding: %+v", f)
	}
	if f := out[2]; f.Fingerprint != "" || f.Kind != "failed" || f.ID == "" {
		t.Errorf("test finding: %+v", f)
	}
	if f := out[3]; f.Kind != "stale-approval" {
		t.Errorf("stale: %+v", f)
	}
	f = out[4]
	if f.Severity != output.SeverityNote || !f.Approved || f.Kind != "unknown" || f.File != "base/p.yaml" || f.ApprovalToAdd != nil ||
		f.Approval == nil || f.Approval.Status != "valid" || f.Approval.Ticket != "SEC-1" {
		t.Errorf("approved: %+v", f)
	}
	// An invalid approval.
	bad := &weaken.Approval{Fingerprint: "aaaaaaaaaaaa", Err: errors.New("unknown key"), Object: "ClusterPolicy require-labels"}
	out = Findings([]gate.Finding{fs[0]}, []weaken.Item{{Change: weakChange, Approval: bad, Suggestion: sugg}}, nil)
	if a := out[0].Approval; a == nil || a.Status != "invalid" || a.Error != "unknown key" {
		t.Errorf("invalid: %+v", a)
	}
}

func TestTests(t *testing.T) {
	s := &kyvernotest.Suite{Rel: "tests/require-labels/kyverno-test.yaml"}
	res := []*kyvernotest.SuiteResult{
		{Suite: s, Rows: []kyvernotest.Row{
			{Policy: "require-labels", Rule: "check-team", Resource: "good", Expected: "pass", Got: "pass", Upstream: "pass", Reason: "Ok"},
			{Policy: "require-labels", Rule: "check-team", Resource: "bad", Expected: "fail", Got: "pass", Upstream: "fail", Reason: "Want fail, got pass"},
			{Policy: "require-labels", Rule: "check-team", Resource: "typo", Expected: "fail", Upstream: "pass", Reason: "Not selected", Strict: "not among the resources"},
		}},
		{Suite: &kyvernotest.Suite{Rel: "tests/other/kyverno-test.yaml"}, Skipped: "none of its policies is in the overlay"},
		{Suite: &kyvernotest.Suite{Rel: "tests/broken/kyverno-test.yaml"}, Err: errors.New("no such file")},
	}
	ts := Tests(res)
	if ts.Suites != 3 || ts.Skipped != 1 || ts.Errors != 1 || ts.Results != 3 || ts.Failed != 3 || len(ts.Cases) != 5 {
		t.Fatalf("%+v", ts)
	}
	var statuses []string
	for _, c := range ts.Cases {
		statuses = append(statuses, c.Status)
	}
	if strings.Join(statuses, ",") != "pass,fail,fail,skip,error" {
		t.Errorf("statuses %v", statuses)
	}
	if ts.Cases[0].SuiteName != "tests/require-labels/kyverno-test.yaml" {
		t.Errorf("suite name %q", ts.Cases[0].SuiteName)
	}
}
