// Package floor is the floor gate: what .kyverno-gate.yaml (package
// repoconfig) requires of the environment being rendered — every rule
// enforced (validateAction), webhooks failing closed (failurePolicy), every
// exception approved (exceptions), nothing weaker than another environment
// (notWeakerThan) — checked on the head rendering alone.
//
// Layout: the diff engine (package diff) holds what both this gate and the
// weaken gate (package weaken) use — Diff, the action model, approvals and
// the one place their findings are made (diff.Decide) — and reads nothing
// of either gate. The weaken gate imports this package for Changes
// (an approval of a floor violation is not stale). So the imports run
// weaken -> floor -> diff -> scope without a cycle, and the engine exports
// a read-only view of a rendering (diff.Policies, diff.Exceptions,
// diff.LegacyAction) instead of its index and recorder.
package floor

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/autogen"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/scope"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Gate checks the floors that the repository configuration
// (.kyverno-gate.yaml, package repoconfig) declares for the environment
// being rendered, on the head rendering alone: no baseline is involved.
// Each violation is a finding approved exactly like a weakening, by an
// annotation naming its fingerprint; the fingerprint covers the floor, the
// object, the rule and the actual and required values, so an approval of
// "rule X is Audit" does not approve anything else.
type Gate struct {
	// Now is the clock for approval expiry; nil means time.Now.
	Now func() time.Time
}

// Name implements gate.Gate.
func (Gate) Name() report.Gate { return report.GateFloor }

// Check implements gate.Gate: one finding per violation, a note when
// approved.
func (g Gate) Check(_ context.Context, in *gate.Input, out *report.Overlay) error {
	violations, err := Changes(in)
	if err != nil || len(violations) == 0 {
		return err
	}
	head, err := kyverno.LoadResult(in.Rendered)
	if err != nil {
		return err
	}
	targets := diff.NewTargets(head, nil)
	approvals := diff.CollectApprovals(in.Rendered.Resources)
	t := time.Now()
	if g.Now != nil {
		t = g.Now()
	}
	for _, c := range violations {
		out.Add(diff.Decide(in, report.GateFloor, report.KindViolation, c, c.Message, targets, approvals, t))
	}
	return nil
}

// floorKey keys the floor violations in a rendering's memo: the weaken gate
// (which needs their fingerprints to tell stale approvals apart) and the
// floor gate evaluate the floors once per rendering.
type floorKey struct{ root, dir string }

// envKey keys another environment's loaded rendering in the memo of the
// rendering whose floors compare with it.
type envKey struct{ path string }

// Changes lists every floor violation of in's rendering, approved or
// not, evaluated once per rendering.
func Changes(in *gate.Input) ([]diff.Change, error) {
	v, err := in.Rendered.Memo(floorKey{in.Root, in.Dir}, func() (any, error) { return floorChanges(in) })
	if err != nil {
		return nil, err
	}
	return v.([]diff.Change), nil
}

// floorChanges lists every floor violation of the head, approved or not.
func floorChanges(in *gate.Input) ([]diff.Change, error) {
	repo, err := in.Repository()
	if err != nil {
		return nil, err
	}
	cfg, err := repoconfig.LoadFrom(repo)
	if err != nil {
		return nil, err
	}
	env := cfg.EnvironmentFor(in.Dir)
	if env == nil || env.Floors.Empty() {
		return nil, nil
	}
	head, err := kyverno.LoadResult(in.Rendered)
	if err != nil {
		return nil, err
	}
	return Floors(cfg, env, head, func(other *repoconfig.Environment) ([]*kyverno.Object, error) {
		v, err := in.Rendered.Memo(envKey{other.Path}, func() (any, error) {
			if in.Stage != nil {
				in.Stage("floor gate: rendering " + other.Path + " (environment " + other.Name + ")")
			}
			opts := render.Options{Repo: repo, Root: in.Root}
			if in.Settings != nil {
				opts.AllowRemote, opts.EnableHelm = in.Settings.AllowRemote, in.Settings.EnableHelm
			}
			res, err := render.Render(filepath.Join(in.Root, filepath.FromSlash(other.Path)), opts)
			if err != nil {
				return nil, err
			}
			return kyverno.LoadResult(res)
		})
		if err != nil {
			return nil, err
		}
		return v.([]*kyverno.Object), nil
	})
}

