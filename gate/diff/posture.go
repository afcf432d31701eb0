package diff

import (
	"slices"
	"strings"

	"github.com/kyverno/kyverno/pkg/autogen"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/report"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// Posture: the effective action of every rule of a rendering, for reports
// (the posture matrix of `check`). It uses the same action model as Diff
// and the validateAction floor, so a report never contradicts a finding.

// Blocking says whether a rule's failing requests are blocked.
type Blocking string

const (
	// BlocksAll: blocked in every namespace.
	BlocksAll Blocking = "all"
	// BlocksSome: blocked in some namespaces only (overrides).
	BlocksSome Blocking = "some"
	// BlocksNone: never blocked (Audit, Warn, or admission off).
	BlocksNone Blocking = "none"
)

// ActionOff is the action of a rule whose policy has admission processing
// turned off: it acts at no admission request (background scans may still
// report).
const ActionOff = "Off"

// RuleAction is the effective failure action of one rule.
type RuleAction struct {
	// Kind, Policy and Rule name the rule the way Changes do: Policy is
	// "name" or "namespace/name"; Rule is "" for CEL policies, whose
	// validationActions apply to the policy as a whole.
	Kind, Policy, Rule string
	// Action is "Enforce" or "Audit" for ClusterPolicy/Policy rules (with
	// overrides, e.g. "Enforce in namespaces [prod], otherwise Audit"),
	// the validationActions joined with "+" for (Image)ValidatingPolicies
	// in the order Deny, Warn, Audit (e.g. "Deny", "Warn+Audit"), or
	// ActionOff when admission processing is off.
	Action string
	Blocks Blocking

	legacy bool
	model  scope.Action // legacy rules; admission off is a plain Audit model
	onlyNS string       // a namespaced Policy's namespace
	deny   bool         // CEL policies: Deny among the effective actions and admission on
}

// RuleActions returns the effective action of every rule that has one:
// validate and verifyImages rules of ClusterPolicies and Policies (after
// Kyverno's autogen; an autogen rule only when its action differs from the
// rule it was generated from), ValidatingPolicies and
// ImageValidatingPolicies (any version, namespaced or not). Mutate and
// generate rules and the other kinds have no failure action and are left
// out, as are objects that failed to load. The order is by kind, policy and
// rule.
func RuleActions(objs []*kyverno.Object) []RuleAction {
	s := index(objs)
	var out []RuleAction
	for _, id := range sortedKeys(s.legacy) {
		kind, ns, name := splitIdentity(id)
		pol := s.legacy[id].Policy
		spec := pol.GetSpec()
		admission := spec.AdmissionProcessingEnabled()
		rules := autogen.Default.ComputeRules(pol, "")
		var found []RuleAction
		for i := range rules {
			r := &rules[i]
			m, ok := LegacyAction(spec, r)
			if !ok {
				continue
			}
			ra := RuleAction{Kind: kind, Policy: displayName(ns, name), Rule: r.Name, legacy: true, onlyNS: ns}
			if admission {
				ra.model, ra.Action = m, m.String()
			} else {
				ra.model, ra.Action = scope.Action{}, ActionOff
			}
			ra.Blocks = blocking(ra.model)
			found = append(found, ra)
		}
		parents := map[string]string{}
		for _, ra := range found {
			if !IsAutogen(ra.Rule) {
				parents[ra.Rule] = ra.Action
			}
		}
		for _, ra := range found {
			if IsAutogen(ra.Rule) {
				if a, ok := parents[AutogenParent(ra.Rule)]; ok && a == ra.Action {
					continue
				}
			}
			out = append(out, ra)
		}
	}
	for _, id := range sortedKeys(s.cel) {
		kind, ns, name := splitIdentity(id)
		o := s.cel[id]
		var actions []admissionregistrationv1.ValidationAction
		var admission bool
		switch {
		case o.Validating != nil:
			sp := o.Validating.GetValidatingPolicySpec()
			actions, admission = sp.ValidationActions(), sp.AdmissionEnabled()
		case o.Image != nil:
			sp := o.Image.GetSpec()
			actions, admission = sp.ValidationActions(), sp.AdmissionEnabled()
		default:
			continue
		}
		ra := RuleAction{Kind: kind, Policy: displayName(ns, name)}
		has := map[admissionregistrationv1.ValidationAction]bool{}
		for _, a := range actions {
			has[a] = true
		}
		var parts []string
		for _, a := range []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn, admissionregistrationv1.Audit} {
			if has[a] {
				parts = append(parts, string(a))
			}
		}
		ra.Action = strings.Join(parts, "+")
		ra.deny = has[admissionregistrationv1.Deny]
		if !admission {
			ra.Action, ra.deny = ActionOff, false
		}
		ra.Blocks = BlocksNone
		if ra.deny {
			ra.Blocks = BlocksAll
		}
		out = append(out, ra)
	}
	return out
}

// blocking summarises an action.
func blocking(m scope.Action) Blocking {
	some, all := m.Enforce, m.Enforce
	for _, o := range m.Overrides {
		some = some || o.Enforce
		all = all && o.Enforce
	}
	switch {
	case all:
		return BlocksAll
	case some:
		return BlocksSome
	}
	return BlocksNone
}

