package floor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/floor"
	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// The Kinds Changes give exceptions (diff's own constants are unexported).
const (
	kindLegacyException = "PolicyException.kyverno.io"
	kindCELException    = "PolicyException.policies.kyverno.io"
)

func loadFloorFixture(t *testing.T, name string) []*kyverno.Object {
	t.Helper()
	objs, err := kyverno.Load(repotest.Resources(t, mustReadFile(t, filepath.Join("testdata", "floors", name+".yaml")), name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.Err != nil {
			t.Fatalf("%s: %s does not load: %v", name, o.ID(), o.Err)
		}
	}
	return objs
}

// wantViolation describes a floor violation; empty fields are not checked,
// message is a substring.
type wantViolation struct {
	floor, kind, policy, rule, field, actual, required, message string
}

func (w wantViolation) matches(c diff.Change) bool {
	return c.Class == diff.Weaker && (w.kind == "" || c.Kind == w.kind) && (w.policy == "" || c.Policy == w.policy) &&
		c.Rule == w.rule && (w.field == "" || c.Field == w.field) && (w.actual == "" || c.Before == w.actual) &&
		(w.required == "" || c.After == w.required) && strings.Contains(c.Message, w.message) &&
		(w.floor == "" || c.Fingerprint == floor.Fingerprint(w.floor, c.Kind, c.Policy, c.Rule, c.Before, c.After))
}

func checkViolations(t *testing.T, got []diff.Change, want []wantViolation) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		ok := false
		for i, c := range got {
			if !used[i] && w.matches(c) {
				used[i], ok = true, true
				break
			}
		}
		if !ok {
			t.Errorf("missing violation %+v", w)
		}
	}
	for i, c := range got {
		if !used[i] {
			t.Errorf("unexpected violation %s", show(c))
		}
	}
}

func TestFloors(t *testing.T) {
	all := &repoconfig.Floors{ValidateAction: "Enforce", FailurePolicy: "Fail", Exceptions: "approved"}
	cp := "ClusterPolicy"
	for _, tc := range []struct {
		fixture string
		floors  *repoconfig.Floors
		want    []wantViolation
	}{
		{"all-enforced", all, nil},
		{"trap-1360", all, []wantViolation{{floor: "validateAction", kind: cp, policy: "require-labels", rule: "check-team",
			field: "spec.rules[check-team].validate.failureAction", actual: "Audit", required: "Enforce",
			message: "rule check-team resolves to Audit: violations are only reported, not blocked; its rule-level validate.failureAction overrides spec.validationFailureAction: Enforce (kyverno/policies#1360) (required: Enforce, by the production floor validateAction in .kyverno-gate.yaml)"}}},
		{"trap-1360", &repoconfig.Floors{FailurePolicy: "Fail"}, nil},
		{"spec-audit-default", all, []wantViolation{{floor: "validateAction", rule: "check-team", field: "spec.validationFailureAction", actual: "Audit"}}},
		{"override-audit", all, []wantViolation{{floor: "validateAction", rule: "check-team", field: "spec.rules[check-team].validate.failureActionOverrides",
			actual: "Audit in namespaces [dev-*], otherwise Enforce", message: `resolves to Audit for namespace "dev-`}}},
		// one violation: the autogen rules for Pod controllers repeat it
		{"pod-rule-audit", all, []wantViolation{{floor: "validateAction", rule: "check-team", actual: "Audit"}}},
		{"admission-off", all, []wantViolation{{floor: "validateAction", policy: "require-labels", field: "spec.admission", actual: "admission disabled",
			message: "admission processing is off"}}},
		{"verifyimages-audit", all, []wantViolation{{floor: "validateAction", policy: "verify-images", rule: "verify-signature",
			field: "spec.rules[verify-signature].verifyImages.failureAction", actual: "Audit"}}},
		{"cel-no-deny", all, []wantViolation{
			{floor: "validateAction", kind: "ValidatingPolicy", policy: "vp-audit", field: "spec.validationActions", actual: "[Audit, Warn]", required: "[Deny]",
				message: "validationActions is [Audit, Warn] without Deny"},
			{floor: "validateAction", kind: "ValidatingPolicy", policy: "vp-admission-off", field: "spec.evaluation.admission.enabled"},
			{floor: "validateAction", kind: "ImageValidatingPolicy", policy: "verify-images", actual: "[Warn]"},
		}},
		{"cel-no-deny", &repoconfig.Floors{Exceptions: "approved"}, nil},
		{"failure-ignore", all, []wantViolation{
			{floor: "failurePolicy", kind: cp, policy: "legacy-ignore", field: "spec.webhookConfiguration.failurePolicy", actual: "Ignore", required: "Fail"},
			{floor: "failurePolicy", kind: cp, policy: "deprecated-ignore", field: "spec.failurePolicy", actual: "Ignore"},
			{floor: "failurePolicy", kind: "ValidatingPolicy", policy: "vp-ignore", field: "spec.failurePolicy", actual: "Ignore"},
		}},
		{"exceptions", all, []wantViolation{
			{floor: "exceptions", kind: kindLegacyException, policy: "team-a/allow-no-team", required: "approved",
				message: "exempts policy require-labels for {kinds=[ConfigMap]; namespaces=[team-a]; rule=[check-team]}; every PolicyException needs an approval"},
			{floor: "exceptions", kind: kindCELException, policy: "team-a/skip-checks", message: "exempts ValidatingPolicy vp-default for"},
		}},
		{"exceptions", &repoconfig.Floors{ValidateAction: "Enforce"}, nil},
	} {
		name := tc.fixture
		if tc.floors != all {
			name += " partial floors"
		}
		t.Run(name, func(t *testing.T) {
			env := &repoconfig.Environment{Name: "production", Path: "overlays/production", Floors: tc.floors}
			cfg := &repoconfig.Config{Environments: []repoconfig.Environment{*env}}
			got, err := floor.Floors(cfg, env, loadFloorFixture(t, tc.fixture), nil)
			if err != nil {
				t.Fatal(err)
			}
			checkViolations(t, got, tc.want)
		})
	}
}

