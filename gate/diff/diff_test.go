package diff

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// Each fixture in testdata/cases is a baseline and a head rendering,
// separated by a line "#### head". Documents are separated by "---".

var headSep = regexp.MustCompile(`(?m)^#### head\s*$`)

func loadSide(t *testing.T, name, text string) []*kyverno.Object {
	t.Helper()
	objs, err := kyverno.Load(repotest.Resources(t, text, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, o := range objs {
		if o.Err != nil && !strings.Contains(name, "load-error") {
			t.Fatalf("%s: %s does not load: %v", name, o.ID(), o.Err)
		}
	}
	return objs
}

func loadCase(t *testing.T, name string) (baseline, head []*kyverno.Object) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "cases", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parts := headSep.Split(string(data), -1)
	if len(parts) != 2 {
		t.Fatalf("%s: want exactly one '#### head' line", name)
	}
	return loadSide(t, name+" baseline", parts[0]), loadSide(t, name+" head", parts[1])
}

// want describes one expected change; empty fields are not checked, Field
// and Message are substrings.
type want struct {
	class   Class
	kind    string
	policy  string
	rule    string
	field   string
	before  string
	after   string
	message string
}

func (w want) matches(c Change) bool {
	return c.Class == w.class &&
		(w.kind == "" || c.Kind == w.kind) &&
		(w.policy == "" || c.Policy == w.policy) &&
		(w.rule == "" || c.Rule == w.rule) &&
		(w.field == "" || c.Field == w.field) &&
		(w.before == "" || c.Before == w.before) &&
		(w.after == "" || c.After == w.after) &&
		(w.message == "" || strings.Contains(c.Message, w.message))
}

func TestDiff(t *testing.T) {
	cp := "ClusterPolicy"
	cases := []struct {
		name string
		want []want
		// exact: no other changes may be reported; otherwise only no
		// other blocking (weaker/unknown) changes.
		exact bool
	}{
		// failure action, by every route
		{"enforce-to-audit-spec", []want{{class: Weaker, kind: cp, policy: "require-labels", rule: "check-team", field: "spec.validationFailureAction", before: "Enforce", after: "Audit", message: "went from Enforce to Audit"}}, true},
		{"enforce-to-audit-rule", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].validate.failureAction", before: "Enforce", after: "Audit"}}, true},
		{"rule-audit-beats-spec-enforce", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].validate.failureAction", before: "Enforce", after: "Audit"}}, true},
		{"spec-enforce-patch-does-nothing", nil, true},
		{"clusterpolicy-apiversion-switch", nil, true},
		{"audit-to-enforce", []want{{class: Stricter, rule: "check-team", before: "Audit", after: "Enforce"}}, true},
		{"rule-override-added", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].validate.failureActionOverrides", message: `namespace "dev-`}}, true},
		{"spec-override-widened", []want{{class: Weaker, rule: "check-team", field: "spec.validationFailureActionOverrides", message: `namespace "test-`}}, true},
		{"spec-override-ignored-by-rule-action", nil, true},
		{"vp-deny-dropped", []want{
			{class: Weaker, kind: "ValidatingPolicy", policy: "deny-to-audit", field: "spec.validationActions", before: "[Deny]", after: "[Audit]"},
			{class: Weaker, kind: "ValidatingPolicy", policy: "default-to-warn", field: "spec.validationActions", before: "[Deny]", after: "[Audit, Warn]"},
		}, true},
		{"verifyimages-enforce-to-audit", []want{{class: Weaker, rule: "verify-signature", field: "spec.rules[verify-signature].verifyImages.failureAction"}}, true},

		// failure mode and switches
		{"failure-policy-ignore", []want{{class: Weaker, field: "spec.webhookConfiguration.failurePolicy", before: "Fail", after: "Ignore"}}, true},
		{"deprecated-failure-policy-ignore", []want{{class: Weaker, field: "spec.failurePolicy", before: "Fail", after: "Ignore"}}, true},
		{"timeout-lowered-ignore", []want{{class: Weaker, field: "spec.webhookConfiguration.timeoutSeconds", before: "10s", after: "3s"}}, true},
		{"switches-off", []want{
			{class: Weaker, field: "spec.admission"},
			{class: Weaker, field: "spec.background"},
			{class: Weaker, field: "spec.applyRules", before: "All", after: "One"},
			{class: Weaker, rule: "check-team", field: "spec.rules[check-team].validate.allowExistingViolations", before: "false", after: "true"},
		}, true},
		{"allow-existing-default-true", nil, true},
		{"cel-switches", []want{
			{class: Weaker, kind: "ValidatingPolicy", field: "spec.failurePolicy", before: "Fail", after: "Ignore"},
			{class: Weaker, kind: "ValidatingPolicy", field: "spec.evaluation.admission.enabled"},
		}, true},

		// scope
		{"match-namespaces-narrowed", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].match", message: "narrowed"}}, true},
		{"match-namespaces-widened", []want{{class: Stricter, rule: "check-team", field: "spec.rules[check-team].match"}}, true},
		{"match-kinds-removed", []want{{class: Weaker, field: "spec.rules[check-team].match", message: "ConfigMap"}}, true},
		{"match-any-filter-removed", []want{{class: Weaker, field: "spec.rules[check-team].match"}}, true},
		{"match-all-filter-added", []want{{class: Weaker, field: "spec.rules[check-team].match"}}, true},
		{"match-operations-removed", []want{{class: Weaker, field: "spec.rules[check-team].match", message: "operations"}}, true},
		{"match-selector-added", []want{{class: Weaker, field: "spec.rules[check-team].match", message: "selector"}}, true},
		{"match-reordered", nil, true},
		{"exclude-added", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].exclude"}}, true},
		{"exclude-removed", []want{{class: Stricter, rule: "check-team", field: "spec.rules[check-team].exclude"}}, true},
		{"precondition-added", []want{{class: Weaker, rule: "check-team", field: "spec.rules[check-team].preconditions"}}, true},
		{"precondition-changed", []want{{class: Unknown, rule: "check-team", field: "spec.rules[check-team].preconditions"}}, true},
		{"precondition-removed", []want{{class: Stricter, rule: "check-team", field: "spec.rules[check-team].preconditions"}}, true},
		{"precondition-message-only", nil, true},
		{"webhook-match-conditions-added", []want{{class: Weaker, field: "spec.webhookConfiguration.matchConditions"}}, true},
		{"cel-match-narrowed", []want{
			{class: Weaker, kind: "ValidatingPolicy", policy: "ops", field: "spec.matchConstraints", message: "operations"},
			{class: Weaker, kind: "ValidatingPolicy", policy: "nssel", field: "spec.matchConstraints", message: "namespaceSelector"},
			{class: Weaker, kind: "ValidatingPolicy", policy: "excl", field: "spec.matchConstraints.excludeResourceRules"},
			{class: Weaker, kind: "ValidatingPolicy", policy: "cond", field: "spec.matchConditions"},
		}, true},

		// removal
		{"rule-removed", []want{{class: Weaker, rule: "check-owner", field: "spec.rules[check-owner]", before: "present", after: "absent"}}, true},
		{"rule-renamed", []want{
			{class: Weaker, rule: "check-team", field: "spec.rules[check-team]"},
			{class: Stricter, rule: "require-team", field: "spec.rules[require-team]"},
		}, true},
		{"policy-removed", []want{{class: Weaker, kind: cp, policy: "require-owner", field: "", before: "present", after: "absent", message: "was removed, so none of its rules apply any more (neither what it enforced nor what it audited)"}}, true},
		{"clusterpolicy-to-policy", []want{
			{class: Weaker, kind: cp, policy: "require-labels", message: "replaced by Policy team-a/require-labels"},
			{class: Stricter, kind: "Policy", policy: "team-a/require-labels"},
		}, true},
		{"policy-namespace-moved", []want{
			{class: Weaker, kind: "Policy", policy: "team-a/require-labels"},
			{class: Stricter, kind: "Policy", policy: "team-b/require-labels"},
		}, true},
		{"autogen-controllers-none", []want{
			{class: Weaker, rule: "autogen-check-team", message: "no longer generated"},
			{class: Weaker, rule: "autogen-cronjob-check-team", message: "no longer generated"},
		}, true},
		{"autogen-disabled-by-names", []want{
			{class: Weaker, rule: "check-team", field: "spec.rules[check-team].match"},
			{class: Weaker, rule: "autogen-check-team", message: "no longer generated"},
			{class: Weaker, rule: "autogen-cronjob-check-team", message: "no longer generated"},
		}, true},
		{"mutate-rule-removed", []want{{class: Weaker, kind: cp, policy: "inject-security-context", rule: "add-security-context", message: "no longer applied"}}, true},
		{"new-policy-and-rule", []want{
			{class: Stricter, kind: cp, policy: "require-owner"},
			{class: Stricter, rule: "check-owner"},
		}, true},

		// logic
		{"pattern-changed", []want{{class: Unknown, rule: "check-team", field: "spec.rules[check-team].validate.pattern"}}, true},
		{"message-changed", nil, true},
		{"annotations-changed", nil, true},
		{"anypattern-more-alternatives", []want{{class: Weaker, field: "spec.rules[check-team].validate.anyPattern"}}, true},
		{"deny-removed", []want{{class: Weaker, field: "spec.rules[block-latest].validate", message: "lost its deny check"}}, true},
		{"deny-condition-added-all", []want{{class: Weaker, field: "spec.rules[block-latest].validate.deny.conditions"}}, true},
		{"pattern-to-deny", []want{{class: Unknown, field: "spec.rules[check-team].validate"}}, true},
		{"podsecurity-lowered", []want{{class: Weaker, field: "spec.rules[pss].validate.podSecurity.level", before: "restricted", after: "baseline"}}, true},
		{"podsecurity-exclude-added", []want{{class: Weaker, field: "spec.rules[pss].validate.podSecurity.exclude"}}, true},
		{"cel-validation-removed", []want{{class: Weaker, kind: "ValidatingPolicy", field: "spec.validations"}}, true},
		{"cel-validation-changed", []want{{class: Unknown, kind: "ValidatingPolicy", field: "spec.validations"}}, true},
		{"cel-message-changed", nil, true},

		// generate, mutate
		{"generate-synchronize-off", []want{{class: Weaker, rule: "add-networkpolicy", field: "spec.rules[add-networkpolicy].generate.synchronize", before: "true", after: "false"}}, true},
		{"mutate-patch-changed", []want{{class: Unknown, rule: "add-security-context", field: "spec.rules[add-security-context].mutate"}}, true},

		// images
		{"verifyimages-required-off", []want{{class: Weaker, rule: "verify-signature", field: "spec.rules[verify-signature].verifyImages[ghcr.io/acme/*].required"}}, true},
		{"verifyimages-references-narrowed", []want{
			{class: Weaker, field: "spec.rules[verify-signature].verifyImages[ghcr.io/*].imageReferences"},
			{class: Weaker, field: "spec.rules[verify-signature].verifyImages[ghcr.io/*].skipImageReferences"},
			{class: Weaker, field: "spec.rules[verify-signature].verifyImages[ghcr.io/*].attestors[0].count", before: "2", after: "1"},
		}, true},
		{"ivp-switches", []want{
			{class: Weaker, kind: "ImageValidatingPolicy", field: "spec.validationConfigurations.required"},
			{class: Weaker, kind: "ImageValidatingPolicy", field: "spec.matchImageReferences"},
			{class: Weaker, kind: "ImageValidatingPolicy", field: "spec.validationActions"},
		}, true},

		// exceptions
		{"exception-added-v2", []want{{class: Weaker, kind: "PolicyException.kyverno.io", policy: "team-a/allow-no-team", field: "spec.exceptions[require-labels]", before: "absent", message: "newly exempts policy require-labels"}}, true},
		{"exception-removed", []want{{class: Stricter, kind: "PolicyException.kyverno.io", policy: "team-a/allow-no-team"}}, true},
		{"exception-version-switch", nil, true},
		{"exception-version-switch-widened", []want{
			{class: Weaker, kind: "PolicyException.kyverno.io", policy: "team-a/allow-no-team", field: "spec.exceptions[require-labels]"},
			{class: Weaker, kind: "PolicyException.policies.kyverno.io", policy: "team-a/skip-checks", field: "spec.policyRefs[ValidatingPolicy/require-owner]"},
		}, true},
		{"exception-group-switch", []want{
			{class: Stricter, kind: "PolicyException.kyverno.io", policy: "team-a/allow-no-team"},
			{class: Weaker, kind: "PolicyException.policies.kyverno.io", policy: "team-a/allow-no-team"},
		}, true},
		{"exception-moved-to-other-object", nil, true},
		{"exception-conditions-removed", []want{{class: Weaker, kind: "PolicyException.kyverno.io", policy: "team-a/allow-no-team"}}, true},
		{"cel-exception-expiry-later", []want{{class: Weaker, kind: "PolicyException.policies.kyverno.io", policy: "team-a/skip-checks"}}, true},
		{"cel-exception-images-widened", []want{{class: Weaker, kind: "PolicyException.policies.kyverno.io", field: "spec.policyRefs[ImageValidatingPolicy/verify-images]"}}, true},
		{"exception-added-alongside-others", []want{{class: Weaker, kind: "PolicyException.kyverno.io", policy: "team-c/allow-c", before: "absent"}}, true},
		{"exception-for-namespaced-policy", []want{{class: Weaker, kind: "PolicyException.kyverno.io", field: "spec.exceptions[team-a/require-labels]", message: "exempts more of policy team-a/require-labels"}}, true},

		// more failure-action routes
		{"override-selector-added", []want{{class: Weaker, rule: "check-team", message: `matching {"matchLabels":{"env":"dev"}}`}}, true},
		{"namespaced-policy-overrides", []want{{class: Weaker, kind: "Policy", policy: "team-a/other", rule: "check-team", message: `namespace "team-a"`}}, true},
		{"override-order", []want{{class: Weaker, rule: "check-team", message: `namespace "prod-legacy"`}}, true},

		// other kinds
		{"vp-autogen-controllers-reduced", []want{{class: Weaker, kind: "ValidatingPolicy", field: "spec.autogen.podControllers.controllers", message: "batch/v1/cronjobs"}}, true},
		{"cleanup-narrowed", []want{
			{class: Weaker, kind: "ClusterCleanupPolicy", field: "spec.match"},
			{class: Unknown, kind: "ClusterCleanupPolicy", field: "spec.schedule"},
		}, true},
		{"mpol-mutation-removed", []want{{class: Weaker, kind: "MutatingPolicy", field: "spec.mutations"}}, true},
		{"gpol-synchronize-off", []want{{class: Weaker, kind: "GeneratingPolicy", field: "spec.evaluation.synchronize.enabled"}}, true},
		{"dpol-condition-added", []want{{class: Weaker, kind: "DeletingPolicy", field: "spec.conditions"}}, true},
		{"ivp-ignore-tlog", []want{{class: Weaker, kind: "ImageValidatingPolicy", field: "spec.attestors[cosign].cosign.ctlog.insecureIgnoreTlog"}}, true},
		{"verifyimages-ignore-tlog", []want{{class: Weaker, field: "spec.rules[verify-signature].verifyImages[ghcr.io/acme/*].attestors[0].entries[0].rekor.ignoreTlog"}}, true},
		{"load-error-in-head", []want{{class: Weaker, kind: cp, policy: "require-labels", message: "no longer loads"}}, true},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seen[c.name] = true
			baseline, head := loadCase(t, c.name)
			got := Diff(baseline, head)
			used := make([]bool, len(got))
			for _, w := range c.want {
				found := false
				for i, g := range got {
					if !used[i] && w.matches(g) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("missing change %+v", w)
				}
			}
			for i, g := range got {
				if used[i] {
					continue
				}
				if c.exact || g.Class.Blocks() {
					t.Errorf("unexpected change: %s", show(g))
				}
			}
			if t.Failed() || os.Getenv("WEAKEN_SHOW") != "" {
				for _, g := range got {
					t.Logf("got: %s", show(g))
				}
			}
			// Determinism and fingerprints.
			again := Diff(baseline, head)
			if len(again) != len(got) {
				t.Fatalf("second run returned %d changes, first %d", len(again), len(got))
			}
			for i := range got {
				if got[i] != again[i] {
					t.Errorf("run 2 differs at %d: %s vs %s", i, show(got[i]), show(again[i]))
				}
				if len(got[i].Fingerprint) != 12 {
					t.Errorf("fingerprint %q", got[i].Fingerprint)
				}
			}
			// Nothing changes against itself.
			if self := Diff(head, head); len(self) != 0 {
				t.Errorf("head against itself: %v", self)
			}
		})
	}
	// Every fixture is used.
	files, _ := filepath.Glob(filepath.Join("testdata", "cases", "*.yaml"))
	for _, f := range files {
		n := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !seen[n] {
			t.Errorf("fixture %s has no test case", n)
		}
	}
}

