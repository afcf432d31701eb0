package diff

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Exceptions are compared by what they grant, not object by object: every
// exception (kyverno.io v2/v2beta1 or policies.kyverno.io in any version —
// the loader gives one Go type per group) is turned into grants, one per
// policy it names, each a scope of exempted requests (rule names, match,
// conditions, Pod Security controls; or matchConditions, images, allowed
// values and expiry for CEL exceptions). For every exempted policy the union
// of grants of the baseline is compared with the head's: wider is weaker.
// An apiVersion change alone changes no grant, and moving a grant from one
// exception object to another changes nothing either.

const (
	kindLegacyException = "PolicyException.kyverno.io"
	kindCELException    = "PolicyException.policies.kyverno.io"
)

type grant struct {
	source string // exception kind + "\x00" + namespace/name
	field  string
	scope  scope.Conj
	// A CEL exception's matchConditions and the rest of its scope, to read
	// the conditions again where a migration compares them with a legacy
	// exception's match (see migrateGrants).
	conds []string
	rest  scope.Conj
}

// grants indexes grants by target: "kyverno.io:<policyName>" (policyName is
// "name" for a ClusterPolicy, "namespace/name" for a Policy) or
// "policies.kyverno.io:<Kind>/<name>".
func grants(s *side) map[string][]grant {
	out := map[string][]grant{}
	for _, o := range s.exc {
		e := o.Exception
		src := kindLegacyException + "\x00" + displayName(e.GetNamespace(), e.GetName())
		sc := matchScopeV2(&e.Spec.Match)
		var conds any
		if e.Spec.Conditions != nil {
			conds = e.Spec.Conditions
		}
		sc = sc.And(conditionsScope("condition", conds))
		var pss []string
		for _, c := range e.Spec.PodSecurity {
			pss = append(pss, canon(c))
		}
		for _, x := range e.Spec.Exceptions {
			if len(x.RuleNames) == 0 {
				continue // exempts no rule
			}
			rules := scope.Conj{}.With("rule", scope.Glob, x.RuleNames...)
			for _, c := range (scope.DNF{rules}).And(sc) {
				c = c.With("podSecurity controls", scope.Set, pss...)
				t := "kyverno.io:" + x.PolicyName
				out[t] = append(out[t], grant{source: src, field: "spec.exceptions[" + x.PolicyName + "]", scope: c})
			}
		}
	}
	for _, o := range s.celExc {
		e := o.CELException
		src := kindCELException + "\x00" + displayName(e.GetNamespace(), e.GetName())
		rest := scope.Conj{}
		rest = rest.With("image", scope.Glob, e.Spec.Images...)
		rest = rest.With("allowedValue", scope.Set, e.Spec.AllowedValues...)
		if e.Spec.ExpiresAt != nil {
			rest = rest.With("until", scope.Until, e.Spec.ExpiresAt.UTC().Format(time.RFC3339))
		}
		c := scope.Conj{}
		var conds []string
		for _, mc := range e.Spec.MatchConditions {
			c = c.With("matchCondition", scope.Opaque, strings.TrimSpace(mc.Expression))
			conds = append(conds, mc.Expression)
		}
		c = append(c, rest...)
		for _, ref := range e.Spec.PolicyRefs {
			t := "policies.kyverno.io:" + ref.Kind + "/" + ref.Name
			out[t] = append(out[t], grant{source: src, field: "spec.policyRefs[" + ref.Kind + "/" + ref.Name + "]", scope: c, conds: conds, rest: rest})
		}
	}
	return out
}

func targetName(t string) string {
	group, rest, _ := strings.Cut(t, ":")
	if group == "kyverno.io" {
		return "policy " + rest
	}
	k, n, _ := strings.Cut(rest, "/")
	return k + " " + n
}