// Floors checks env's floors on head and returns the violations, approved
// or not, as Changes of class Weaker whose Before is the actual value and
// After the required one, with a fingerprint of the floor violation (see
// Fingerprint; for notWeakerThan, the Diff change under the floor's
// name). renderEnv returns the loaded rendering of another environment,
// for notWeakerThan.
func Floors(cfg *repoconfig.Config, env *repoconfig.Environment, head []*kyverno.Object,
	renderEnv func(*repoconfig.Environment) ([]*kyverno.Object, error)) ([]diff.Change, error) {
	f := env.Floors
	if f.Empty() {
		return nil, nil
	}
	legacy, cel := diff.Policies(head)
	fl := &floorCtx{env: env.Name}
	if f.ValidateAction != "" {
		fl.validateAction(legacy, cel)
	}
	if f.FailurePolicy != "" {
		fl.failurePolicy(legacy, cel)
	}
	if f.Exceptions != "" {
		fl.exceptions(diff.Exceptions(head))
	}
	if f.NotWeakerThan != "" {
		other := cfg.Environment(f.NotWeakerThan)
		if other == nil {
			return nil, fmt.Errorf("%s: environment %s: floors.notWeakerThan %s is not a declared environment", settings.ConfigFile, env.Name, f.NotWeakerThan)
		}
		objs, err := renderEnv(other)
		if err != nil {
			return nil, fmt.Errorf("floor notWeakerThan of environment %s: rendering %s (environment %s): %w", env.Name, other.Path, other.Name, err)
		}
		fl.notWeakerThan(other, objs, head, f.Exceptions != "")
	}
	out := fl.out
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Policy, b.Policy}, {a.Rule, b.Rule}, {a.Field, b.Field}, {a.Before, b.Before}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return out, nil
}

type floorCtx struct {
	env string
	out []diff.Change
}

// add records a violation of floor by kind/policy/rule: actual where
// required is needed.
func (fl *floorCtx) add(floor, kind, policy, rule, field, actual, required, msg string) {
	fl.out = append(fl.out, diff.Change{
		Class: diff.Weaker, Kind: kind, Policy: policy, Rule: rule, Field: field, Before: actual, After: required,
		Message:     fmt.Sprintf("%s (required: %s, by the %s floor %s in %s)", msg, required, fl.env, floor, settings.ConfigFile),
		Fingerprint: Fingerprint(floor, kind, policy, rule, actual, required),
	})
}

// Fingerprint is the fingerprint of a floor violation.
func Fingerprint(floor, kind, policy, rule, actual, required string) string {
	return diff.Fingerprint("floor", kind+" "+policy, rule, floor, actual, required)
}

