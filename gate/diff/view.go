package diff

import (
	"sort"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

// A read-only view of a rendering as Diff sees it, for the floor gate,
// which checks the head alone against what the environment requires: its
// policies by identity and what each exception exempts. Diff's own index
// stays unexported; this is what the floors read of it.

// Policy is one policy of a rendering, named as Changes name it.
type Policy struct {
	Kind      string
	Namespace string // "" for a cluster-scoped policy
	Name      string // "name" or "namespace/name", as Change.Policy
	Object    *kyverno.Object
}

// Policies lists the ClusterPolicies and Policies (legacy) and the CEL
// policies of objs, each by kind, namespace and name; of two objects of
// the same identity the first, and none that failed to load.
func Policies(objs []*kyverno.Object) (legacy, cel []Policy) {
	s := index(objs)
	list := func(m map[string]*kyverno.Object) []Policy {
		var out []Policy
		for _, id := range sortedKeys(m) {
			kind, ns, name := splitIdentity(id)
			out = append(out, Policy{Kind: kind, Namespace: ns, Name: displayName(ns, name), Object: m[id]})
		}
		return out
	}
	return list(s.legacy), list(s.cel)
}

// Exception is one PolicyException of a rendering and what it exempts.
type Exception struct {
	Kind string // "PolicyException.kyverno.io" or "PolicyException.policies.kyverno.io", as Change.Kind
	Name string // "namespace/name", as Change.Policy
	// Exempts lists the policies it exempts, by target name, each with the
	// scope of the requests exempted (scope.DNF.String()).
	Exempts []Exemption
}

// Exemption is what one exception exempts of one policy.
type Exemption struct {
	Target string // e.g. "policy require-labels", "ValidatingPolicy check-labels"
	Scope  string
}

// Exceptions lists the PolicyExceptions of objs (kyverno.io ones first,
// then policies.kyverno.io ones, each in rendering order) with what each
// grants, as Diff compares exceptions.
func Exceptions(objs []*kyverno.Object) []Exception {
	s := index(objs)
	one := func(o *kyverno.Object, legacy bool) Exception {
		one := &side{}
		kind := kindCELException
		if legacy {
			one.exc = []*kyverno.Object{o}
			kind = kindLegacyException
		} else {
			one.celExc = []*kyverno.Object{o}
		}
		_, name := changeKey(o)
		g := grants(one)
		targets := make([]string, 0, len(g))
		for t := range g {
			targets = append(targets, t)
		}
		sort.Strings(targets)
		e := Exception{Kind: kind, Name: name}
		for _, t := range targets {
			e.Exempts = append(e.Exempts, Exemption{Target: targetName(t), Scope: scopeOf(g[t]).String()})
		}
		return e
	}
	var out []Exception
	for _, o := range s.exc {
		out = append(out, one(o, true))
	}
	for _, o := range s.celExc {
		out = append(out, one(o, false))
	}
	return out
}

// IsException reports whether a Change's Kind is a PolicyException's.
func IsException(kind string) bool { return kind == kindLegacyException || kind == kindCELException }
