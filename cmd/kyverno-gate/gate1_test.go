package main

import (
	"strings"
	"testing"
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

// Gate I on the command line: each broken policy makes generate exit 1,
// names the file and the object, and prints nothing on stdout.
func TestGenerateRejectsInvalidPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // substrings of stderr
	}{
		{name: "misspelt spec field",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  validationFailureActon: Enforce\n", 1),
			want:   []string{"app/policy.yaml", "ClusterPolicy require-team", `unknown field "spec.validationFailureActon"`, `did you mean "validationFailureAction"`}},
		{name: "misspelt rule field",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureActon: Enforce", 1),
			want:   []string{"ClusterPolicy require-team", `spec.rules[0].validate.failureActon`, `did you mean "failureAction"`}},
		{name: "bad enforcement value",
			policy: strings.Replace(goodPolicy, "failureAction: Enforce", "failureAction: Block", 1),
			want:   []string{"ClusterPolicy require-team", "failureAction"}},
		{name: "fails Kyverno validation",
			policy: strings.Replace(goodPolicy, "        pattern:\n          metadata:\n            labels:\n              team: \"?*\"\n", "", 1),
			want:   []string{"app/policy.yaml", "ClusterPolicy require-team", "Kyverno rejects it"}},
		{name: "CEL expression does not compile",
			policy: `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata:
  name: vp-broken
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
			want: []string{"ValidatingPolicy vp-broken", "Kyverno rejects it"}},
		{name: "webhook matchConditions do not crash",
			policy: strings.Replace(goodPolicy, "spec:\n", "spec:\n  webhookConfiguration:\n    matchConditions:\n      - name: bad\n        expression: \"this is not CEL\"\n", 1),
			want:   []string{"ClusterPolicy require-team", "matchConditions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeFiles(t, map[string]string{
				"app/kustomization.yaml": "resources: [policy.yaml]\n",
				"app/policy.yaml":        tt.policy,
			})
			code, stdout, stderr := runGate(t, nil, "generate", "--allow-no-tests", "--repo-root", root, root+"/app")
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, stdout %d bytes; want 1 and nothing\nstderr:\n%s", code, len(stdout), stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			// Argo CD shows the whole stderr after a long prefix: the
			// verdict must come before the (info-level) progress lines.
			if first, _, _ := strings.Cut(stderr, "\n"); !strings.Contains(first, "REJECTED") {
				t.Errorf("first stderr line is not the verdict: %q", first)
			}
		})
	}
}

func TestGenerateRequiresTests(t *testing.T) {
	root := writeFiles(t, map[string]string{
		"app/kustomization.yaml": "resources: [policy.yaml]\n",
		"app/policy.yaml":        goodPolicy,
	})
	code, stdout, stderr := runGate(t, nil, "generate", "--repo-root", root, root+"/app")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "no Kyverno test covers a policy of this overlay") {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
}
