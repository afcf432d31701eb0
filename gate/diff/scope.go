package diff

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2beta1 "github.com/kyverno/kyverno/api/kyverno/v2beta1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// canon renders v as canonical JSON (object keys sorted), so that two
// values are equal exactly when their canonical forms are.
func canon(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return string(b)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// generic decodes v into plain JSON values.
func generic(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var x any
	if json.Unmarshal(b, &x) != nil {
		return nil
	}
	return x
}

// classify turns a relation of two scopes into a class; narrowIsWeak says whether
// selecting less weakens enforcement (a match, a precondition, a deny
// region) or strengthens it (an exclude, an exception).
func classify(r scope.Relation, narrowIsWeak bool) Class {
	if !narrowIsWeak {
		switch r {
		case scope.Wider:
			r = scope.Narrower
		case scope.WiderOrEqual:
			r = scope.NarrowerOrEqual
		case scope.Narrower:
			r = scope.Wider
		case scope.NarrowerOrEqual:
			r = scope.WiderOrEqual
		}
	}
	switch r {
	case scope.Narrower:
		return Weaker
	case scope.NarrowerOrEqual, scope.Incomparable:
		return Unknown
	case scope.Wider:
		return Stricter
	}
	return Equivalent
}

// sortedUnique returns vals sorted, without duplicates.
func sortedUnique(vals []string) []string {
	out := append([]string(nil), vals...)
	sort.Strings(out)
	j := 0
	for i, v := range out {
		if i == 0 || v != out[j-1] {
			out[j] = v
			j++
		}
	}
	return out[:j]
}

// isEmptyJSON reports whether v's canonical form is absent or empty.
func isEmptyJSON(v any) bool {
	switch canon(v) {
	case "null", "{}", "[]", `""`:
		return true
	}
	return false
}

// stripMessages removes the "message" of every Kyverno condition (an
// object with an "operator") anywhere in v: a message edit does not change
// what a condition decides. Other objects are kept whole, since a pattern
// may well check a field called "message".
func stripMessages(v any) any {
	switch t := v.(type) {
	case map[string]any:
		_, isCond := t["operator"]
		out := map[string]any{}
		for k, x := range t {
			if k == "message" && isCond {
				continue
			}
			out[k] = stripMessages(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = stripMessages(x)
		}
		return out
	}
	return v
}

// conditionsScope turns Kyverno conditions (the legacy list, all of which
// must hold, or {any, all}) into the set of cases in which they hold. nil
// conditions always hold.
func conditionsScope(attr string, conds any) scope.DNF {
	x := generic(conds)
	if x == nil {
		return scope.Always
	}
	atomsOf := func(v any) scope.Conj {
		var c scope.Conj
		list, _ := v.([]any)
		for _, e := range list {
			c = c.With(attr, scope.Opaque, canon(stripMessages(e)))
		}
		return c
	}
	switch t := x.(type) {
	case []any:
		return scope.DNF{atomsOf(t)}
	case map[string]any:
		base := atomsOf(t["all"])
		anyList, _ := t["any"].([]any)
		if len(anyList) == 0 {
			return scope.DNF{base}
		}
		var d scope.DNF
		for _, e := range anyList {
			d = append(d, append(append(scope.Conj{}, base...), scope.Conj{}.With(attr, scope.Opaque, canon(stripMessages(e)))...))
		}
		return d
	}
	return scope.DNF{scope.Conj{}.With(attr, scope.Opaque, canon(x))}
}

// selectorAtoms turns a label selector into atoms; Kyverno allows
// wildcards in matchLabels keys' values.
func selectorAtoms(prefix string, sel *metav1.LabelSelector) scope.Conj {
	var c scope.Conj
	if sel == nil {
		return c
	}
	for k, v := range sel.MatchLabels {
		c = c.With(prefix+"["+k+"]", scope.Glob, v)
	}
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			c = c.With(prefix+"["+e.Key+"] in", scope.Set, e.Values...)
		default:
			vals := sortedUnique(e.Values)
			c = c.With(prefix+" expression", scope.Opaque, fmt.Sprintf("%s %s %v", e.Key, e.Operator, vals))
		}
	}
	return c
}