// CompareRuleActions classifies the change of one rule's action from old to
// new (the same rule, Kind/Policy/Rule equal): Weaker when some request old
// blocks is no longer blocked, Stricter in the opposite case, Unknown when
// overrides could not be compared, Equivalent when what is blocked is the
// same (the Action text may still differ, e.g. Audit to Warn).
func CompareRuleActions(old, new RuleAction) Class {
	if old.legacy != new.legacy {
		return Unknown
	}
	if !old.legacy {
		return boolChange(old.deny, new.deny)
	}
	if old.model.String() == new.model.String() {
		return Equivalent
	}
	onlyNS := new.onlyNS
	weaker, stricter, _, _ := scope.CompareActions(old.model, new.model, onlyNS)
	switch {
	case weaker == scope.Yes:
		return Weaker
	case weaker == scope.Unsure:
		return Unknown
	case stricter == scope.Yes || stricter == scope.Unsure:
		return Stricter
	}
	return Equivalent
}

// Column is a rendering's posture column: the effective action of every
// rule of head and, when base is not nil (an empty, non-nil base is a
// baseline with nothing in it), the change mark against base. The mark
// combines the change of the action itself (weaker when less is blocked,
// with Kyverno's override precedence) and every enforcement change of
// changes (Diff of base and head) for the rule or its whole policy (a
// narrowed match is weaker even when the action stays Enforce); the worst
// wins, and new and removed rules stay so. proven are the classes the gate
// settled by fingerprint (a witness proves an unknown change weaker).
func Column(head, base []*kyverno.Object, changes []Change, proven ...map[string]Class) *report.Column {
	col := &report.Column{Cells: map[report.PolicyRule]report.Cell{}}
	heads := map[report.PolicyRule]RuleAction{}
	for _, ra := range RuleActions(head) {
		heads[ra.key()] = ra
		col.Cells[ra.key()] = report.Cell{Action: ra.Action}
	}
	if base == nil {
		return col
	}
	bases := map[report.PolicyRule]RuleAction{}
	for _, ra := range RuleActions(base) {
		bases[ra.key()] = ra
	}
	for k, h := range heads {
		b, ok := bases[k]
		if !ok {
			col.Cells[k] = report.Cell{Action: h.Action, Baseline: report.ActionAbsent, Change: report.MarkNew}
			continue
		}
		c := report.Cell{Action: h.Action, Change: mark(CompareRuleActions(b, h))}
		if c.Change == report.MarkNone && b.Action != h.Action {
			c.Change = report.MarkChanged
		}
		if b.Action != h.Action {
			c.Baseline = b.Action
		}
		col.Cells[k] = c
	}
	for k, b := range bases {
		if _, ok := heads[k]; !ok {
			col.Cells[k] = report.Cell{Action: report.ActionAbsent, Baseline: b.Action, Change: report.MarkRemoved}
		}
	}
	// A migration's successors are not new: they carry on the old
	// policy's rules, so their cells say what they were and how the
	// migration fared (equivalent reads as changed, blocking the same).
	successors := map[report.PolicyRule]bool{}
	for _, ch := range changes {
		m := ch.Migration
		if m == nil {
			continue
		}
		class := provenClass(ch, proven)
		mk := mark(class)
		if mk == report.MarkNone {
			mk = report.MarkChanged
		}
		var was []string
		for _, r := range m.Rules {
			if old, _, ok := strings.Cut(r.Action, " → "); ok && !slices.Contains(was, old) {
				was = append(was, old)
			}
		}
		for _, to := range m.To {
			k := report.PolicyRule{Kind: to.Kind, Policy: displayName(to.Namespace, to.Name)}
			successors[k] = true
			if c, ok := col.Cells[k]; ok && c.Change == report.MarkNew {
				c.Change = mk
				c.Baseline = strings.Join(was, ", ") + " as " + m.From.String()
				if class.Blocks() {
					c.Fingerprints = append(c.Fingerprints, ch.Fingerprint)
				}
				col.Cells[k] = c
			}
		}
	}
	for _, ch := range changes {
		if ch.Before == "absent" && successors[report.PolicyRule{Kind: ch.Kind, Policy: ch.Policy}] {
			continue // a successor's addition: the migration marked it
		}
		class := provenClass(ch, proven)
		m := mark(class)
		if m == report.MarkNone {
			continue
		}
		for k, c := range col.Cells {
			if k.Kind != ch.Kind || k.Policy != ch.Policy {
				continue
			}
			if ch.Rule != "" && ch.Rule != k.Rule && AutogenParent(ch.Rule) != k.Rule {
				continue
			}
			if c.Change != report.MarkNew && c.Change != report.MarkRemoved && markRank(m) > markRank(c.Change) {
				c.Change = m
			}
			if !slices.Contains(c.Fingerprints, ch.Fingerprint) {
				c.Fingerprints = append(c.Fingerprints, ch.Fingerprint)
			}
			col.Cells[k] = c
		}
	}
	return col
}

func (ra RuleAction) key() report.PolicyRule {
	return report.PolicyRule{Kind: ra.Kind, Policy: ra.Policy, Rule: ra.Rule}
}

func mark(c Class) report.ChangeMark {
	switch c {
	case Weaker:
		return report.MarkWeaker
	case Stricter:
		return report.MarkStricter
	case Unknown:
		return report.MarkUnknown
	}
	return report.MarkNone
}

func markRank(m report.ChangeMark) int {
	switch m {
	case report.MarkWeaker:
		return 5
	case report.MarkUnknown:
		return 4
	case report.MarkStricter:
		return 3
	case report.MarkChanged:
		return 2
	}
	return 1
}

// provenClass is ch's class, or the one a witness search proved for its
// fingerprint (the last of proven that has it).
func provenClass(ch Change, proven []map[string]Class) Class {
	class := ch.Class
	for _, p := range proven {
		if c, ok := p[ch.Fingerprint]; ok {
			class = c
		}
	}
	return class
}