func diffExceptions(r *recorder, old, new *side) {
	og, ng := grants(old), grants(new)
	migrateGrants(r.migrations, old, og, ng)
	targets := map[string]bool{}
	for t := range og {
		targets[t] = true
	}
	for t := range ng {
		targets[t] = true
	}
	var ts []string
	for t := range targets {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	for _, t := range ts {
		diffTargetGrants(r, t, og[t], ng[t])
	}
}

func scopeOf(gs []grant) scope.DNF {
	var d scope.DNF
	for _, g := range gs {
		d = append(d, g.scope)
	}
	return d
}

func diffTargetGrants(r *recorder, target string, old, new []grant) {
	rel := scope.Compare(scopeOf(old), scopeOf(new))
	class := classify(rel, false) // an exemption selecting more is weaker
	if class == Equivalent {
		return
	}
	bySource := func(gs []grant) map[string][]grant {
		m := map[string][]grant{}
		for _, g := range gs {
			m[g.source] = append(m[g.source], g)
		}
		return m
	}
	os, ns := bySource(old), bySource(new)
	// Blame the exceptions whose grants the other side does not cover.
	uncovered := func(gs []grant, other scope.DNF) map[string]bool {
		out := map[string]bool{}
		for _, g := range gs {
			if !scope.Covers(other, scope.DNF{g.scope}) {
				out[g.source] = true
			}
		}
		return out
	}
	var blamed map[string]bool
	if class == Stricter {
		blamed = uncovered(old, scopeOf(new))
	} else {
		blamed = uncovered(new, scopeOf(old))
	}
	if len(blamed) == 0 { // undecided: blame every exception that changed
		blamed = map[string]bool{}
		for s := range os {
			if scopeOf(os[s]).String() != scopeOf(ns[s]).String() {
				blamed[s] = true
			}
		}
		for s := range ns {
			if scopeOf(os[s]).String() != scopeOf(ns[s]).String() {
				blamed[s] = true
			}
		}
	}
	var sources []string
	for s := range blamed {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		kind, name, _ := strings.Cut(s, "\x00")
		o, n := os[s], ns[s]
		field := ""
		if len(n) > 0 {
			field = n[0].field
		} else if len(o) > 0 {
			field = o[0].field
		}
		before, after := "absent", "absent"
		if len(o) > 0 {
			before = scopeOf(o).String()
		}
		if len(n) > 0 {
			after = scopeOf(n).String()
		}
		var msg string
		switch {
		case class == Stricter && len(n) == 0:
			msg = fmt.Sprintf("%s %s no longer exempts %s", kind, name, targetName(target))
		case class == Stricter:
			msg = fmt.Sprintf("%s %s exempts less of %s", kind, name, targetName(target))
		case len(o) == 0:
			msg = fmt.Sprintf("%s %s newly exempts %s for %s", kind, name, targetName(target), after)
		case class == Weaker:
			msg = fmt.Sprintf("%s %s exempts more of %s", kind, name, targetName(target))
		default:
			msg = fmt.Sprintf("%s %s changed what it exempts of %s in a way that cannot be compared", kind, name, targetName(target))
		}
		if class != Stricter {
			msg += "; exempted requests are no longer checked"
		}
		r.add(Change{Class: class, Kind: kind, Policy: name, Field: field, Before: before, After: after, Message: msg})
	}
}

// diffGlobalContext: a GlobalContextEntry feeds data to policies' checks;
// removing or changing one changes what they decide in ways we cannot see.
func diffGlobalContext(r *recorder, old, new *side) {
	for _, id := range sortedKeys(old.gctx, new.gctx) {
		kind, _, name := splitIdentity(id)
		o, n := old.gctx[id], new.gctx[id]
		p := &pctx{r: r, kind: kind, policy: name}
		switch {
		case o != nil && n == nil:
			p.add(Unknown, "", "", "present", "absent", fmt.Sprintf("%s %s was removed; policies that read it change behaviour", kind, name))
		case o != nil && n != nil:
			opaqueChange(p, "", "spec", kind+" "+name+" (data policies read)", o.GlobalCtx.Object["spec"], n.GlobalCtx.Object["spec"])
		}
		p.flush()
	}
}

// diffCleanupSet compares (Cluster)CleanupPolicies: they delete matching
// resources on a schedule, so selecting less is weaker.
func diffCleanupSet(r *recorder, old, new *side) {
	for _, id := range sortedKeys(old.cleanup, new.cleanup) {
		kind, ns, name := splitIdentity(id)
		p := &pctx{r: r, kind: kind, policy: displayName(ns, name)}
		o, n := old.cleanup[id], new.cleanup[id]
		switch {
		case o != nil && n == nil:
			p.add(Weaker, "", "", "present", "absent", removalMessage(kind, ns, name, new, new.cleanup))
		case o == nil && n != nil:
			p.add(Stricter, "", "", "absent", "present", fmt.Sprintf("%s %s was added", kind, displayName(ns, name)))
		default:
			os, nsp := o.Cleanup.GetSpec(), n.Cleanup.GetSpec()
			scopeChange(p, "", "spec.match", "match (resources that get deleted)", matchScopeV2(&os.MatchResources), matchScopeV2(&nsp.MatchResources), true)
			scopeChange(p, "", "spec.exclude", "exclude", matchScopeV2(os.ExcludeResources), matchScopeV2(nsp.ExcludeResources), false)
			var oc, nc any
			if os.Conditions != nil {
				oc = os.Conditions
			}
			if nsp.Conditions != nil {
				nc = nsp.Conditions
			}
			scopeChange(p, "", "spec.conditions", "conditions (resources that get deleted)", conditionsScope("condition", oc), conditionsScope("condition", nc), true)
			opaqueChange(p, "", "spec.context", "context", os.Context, nsp.Context)
			if os.Schedule != nsp.Schedule {
				p.add(Unknown, "", "spec.schedule", os.Schedule, nsp.Schedule, fmt.Sprintf("schedule went from %q to %q", os.Schedule, nsp.Schedule))
			}
		}
		p.flush()
	}
}

// migrateGrants moves the baseline's grants on each migrated policy to the
// policies that replace it, so that a kyverno.io exception carried over
// as a policies.kyverno.io one is compared with it (and a head's exception
// on a policy it no longer renders, which exempts nothing, is dropped). A
// legacy grant goes to the successors of the rules it names, without its
// rule names, and without its kinds when they cover what those rules
// match; on those successors, a CEL exception's matchConditions that
// select namespaces or names (request.namespace == 'x', in [...],
// startsWith) are read as such, in the legacy grant's vocabulary.
func migrateGrants(ms []*report.Migration, old *side, og, ng map[string][]grant) {
	for _, m := range ms {
		from := "kyverno.io:" + displayName(m.From.Namespace, m.From.Name)
		moved := og[from]
		delete(og, from)
		delete(ng, from)
		targets := map[string]bool{}
		for _, mr := range m.Rules {
			for _, to := range mr.To {
				t := "policies.kyverno.io:" + to.Kind + "/" + to.Name
				targets[t] = true
				for _, g := range moved {
					if rules := g.scope.Values("rule"); len(rules) > 0 && !scope.GlobMatchAny(rules, mr.Rule) {
						continue
					}
					c := g.scope.Without("rule")
					if ks := c.Values("kinds"); len(ks) > 0 {
						if o := old.legacy[identity(m.From.Kind, m.From.Namespace, m.From.Name)]; o != nil {
							if coversAll(ks, legacyCoverage(o.Policy.GetSpec().Rules, mr.Rule).kinds, bareKind) {
								c = c.Without("kinds")
							}
						}
					}
					og[t] = append(og[t], grant{source: g.source, field: g.field, scope: c})
				}
			}
		}
		for t := range targets {
			for _, side := range []map[string][]grant{og, ng} {
				for i, g := range side[t] {
					if g.conds != nil {
						side[t][i].scope = celGrantScope(g)
					}
				}
			}
		}
	}
}

// celGrantScope is a CEL exception's grant with the matchConditions that
// select namespaces or names read as such.
func celGrantScope(g grant) scope.Conj {
	c := append(scope.Conj{}, g.rest...)
	for _, expr := range g.conds {
		if sel, ok := celSelection(expr); ok {
			c = append(c, sel...)
			continue
		}
		c = c.With("matchCondition", scope.Opaque, strings.TrimSpace(expr))
	}
	return c
}