// filterScope is one Kyverno resource filter (kinds, names, ... and user
// info, all of which must match). ok is false for an empty filter, which
// matches (and excludes) nothing.
func filterScope(f kyvernov1.ResourceFilter) (scope.Conj, bool) {
	if f.IsEmpty() {
		return nil, false
	}
	rd := f.ResourceDescription
	c := scope.Conj{}
	c = c.With("kinds", scope.Kinds, rd.Kinds...)
	names := append([]string(nil), rd.Names...)
	if rd.Name != "" {
		names = append(names, rd.Name)
	}
	c = c.With("names", scope.Glob, names...)
	c = c.With("namespaces", scope.Glob, rd.Namespaces...)
	for k, v := range rd.Annotations {
		c = c.With("annotations["+k+"]", scope.Glob, v)
	}
	c = append(c, selectorAtoms("selector", rd.Selector)...)
	c = append(c, selectorAtoms("namespaceSelector", rd.NamespaceSelector)...)
	if ops := rd.GetOperations(); len(ops) > 0 && !allOperations(ops) {
		c = c.With("operations", scope.Set, ops...)
	}
	c = c.With("roles", scope.Set, f.Roles...)
	c = c.With("clusterRoles", scope.Set, f.ClusterRoles...)
	var subjects []string
	for _, s := range f.Subjects {
		subjects = append(subjects, s.Kind+":"+displayName(s.Namespace, s.Name))
	}
	c = c.With("subjects", scope.Set, subjects...)
	return c, true
}

func allOperations(ops []string) bool {
	have := map[string]bool{}
	for _, o := range ops {
		have[strings.ToUpper(o)] = true
	}
	return have["CREATE"] && have["UPDATE"] && have["DELETE"] && have["CONNECT"]
}

// filtersScope is any[] (one filter suffices) or all[] (every filter).
func filtersScope(anyF, allF kyvernov1.ResourceFilters) (scope.DNF, bool) {
	if len(anyF) > 0 {
		var d scope.DNF
		for _, f := range anyF {
			if c, ok := filterScope(f); ok {
				d = append(d, c)
			}
		}
		return d, true
	}
	if len(allF) > 0 {
		c := scope.Conj{}
		for _, f := range allF {
			fc, ok := filterScope(f)
			if !ok {
				return scope.DNF{}, true
			}
			c = append(c, fc...)
		}
		return scope.DNF{c}, true
	}
	return nil, false
}

// matchScope is the set of requests a legacy match (or exclude) block
// selects, as pkg/engine/utils.MatchesResourceDescription decides it.
func matchScope(m *kyvernov1.MatchResources) scope.DNF {
	if m == nil || m.IsEmpty() {
		return scope.DNF{}
	}
	if d, ok := filtersScope(m.Any, m.All); ok {
		return d
	}
	if c, ok := filterScope(kyvernov1.ResourceFilter{UserInfo: m.UserInfo, ResourceDescription: m.ResourceDescription}); ok {
		return scope.DNF{c}
	}
	return scope.DNF{}
}

// matchScopeV2 is the any/all-only match of exceptions and cleanup policies.
func matchScopeV2(m *kyvernov2beta1.MatchResources) scope.DNF {
	if m == nil {
		return scope.DNF{}
	}
	d, _ := filtersScope(m.Any, m.All)
	return d
}

// celConditionsScope: every condition must hold (matchConditions,
// celPreconditions, DeletingPolicy conditions). Names do not matter.
func celConditionsScope(attr string, conds []admissionregistrationv1.MatchCondition) scope.DNF {
	c := scope.Conj{}
	for _, mc := range conds {
		c = c.With(attr, scope.Opaque, strings.TrimSpace(mc.Expression))
	}
	return scope.DNF{c}
}

// ruleAtoms is one admission rule of a CEL policy's matchConstraints; ok is
// false when a required list is empty (the rule matches nothing).
func ruleAtoms(r admissionregistrationv1.NamedRuleWithOperations) (scope.Conj, bool) {
	if len(r.APIGroups) == 0 || len(r.APIVersions) == 0 || len(r.Resources) == 0 || len(r.Operations) == 0 {
		return nil, false
	}
	c := scope.Conj{}
	c = c.With("apiGroups", scope.Glob, r.APIGroups...)
	c = c.With("apiVersions", scope.Glob, r.APIVersions...)
	res := r.Resources
	for _, x := range res {
		if x == "*/*" {
			res = nil
		}
	}
	c = c.With("resources", scope.Resources, res...)
	var ops []string
	for _, o := range r.Operations {
		if o == admissionregistrationv1.OperationAll {
			ops = nil
			break
		}
		ops = append(ops, string(o))
	}
	if len(ops) > 0 && !allOperations(ops) {
		c = c.With("operations", scope.Set, ops...)
	}
	if r.Scope != nil && *r.Scope != admissionregistrationv1.AllScopes {
		c = c.With("scope", scope.Set, string(*r.Scope))
	}
	c = c.With("resourceNames", scope.Set, r.ResourceNames...)
	return c, true
}

