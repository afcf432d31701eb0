package diff

import (
	"fmt"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// The failure action a failing legacy rule resolves to, exactly as
// pkg/engine/api.EngineResponse.failureActionForRule does it in 1.19:
//
//  1. the rule's own action (ruleAction): for validate rules the first
//     validate.failureActionOverrides entry with a valid action whose
//     namespaces/namespaceSelector match, else validate.failureAction; for
//     verifyImages rules Enforce if any entry sets Enforce, else the first
//     entry's action;
//  2. else the first matching spec.validationFailureActionOverrides entry;
//  3. else spec.validationFailureAction.
//
// Only "Enforce"/"enforce" enforce (ValidationFailureAction.Enforce); every
// other value, including empty, audits. An override matches when its
// namespaces are nil and its selector is nil or matches, or when one of its
// namespace patterns matches and its selector is nil or matches.
//
// LegacyAction reads that precedence from Kyverno's types into a
// scope.Action, which decides the comparisons without Kyverno.

func toOverrides(os []kyvernov1.ValidationFailureActionOverride) []scope.Override {
	var out []scope.Override
	for _, o := range os {
		if !o.Action.IsValid() {
			continue
		}
		ov := scope.Override{Namespaces: o.Namespaces, AnyNamespace: o.Namespaces == nil, Enforce: o.Action.Enforce()}
		if o.NamespaceSelector != nil {
			ov.Selector = canon(o.NamespaceSelector)
		}
		out = append(out, ov)
	}
	return out
}

// LegacyAction builds the action of rule r (as autogen computes it) of a
// policy with spec; ok is false for rules without a failure action
// (mutate, generate).
func LegacyAction(spec *kyvernov1.Spec, r *kyvernov1.Rule) (scope.Action, bool) {
	specLevel := func(m scope.Action) scope.Action {
		m.Overrides = append(m.Overrides, toOverrides(spec.ValidationFailureActionOverrides)...)
		m.Enforce = spec.ValidationFailureAction.Enforce()
		return m
	}
	switch {
	case r.HasValidate():
		m := scope.Action{Overrides: toOverrides(r.Validation.FailureActionOverrides)}
		if r.Validation.FailureAction != nil {
			m.Enforce = r.Validation.FailureAction.Enforce()
			return m, true
		}
		return specLevel(m), true
	case r.HasVerifyImages():
		var first *kyvernov1.ValidationFailureAction
		for i := range r.VerifyImages {
			if a := r.VerifyImages[i].FailureAction; a != nil {
				if a.Enforce() {
					return scope.Action{Enforce: true}, true
				}
				if first == nil {
					first = a
				}
			}
		}
		if first != nil {
			return scope.Action{Enforce: first.Enforce()}, true
		}
		return specLevel(scope.Action{}), true
	}
	return scope.Action{}, false
}

// actionChange records the change of a rule's effective action.
func actionChange(p *pctx, rule, field string, old, new scope.Action, onlyNS string) {
	if old.String() == new.String() {
		return
	}
	weaker, stricter, wW, wS := scope.CompareActions(old, new, onlyNS)
	uniform := len(old.Overrides) == 0 && len(new.Overrides) == 0
	switch {
	case weaker == scope.Yes:
		msg := fmt.Sprintf("effective failure action of rule %s went from Enforce to Audit", rule)
		if !uniform {
			msg += " for " + wW.String()
		}
		msg += ": violations are reported but no longer blocked"
		p.add(Weaker, rule, field, old.String(), new.String(), msg)
	case weaker == scope.Unsure:
		p.add(Unknown, rule, field, old.String(), new.String(),
			fmt.Sprintf("effective failure action of rule %s changed and may have gone from Enforce to Audit somewhere (overrides could not be compared)", rule))
	case stricter == scope.Yes || stricter == scope.Unsure:
		msg := fmt.Sprintf("effective failure action of rule %s went from Audit to Enforce", rule)
		if !uniform && stricter == scope.Yes {
			msg += " for " + wS.String()
		}
		p.add(Stricter, rule, field, old.String(), new.String(), msg)
	}
}
