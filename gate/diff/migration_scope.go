package diff

import (
	"slices"
	"strings"

	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// A migration's scope beyond kinds and operations (compared on their own,
// with autogen) is compared in the legacy vocabulary of scope.go: names,
// namespaces, selectors and conditions for the match; the same for the
// exclusions. A ValidatingPolicy says "not in these namespaces" in places a
// ClusterPolicy does not, so those are moved to its exclusions first: a
// namespaceSelector on kubernetes.io/metadata.name (NotIn), and
// matchConditions of a few exact forms (request.namespace != 'x',
// !(object.metadata.namespace in [...]), !....startsWith('kube-'), the same
// on names, joined by &&). Any other matchCondition is an opaque condition
// that narrows the match: unknown, left to the witness search.

// nsNameLabel is the label the API server sets on every namespace to its
// name.
const nsNameLabel = "kubernetes.io/metadata.name"

// legacyRuleScope is rule r's match and exclude without kinds and
// operations (cov holds those); an exclude filter's kinds are dropped when
// they cover every kind the rule matches.
func legacyRuleScope(r *kyvernov1.Rule, cov coverage) (match, exclude scope.DNF) {
	for _, c := range matchScope(&r.MatchResources) {
		match = append(match, c.Without("kinds", "operations"))
	}
	var conds scope.Conj
	for _, mc := range r.CELPreconditions {
		conds = conds.With("conditions", scope.Opaque, normalizeCEL(mc.Expression))
	}
	if len(conds) > 0 {
		match = match.And(scope.DNF{conds})
	}
	if r.RawAnyAllConditions != nil && !skipsDeletes(r, cov) {
		match = match.And(conditionsScope("preconditions", r.GetAnyAllConditions()))
	}
	if r.ExcludeResources != nil {
		for _, c := range matchScope(r.ExcludeResources) {
			exclude = append(exclude, trimExclusion(c, cov))
		}
	}
	return match, exclude
}

// skipsDeletes reports whether r's preconditions only skip DELETE
// requests ({{ request.operation || 'BACKGROUND' }} NotEquals DELETE, as
// the pod-security policies write it) and r does not act on DELETE anyway:
// then they select everything the rule acts on.
func skipsDeletes(r *kyvernov1.Rule, cov coverage) bool {
	if cov.ops["DELETE"] {
		return false
	}
	conds, _ := generic(r.GetAnyAllConditions()).(map[string]any)
	if conds == nil {
		list, _ := generic(r.GetAnyAllConditions()).([]any)
		conds = map[string]any{"all": list}
	}
	all, _ := conds["all"].([]any)
	anyOf, _ := conds["any"].([]any)
	if len(anyOf) > 0 || len(all) != 1 {
		return false
	}
	c, _ := all[0].(map[string]any)
	key, _ := c["key"].(string)
	return strings.Contains(key, "request.operation") && c["operator"] == "NotEquals" && c["value"] == "DELETE"
}

// trimExclusion drops an exclusion's kinds and operations where they cover
// all the rule applies to: they then add no condition.
func trimExclusion(c scope.Conj, cov coverage) scope.Conj {
	if ks := c.Values("kinds"); len(ks) > 0 && coversAll(ks, cov.kinds, bareKind) {
		c = c.Without("kinds")
	}
	if ops := c.Values("operations"); len(ops) > 0 && coversAll(ops, cov.ops, strings.ToUpper) {
		c = c.Without("operations")
	}
	return c
}

func bareKind(k string) string {
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// coversAll reports whether vals (normalized by norm) include every key of
// want, or a "*".
func coversAll(vals []string, want map[string]bool, norm func(string) string) bool {
	have := map[string]bool{}
	for _, v := range vals {
		have[norm(v)] = true
	}
	if have["*"] {
		return true
	}
	for k := range want {
		if !have[k] {
			return false
		}
	}
	return true
}

// vpRuleScope is vp's match and exclusions in the legacy vocabulary (kinds
// and operations left out, as cov holds them). unsure says what could not
// be translated.
func vpRuleScope(vp *policiesv1beta1.ValidatingPolicySpec, cov coverage) (match, exclude scope.DNF, unsure string) {
	mc := vp.MatchConstraints
	if mc == nil {
		return nil, nil, "no matchConstraints"
	}
	base := scope.Conj{}
	if sel := mc.NamespaceSelector; sel != nil {
		rest := &metav1.LabelSelector{MatchLabels: map[string]string{}}
		for k, v := range sel.MatchLabels {
			if k == nsNameLabel {
				base = base.With("namespaces", scope.Glob, v)
				continue
			}
			rest.MatchLabels[k] = v
		}
		for _, e := range sel.MatchExpressions {
			switch {
			case e.Key == nsNameLabel && e.Operator == metav1.LabelSelectorOpIn:
				base = base.With("namespaces", scope.Glob, e.Values...)
			case e.Key == nsNameLabel && e.Operator == metav1.LabelSelectorOpNotIn:
				exclude = append(exclude, scope.Conj{}.With("namespaces", scope.Glob, e.Values...))
			default:
				rest.MatchExpressions = append(rest.MatchExpressions, e)
			}
		}
		base = append(base, selectorAtoms("namespaceSelector", rest)...)
	}
	base = append(base, selectorAtoms("selector", mc.ObjectSelector)...)
	for _, c := range vp.MatchConditions {
		if ex, ok := celExclusion(c.Expression); ok {
			exclude = append(exclude, ex...)
			continue
		}
		base = base.With("conditions", scope.Opaque, normalizeCEL(c.Expression))
	}
	// Names: the rules' resourceNames (one conjunction per rule; the
	// rules' kinds are compared apart).
	for _, r := range mc.ResourceRules {
		match = append(match, append(append(scope.Conj{}, base...), scope.Conj{}.With("names", scope.Glob, r.ResourceNames...)...))
	}
	for _, r := range mc.ExcludeResourceRules {
		c := scope.Conj{}
		var kinds []string
		for _, res := range r.Resources {
			k, ok := resourceKinds[res]
			if !ok {
				return nil, nil, "excluded resource " + res
			}
			kinds = append(kinds, k)
		}
		c = c.With("kinds", scope.Kinds, kinds...)
		var ops []string
		for _, o := range r.Operations {
			ops = append(ops, string(o))
		}
		if len(ops) > 0 && !allOperations(ops) && !slices.Contains(ops, "*") {
			c = c.With("operations", scope.Set, ops...)
		}
		c = c.With("names", scope.Glob, r.ResourceNames...)
		exclude = append(exclude, trimExclusion(c, cov))
	}
	return match, exclude, ""
}

// ExcludedNamespaces are the namespace globs vp leaves out (a
// namespaceSelector NotIn on kubernetes.io/metadata.name, matchConditions
// read as exclusions): where a witness of a migration that excludes too
// much would live.
func ExcludedNamespaces(vp *policiesv1beta1.ValidatingPolicySpec) []string {
	_, exclude, _ := vpRuleScope(vp, coverage{})
	var out []string
	for _, c := range exclude {
		out = append(out, c.Values("namespaces")...)
	}
	return out
}

// celExclusion reads a matchCondition that excludes namespaces or names:
// the condition holds unless the request's namespace (name) is one of
// those returned. ok is false for any other expression.
func celExclusion(expr string) (scope.DNF, bool) {
	src := common.NewTextSource(expr)
	p, err := parser.NewParser()
	if err != nil {
		return nil, false
	}
	a, errs := p.Parse(src)
	if errs != nil && len(errs.GetErrors()) > 0 {
		return nil, false
	}
	var out scope.DNF
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		if e.Kind() != ast.CallKind {
			return false
		}
		call := e.AsCall()
		args := call.Args()
		switch call.FunctionName() {
		case operators.LogicalAnd:
			for _, a := range args {
				if !walk(a) {
					return false
				}
			}
			return len(args) > 0
		case operators.NotEquals:
			attr, vals, ok := positive(operators.Equals, args, nil)
			if ok {
				out = append(out, scope.Conj{}.With(attr, scope.Glob, vals...))
			}
			return ok
		case operators.LogicalNot:
			return len(args) == 1 && negated(args[0], &out)
		}
		return false
	}
	if !walk(a.Expr()) {
		return nil, false
	}
	return out, true
}

// celSelection reads a condition that selects namespaces or names (==,
// in, startsWith, endsWith on request.namespace, object.metadata.name...,
// joined by &&) as the atoms a legacy match would have.
func celSelection(expr string) (scope.Conj, bool) {
	p, err := parser.NewParser()
	if err != nil {
		return nil, false
	}
	a, errs := p.Parse(common.NewTextSource(expr))
	if errs != nil && len(errs.GetErrors()) > 0 {
		return nil, false
	}
	var out scope.Conj
	var walk func(e ast.Expr) bool
	walk = func(e ast.Expr) bool {
		if e.Kind() != ast.CallKind {
			return false
		}
		call := e.AsCall()
		if call.FunctionName() == operators.LogicalAnd {
			for _, a := range call.Args() {
				if !walk(a) {
					return false
				}
			}
			return len(call.Args()) > 0
		}
		attr, vals, ok := positive(call.FunctionName(), call.Args(), call)
		if ok {
			out = out.With(attr, scope.Glob, vals...)
		}
		return ok
	}
	if !walk(a.Expr()) {
		return nil, false
	}
	return out, true
}

// negated reads !(<positive>), where positive is ==, in, startsWith or
// endsWith on the namespace or name, or several joined by ||.
func negated(e ast.Expr, out *scope.DNF) bool {
	if e.Kind() != ast.CallKind {
		return false
	}
	call := e.AsCall()
	if call.FunctionName() == operators.LogicalOr {
		for _, a := range call.Args() {
			if !negated(a, out) {
				return false
			}
		}
		return len(call.Args()) > 0
	}
	attr, vals, ok := positive(call.FunctionName(), call.Args(), call)
	if ok {
		*out = append(*out, scope.Conj{}.With(attr, scope.Glob, vals...))
	}
	return ok
}

// positive reads one test of the namespace or name: fn(args) for == and
// in, or call's member function startsWith/endsWith. It returns the
// attribute and the globs it selects.
func positive(fn string, args []ast.Expr, call ast.CallExpr) (string, []string, bool) {
	if call != nil && call.IsMemberFunction() && len(args) == 1 {
		attr, ok := requestAttr(call.Target())
		lit, isLit := stringLit(args[0])
		if !ok || !isLit || strings.ContainsAny(lit, "*?") {
			return "", nil, false
		}
		switch fn {
		case "startsWith":
			return attr, []string{lit + "*"}, true
		case "endsWith":
			return attr, []string{"*" + lit}, true
		}
		return "", nil, false
	}
	if len(args) != 2 {
		return "", nil, false
	}
	attr, ok := requestAttr(args[0])
	if !ok {
		return "", nil, false
	}
	switch fn {
	case operators.Equals:
		lit, isLit := stringLit(args[1])
		if !isLit || strings.ContainsAny(lit, "*?") {
			return "", nil, false
		}
		return attr, []string{lit}, true
	case operators.In:
		if args[1].Kind() != ast.ListKind {
			return "", nil, false
		}
		var vals []string
		for _, x := range args[1].AsList().Elements() {
			lit, isLit := stringLit(x)
			if !isLit || strings.ContainsAny(lit, "*?") {
				return "", nil, false
			}
			vals = append(vals, lit)
		}
		return attr, vals, len(vals) > 0
	}
	return "", nil, false
}

// requestAttr names the request's namespace or name in the legacy
// vocabulary: request.namespace, object.metadata.namespace, request.name,
// object.metadata.name.
func requestAttr(e ast.Expr) (string, bool) {
	var path []string
	for e.Kind() == ast.SelectKind {
		s := e.AsSelect()
		if s.IsTestOnly() {
			return "", false
		}
		path = append([]string{s.FieldName()}, path...)
		e = s.Operand()
	}
	if e.Kind() != ast.IdentKind {
		return "", false
	}
	switch strings.Join(append([]string{e.AsIdent()}, path...), ".") {
	case "request.namespace", "object.metadata.namespace":
		return "namespaces", true
	case "request.name", "object.metadata.name":
		return "names", true
	}
	return "", false
}

func stringLit(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
