package output

import "github.com/kyverno-gate/kyverno-gate/report"

// Hand-built reports for the golden tests: a pull request that weakens
// production (rejected, with an approval to add and a witness, attributed
// to the overlay's patch; an already approved weakening on its base file;
// staging vetted with a warning), a clean pull request,
// and one where an overlay could not be evaluated.

const weakenHint = "to accept it, add the annotation `approve.kyverno-gate.io/3f2a9c1b0d4e: \"reason=<why>; ticket=<id>; expires=<YYYY-MM-DD>\"` " +
	"to ClusterPolicy require-labels (metadata.annotations, e.g. a patch in overlays/production/kustomization.yaml) and fill in or drop the placeholders; otherwise revert the change"

const weakenPatch = `- target:
    group: kyverno.io
    version: v1
    kind: ClusterPolicy
    name: require-labels
  patch: |-
    apiVersion: kyverno.io/v1
    kind: ClusterPolicy
    metadata:
      name: require-labels
      annotations:
        approve.kyverno-gate.io/3f2a9c1b0d4e: "reason=<why>; ticket=<id>; expires=<YYYY-MM-DD>"
`

func weakeningReport() *report.Report {
	r := &report.Report{
		Tool: report.DefaultTool("v0.6.0"),
		Overlays: []report.Overlay{
			{
				Path: "overlays/staging", Environment: "staging", Baseline: "git:origin/main",
				Findings: []report.Finding{{
					Gate: "validate", Severity: report.Warning, File: "base/validation/restrict-image-registries.yaml", Line: 4,
					Subject: report.ParseSubject("ClusterPolicy restrict-image-registries"),
					Message: "spec.validationFailureAction is deprecated; use validate.failureAction in each rule",
					Hint:    "move the action into the rules",
				}},
				Tests: &report.TestSummary{TestCounts: report.TestCounts{Suites: 2, Results: 3, UpstreamPassed: 3}, Cases: []report.TestCase{
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-with-team", Expected: "pass", Got: "pass", Status: "pass", Upstream: "pass", Reason: "Ok"},
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-no-team", Expected: "fail", Got: "fail", Status: "pass", Upstream: "pass", Reason: "Ok"},
					{Suite: "tests/restrict-image-registries/kyverno-test.yaml", SuiteName: "restrict-image-registries", Policy: "restrict-image-registries",
						Rule: "validate-registries", Resource: "pod-docker-hub", Expected: "fail", Got: "fail", Status: "pass", Upstream: "pass", Reason: "Ok"},
				}},
			},
			{
				Path: "overlays/production", Environment: "production", Baseline: "git:origin/main",
				Findings: []report.Finding{
					{
						Gate: "weaken", Kind: "weaker", Severity: report.Error,
						File: "overlays/production/kustomization.yaml", Line: 31, Subject: report.ParseSubject("ClusterPolicy require-labels"), Rule: "check-team",
						Resource: "Pod apps/pod-no-team", Field: "spec.rules[check-team].validate.failureAction",
						Origin: &report.Origin{Via: report.OriginPatch, ObjectFile: "base/validation/require-labels.yaml", ObjectLine: 4,
							Patch: &report.PatchRef{Kustomization: "overlays/production/kustomization.yaml", List: "patches", Entry: 0, Type: "json6902",
								Op: "replace", Path: "/spec/rules/0/validate/failureAction"}},
						Message: "weakens enforcement (proven by witness): effective failure action of rule check-team went from Enforce to Audit: " +
							"violations are reported but no longer blocked; now admits tests/require-labels/resource.yaml (Pod apps/pod-no-team), " +
							"which the baseline denied (baseline: git:origin/main)",
						Hint:        weakenHint,
						Fingerprint: "3f2a9c1b0d4e",
						ApprovalToAdd: &report.ApprovalSuggestion{
							Key: "approve.kyverno-gate.io/3f2a9c1b0d4e", Value: "reason=<why>; ticket=<id>; expires=<YYYY-MM-DD>",
							Object:        "ClusterPolicy require-labels",
							Target:        &report.ObjectRef{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "require-labels"},
							Kustomization: "overlays/production/kustomization.yaml", Patch: weakenPatch,
						},
						Change: &report.Change{Class: "weaker", Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team",
							Field: "spec.rules[check-team].validate.failureAction", Before: "Enforce", After: "Audit"},
						Witness: &report.Witness{File: "tests/require-labels/resource.yaml", Line: 18, APIVersion: "v1", Kind: "Pod", Namespace: "apps",
							Name: "pod-no-team", PolicyKind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team",
							Message: "validation error: label team is required", Exclusive: true},
					},
					{
						Gate: "test", Kind: "failed", Severity: report.Error, File: "tests/require-labels/kyverno-test.yaml", Line: 12,
						Subject: report.ParseSubject("policy require-labels"), Rule: "check-team", Resource: "pod-no-team",
						Message: "expected fail: Want fail, got warn",
						Hint:    "the rendered policy no longer behaves as the test expects; fix the overlay or update the test",
					},
					{
						Gate: "weaken", Kind: "weaker", Severity: report.Note, Approved: true,
						File: "base/validation/restrict-image-registries.yaml", Line: 21, Subject: report.ParseSubject("ClusterPolicy restrict-image-registries"),
						Rule: "validate-registries", Field: "spec.rules[validate-registries].match",
						Origin:      &report.Origin{Via: report.OriginObject, ObjectFile: "base/validation/restrict-image-registries.yaml", ObjectLine: 4},
						Message:     "the match of rule validate-registries no longer covers namespace \"legacy\" (| pipes | and <b>tags</b>)",
						Fingerprint: "9d8e7f6a5b4c",
						Approval: &report.Approval{Key: "approve.kyverno-gate.io/9d8e7f6a5b4c", Status: "valid", Reason: "legacy apps migrate in Q3",
							Ticket: "SEC-42", Expires: "2026-12-31", Object: "ClusterPolicy restrict-image-registries",
							File: "overlays/production/approvals.yaml"},
						Change: &report.Change{Class: "weaker", Kind: "ClusterPolicy", Policy: "restrict-image-registries", Rule: "validate-registries",
							Field: "spec.rules[validate-registries].match", Before: "all namespaces", After: "all namespaces except legacy"},
					},
				},
				Tests: &report.TestSummary{TestCounts: report.TestCounts{Suites: 2, Results: 3, UpstreamPassed: 2, UpstreamFailed: 1, Failed: 1}, Cases: []report.TestCase{
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-with-team", Expected: "pass", Got: "pass", Status: "pass", Upstream: "pass", Reason: "Ok"},
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-no-team", Expected: "fail", Got: "warn", Status: "fail", Upstream: "fail", Reason: "Want fail, got warn"},
					{Suite: "tests/restrict-image-registries/kyverno-test.yaml", SuiteName: "restrict-image-registries", Policy: "restrict-image-registries",
						Rule: "validate-registries", Resource: "pod-docker-hub", Expected: "fail", Got: "fail", Status: "pass", Upstream: "pass", Reason: "Ok"},
				}},
			},
		},
		Posture: report.NewMatrix(
			report.Column{Environment: "staging", Cells: map[report.PolicyRule]report.Cell{
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team"}:                     {Action: "Audit", Change: report.MarkNone},
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-owner"}:                    {Action: "Audit", Baseline: report.ActionAbsent, Change: report.MarkNew},
				{Kind: "ClusterPolicy", Policy: "restrict-image-registries", Rule: "validate-registries"}: {Action: "Audit", Change: report.MarkNone},
				{Kind: "ValidatingPolicy", Policy: "disallow-latest-tag"}:                                 {Action: "Warn+Audit", Baseline: "Audit", Change: report.MarkChanged},
				{Kind: "ClusterPolicy", Policy: "require-resource-limits", Rule: "check-limits"}:          {Action: "Enforce in namespaces [apps-*], otherwise Audit", Change: report.MarkNone},
			}},
			report.Column{Environment: "production", Cells: map[report.PolicyRule]report.Cell{
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team"}:                     {Action: "Audit", Baseline: "Enforce", Change: report.MarkWeaker, Fingerprints: []string{"3f2a9c1b0d4e"}},
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-owner"}:                    {Action: "Enforce", Baseline: report.ActionAbsent, Change: report.MarkNew},
				{Kind: "ClusterPolicy", Policy: "restrict-image-registries", Rule: "validate-registries"}: {Action: "Enforce", Change: report.MarkWeaker, Fingerprints: []string{"9d8e7f6a5b4c"}},
				{Kind: "ValidatingPolicy", Policy: "disallow-latest-tag"}:                                 {Action: "Deny", Change: report.MarkNone},
				{Kind: "ClusterPolicy", Policy: "require-resource-limits", Rule: "check-limits"}:          {Action: "Enforce", Change: report.MarkStricter, Baseline: "Audit"},
			}},
		),
	}
	r.Finalize()
	return r
}