func show(c Change) string {
	return string(c.Class) + " " + c.Kind + " " + c.Policy + " rule=" + c.Rule + " field=" + c.Field + " [" + c.Before + " -> " + c.After + "] " + c.Message + " #" + c.Fingerprint
}

// Reversing a weakening must never be reported as weaker, and vice versa,
// for the fixtures whose changes are all decided (no unknowns).
func TestDiffReverse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cases", "*.yaml"))
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			baseline, head := loadCase(t, name)
			fwd := Diff(baseline, head)
			rev := Diff(head, baseline)
			count := func(cs []Change) map[Class]int {
				m := map[Class]int{}
				for _, c := range cs {
					m[c.Class]++
				}
				return m
			}
			fc, rc := count(fwd), count(rev)
			if fc[Unknown] > 0 || rc[Unknown] > 0 {
				return
			}
			if fc[Weaker] != rc[Stricter] || fc[Stricter] != rc[Weaker] {
				t.Errorf("forward %v, reverse %v", fc, rc)
				for _, c := range fwd {
					t.Logf("fwd: %s", show(c))
				}
				for _, c := range rev {
					t.Logf("rev: %s", show(c))
				}
			}
		})
	}
}

func TestFingerprintStable(t *testing.T) {
	a := Fingerprint("ClusterPolicy", "p", "r", "f", "Enforce", "Audit")
	if a != Fingerprint("ClusterPolicy", "p", "r", "f", "Enforce", "Audit") || len(a) != 12 {
		t.Fatal(a)
	}
	if a == Fingerprint("ClusterPolicy", "p", "r", "f", "Audit", "Enforce") {
		t.Fatal("fingerprint ignores direction")
	}
	// fields are separated, not concatenated
	if Fingerprint("a", "bc", "", "", "", "") == Fingerprint("ab", "c", "", "", "", "") {
		t.Fatal("fingerprint concatenates")
	}
}

