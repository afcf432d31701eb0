package diff

import "testing"

func TestRuleActions(t *testing.T) {
	objs := loadSide(t, "posture", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: p
spec:
  validationFailureAction: Audit
  validationFailureActionOverrides:
  - action: Enforce
    namespaces: [prod]
  rules:
  - name: spec-level
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: m
      pattern:
        metadata:
          labels:
            team: "?*"
  - name: rule-level
    match:
      any:
      - resources:
          kinds: [ConfigMap]
    validate:
      failureAction: Enforce
      message: m
      pattern:
        metadata:
          labels:
            team: "?*"
---
apiVersion: kyverno.io/v1
kind: Policy
metadata:
  name: disabled
  namespace: apps
spec:
  admission: false
  rules:
  - name: r
    match:
      any:
      - resources:
          kinds: [ConfigMap]
    validate:
      failureAction: Enforce
      message: m
      pattern:
        metadata:
          labels:
            team: "?*"
---
apiVersion: policies.kyverno.io/v1beta1
kind: ValidatingPolicy
metadata:
  name: v
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
  validations:
  - expression: "true"
`)
	got := map[string]RuleAction{}
	for _, ra := range RuleActions(objs) {
		got[ra.Kind+" "+ra.Policy+" "+ra.Rule] = ra
	}
	for k, want := range map[string][2]string{
		// The Pod rule's autogen rules repeat its action: left out.
		"ClusterPolicy p spec-level": {"Enforce in namespaces [prod], otherwise Audit", string(BlocksSome)},
		"ClusterPolicy p rule-level": {"Enforce", string(BlocksAll)},
		"Policy apps/disabled r":     {ActionOff, string(BlocksNone)},
		"ValidatingPolicy v ":        {"Deny", string(BlocksAll)}, // Kyverno's default validationActions
	} {
		ra, ok := got[k]
		if !ok || ra.Action != want[0] || string(ra.Blocks) != want[1] {
			t.Errorf("%s: %+v, want %v", k, ra, want)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d rules: %v", len(got), got)
	}
	a, b := got["ClusterPolicy p spec-level"], got["ClusterPolicy p rule-level"]
	b.Rule, b.Policy = a.Rule, a.Policy
	if c := CompareRuleActions(b, a); c != Weaker {
		t.Errorf("Enforce to Enforce-in-prod: %s", c)
	}
	if c := CompareRuleActions(a, b); c != Stricter {
		t.Errorf("Enforce-in-prod to Enforce: %s", c)
	}
	if c := CompareRuleActions(a, a); c != Equivalent {
		t.Errorf("same: %s", c)
	}
}
