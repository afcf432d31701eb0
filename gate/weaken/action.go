package weaken

import (
	"fmt"
	"sort"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
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

type override struct {
	namespaces []string // nil: not restricted by name
	nilNS      bool
	selector   string // canonical LabelSelector, "" for none
	enforce    bool
}

// actionModel maps a resource's namespace (name and labels) to Enforce or
// Audit for one rule.
type actionModel struct {
	overrides []override
	enforce   bool
}

func toOverrides(os []kyvernov1.ValidationFailureActionOverride) []override {
	var out []override
	for _, o := range os {
		if !o.Action.IsValid() {
			continue
		}
		ov := override{namespaces: o.Namespaces, nilNS: o.Namespaces == nil, enforce: o.Action.Enforce()}
		if o.NamespaceSelector != nil {
			ov.selector = canon(o.NamespaceSelector)
		}
		out = append(out, ov)
	}
	return out
}

// legacyAction builds the model of rule r; ok is false for rules without a
// failure action (mutate, generate).
func legacyAction(spec *kyvernov1.Spec, r *kyvernov1.Rule) (actionModel, bool) {
	specLevel := func(m actionModel) actionModel {
		m.overrides = append(m.overrides, toOverrides(spec.ValidationFailureActionOverrides)...)
		m.enforce = spec.ValidationFailureAction.Enforce()
		return m
	}
	switch {
	case r.HasValidate():
		m := actionModel{overrides: toOverrides(r.Validation.FailureActionOverrides)}
		if r.Validation.FailureAction != nil {
			m.enforce = r.Validation.FailureAction.Enforce()
			return m, true
		}
		return specLevel(m), true
	case r.HasVerifyImages():
		var first *kyvernov1.ValidationFailureAction
		for i := range r.VerifyImages {
			if a := r.VerifyImages[i].FailureAction; a != nil {
				if a.Enforce() {
					return actionModel{enforce: true}, true
				}
				if first == nil {
					first = a
				}
			}
		}
		if first != nil {
			return actionModel{enforce: first.Enforce()}, true
		}
		return specLevel(actionModel{}), true
	}
	return actionModel{}, false
}

// eval resolves the action for a namespace; match[p] says whether namespace
// pattern p matches it and sel[s] whether selector s matches its labels.
func (m actionModel) eval(match func(string) bool, sel map[string]bool) bool {
	for _, o := range m.overrides {
		selOK := o.selector == "" || sel[o.selector]
		if o.nilNS && selOK {
			return o.enforce
		}
		for _, p := range o.namespaces {
			if match(p) && selOK {
				return o.enforce
			}
		}
	}
	return m.enforce
}

func actionName(enforce bool) string {
	if enforce {
		return "Enforce"
	}
	return "Audit"
}

func (m actionModel) String() string {
	if len(m.overrides) == 0 {
		return actionName(m.enforce)
	}
	var parts []string
	for _, o := range m.overrides {
		var where []string
		if !o.nilNS {
			ns := sortedUnique(o.namespaces)
			where = append(where, "namespaces ["+strings.Join(ns, ", ")+"]")
		}
		if o.selector != "" {
			where = append(where, "namespaceSelector "+o.selector)
		}
		if len(where) == 0 {
			where = append(where, "all namespaces")
		}
		parts = append(parts, actionName(o.enforce)+" in "+strings.Join(where, " with "))
	}
	return strings.Join(parts, ", then ") + ", otherwise " + actionName(m.enforce)
}

// actionWitness is a namespace in which two models differ.
type actionWitness struct {
	namespace string
	selectors []string // selectors the namespace's labels must match
}

// compareActions searches for a namespace where old enforces and new
// audits (weaker) and for one where old audits and new enforces (stricter).
// onlyNS restricts the search to one namespace (a namespaced Policy).
func compareActions(old, new actionModel, onlyNS string) (weaker, stricter tri, wW, wS actionWitness) {
	var pats []string
	selSet := map[string]bool{}
	for _, m := range []actionModel{old, new} {
		for _, o := range m.overrides {
			pats = append(pats, o.namespaces...)
			if o.selector != "" {
				selSet[o.selector] = true
			}
		}
	}
	pats = sortedUnique(pats)
	if onlyNS != "" {
		pats = append(pats, onlyNS) // a literal: matches only itself
	}
	idx := map[string]int{}
	for i, p := range pats {
		if _, ok := idx[p]; !ok {
			idx[p] = i
		}
	}
	sels := make([]string, 0, len(selSet))
	for s := range selSet {
		sels = append(sels, s)
	}
	sort.Strings(sels)
	if len(sels) > 8 {
		return unsure, unsure, wW, wS
	}
	// Selector assignments, fewest matching selectors first: witnesses that
	// need one selector to match are certain (any label set can be given to
	// a namespace); witnesses needing several distinct selectors to match at
	// once may be impossible, so they only make the answer unsure.
	var assigns []map[string]bool
	for mask := 0; mask < 1<<len(sels); mask++ {
		a := map[string]bool{}
		for i, s := range sels {
			if mask&(1<<i) != 0 {
				a[s] = true
			}
		}
		assigns = append(assigns, a)
	}
	sort.SliceStable(assigns, func(i, j int) bool { return len(assigns[i]) < len(assigns[j]) })

	search := func(wantOld, wantNew bool) (tri, actionWitness) {
		res := no
		for _, a := range assigns {
			pred := func(m []bool) bool {
				if onlyNS != "" && !m[len(pats)-1] {
					return false
				}
				match := func(p string) bool { return m[idx[p]] }
				return old.eval(match, a) == wantOld && new.eval(match, a) == wantNew
			}
			w, found := findString(pats, pred)
			if found == yes {
				w = niceWitness(w, pats, pred)
			}
			switch found {
			case yes:
				var ss []string
				for s := range a {
					ss = append(ss, s)
				}
				sort.Strings(ss)
				if len(a) <= 1 {
					return yes, actionWitness{namespace: w, selectors: ss}
				}
				res = unsure
			case unsure:
				res = unsure
			}
		}
		return res, actionWitness{}
	}
	weaker, wW = search(true, false)
	stricter, wS = search(false, true)
	return weaker, stricter, wW, wS
}

func (w actionWitness) String() string {
	var s string
	if w.namespace == "" {
		s = "cluster-scoped resources and namespace \"\""
	} else {
		s = fmt.Sprintf("namespace %q", w.namespace)
	}
	if len(w.selectors) > 0 {
		s += " (labels matching " + strings.Join(w.selectors, " and ") + ")"
	}
	return s
}

// actionChange records the change of a rule's effective action.
func actionChange(p *pctx, rule, field string, old, new actionModel, onlyNS string) {
	if old.String() == new.String() {
		return
	}
	weaker, stricter, wW, wS := compareActions(old, new, onlyNS)
	uniform := len(old.overrides) == 0 && len(new.overrides) == 0
	switch {
	case weaker == yes:
		msg := fmt.Sprintf("effective failure action of rule %s went from Enforce to Audit", rule)
		if !uniform {
			msg += " for " + wW.String()
		}
		msg += ": violations are reported but no longer blocked"
		p.add(Weaker, rule, field, old.String(), new.String(), msg)
	case weaker == unsure:
		p.add(Unknown, rule, field, old.String(), new.String(),
			fmt.Sprintf("effective failure action of rule %s changed and may have gone from Enforce to Audit somewhere (overrides could not be compared)", rule))
	case stricter == yes || stricter == unsure:
		msg := fmt.Sprintf("effective failure action of rule %s went from Audit to Enforce", rule)
		if !uniform && stricter == yes {
			msg += " for " + wS.String()
		}
		p.add(Stricter, rule, field, old.String(), new.String(), msg)
	}
}