// validateAction: every validate/verifyImages rule resolves to Enforce in
// every namespace, every (Image)ValidatingPolicy denies, and admission is
// on.
func (fl *floorCtx) validateAction(legacy, cel []diff.Policy) {
	const floor = "validateAction"
	for _, p := range legacy {
		kind, ns, policy := p.Kind, p.Namespace, p.Name
		pol := p.Object.Policy
		spec := pol.GetSpec()
		rules := autogen.Default.ComputeRules(pol, "")
		hasChecks := false
		var found []diff.Change
		for i := range rules {
			r := &rules[i]
			m, ok := diff.LegacyAction(spec, r)
			if !ok {
				continue
			}
			hasChecks = true
			weaker, _, w, _ := scope.CompareActions(scope.Action{Enforce: true}, m, ns)
			if weaker == scope.No {
				continue
			}
			actual := m.String()
			msg := fmt.Sprintf("rule %s resolves to %s: violations are only reported, not blocked", r.Name, actual)
			if weaker == scope.Yes && len(m.Overrides) > 0 {
				msg = fmt.Sprintf("rule %s resolves to Audit for %s (%s): violations there are only reported, not blocked", r.Name, w, actual)
			} else if weaker != scope.Yes {
				msg = fmt.Sprintf("rule %s resolves to %s, which may be Audit somewhere (overrides could not be decided)", r.Name, actual)
			}
			if r.HasValidate() && r.Validation.FailureAction != nil && !r.Validation.FailureAction.Enforce() && spec.ValidationFailureAction.Enforce() {
				msg += "; its rule-level validate.failureAction overrides spec.validationFailureAction: Enforce (kyverno/policies#1360)"
			}
			found = append(found, diff.Change{Rule: r.Name, Field: floorActionField(spec, r), Before: actual, Message: msg})
		}
		if hasChecks && !spec.AdmissionProcessingEnabled() {
			fl.add(floor, kind, policy, "", "spec.admission", "admission disabled", "Enforce",
				"admission processing is off, so none of its validate rules blocks anything")
		}
		// An autogen rule repeats its parent's action: report the parent.
		parents := map[string]string{}
		for _, c := range found {
			if !diff.IsAutogen(c.Rule) {
				parents[c.Rule] = c.Before
			}
		}
		for _, c := range found {
			if diff.IsAutogen(c.Rule) {
				if a, ok := parents[diff.AutogenParent(c.Rule)]; ok && a == c.Before {
					continue
				}
			}
			fl.add(floor, kind, policy, c.Rule, c.Field, c.Before, "Enforce", c.Message)
		}
	}
	for _, p := range cel {
		kind, policy, o := p.Kind, p.Name, p.Object
		var actions []admissionregistrationv1.ValidationAction
		var admission bool
		switch {
		case o.Validating != nil:
			s := o.Validating.GetValidatingPolicySpec()
			actions, admission = s.ValidationActions(), s.AdmissionEnabled()
		case o.Image != nil:
			s := o.Image.GetSpec()
			actions, admission = s.ValidationActions(), s.AdmissionEnabled()
		default:
			continue
		}
		deny := false
		var as []string
		for _, a := range actions {
			as = append(as, string(a))
			deny = deny || a == admissionregistrationv1.Deny
		}
		actual := "[" + strings.Join(slices.Compact(slices.Sorted(slices.Values(as))), ", ") + "]"
		if !deny {
			fl.add(floor, kind, policy, "", "spec.validationActions", actual, "[Deny]",
				fmt.Sprintf("validationActions is %s without Deny: failing requests are not denied", actual))
		}
		if !admission {
			fl.add(floor, kind, policy, "", "spec.evaluation.admission.enabled", "admission disabled", "[Deny]",
				"admission evaluation is off, so the policy denies nothing")
		}
	}
}

// floorActionField names the field a legacy rule's action comes from.
func floorActionField(spec *kyvernov1.Spec, r *kyvernov1.Rule) string {
	switch {
	case r.HasValidate() && len(r.Validation.FailureActionOverrides) > 0:
		return diff.RuleField(r.Name, "validate.failureActionOverrides")
	case r.HasValidate() && r.Validation.FailureAction != nil:
		return diff.RuleField(r.Name, "validate.failureAction")
	case r.HasVerifyImages():
		for _, iv := range r.VerifyImages {
			if iv.FailureAction != nil {
				return diff.RuleField(r.Name, "verifyImages.failureAction")
			}
		}
	}
	if len(spec.ValidationFailureActionOverrides) > 0 {
		return "spec.validationFailureActionOverrides"
	}
	return "spec.validationFailureAction"
}