// celMatchScope is what a CEL policy's matchConstraints select (without
// excludeResourceRules, compared separately).
func celMatchScope(m *admissionregistrationv1.MatchResources) scope.DNF {
	if m == nil {
		return scope.DNF{}
	}
	base := scope.Conj{}
	base = append(base, selectorAtoms("namespaceSelector", m.NamespaceSelector)...)
	base = append(base, selectorAtoms("objectSelector", m.ObjectSelector)...)
	if m.MatchPolicy != nil && *m.MatchPolicy == admissionregistrationv1.Exact {
		base = base.With("matchPolicy", scope.Opaque, "Exact")
	}
	var d scope.DNF
	for _, r := range m.ResourceRules {
		if c, ok := ruleAtoms(r); ok {
			d = append(d, append(append(scope.Conj{}, base...), c...))
		}
	}
	return d
}

func celExcludeScope(m *admissionregistrationv1.MatchResources) scope.DNF {
	if m == nil {
		return scope.DNF{}
	}
	var d scope.DNF
	for _, r := range m.ExcludeResourceRules {
		if c, ok := ruleAtoms(r); ok {
			d = append(d, c)
		}
	}
	return d
}

// scopeChange compares two scopes and records the result. narrowIsWeak
// says whether selecting less weakens enforcement.
func scopeChange(p *pctx, rule, field, what string, old, new scope.DNF, narrowIsWeak bool) {
	if class, msg := describeScope(what, old, new, narrowIsWeak); class != Equivalent {
		p.add(class, rule, field, old.String(), new.String(), msg)
	}
}

// describeScope classifies new against old and says how it changed, e.g.
// "match narrowed (added conditions ...)".
func describeScope(what string, old, new scope.DNF, narrowIsWeak bool) (Class, string) {
	rel := scope.Compare(old, new)
	class := classify(rel, narrowIsWeak)
	if class == Equivalent {
		return class, ""
	}
	removed, added := scope.DiffAtoms(old, new)
	var detail []string
	if len(removed) > 0 {
		detail = append(detail, "removed "+strings.Join(removed, ", "))
	}
	if len(added) > 0 {
		detail = append(detail, "added "+strings.Join(added, ", "))
	}
	verb := map[scope.Relation]string{scope.Wider: "widened", scope.WiderOrEqual: "widened", scope.Narrower: "narrowed",
		scope.NarrowerOrEqual: "possibly narrowed", scope.Incomparable: "changed in a way that cannot be compared"}[rel]
	msg := fmt.Sprintf("%s %s", what, verb)
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, "; ") + ")"
	}
	return class, msg
}

// listChange compares two lists of opaque items (CEL expressions,
// mutations, generate entries) each of which must hold (allMustHold) or
// each of which adds behaviour. Fewer items is weaker; an edited item is
// unknown.
func listChange(p *pctx, rule, field, what string, old, new []string) {
	o, n := sortedUnique(old), sortedUnique(new)
	if strings.Join(o, "\x00") == strings.Join(n, "\x00") {
		return
	}
	inN := map[string]bool{}
	for _, x := range n {
		inN[x] = true
	}
	inO := map[string]bool{}
	for _, x := range o {
		inO[x] = true
	}
	var removed, added []string
	for _, x := range o {
		if !inN[x] {
			removed = append(removed, x)
		}
	}
	for _, x := range n {
		if !inO[x] {
			added = append(added, x)
		}
	}
	before, after := strings.Join(o, " | "), strings.Join(n, " | ")
	switch {
	case len(removed) > 0 && len(added) > 0:
		p.add(Unknown, rule, field, before, after, fmt.Sprintf("%s changed (%d edited or replaced); the new logic cannot be compared with the old", what, len(removed)))
	case len(removed) > 0:
		p.add(Weaker, rule, field, before, after, fmt.Sprintf("%s lost %d of %d entries: %s", what, len(removed), len(o), quoteList(removed)))
	case len(added) > 0:
		p.add(Stricter, rule, field, before, after, fmt.Sprintf("%s gained %d entries", what, len(added)))
	}
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		if len(x) > 120 {
			x = x[:117] + "..."
		}
		q[i] = fmt.Sprintf("%q", x)
	}
	sort.Strings(q)
	return strings.Join(q, ", ")
}

// opaqueChange reports an edit of something that cannot be analysed.
func opaqueChange(p *pctx, rule, field, what string, old, new any) {
	o, n := canon(stripMessages(generic(old))), canon(stripMessages(generic(new)))
	if o == n || (isEmptyJSON(old) && isEmptyJSON(new)) {
		return
	}
	p.add(Unknown, rule, field, short(o), short(n), fmt.Sprintf("%s changed; its effect on enforcement cannot be decided structurally", what))
}

func short(s string) string {
	if s == "null" {
		return "absent"
	}
	return s
}
