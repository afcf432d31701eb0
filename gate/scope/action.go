package scope

import (
	"fmt"
	"sort"
	"strings"
)

// The effective failure action of one Kyverno rule as a function of the
// namespace a request is in (its name and its labels): the overrides in
// Kyverno's order of precedence, the first that matches wins, else the
// default. The diff engine reads it from a policy (diff.LegacyAction);
// here it is only compared, by searching for a namespace where two actions
// differ, with the same wildcard automaton as the scopes.

// Override is one failure action override.
type Override struct {
	Namespaces []string // namespace patterns (Kyverno wildcards)
	// AnyNamespace is set when the override gives no namespaces list: it
	// is not restricted by name (only by its selector).
	AnyNamespace bool
	Selector     string // canonical LabelSelector, "" for none
	Enforce      bool
}

// Action maps a resource's namespace (name and labels) to Enforce or Audit
// for one rule: the first matching override decides, else Enforce.
type Action struct {
	Overrides []Override
	Enforce   bool
}

// eval resolves the action for a namespace; match[p] says whether namespace
// pattern p matches it and sel[s] whether selector s matches its labels.
func (m Action) eval(match func(string) bool, sel map[string]bool) bool {
	for _, o := range m.Overrides {
		selOK := o.Selector == "" || sel[o.Selector]
		if o.AnyNamespace && selOK {
			return o.Enforce
		}
		for _, p := range o.Namespaces {
			if match(p) && selOK {
				return o.Enforce
			}
		}
	}
	return m.Enforce
}

func actionName(enforce bool) string {
	if enforce {
		return "Enforce"
	}
	return "Audit"
}

// String renders the action for messages, e.g. "Enforce in namespaces
// [prod], otherwise Audit"; equal strings are equal actions.
func (m Action) String() string {
	if len(m.Overrides) == 0 {
		return actionName(m.Enforce)
	}
	var parts []string
	for _, o := range m.Overrides {
		var where []string
		if !o.AnyNamespace {
			ns := sortedUnique(o.Namespaces)
			where = append(where, "namespaces ["+strings.Join(ns, ", ")+"]")
		}
		if o.Selector != "" {
			where = append(where, "namespaceSelector "+o.Selector)
		}
		if len(where) == 0 {
			where = append(where, "all namespaces")
		}
		parts = append(parts, actionName(o.Enforce)+" in "+strings.Join(where, " with "))
	}
	return strings.Join(parts, ", then ") + ", otherwise " + actionName(m.Enforce)
}

// ActionWitness is a namespace in which two actions differ.
type ActionWitness struct {
	Namespace string
	Selectors []string // selectors the namespace's labels must match
}

// CompareActions searches for a namespace where old enforces and new
// audits (weaker) and for one where old audits and new enforces (stricter),
// each with its witness when the answer is Yes. onlyNS restricts the
// search to one namespace (a namespaced Policy). A witness that needs
// several selectors to match at once may be impossible: it only makes the
// answer Unsure.
func CompareActions(old, new Action, onlyNS string) (weaker, stricter Tri, wW, wS ActionWitness) {
	var pats []string
	selSet := map[string]bool{}
	for _, m := range []Action{old, new} {
		for _, o := range m.Overrides {
			pats = append(pats, o.Namespaces...)
			if o.Selector != "" {
				selSet[o.Selector] = true
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
		return Unsure, Unsure, wW, wS
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

	search := func(wantOld, wantNew bool) (Tri, ActionWitness) {
		res := No
		for _, a := range assigns {
			pred := func(m []bool) bool {
				if onlyNS != "" && !m[len(pats)-1] {
					return false
				}
				match := func(p string) bool { return m[idx[p]] }
				return old.eval(match, a) == wantOld && new.eval(match, a) == wantNew
			}
			w, found := findString(pats, pred)
			if found == Yes {
				w = niceWitness(w, pats, pred)
			}
			switch found {
			case Yes:
				var ss []string
				for s := range a {
					ss = append(ss, s)
				}
				sort.Strings(ss)
				if len(a) <= 1 {
					return Yes, ActionWitness{Namespace: w, Selectors: ss}
				}
				res = Unsure
			case Unsure:
				res = Unsure
			}
		}
		return res, ActionWitness{}
	}
	weaker, wW = search(true, false)
	stricter, wS = search(false, true)
	return weaker, stricter, wW, wS
}

// String names the namespace for messages.
func (w ActionWitness) String() string {
	var s string
	if w.Namespace == "" {
		s = "cluster-scoped resources and namespace \"\""
	} else {
		s = fmt.Sprintf("namespace %q", w.Namespace)
	}
	if len(w.Selectors) > 0 {
		s += " (labels matching " + strings.Join(w.Selectors, " and ") + ")"
	}
	return s
}