// GlobalContextEntry has no CRD among the CLI's embedded ones, so the
// loader cannot load it; build the objects by hand.
func TestDiffGlobalContext(t *testing.T) {
	gce := func(resource string) *kyverno.Object {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "kyverno.io/v2beta1", "kind": "GlobalContextEntry",
			"metadata": map[string]any{"name": "deployments"},
			"spec":     map[string]any{"kubernetesResource": map[string]any{"group": "apps", "version": "v1", "resource": resource}},
		}}
		return &kyverno.Object{Resource: &render.Resource{APIVersion: "kyverno.io/v2beta1", Kind: "GlobalContextEntry", Name: "deployments"},
			GVK: schema.GroupVersionKind{Group: "kyverno.io", Version: "v2beta1", Kind: "GlobalContextEntry"}, GlobalCtx: u}
	}
	if got := Diff([]*kyverno.Object{gce("deployments")}, []*kyverno.Object{gce("deployments")}); len(got) != 0 {
		t.Errorf("unchanged: %v", got)
	}
	got := Diff([]*kyverno.Object{gce("deployments")}, []*kyverno.Object{gce("statefulsets")})
	if len(got) != 1 || got[0].Class != Unknown || got[0].Kind != "GlobalContextEntry" || got[0].Policy != "deployments" {
		t.Errorf("changed: %v", got)
	}
	got = Diff([]*kyverno.Object{gce("deployments")}, nil)
	if len(got) != 1 || got[0].Class != Unknown {
		t.Errorf("removed: %v", got)
	}
}