// failurePolicy: every policy with a webhook failure policy has Fail.
func (fl *floorCtx) failurePolicy(legacy, cel []diff.Policy) {
	const floor = "failurePolicy"
	ctx := context.Background()
	for _, p := range legacy {
		spec := p.Object.Policy.GetSpec()
		if fp := spec.GetFailurePolicy(ctx); fp != kyvernov1.Fail {
			field := "spec.failurePolicy"
			if spec.WebhookConfiguration != nil && spec.WebhookConfiguration.FailurePolicy != nil {
				field = "spec.webhookConfiguration.failurePolicy"
			}
			fl.add(floor, p.Kind, p.Name, "", field, string(fp), "Fail",
				fmt.Sprintf("failure policy is %s: when the webhook errors or times out, requests are let through unchecked", fp))
		}
	}
	for _, p := range cel {
		o := p.Object
		var fp admissionregistrationv1.FailurePolicyType
		switch {
		case o.Validating != nil:
			fp = o.Validating.GetFailurePolicy(false)
		case o.Image != nil:
			fp = o.Image.GetFailurePolicy(false)
		case o.Mutating != nil:
			fp = o.Mutating.GetFailurePolicy(false)
		default:
			continue // generating and deleting policies have no failure policy of their own
		}
		if fp != admissionregistrationv1.Fail {
			fl.add(floor, p.Kind, p.Name, "", "spec.failurePolicy", string(fp), "Fail",
				fmt.Sprintf("failure policy is %s: when evaluation errors or times out, requests are let through unchecked", fp))
		}
	}
}

// exceptions: every exception needs an approval bound to what it exempts.
func (fl *floorCtx) exceptions(excs []diff.Exception) {
	const floor = "exceptions"
	for _, e := range excs {
		var scopes, parts []string
		for _, x := range e.Exempts {
			scopes = append(scopes, x.Target+": "+x.Scope)
			parts = append(parts, x.Target+" for "+scope.Abbreviate(x.Scope))
		}
		sc := strings.Join(scopes, "; ")
		msg := "exempts " + strings.Join(parts, "; and ")
		if len(e.Exempts) == 0 {
			sc = "nothing"
			msg = "exempts nothing as written"
		}
		msg += "; every PolicyException needs an approval bound to what it exempts"
		fl.add(floor, e.Kind, e.Name, "", "spec", sc, "approved", msg)
	}
}

// notWeakerThan: compare the other environment's rendering with the head
// as if it were a baseline. Policies the head does not have at all are
// left out (environments may carry different policies, e.g. a staging
// trial; removing a policy from an environment is caught by that
// environment's own baseline), and so are exception changes when the
// exceptions floor already asks for an approval of each exception.
func (fl *floorCtx) notWeakerThan(other *repoconfig.Environment, otherObjs, head []*kyverno.Object, exceptionsFloor bool) {
	names := map[string]bool{}
	for _, o := range head {
		if o != nil && o.Resource != nil {
			names[o.Resource.Name] = true
		}
	}
	floor := "notWeakerThan " + other.Name
	for _, c := range diff.Diff(otherObjs, head) {
		if !c.Class.Blocks() {
			continue
		}
		if c.Rule == "" && c.Field == "" && c.After == "absent" {
			name := c.Policy
			if i := strings.LastIndexByte(name, '/'); i >= 0 {
				name = name[i+1:]
			}
			if !names[name] {
				continue
			}
		}
		if exceptionsFloor && diff.IsException(c.Kind) {
			continue
		}
		msg := c.Message
		if c.Class == diff.Unknown {
			msg = "may be weaker (cannot be decided structurally, so it counts as weaker): " + msg
		}
		fl.out = append(fl.out, diff.Change{
			Class: diff.Weaker, Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Before: c.Before, After: c.After,
			Message: fmt.Sprintf("weaker than environment %s (%s): %s (the %s floor %s in %s)", other.Name, other.Path, msg, fl.env, floor, settings.ConfigFile),
			// Bound to the floor and to the exact change.
			Fingerprint: diff.Fingerprint("floor", c.Kind+" "+c.Policy, c.Rule, floor+" "+c.Field, c.Before, c.After),
		})
	}
}