func cleanReport() *report.Report {
	r := &report.Report{
		Tool: report.DefaultTool("v0.6.0"),
		Overlays: []report.Overlay{
			{Path: "overlays/staging", Environment: "staging", Baseline: "git:origin/main",
				Tests: &report.TestSummary{TestCounts: report.TestCounts{Suites: 1, Results: 2, UpstreamPassed: 2}, Cases: []report.TestCase{
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-with-team", Expected: "pass", Got: "pass", Status: "pass", Upstream: "pass", Reason: "Ok"},
					{Suite: "tests/require-labels/kyverno-test.yaml", SuiteName: "require-labels", Policy: "require-labels", Rule: "check-team",
						Resource: "pod-no-team", Expected: "fail", Got: "fail", Status: "pass", Upstream: "pass", Reason: "Ok"},
				}}},
			{Path: "overlays/production", Environment: "production", Baseline: "git:origin/main"},
		},
		Posture: report.NewMatrix(
			report.Column{Environment: "staging", Cells: map[report.PolicyRule]report.Cell{
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team"}: {Action: "Audit", Change: report.MarkNone},
			}},
			report.Column{Environment: "production", Cells: map[report.PolicyRule]report.Cell{
				{Kind: "ClusterPolicy", Policy: "require-labels", Rule: "check-team"}: {Action: "Enforce", Change: report.MarkNone},
			}},
		),
	}
	r.Finalize()
	return r
}

func errorReport() *report.Report {
	r := &report.Report{
		Tool: report.DefaultTool("v0.6.0"),
		Overlays: []report.Overlay{
			{Path: "overlays/development", Environment: "development",
				Error: "overlays/development/kustomization.yaml: accumulating resources: remote base https://example.com/x refused\n(set allow-remote=true to fetch it)"},
			{Path: "overlays/plain", Findings: []report.Finding{{Gate: "test", Severity: report.Error,
				Message: "no Kyverno test covers a policy of this overlay (looked for kyverno-test.yaml in tests)",
				Hint:    "add kyverno test suites for its policies, point parameter tests at them, or set allow-no-tests=true"}}},
		},
	}
	for i := range r.Overlays[1].Findings {
		r.Overlays[1].Findings[i].Kind = "no-tests"
	}
	r.Finalize()
	return r
}
