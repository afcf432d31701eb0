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

	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

// Migrations from the kyverno.io kinds (ClusterPolicy, Policy) to the
// policies.kyverno.io kinds (ValidatingPolicy and the others). A legacy
// policy that the head no longer renders is paired with the policies that
// replace it: a policy of a new kind that names it in the annotation
// ReplacesAnnotation (the whole policy, or one rule: a policy split into
// one new policy per rule), else a policy of a new kind with the same name
// (and namespace). A removal nothing replaces stays a removal.
//
// This first step compares the webhook's failurePolicy, the enforcement
// of each rule against its successor's validationActions (with admission
// switches), the kinds it
// applies to (autogen's pod controllers included, on both sides) and the
// operations (a kyverno.io rule matches CREATE and UPDATE by default)
// against a ValidatingPolicy's matchConstraints, and says which rules have
// no successor. It does not yet compare namespaces, selectors, exclusions
// against matchConditions, or contents (patterns against CEL),
// so a migration is never equivalent here: it is weaker when a rule loses
// its enforcement or its successor, else unknown (counted as weaker), and
// needs its approval. A witness (a test or sample resource the old policy
// denies and the new set admits) proves it weaker.

// ReplacesAnnotation, on a policy of a policies.kyverno.io kind, names the
// kyverno.io policy it replaces: "ClusterPolicy/<name>", "Policy/<namespace>/<name>",
// with "#<rule>" when it replaces one rule. Several, comma-separated.
const ReplacesAnnotation = "kyverno-gate.io/replaces"

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
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ref, rule, _ := strings.Cut(item, "#")
		parts := strings.Split(ref, "/")
		var id string
		switch {
		case len(parts) == 2 && parts[0] == "ClusterPolicy":
			id = identity("ClusterPolicy", "", parts[1])
		case len(parts) == 3 && parts[0] == "Policy":
			id = identity("Policy", parts[1], parts[2])
		default:
			continue
		}
		out[id] = append(out[id], strings.TrimSpace(rule))
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

// migration compares legacy policy o (id) with its successors and returns
// the class and message of its removal; ok is false when nothing replaces
// it.
func migration(id string, o *kyverno.Object, head *side) (class Class, msg string, ok bool) {
	succ := successors(id, head)
	if len(succ) == 0 {
		return "", "", false
	}
	kind, ns, name := splitIdentity(id)
	var names []string
	for _, s := range succ {
		names = append(names, s.kind+" "+s.policy)
	}
	// The effective action of every rule that has one, after autogen;
	// rules without one (mutate, generate) are listed as having no
	// comparison.
	actions := map[string]RuleAction{}
	for _, ra := range RuleActions([]*kyverno.Object{o}) {
		actions[ra.Rule] = ra
	}
	class = Unknown
	var notes []string
	// The webhook: a policy that fails open lets requests through when
	// Kyverno cannot answer.
	oldFP := string(o.Policy.GetSpec().GetFailurePolicy(context.Background()))
	for _, s := range succ {
		if s.obj.Validating == nil {
			continue
		}
		if newFP := string(s.obj.Validating.GetFailurePolicy(false)); oldFP == "Fail" && newFP == "Ignore" {
			class = Weaker
			notes = append(notes, fmt.Sprintf("failurePolicy Fail → Ignore (%s %s): requests pass when Kyverno cannot answer", s.kind, s.policy))
		}
	}
	all := autogen.Default.ComputeRules(o.Policy, "")
	for _, r := range all {
		if IsAutogen(r.Name) {
			continue // compared with the rule it was generated from
		}
		var to []successor
		for _, s := range succ {
			if len(s.rules) == 0 || s.rules[r.Name] {
				to = append(to, s)
			}
		}
		if len(to) == 0 {
			class = Weaker
			notes = append(notes, fmt.Sprintf("rule %s has no successor (%s)", r.Name, removedEffect(&r)))
			continue
		}
		old, has := actions[r.Name]
		if !has {
			notes = append(notes, fmt.Sprintf("rule %s (%s) is not compared", r.Name, ruleKind(&r)))
			continue
		}
		for _, s := range to {
			var newAction *RuleAction
			for _, ra := range RuleActions([]*kyverno.Object{s.obj}) {
				ra := ra
				newAction = &ra
			}
			switch {
			case newAction == nil:
				class = Weaker
				notes = append(notes, fmt.Sprintf("rule %s: %s → %s %s, which validates nothing at admission", r.Name, old.Action, s.kind, s.policy))
			case old.Blocks != BlocksNone && newAction.Blocks == BlocksNone:
				class = Weaker
				notes = append(notes, fmt.Sprintf("rule %s: %s → %s (%s %s): violations are no longer blocked", r.Name, old.Action, newAction.Action, s.kind, s.policy))
			case old.Blocks == BlocksSome && newAction.Blocks == BlocksAll:
				notes = append(notes, fmt.Sprintf("rule %s: %s → %s (%s %s): blocked in every namespace now", r.Name, old.Action, newAction.Action, s.kind, s.policy))
			default:
				notes = append(notes, fmt.Sprintf("rule %s: %s → %s (%s %s)", r.Name, old.Action, newAction.Action, s.kind, s.policy))
			}
			if s.obj.Validating == nil {
				continue
			}
			// Scope: what the rule applied to (its autogen rules for pod
			// controllers included) against what the successor matches.
			oc, nc := legacyCoverage(all, r.Name), vpCoverage(s.obj.Validating)
			switch {
			case oc.unsure != "" || nc.unsure != "":
				notes = append(notes, fmt.Sprintf("rule %s: scope not compared (%s)", r.Name, strings.TrimSpace(oc.unsure+" "+nc.unsure)))
			default:
				if ks := lost(oc.kinds, nc.kinds); len(ks) > 0 {
					class = Weaker
					notes = append(notes, fmt.Sprintf("rule %s: %s %s no longer matches %s", r.Name, s.kind, s.policy, strings.Join(ks, ", ")))
				}
				if ops := lost(oc.ops, nc.ops); len(ops) > 0 {
					class = Weaker
					notes = append(notes, fmt.Sprintf("rule %s: %s %s no longer acts on %s", r.Name, s.kind, s.policy, strings.Join(ops, ", ")))
				}
			}
		}
	}
	sort.Strings(names)
	msg = fmt.Sprintf("%s %s was migrated to %s: %s; kyverno-gate does not yet compare a migration's namespaces, "+
		"selectors and exclusions (against matchConditions) or its validations, "+
		"so check them (run the old policy's kyverno tests against the new one) and approve the migration",
		kind, displayName(ns, name), strings.Join(names, ", "), strings.Join(notes, "; "))
	return class, msg, true
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
