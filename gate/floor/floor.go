package weaken

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/autogen"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// FloorGate checks the floors that the repository configuration
// (.kyverno-gate.yaml, package repoconfig) declares for the environment
// being rendered, on the head rendering alone: no baseline is involved.
// Each violation is a finding approved exactly like a weakening, by an
// annotation naming its fingerprint; the fingerprint covers the floor, the
// object, the rule and the actual and required values, so an approval of
// "rule X is Audit" does not approve anything else.
type FloorGate struct {
	// Now is the clock for approval expiry; nil means time.Now.
	Now func() time.Time
}

// Name implements gate.Gate.
func (FloorGate) Name() report.Gate { return report.GateFloor }

// Check implements gate.Gate: one finding per violation, a note when
// approved.
func (g FloorGate) Check(_ context.Context, in *gate.Input, out *report.Overlay) error {
	violations, err := FloorChanges(in)
	if err != nil || len(violations) == 0 {
		return err
	}
	head, err := kyverno.LoadResult(in.Rendered)
	if err != nil {
		return err
	}
	hd := objectsByKey(head)
	approvals := CollectApprovals(in.Rendered.Resources)
	t := now(g.Now)
	for _, c := range violations {
		target := hd[key(c.Kind, c.Policy)]
		at, gone := target, target == nil
		if gone {
			target = anyTarget(in.Rendered.Resources, c.Policy)
		}
		out.Add(decide(report.GateFloor, report.KindViolation, c, at, c.Message, approvals, t, suggest(c, target, gone, in), in))
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

// FloorChanges lists every floor violation of in's rendering, approved or
// not, evaluated once per rendering.
func FloorChanges(in *gate.Input) ([]Change, error) {
	v, err := in.Rendered.Memo(floorKey{in.Root, in.Dir}, func() (any, error) { return floorChanges(in) })
	if err != nil {
		return nil, err
	}
	return v.([]Change), nil
}

// floorChanges lists every floor violation of the head, approved or not.
func floorChanges(in *gate.Input) ([]Change, error) {
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
// FloorFingerprint; for notWeakerThan, the Diff change under the floor's
// name). renderEnv returns the loaded rendering of another environment,
// for notWeakerThan.
func Floors(cfg *repoconfig.Config, env *repoconfig.Environment, head []*kyverno.Object,
	renderEnv func(*repoconfig.Environment) ([]*kyverno.Object, error)) ([]Change, error) {
	f := env.Floors
	if f.Empty() {
		return nil, nil
	}
	hs := index(head)
	fl := &floorCtx{env: env.Name}
	if f.ValidateAction != "" {
		fl.validateAction(hs)
	}
	if f.FailurePolicy != "" {
		fl.failurePolicy(hs)
	}
	if f.Exceptions != "" {
		fl.exceptions(hs)
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
	out []Change
}

// add records a violation of floor by kind/policy/rule: actual where
// required is needed.
func (fl *floorCtx) add(floor, kind, policy, rule, field, actual, required, msg string) {
	fl.out = append(fl.out, Change{
		Class: Weaker, Kind: kind, Policy: policy, Rule: rule, Field: field, Before: actual, After: required,
		Message:     fmt.Sprintf("%s (required: %s, by the %s floor %s in %s)", msg, required, fl.env, floor, settings.ConfigFile),
		Fingerprint: FloorFingerprint(floor, kind, policy, rule, actual, required),
	})
}

// FloorFingerprint is the fingerprint of a floor violation.
func FloorFingerprint(floor, kind, policy, rule, actual, required string) string {
	return Fingerprint("floor", kind+" "+policy, rule, floor, actual, required)
}

// validateAction: every validate/verifyImages rule resolves to Enforce in
// every namespace, every (Image)ValidatingPolicy denies, and admission is
// on.
func (fl *floorCtx) validateAction(hs *side) {
	const floor = "validateAction"
	for _, id := range sortedKeys(hs.legacy) {
		kind, ns, name := splitIdentity(id)
		pol := hs.legacy[id].Policy
		spec := pol.GetSpec()
		policy := displayName(ns, name)
		rules := autogen.Default.ComputeRules(pol, "")
		hasChecks := false
		var found []Change
		for i := range rules {
			r := &rules[i]
			m, ok := legacyAction(spec, r)
			if !ok {
				continue
			}
			hasChecks = true
			weaker, _, w, _ := compareActions(actionModel{enforce: true}, m, ns)
			if weaker == no {
				continue
			}
			actual := m.String()
			msg := fmt.Sprintf("rule %s resolves to %s: violations are only reported, not blocked", r.Name, actual)
			if weaker == yes && len(m.overrides) > 0 {
				msg = fmt.Sprintf("rule %s resolves to Audit for %s (%s): violations there are only reported, not blocked", r.Name, w, actual)
			} else if weaker != yes {
				msg = fmt.Sprintf("rule %s resolves to %s, which may be Audit somewhere (overrides could not be decided)", r.Name, actual)
			}
			if r.HasValidate() && r.Validation.FailureAction != nil && !r.Validation.FailureAction.Enforce() && spec.ValidationFailureAction.Enforce() {
				msg += "; its rule-level validate.failureAction overrides spec.validationFailureAction: Enforce (kyverno/policies#1360)"
			}
			found = append(found, Change{Rule: r.Name, Field: floorActionField(spec, r), Before: actual, Message: msg})
		}
		if hasChecks && !spec.AdmissionProcessingEnabled() {
			fl.add(floor, kind, policy, "", "spec.admission", "admission disabled", "Enforce",
				"admission processing is off, so none of its validate rules blocks anything")
		}
		// An autogen rule repeats its parent's action: report the parent.
		parents := map[string]string{}
		for _, c := range found {
			if !isAutogen(c.Rule) {
				parents[c.Rule] = c.Before
			}
		}
		for _, c := range found {
			if isAutogen(c.Rule) {
				if a, ok := parents[autogenParent(c.Rule)]; ok && a == c.Before {
					continue
				}
			}
			fl.add(floor, kind, policy, c.Rule, c.Field, c.Before, "Enforce", c.Message)
		}
	}
	for _, id := range sortedKeys(hs.cel) {
		kind, ns, name := splitIdentity(id)
		o := hs.cel[id]
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
		policy := displayName(ns, name)
		deny := false
		var as []string
		for _, a := range actions {
			as = append(as, string(a))
			deny = deny || a == admissionregistrationv1.Deny
		}
		actual := "[" + strings.Join(sortedUnique(as), ", ") + "]"
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
		return ruleField(r.Name, "validate.failureActionOverrides")
	case r.HasValidate() && r.Validation.FailureAction != nil:
		return ruleField(r.Name, "validate.failureAction")
	case r.HasVerifyImages():
		for _, iv := range r.VerifyImages {
			if iv.FailureAction != nil {
				return ruleField(r.Name, "verifyImages.failureAction")
			}
		}
	}
	if len(spec.ValidationFailureActionOverrides) > 0 {
		return "spec.validationFailureActionOverrides"
	}
	return "spec.validationFailureAction"
}

// failurePolicy: every policy with a webhook failure policy has Fail.
func (fl *floorCtx) failurePolicy(hs *side) {
	const floor = "failurePolicy"
	ctx := context.Background()
	for _, id := range sortedKeys(hs.legacy) {
		kind, ns, name := splitIdentity(id)
		spec := hs.legacy[id].Policy.GetSpec()
		if fp := spec.GetFailurePolicy(ctx); fp != kyvernov1.Fail {
			field := "spec.failurePolicy"
			if spec.WebhookConfiguration != nil && spec.WebhookConfiguration.FailurePolicy != nil {
				field = "spec.webhookConfiguration.failurePolicy"
			}
			fl.add(floor, kind, displayName(ns, name), "", field, string(fp), "Fail",
				fmt.Sprintf("failure policy is %s: when the webhook errors or times out, requests are let through unchecked", fp))
		}
	}
	for _, id := range sortedKeys(hs.cel) {
		kind, ns, name := splitIdentity(id)
		o := hs.cel[id]
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
			fl.add(floor, kind, displayName(ns, name), "", "spec.failurePolicy", string(fp), "Fail",
				fmt.Sprintf("failure policy is %s: when evaluation errors or times out, requests are let through unchecked", fp))
		}
	}
}

// exceptions: every exception needs an approval bound to what it exempts.
func (fl *floorCtx) exceptions(hs *side) {
	const floor = "exceptions"
	one := func(o *kyverno.Object, legacy bool) {
		s := &side{}
		kind := kindCELException
		if legacy {
			s.exc = []*kyverno.Object{o}
			kind = kindLegacyException
		} else {
			s.celExc = []*kyverno.Object{o}
		}
		_, policy := changeKey(o)
		g := grants(s)
		targets := make([]string, 0, len(g))
		for t := range g {
			targets = append(targets, t)
		}
		sort.Strings(targets)
		var scopes, parts []string
		for _, t := range targets {
			sc := scopeOf(g[t]).String()
			scopes = append(scopes, targetName(t)+": "+sc)
			parts = append(parts, targetName(t)+" for "+abbreviate(sc))
		}
		scope := strings.Join(scopes, "; ")
		msg := "exempts " + strings.Join(parts, "; and ")
		if len(targets) == 0 {
			scope = "nothing"
			msg = "exempts nothing as written"
		}
		msg += "; every PolicyException needs an approval bound to what it exempts"
		fl.add(floor, kind, policy, "", "spec", scope, "approved", msg)
	}
	for _, o := range hs.exc {
		one(o, true)
	}
	for _, o := range hs.celExc {
		one(o, false)
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
	for _, c := range Diff(otherObjs, head) {
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
		if exceptionsFloor && (c.Kind == kindLegacyException || c.Kind == kindCELException) {
			continue
		}
		msg := c.Message
		if c.Class == Unknown {
			msg = "may be weaker (cannot be decided structurally, so it counts as weaker): " + msg
		}
		fl.out = append(fl.out, Change{
			Class: Weaker, Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Before: c.Before, After: c.After,
			Message: fmt.Sprintf("weaker than environment %s (%s): %s (the %s floor %s in %s)", other.Name, other.Path, msg, fl.env, floor, settings.ConfigFile),
			// Bound to the floor and to the exact change.
			Fingerprint: Fingerprint("floor", c.Kind+" "+c.Policy, c.Rule, floor+" "+c.Field, c.Before, c.After),
		})
	}
}
