package diff

import (
	"context"
	"fmt"
	"sort"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/autogen"
	vpolautogen "github.com/kyverno/kyverno/pkg/cel/policies/vpol/autogen"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Migrations from the kyverno.io kinds (ClusterPolicy, Policy) to the
// policies.kyverno.io kinds (ValidatingPolicy and the others). A legacy
// policy that the head no longer renders is paired with the policies that
// replace it: a policy of a new kind that names it in the annotation
// ReplacesAnnotation (the whole policy, or one rule: a policy split into
// one new policy per rule), else a policy of a new kind with the same name
// (and namespace). A removal nothing replaces stays a removal.
//
// Each rule gets a verdict (equivalent, stricter, weaker, unknown) from
// its effective action against the successor's validationActions, its
// scope (kinds with autogen on both sides, operations, then names,
// namespaces, selectors, conditions and exclusions in one vocabulary, see
// migration_scope.go) and its content: legacy validate.cel against the
// ValidatingPolicy's validations is decided (the same expressions); a
// pattern, deny, foreach or podSecurity against CEL is unknown, which
// counts as weaker until a witness (a test or sample resource the old
// policy denies and the new set admits) proves it weaker, or an approval
// accepts it. The policy-level failurePolicy and background switches are
// compared too. The migration's verdict is the worst of all.

// ReplacesAnnotation names the policy a new one replaces (see
// kyverno.ReplacesAnnotation).
const ReplacesAnnotation = kyverno.ReplacesAnnotation

// successor is a head policy that replaces a legacy policy, or some of its
// rules (all of them when rules is empty).
type successor struct {
	kind, policy string // as Changes name it
	obj          *kyverno.Object
	rules        map[string]bool
	byName       bool // paired by name, not by the annotation
}

// replaces parses a ReplacesAnnotation value into legacy identities and
// rules ("" for the whole policy).
func replaces(v string) map[string][]string {
	out := map[string][]string{}
	for _, r := range kyverno.Replaces(v) {
		id := identity(r.Kind, r.Namespace, r.Name)
		out[id] = append(out[id], r.Rule)
	}
	return out
}

// successors returns the head policies that replace the legacy policy id,
// in order of kind and name.
func successors(id string, head *side) []successor {
	kind, ns, name := splitIdentity(id)
	var out []successor
	for _, cid := range sortedKeys(head.cel) {
		o := head.cel[cid]
		ck, cns, cname := splitIdentity(cid)
		s := successor{kind: ck, policy: displayName(cns, cname), obj: o, rules: map[string]bool{}}
		if rules, ok := replaces(celMeta(o).GetAnnotations()[ReplacesAnnotation])[id]; ok {
			for _, r := range rules {
				if r == "" {
					s.rules = map[string]bool{}
					break
				}
				s.rules[r] = true
			}
			out = append(out, s)
			continue
		}
		if cname == name && (cns == ns || kind == "ClusterPolicy") {
			s.byName = true
			out = append(out, s)
		}
	}
	// A successor named in an annotation wins over one of the same name.
	named := false
	for _, s := range out {
		named = named || !s.byName
	}
	if named {
		kept := out[:0]
		for _, s := range out {
			if !s.byName {
				kept = append(kept, s)
			}
		}
		out = kept
	}
	return out
}

// verdict collects what differs, each difference with its class; the
// verdict is the worst of them (weaker, then unknown, then stricter),
// equivalent when there are none.
type verdict struct {
	class   Class
	reasons []string
}

func (v *verdict) add(c Class, format string, args ...any) {
	v.reasons = append(v.reasons, string(c)+": "+fmt.Sprintf(format, args...))
	v.class = worse(v.class, c)
}

// worse is the worse of two classes for a migration's verdict.
func worse(a, b Class) Class {
	rank := map[Class]int{"": 0, Equivalent: 0, Stricter: 1, Unknown: 2, Weaker: 3}
	if rank[b] > rank[a] {
		return b
	}
	if a == "" {
		return Equivalent
	}
	return a
}

// migration compares legacy policy o (id) with its successors. It returns
// nil when nothing replaces o.
func migration(id string, o *kyverno.Object, head *side) *report.Migration {
	succ := successors(id, head)
	if len(succ) == 0 {
		return nil
	}
	kind, ns, name := splitIdentity(id)
	m := &report.Migration{From: report.Subject{Kind: kind, Namespace: ns, Name: name}, Rules: []report.MigrationRule{}}
	subject := func(s successor) report.Subject {
		sns, sname, _ := strings.Cut(s.policy, "/")
		if sname == "" {
			sns, sname = "", s.policy
		}
		return report.Subject{Kind: s.kind, Namespace: sns, Name: sname}
	}
	for _, s := range succ {
		m.To = append(m.To, subject(s))
	}
	// The effective action of every rule that has one, after autogen.
	actions := map[string]RuleAction{}
	for _, ra := range RuleActions([]*kyverno.Object{o}) {
		actions[ra.Rule] = ra
	}
	spec := o.Policy.GetSpec()
	var policy verdict
	// The webhook: a policy that fails open lets requests through when
	// Kyverno cannot answer; background processing reports what exists.
	oldFP := string(spec.GetFailurePolicy(context.Background()))
	for _, s := range succ {
		if s.obj.Validating == nil {
			continue
		}
		newFP := string(s.obj.Validating.GetFailurePolicy(false))
		switch {
		case oldFP == "Fail" && newFP == "Ignore":
			policy.add(Weaker, "failurePolicy Fail → Ignore (%s %s): requests pass when Kyverno cannot answer", s.kind, s.policy)
		case oldFP == "Ignore" && newFP == "Fail":
			policy.add(Stricter, "failurePolicy Ignore → Fail (%s %s)", s.kind, s.policy)
		}
		oldBG, newBG := spec.BackgroundProcessingEnabled(), s.obj.Validating.GetValidatingPolicySpec().BackgroundEnabled()
		switch {
		case oldBG && !newBG:
			policy.add(Weaker, "background processing turned off (%s %s): existing resources are no longer scanned and reported", s.kind, s.policy)
		case !oldBG && newBG:
			policy.add(Stricter, "background processing turned on (%s %s)", s.kind, s.policy)
		}
	}
	m.Reasons = policy.reasons
	overall := policy.class
	all := autogen.Default.ComputeRules(o.Policy, "")
	scopes := ruleScopes(all)
	for i := range all {
		r := &all[i]
		if IsAutogen(r.Name) {
			continue // compared with the rule it was generated from
		}
		mr := report.MigrationRule{Rule: r.Name}
		var v verdict
		var to []successor
		for _, s := range succ {
			if len(s.rules) == 0 || s.rules[r.Name] {
				to = append(to, s)
				mr.To = append(mr.To, subject(s))
			}
		}
		if len(to) == 0 {
			v.add(Weaker, "no successor (%s)", removedEffect(r))
		}
		old, hasAction := actions[r.Name]
		for _, s := range to {
			if a := compareRule(&v, all, r, old, hasAction, s, siblings(all, r, s, scopes)); a != "" && mr.Action == "" {
				mr.Action = a
			}
		}
		mr.Verdict, mr.Reasons = string(worse(v.class, "")), v.reasons
		overall = worse(overall, v.class)
		m.Rules = append(m.Rules, mr)
	}
	m.Verdict = string(worse(overall, ""))
	return m
}

// compareRule compares legacy rule r (of rules, its autogen rules
// included; old its effective action when hasAction) with successor s,
// and returns the action before and after. others are validations of
// other rules s replaces too, over the same scope: not additions.
func compareRule(v *verdict, rules []kyvernov1.Rule, r *kyvernov1.Rule, old RuleAction, hasAction bool, s successor, others map[string]bool) string {
	var newAction *RuleAction
	for _, ra := range RuleActions([]*kyverno.Object{s.obj}) {
		ra := ra
		newAction = &ra
	}
	at := s.kind + " " + s.policy
	switch {
	case !hasAction:
		v.add(Unknown, "a %s rule is not compared with %s", ruleKind(r), at)
		return ""
	case newAction == nil:
		v.add(Weaker, "%s → %s, which validates nothing at admission", old.Action, at)
		return ""
	}
	action := old.Action + " → " + newAction.Action
	rank := map[Blocking]int{BlocksNone: 0, BlocksSome: 1, BlocksAll: 2}
	switch o, n := rank[old.Blocks], rank[newAction.Blocks]; {
	case n < o && newAction.Blocks == BlocksNone:
		v.add(Weaker, "%s → %s (%s): violations are no longer blocked", old.Action, newAction.Action, at)
	case n < o:
		v.add(Weaker, "%s → %s (%s): violations are blocked in fewer namespaces", old.Action, newAction.Action, at)
	case n > o && old.Blocks == BlocksNone:
		v.add(Stricter, "%s → %s (%s): violations are blocked now", old.Action, newAction.Action, at)
	case n > o:
		v.add(Stricter, "%s → %s (%s): violations are blocked in more namespaces", old.Action, newAction.Action, at)
	case old.Blocks == BlocksSome:
		v.add(Unknown, "%s → %s (%s): blocked in some namespaces on both sides, not compared", old.Action, newAction.Action, at)
	}
	if s.obj.Validating == nil {
		v.add(Unknown, "scope and validations not compared with %s", at)
		return action
	}
	vp := s.obj.Validating.GetValidatingPolicySpec()
	// Scope: kinds (autogen's pod controllers included on both sides) and
	// operations, then the rest of match and exclude.
	oc, nc := legacyCoverage(rules, r.Name), vpCoverage(s.obj.Validating)
	if oc.unsure != "" || nc.unsure != "" {
		v.add(Unknown, "kinds not compared (%s)", strings.TrimSpace(oc.unsure+" "+nc.unsure))
	} else {
		if ks := lost(oc.kinds, nc.kinds); len(ks) > 0 {
			v.add(Weaker, "%s no longer matches %s", at, strings.Join(ks, ", "))
		}
		if ks := lost(nc.kinds, oc.kinds); len(ks) > 0 {
			v.add(Stricter, "%s also matches %s", at, strings.Join(ks, ", "))
		}
		if ops := lost(oc.ops, nc.ops); len(ops) > 0 {
			v.add(Weaker, "%s no longer acts on %s", at, strings.Join(ops, ", "))
		}
		if ops := lost(nc.ops, oc.ops); len(ops) > 0 {
			v.add(Stricter, "%s also acts on %s", at, strings.Join(ops, ", "))
		}
	}
	om, oe := legacyRuleScope(r, oc)
	nm, ne, unsure := vpRuleScope(vp, nc)
	if unsure != "" {
		v.add(Unknown, "scope not compared (%s)", unsure)
	} else {
		migrationScope(v, "match", om, nm, true)
		migrationScope(v, "exclusions", oe, ne, false)
	}
	compareContent(v, r, vp, at, others)
	return action
}

// siblings are the CEL validations of the other rules that successor s
// replaces together with r and that apply to exactly what r applies to:
// s checking them too is the old policy's behaviour, not an addition.
func siblings(rules []kyvernov1.Rule, r *kyvernov1.Rule, s successor, scopes map[string]string) map[string]bool {
	out := map[string]bool{}
	mine := scopes[r.Name]
	for i := range rules {
		q := &rules[i]
		if q.Name == r.Name || IsAutogen(q.Name) || (len(s.rules) > 0 && !s.rules[q.Name]) {
			continue
		}
		if q.Validation == nil || q.Validation.CEL == nil || scopes[q.Name] != mine {
			continue
		}
		for _, e := range q.Validation.CEL.Expressions {
			out[normalizeCEL(e.Expression)] = true
		}
	}
	return out
}

// ruleScopes is every non-autogen rule's scope (coverage, match and
// exclusions) as one comparable string, by rule name.
func ruleScopes(rules []kyvernov1.Rule) map[string]string {
	out := map[string]string{}
	for i := range rules {
		q := &rules[i]
		if IsAutogen(q.Name) {
			continue
		}
		c := legacyCoverage(rules, q.Name)
		m, e := legacyRuleScope(q, c)
		out[q.Name] = strings.Join(sortedSet(c.kinds), ",") + "|" + strings.Join(sortedSet(c.ops), ",") + "|" + m.String() + "|" + e.String()
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// migrationScope compares one part of a rule's scope with its successor's.
func migrationScope(v *verdict, what string, old, new scope.DNF, narrowIsWeak bool) {
	if c, msg := describeScope(what, old, new, narrowIsWeak); c != Equivalent {
		v.add(c, "%s", msg)
	}
}

// compareContent compares what rule r validates with what vp validates.
// Only CEL against CEL is decided (the same expressions, whitespace
// aside); a pattern, deny condition, foreach or podSecurity against CEL is
// unknown, left to the witness search.
func compareContent(v *verdict, r *kyvernov1.Rule, vp *policiesv1beta1.ValidatingPolicySpec, at string, others map[string]bool) {
	val := r.Validation
	if val == nil || val.CEL == nil || !celOnly(val) {
		what := "its validation"
		if val != nil {
			var parts []string
			for name := range validateLogic(val) {
				parts = append(parts, name)
			}
			sort.Strings(parts)
			if len(parts) > 0 {
				what = strings.Join(parts, ", ")
			}
		}
		v.add(Unknown, "%s not compared with the CEL validations of %s", what, at)
		return
	}
	if val.CEL.ParamKind != nil || val.CEL.ParamRef != nil {
		v.add(Unknown, "validate.cel with parameters not compared")
		return
	}
	var oldExprs, newExprs []string
	for _, e := range val.CEL.Expressions {
		oldExprs = append(oldExprs, normalizeCEL(e.Expression))
	}
	own := set(oldExprs)
	for _, e := range vp.Validations {
		if x := normalizeCEL(e.Expression); own[x] || !others[x] {
			newExprs = append(newExprs, x)
		}
	}
	oldVars, newVars := map[string]string{}, map[string]string{}
	for _, x := range val.CEL.Variables {
		oldVars[x.Name] = normalizeCEL(x.Expression)
	}
	for _, x := range vp.Variables {
		newVars[x.Name] = normalizeCEL(x.Expression)
	}
	for name, e := range oldVars {
		if n, ok := newVars[name]; ok && n != e {
			v.add(Unknown, "variable %s changed (%s)", name, at)
			return
		}
	}
	dropped, added := lost(set(oldExprs), set(newExprs)), lost(set(newExprs), set(oldExprs))
	switch {
	case len(dropped) > 0 && len(added) > 0:
		v.add(Unknown, "validations edited (only before: %s; only after: %s)", quoteList(dropped), quoteList(added))
	case len(dropped) > 0:
		v.add(Weaker, "validations dropped: %s", quoteList(dropped))
	case len(added) > 0:
		v.add(Stricter, "validations added: %s", quoteList(added))
	}
}

// celOnly reports whether v validates with CEL expressions alone.
func celOnly(v *kyvernov1.Validation) bool {
	return v.RawPattern == nil && v.RawAnyPattern == nil && v.Deny == nil && len(v.ForEachValidation) == 0 &&
		v.PodSecurity == nil && v.Manifests == nil && v.DeprecatedAssert == nil
}

// normalizeCEL is expr with runs of white space made one space, so that
// re-indenting an expression does not change it.
func normalizeCEL(expr string) string { return strings.Join(strings.Fields(expr), " ") }

func set(xs []string) map[string]bool {
	out := map[string]bool{}
	for _, x := range xs {
		out[x] = true
	}
	return out
}

// message is the one line of a migration's change.
func migrationMessage(m *report.Migration) string {
	var to []string
	for _, s := range m.To {
		to = append(to, s.String())
	}
	sort.Strings(to)
	var parts []string
	for _, r := range m.Rules {
		p := "rule " + r.Rule + " " + r.Verdict
		if r.Action != "" {
			p = "rule " + r.Rule + " (" + r.Action + ") " + r.Verdict
		}
		if len(r.Reasons) > 0 {
			p += " (" + strings.Join(r.Reasons, "; ") + ")"
		}
		parts = append(parts, p)
	}
	parts = append(parts, m.Reasons...)
	return fmt.Sprintf("%s was migrated to %s: %s; %s", m.From, strings.Join(to, ", "), m.Verdict, strings.Join(parts, "; "))
}

// coverage is what a rule or policy applies to, as far as a migration
// compares it: kinds (autogen included) and admission operations. unsure
// says a part could not be read exactly (wildcards, subresources, a
// resource kyverno-gate cannot name), so no conclusion is drawn from it.
type coverage struct {
	kinds, ops map[string]bool
	unsure     string
}

// defaultOps are the operations a kyverno.io rule matches without
// operations: creation and update.
var defaultOps = []string{"CREATE", "UPDATE"}

// legacyCoverage is what rule (and the rules autogen makes of it) of
// policy p applies to.
func legacyCoverage(rules []kyvernov1.Rule, rule string) coverage {
	c := coverage{kinds: map[string]bool{}, ops: map[string]bool{}}
	add := func(d kyvernov1.ResourceDescription) {
		for _, k := range d.Kinds {
			if i := strings.LastIndexByte(k, '/'); i >= 0 {
				k = k[i+1:] // group/version/Kind
			}
			if strings.ContainsAny(k, "*?.") {
				c.unsure = "kind " + k
			}
			c.kinds[k] = true
		}
		if len(d.Kinds) == 0 {
			return
		}
		ops := defaultOps
		if len(d.Operations) > 0 {
			ops = nil
			for _, o := range d.Operations {
				ops = append(ops, string(o))
			}
		}
		for _, o := range ops {
			c.ops[o] = true
		}
	}
	for i := range rules {
		r := &rules[i]
		if r.Name != rule && AutogenParent(r.Name) != rule {
			continue
		}
		m := r.MatchResources
		add(m.ResourceDescription)
		for _, f := range m.Any {
			add(f.ResourceDescription)
		}
		for _, f := range m.All {
			add(f.ResourceDescription)
		}
	}
	return c
}

// resourceKinds names the kinds of the resources a ValidatingPolicy's
// resourceRules list ("" group only and the common groups; others are
// unsure).
var resourceKinds = map[string]string{
	"pods": "Pod", "deployments": "Deployment", "daemonsets": "DaemonSet", "statefulsets": "StatefulSet",
	"replicasets": "ReplicaSet", "replicationcontrollers": "ReplicationController", "jobs": "Job", "cronjobs": "CronJob",
	"services": "Service", "namespaces": "Namespace", "configmaps": "ConfigMap", "secrets": "Secret",
	"serviceaccounts": "ServiceAccount", "persistentvolumeclaims": "PersistentVolumeClaim", "persistentvolumes": "PersistentVolume",
	"ingresses": "Ingress", "networkpolicies": "NetworkPolicy", "roles": "Role", "rolebindings": "RoleBinding",
	"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding", "nodes": "Node",
	"horizontalpodautoscalers": "HorizontalPodAutoscaler", "poddisruptionbudgets": "PodDisruptionBudget",
	"storageclasses": "StorageClass", "limitranges": "LimitRange", "resourcequotas": "ResourceQuota",
	"endpoints": "Endpoints", "events": "Event",
}

// vpCoverage is what ValidatingPolicy vp applies to, its autogen rules for
// pod controllers included.
func vpCoverage(vp policiesv1beta1.ValidatingPolicyLike) coverage {
	c := coverage{kinds: map[string]bool{}, ops: map[string]bool{}}
	spec := vp.GetValidatingPolicySpec()
	if spec.MatchConstraints == nil {
		c.unsure = "no matchConstraints"
		return c
	}
	for _, r := range spec.MatchConstraints.ResourceRules {
		for _, res := range r.Resources {
			k, ok := resourceKinds[res]
			if !ok {
				c.unsure = "resource " + res
				continue
			}
			c.kinds[k] = true
		}
		for _, o := range r.Operations {
			if o == admissionregistrationv1.OperationAll {
				for _, x := range []string{"CREATE", "UPDATE", "DELETE", "CONNECT"} {
					c.ops[x] = true
				}
				continue
			}
			c.ops[string(o)] = true
		}
	}
	rules, err := vpolautogen.Autogen(vp)
	if err != nil {
		c.unsure = "autogen: " + err.Error()
	}
	for _, r := range rules {
		for _, t := range r.Targets {
			c.kinds[t.Kind] = true
		}
	}
	return c
}

// lost lists what old covers and new does not, sorted.
func lost(old, new map[string]bool) []string {
	var out []string
	for k := range old {
		if !new[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