// An exception's approval is bound to what it exempts: widening it changes
// the fingerprint, an apiVersion switch or an annotation does not.
func TestFloorExceptionFingerprint(t *testing.T) {
	floors := &repoconfig.Floors{Exceptions: "approved"}
	env := &repoconfig.Environment{Name: "production", Floors: floors}
	fp := func(text string) string {
		t.Helper()
		objs, err := kyverno.Load(repotest.Resources(t, text, "x.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := floor.Floors(&repoconfig.Config{}, env, objs, nil)
		if err != nil || len(got) != 1 {
			t.Fatalf("%v %v", got, err)
		}
		return got[0].Fingerprint
	}
	exc := func(apiVersion, namespaces, annotations string) string {
		return "apiVersion: " + apiVersion + `
kind: PolicyException
metadata:
  name: allow
  namespace: kyverno
` + annotations + `
spec:
  exceptions:
  - policyName: require-labels
    ruleNames: [check-team]
  match:
    any:
    - resources:
        kinds: [Pod]
        namespaces: ` + namespaces + "\n"
	}
	a := fp(exc("kyverno.io/v2", "[legacy]", ""))
	if b := fp(exc("kyverno.io/v2beta1", "[legacy]", "")); b != a {
		t.Errorf("apiVersion switch changed the fingerprint")
	}
	if b := fp(exc("kyverno.io/v2", "[legacy]", "  annotations:\n    approve.kyverno-gate.io/"+a+": \"\"")); b != a {
		t.Errorf("the approval itself changed the fingerprint")
	}
	if b := fp(exc("kyverno.io/v2", "[legacy, legacy-2]", "")); b == a {
		t.Errorf("widening kept the fingerprint")
	}
	if b := fp(exc("kyverno.io/v2", "[\"*\"]", "")); b == a {
		t.Errorf("widening to * kept the fingerprint")
	}
}

func TestFloorNotWeakerThan(t *testing.T) {
	stagingText := mustReadFile(t, filepath.Join("..", "weaken", "testdata", "gate", "enforce-to-audit.yaml"))
	staging, _, _ := strings.Cut(stagingText, "#### head\n")
	_, prodAudit, _ := strings.Cut(stagingText, "#### head\n")
	trial := `---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: trial
spec:
  rules:
  - name: no-latest
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      failureAction: Enforce
      message: no latest
      pattern:
        spec:
          containers:
          - image: "!*:latest"
`
	exception := `---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: allow
  namespace: kyverno
spec:
  exceptions:
  - policyName: require-labels
    ruleNames: [check-team]
  match:
    any:
    - resources:
        kinds: [Pod]
        namespaces: [legacy]
`
	load := func(text string) []*kyverno.Object {
		objs, err := kyverno.Load(repotest.Resources(t, text, "x.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	cfg, err := repoconfig.Parse([]byte(`apiVersion: kyverno-gate.io/v1alpha1
kind: Config
environments:
- {name: staging, path: overlays/staging}
- {name: production, path: overlays/production}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		other, head     string
		exceptionsFloor bool
		want            []wantViolation
	}{
		{name: "same", other: staging, head: staging},
		{name: "audit where staging enforces", other: staging, head: prodAudit, want: []wantViolation{{kind: "ClusterPolicy", policy: "require-labels", rule: "check-team",
			actual: "Enforce", required: "Audit", message: "weaker than environment staging (overlays/staging): effective failure action of rule check-team went from Enforce to Audit"}}},
		{name: "policy only in staging", other: staging + trial, head: staging},
		{name: "stricter than staging", other: prodAudit, head: staging},
		{name: "exception only here", other: staging, head: staging + exception, want: []wantViolation{{kind: kindLegacyException, policy: "kyverno/allow", message: "newly exempts"}}},
		{name: "exception only here, exceptions floor", other: staging, head: staging + exception, exceptionsFloor: true,
			want: []wantViolation{{floor: "exceptions", kind: kindLegacyException, policy: "kyverno/allow"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			floors := &repoconfig.Floors{NotWeakerThan: "staging"}
			if tc.exceptionsFloor {
				floors.Exceptions = "approved"
			}
			env := &repoconfig.Environment{Name: "production", Path: "overlays/production", Floors: floors}
			rendered := 0
			got, err := floor.Floors(cfg, env, load(tc.head), func(e *repoconfig.Environment) ([]*kyverno.Object, error) {
				if e.Name != "staging" {
					t.Fatalf("rendered %s", e.Name)
				}
				rendered++
				return load(tc.other), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if rendered != 1 {
				t.Fatalf("rendered staging %d times", rendered)
			}
			checkViolations(t, got, tc.want)
			for _, c := range got {
				if c.Kind == "ClusterPolicy" && c.Fingerprint == diff.Fingerprint(c.Kind, c.Policy, c.Rule, c.Field, c.Before, c.After) {
					t.Errorf("a floor violation has the fingerprint of a baseline change")
				}
			}
		})
	}
}

func floorInput(t *testing.T, root, dir string) *gate.Input {
	t.Helper()
	res, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return &gate.Input{Root: root, Dir: res.Dir, Rendered: res, Log: func(string, ...any) {}}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFloorTrap1360 renders a real overlay that "enforces" by patching
// spec.validationFailureAction: Enforce over a base rule that says
// failureAction: Audit (kyverno/policies#1360). The production floor must
// reject it; patching the rule-level field instead passes.
func TestFloorTrap1360(t *testing.T) {
	root := t.TempDir()
	copyDir(t, filepath.Join("testdata", "floor-repo"), root)
	in := floorInput(t, root, "overlays/production")
	findings, err := check(floor.Gate{}, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []wantFinding{
		{severity: report.Error, file: "base/require-labels.yaml", object: "ClusterPolicy require-labels", rule: "check-team",
			message: "rule check-team resolves to Audit: violations are only reported, not blocked; its rule-level validate.failureAction overrides spec.validationFailureAction: Enforce (kyverno/policies#1360)",
			hint:    "approve.kyverno-gate.io/" + floor.Fingerprint("validateAction", "ClusterPolicy", "require-labels", "check-team", "Audit", "Enforce")},
		{severity: report.Error, rule: "check-team", message: "weaker than environment staging (overlays/staging): effective failure action of rule check-team went from Enforce to Audit"},
	}
	if len(findings) != len(want) {
		t.Fatalf("got %d findings: %+v", len(findings), findings)
	}
	for _, w := range want {
		ok := false
		for _, f := range findings {
			ok = ok || (w.matches(f) && f.Gate == "floor")
		}
		if !ok {
			t.Errorf("missing %+v in %+v", w, findings)
		}
	}

	// The fix: patch the rule-level field.
	kust := filepath.Join(root, "overlays", "production", "kustomization.yaml")
	data := strings.Replace(mustReadFile(t, kust), "path: /spec/validationFailureAction", "path: /spec/rules/0/validate/failureAction", 1)
	if err := os.WriteFile(kust, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	findings, err = check(floor.Gate{}, floorInput(t, root, "overlays/production"))
	if err != nil || len(findings) != 0 {
		t.Fatalf("fixed overlay: %v %+v", err, findings)
	}
	// Staging has no floors.
	findings, err = check(floor.Gate{}, floorInput(t, root, "overlays/staging"))
	if err != nil || len(findings) != 0 {
		t.Fatalf("staging: %v %+v", err, findings)
	}
}

func TestFloorGateErrors(t *testing.T) {
	root := t.TempDir()
	copyDir(t, filepath.Join("testdata", "floor-repo"), root)
	in := floorInput(t, root, "overlays/production")
	if err := os.WriteFile(filepath.Join(root, "overlays", "staging", "kustomization.yaml"), []byte("resources: [missing.yaml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := check(floor.Gate{}, in)
	if err == nil || !strings.Contains(err.Error(), "floor notWeakerThan of environment production: rendering overlays/staging (environment staging)") {
		t.Fatalf("got %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, ".kyverno-gate.yaml"), []byte("apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\nfloors: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in = floorInput(t, root, "overlays/production")
	if _, err := check((floor.Gate{}), in); err == nil || !strings.Contains(err.Error(), `.kyverno-gate.yaml: unknown field "floors"`) {
		t.Fatalf("got %v", err)
	}
}

// TestExampleRepoFloors: the example repository's production overlay holds
// its floors thanks to the approvals it ships, every one of them needed;
// the other environments have no floors.
func TestExampleRepoFloors(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", "examples", "policy-repo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"overlays/development", "overlays/staging", "overlays/production"} {
		in := floorInput(t, root, dir)
		ev, err := evaluate(floor.Gate{}, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Findings) != 0 {
			t.Errorf("%s: %+v", dir, ev.Findings)
		}
		if dir != "overlays/production" {
			if len(ev.Items) != 0 {
				t.Errorf("%s has no floors: %+v", dir, ev.Items)
			}
			continue
		}
		approved := map[string]bool{}
		for _, it := range ev.Items {
			if !it.Approved {
				t.Errorf("not approved: %s", it.Change)
			}
			approved[it.Fingerprint] = true
		}
		if len(approved) != 3 {
			t.Errorf("want 3 approved violations, got %+v", ev.Items)
		}
		// Every shipped approval is live: with the rendering itself as the
		// baseline, the weaken gate reports no stale approval.
		in.Baseline, in.BaselineName = in.Rendered, "itself"
		findings, err := check(weaken.Gate{}, in)
		if err != nil || len(findings) != 0 {
			t.Errorf("weaken gate on production: %v %+v", err, findings)
		}
		// Without an approval the violation is rejected.
		for _, r := range in.Rendered.Resources {
			if r.Name == "restrict-image-registries" {
				r2 := *r
				r2.Object = deepCopyMap(r.Object)
				meta := r2.Object["metadata"].(map[string]any)
				delete(meta["annotations"].(map[string]any), diff.ApprovalKey(floor.Fingerprint("validateAction", "ClusterPolicy", "restrict-image-registries", "validate-registries", "Audit", "Enforce")))
				in2 := *in
				in2.Rendered = &render.Result{Dir: in.Rendered.Dir, Resources: replace(in.Rendered.Resources, r, &r2)}
				findings, err := check(floor.Gate{}, &in2)
				if err != nil || len(findings) != 1 || findings[0].Rule != "validate-registries" || findings[0].Severity != report.Error {
					t.Errorf("without approval: %v %+v", err, findings)
				}
			}
		}
	}
}

func replace(rs []*render.Resource, old, new *render.Resource) []*render.Resource {
	out := make([]*render.Resource, len(rs))
	for i, r := range rs {
		out[i] = r
		if r == old {
			out[i] = new
		}
	}
	return out
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = deepCopyMap(x)
		default:
			out[k] = v
		}
	}
	return out
}

// TestStaleApprovalsKnowFloors: an approval of a floor violation is not
// stale for the weaken gate, an approval of nothing is.
func TestStaleApprovalsKnowFloors(t *testing.T) {
	root := t.TempDir()
	copyDir(t, filepath.Join("testdata", "floor-repo"), root)
	in := floorInput(t, root, "overlays/production")
	floorFP := floor.Fingerprint("validateAction", "ClusterPolicy", "require-labels", "check-team", "Audit", "Enforce")
	repotest.Annotate(t, in.Rendered.Resources, "require-labels", diff.ApprovalKey(floorFP), "reason=trap accepted")
	repotest.Annotate(t, in.Rendered.Resources, "require-labels", diff.ApprovalKey("0123456789ab"), "")
	in.Baseline, in.BaselineName = in.Rendered, "itself"
	findings, err := check(weaken.Gate{}, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Severity != report.Warning || !strings.Contains(findings[0].Message, "stale approval approve.kyverno-gate.io/0123456789ab") {
		t.Fatalf("%+v", findings)
	}
	findings, err = check(floor.Gate{}, in)
	if err != nil || len(findings) != 1 || !strings.Contains(findings[0].Message, "weaker than environment staging") {
		t.Fatalf("floor gate: %v %+v", err, findings)
	}
}

// TestLockDoesNotLaunder follows an overlay through its history with the
// plugin's default baseline, the lock: an unapproved weakening stays
// rejected whatever is committed on top, until it is approved; locking the
// approved state makes the approval stale.
func TestLockDoesNotLaunder(t *testing.T) {
	root := t.TempDir()
	copyDir(t, filepath.Join("testdata", "floor-repo"), root)
	// No floors here: this is about the baseline.
	if err := os.WriteFile(filepath.Join(root, ".kyverno-gate.yaml"), []byte("apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := "overlays/staging"
	kust := filepath.Join(root, dir, "kustomization.yaml")
	run := func() []report.Finding {
		t.Helper()
		in := floorInput(t, root, dir)
		base, name, err := baseline.Resolve("auto", root, dir, render.Options{})
		if err != nil {
			t.Fatal(err)
		}
		in.Baseline, in.BaselineName = base, name
		findings, err := check(weaken.Gate{}, in)
		if err != nil {
			t.Fatal(err)
		}
		return findings
	}
	edit := func(old, new string) {
		t.Helper()
		data := mustReadFile(t, kust)
		if !strings.Contains(data, old) {
			t.Fatalf("%q not in kustomization", old)
		}
		if err := os.WriteFile(kust, []byte(strings.Replace(data, old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Vetted state, locked.
	if _, err := baseline.WriteLock(root, dir, floorInput(t, root, dir).Rendered); err != nil {
		t.Fatal(err)
	}
	if f := run(); len(f) != 0 {
		t.Fatalf("locked state: %+v", f)
	}
	// Commit 1: weaken.
	edit("value: Enforce", "value: Audit")
	f := run()
	if len(f) != 1 || f[0].Severity != report.Error || !strings.Contains(f[0].Message, "(baseline: lock overlays/staging/kyverno-gate.lock.yaml)") {
		t.Fatalf("weakened: %+v", f)
	}
	fp := diff.Fingerprint("ClusterPolicy", "require-labels", "check-team", "spec.rules[check-team].validate.failureAction", "Enforce", "Audit")
	// Commit 2: unrelated change on top.
	edit("resources:\n", "commonAnnotations:\n  team: platform\nresources:\n")
	if f := run(); len(f) != 1 || !strings.Contains(f[0].Hint, fp) {
		t.Fatalf("laundered by an unrelated commit: %+v", f)
	}
	// Commit 3: approve.
	edit("commonAnnotations:\n  team: platform\n", "commonAnnotations:\n  team: platform\n  approve.kyverno-gate.io/"+fp+": \"reason=accepted; ticket=SEC-1\"\n")
	if f := run(); len(f) != 0 {
		t.Fatalf("approved: %+v", f)
	}
	// Lock the approved state: the approval is now stale.
	if _, err := baseline.WriteLock(root, dir, floorInput(t, root, dir).Rendered); err != nil {
		t.Fatal(err)
	}
	if f := run(); len(f) != 2 || f[0].Severity != report.Warning || !strings.Contains(f[0].Message, "stale approval") {
		// commonAnnotations puts it on both policies of the overlay
		t.Fatalf("after locking: %+v", f)
	}
}
