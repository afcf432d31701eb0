package diff

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kyverno/kyverno/api/kyverno"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/autogen"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// defaultWebhookTimeout is Kyverno's webhook timeout when none is set.
const defaultWebhookTimeout = 10

func diffLegacySet(r *recorder, old, new *side) {
	for _, id := range sortedKeys(old.legacy, new.legacy) {
		kind, ns, name := splitIdentity(id)
		p := &pctx{r: r, kind: kind, policy: displayName(ns, name)}
		o, n := old.legacy[id], new.legacy[id]
		switch {
		case o != nil && n == nil:
			if m := migration(id, o, new); m != nil {
				r.migrations = append(r.migrations, m)
				p.buf = append(p.buf, Change{Class: Class(m.Verdict), Kind: kind, Policy: p.policy, Before: "present", After: "absent",
					Message: migrationMessage(m), Migration: m})
				break
			}
			msg := removalMessage(kind, ns, name, new, new.legacy)
			if len(new.cel) > 0 {
				ref := "ClusterPolicy/" + name
				if kind == "Policy" {
					ref = "Policy/" + ns + "/" + name
				}
				msg += fmt.Sprintf(" (if a policy of the policies.kyverno.io kinds replaces it, annotate that policy with %s: %s, "+
					"with #<rule> for one rule, so that the two are compared as a migration)", ReplacesAnnotation, ref)
			}
			p.add(Weaker, "", "", "present", "absent", msg)
		case o == nil && n != nil:
			p.add(Stricter, "", "", "absent", "present", fmt.Sprintf("%s %s was added", kind, displayName(ns, name)))
		default:
			diffLegacy(p, o.Policy, n.Policy)
		}
		p.flush()
	}
}

// RuleField names a field of rule by the rule's name, as Change.Field does:
// "spec.rules[<rule>]", then ".<rest>" unless rest is "".
func RuleField(rule, rest string) string {
	f := "spec.rules[" + rule + "]"
	if rest != "" {
		f += "." + rest
	}
	return f
}

// IsAutogen reports whether name is a rule generated for Pod controllers.
func IsAutogen(name string) bool { return strings.HasPrefix(name, "autogen-") }

// AutogenParent returns the rule an autogen rule was generated from.
func AutogenParent(name string) string {
	if strings.HasPrefix(name, "autogen-cronjob-") {
		return strings.TrimPrefix(name, "autogen-cronjob-")
	}
	return strings.TrimPrefix(name, "autogen-")
}

func diffLegacy(p *pctx, oldP, newP kyvernov1.PolicyInterface) {
	os, ns := oldP.GetSpec(), newP.GetSpec()
	ctx := context.Background()

	// failure policy
	ofp, nfp := os.GetFailurePolicy(ctx), ns.GetFailurePolicy(ctx)
	if ofp != nfp {
		field := "spec.failurePolicy"
		if (os.WebhookConfiguration != nil && os.WebhookConfiguration.FailurePolicy != nil) ||
			(ns.WebhookConfiguration != nil && ns.WebhookConfiguration.FailurePolicy != nil) {
			field = "spec.webhookConfiguration.failurePolicy"
		}
		class := Stricter
		msg := "failure policy went from Ignore to Fail: webhook errors and timeouts now block requests"
		if ofp == kyvernov1.Fail {
			class = Weaker
			msg = "failure policy went from Fail to Ignore: when the webhook errors or times out, requests are let through unchecked"
		}
		p.add(class, "", field, string(ofp), string(nfp), msg)
	}
	// webhook timeout: a shorter timeout only lets more through when
	// failures are ignored.
	ot, nt := timeoutOf(os.GetWebhookTimeoutSeconds()), timeoutOf(ns.GetWebhookTimeoutSeconds())
	if ot != nt && nfp == kyvernov1.Ignore {
		class, verb := Stricter, "raised"
		if nt < ot {
			class, verb = Weaker, "lowered"
		}
		p.add(class, "", "spec.webhookConfiguration.timeoutSeconds", strconv.Itoa(ot)+"s", strconv.Itoa(nt)+"s",
			fmt.Sprintf("webhook timeout %s from %ds to %ds with failure policy Ignore: requests the policy cannot evaluate in time are let through", verb, ot, nt))
	}
	if c := boolChange(os.AdmissionProcessingEnabled(), ns.AdmissionProcessingEnabled()); c != Equivalent {
		p.add(c, "", "spec.admission", fmtBool(os.AdmissionProcessingEnabled()), fmtBool(ns.AdmissionProcessingEnabled()),
			map[Class]string{Weaker: "admission processing turned off: the policy no longer checks any request", Stricter: "admission processing turned on"}[c])
	}
	if c := boolChange(os.BackgroundProcessingEnabled(), ns.BackgroundProcessingEnabled()); c != Equivalent {
		p.add(c, "", "spec.background", fmtBool(os.BackgroundProcessingEnabled()), fmtBool(ns.BackgroundProcessingEnabled()),
			map[Class]string{Weaker: "background processing turned off: existing resources are no longer scanned and reported", Stricter: "background processing turned on"}[c])
	}
	if oa, na := os.GetApplyRules(), ns.GetApplyRules(); oa != na {
		class, msg := Stricter, "applyRules went from One to All: every matching rule is applied"
		if oa == kyvernov1.ApplyAll {
			class, msg = Weaker, "applyRules went from All to One: rules after the first one that applies are skipped"
		}
		p.add(class, "", "spec.applyRules", string(oa), string(na), msg)
	}
	scopeChange(p, "", "spec.webhookConfiguration.matchConditions", "the webhook's matchConditions (requests sent to Kyverno)",
		celConditionsScope("matchCondition", os.GetMatchConditions()), celConditionsScope("matchCondition", ns.GetMatchConditions()), true)
	reportingMeta(p, oldP.GetAnnotations(), newP.GetAnnotations(), oldP.GetLabels(), newP.GetLabels())

	// rules, as Kyverno computes them (autogen for Pod controllers)
	oldRules := autogen.Default.ComputeRules(oldP, "")
	newRules := autogen.Default.ComputeRules(newP, "")
	byName := func(rs []kyvernov1.Rule) map[string]*kyvernov1.Rule {
		m := map[string]*kyvernov1.Rule{}
		for i := range rs {
			if _, dup := m[rs[i].Name]; !dup {
				m[rs[i].Name] = &rs[i]
			}
		}
		return m
	}
	om, nm := byName(oldRules), byName(newRules)
	var names []string
	for n := range om {
		names = append(names, n)
	}
	for n := range nm {
		if _, ok := om[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	onlyNS := ""
	if newP.IsNamespaced() {
		onlyNS = newP.GetNamespace()
	}
	oac, nac := oldP.GetAnnotations()[kyverno.AnnotationAutogenControllers], newP.GetAnnotations()[kyverno.AnnotationAutogenControllers]
	for _, name := range names {
		or, nr := om[name], nm[name]
		switch {
		case or != nil && nr == nil:
			msg := fmt.Sprintf("rule %s (%s) was removed: %s", name, ruleKind(or), removedEffect(or))
			if IsAutogen(name) {
				msg = fmt.Sprintf("rule %s, generated from rule %s for Pod controllers (%s), is no longer generated", name, AutogenParent(name), strings.Join(sortedUnique(or.MatchResources.GetKinds()), ", "))
				if oac != nac {
					msg += fmt.Sprintf(" (annotation %s went from %q to %q)", kyverno.AnnotationAutogenControllers, oac, nac)
				}
				msg += ": those controllers are no longer checked"
			}
			p.add(Weaker, name, RuleField(name, ""), "present", "absent", msg)
		case or == nil && nr != nil:
			p.add(Stricter, name, RuleField(name, ""), "absent", "present", fmt.Sprintf("rule %s (%s) was added", name, ruleKind(nr)))
		default:
			diffRule(p, os, ns, or, nr, onlyNS)
		}
	}
	dropAutogenDuplicates(p)
}

// dropAutogenDuplicates removes changes of autogen rules that repeat the
// same change of the rule they were generated from.
func dropAutogenDuplicates(p *pctx) {
	key := func(c Change, rule string) string {
		f := strings.Replace(c.Field, "spec.rules["+c.Rule+"]", "spec.rules[]", 1)
		return string(c.Class) + "\x00" + rule + "\x00" + f
	}
	parents := map[string]bool{}
	for _, c := range p.buf {
		if c.Rule != "" && !IsAutogen(c.Rule) {
			parents[key(c, c.Rule)] = true
		}
	}
	out := p.buf[:0]
	for _, c := range p.buf {
		if c.Rule != "" && IsAutogen(c.Rule) && parents[key(c, AutogenParent(c.Rule))] {
			continue
		}
		out = append(out, c)
	}
	p.buf = out
}

// removedEffect says what is lost with a rule.
func removedEffect(r *kyvernov1.Rule) string {
	var parts []string
	if r.HasValidate() {
		parts = append(parts, "what it validated is no longer checked")
	}
	if r.HasVerifyImages() {
		parts = append(parts, "images it verified are no longer verified")
	}
	if r.HasMutate() {
		parts = append(parts, "what it injected or defaulted is no longer applied")
	}
	if r.HasGenerate() {
		parts = append(parts, "the resources it generated are no longer created or kept")
	}
	if len(parts) == 0 {
		return "it did nothing"
	}
	return strings.Join(parts, "; ")
}

func timeoutOf(t *int32) int {
	if t == nil {
		return defaultWebhookTimeout
	}
	return int(*t)
}

func ruleKind(r *kyvernov1.Rule) string {
	var kinds []string
	if r.HasValidate() {
		kinds = append(kinds, "validate")
	}
	if r.HasVerifyImages() {
		kinds = append(kinds, "verifyImages")
	}
	if r.HasMutate() {
		kinds = append(kinds, "mutate")
	}
	if r.HasGenerate() {
		kinds = append(kinds, "generate")
	}
	if len(kinds) == 0 {
		return "empty"
	}
	return strings.Join(kinds, "+")
}

// reportingMeta compares the annotations and labels that change reporting.
func reportingMeta(p *pctx, oa, na, ol, nl map[string]string) {
	os, ns := oa[kyverno.AnnotationPolicyScored] != "false", na[kyverno.AnnotationPolicyScored] != "false"
	if c := boolChange(os, ns); c != Equivalent {
		p.add(c, "", "metadata.annotations["+kyverno.AnnotationPolicyScored+"]", fmtBool(os), fmtBool(ns),
			map[Class]string{Weaker: "policy is no longer scored: failures are reported as warnings", Stricter: "policy is scored again"}[c])
	}
	_, od := ol[kyverno.LabelExcludeReporting]
	_, nd := nl[kyverno.LabelExcludeReporting]
	if c := boolChange(!od, !nd); c != Equivalent {
		p.add(c, "", "metadata.labels["+kyverno.LabelExcludeReporting+"]", fmtBool(!od), fmtBool(!nd),
			map[Class]string{Weaker: "policy reports were disabled for this policy", Stricter: "policy reports were enabled for this policy"}[c])
	}
}

func diffRule(p *pctx, os, ns *kyvernov1.Spec, or, nr *kyvernov1.Rule, onlyNS string) {
	rn := or.Name
	f := func(rest string) string { return RuleField(rn, rest) }

	// scope
	scopeChange(p, rn, f("match"), "match of rule "+rn, matchScope(&or.MatchResources), matchScope(&nr.MatchResources), true)
	scopeChange(p, rn, f("exclude"), "exclude of rule "+rn, matchScope(or.ExcludeResources), matchScope(nr.ExcludeResources), false)
	scopeChange(p, rn, f("preconditions"), "preconditions of rule "+rn, conditionsScope("precondition", or.GetAnyAllConditions()),
		conditionsScope("precondition", nr.GetAnyAllConditions()), true)
	scopeChange(p, rn, f("celPreconditions"), "celPreconditions of rule "+rn, celConditionsScope("celPrecondition", or.CELPreconditions),
		celConditionsScope("celPrecondition", nr.CELPreconditions), true)
	opaqueChange(p, rn, f("context"), "context of rule "+rn+" (variables its checks use)", or.Context, nr.Context)
	opaqueChange(p, rn, f("imageExtractors"), "imageExtractors of rule "+rn, or.ImageExtractors, nr.ImageExtractors)

	// failure action
	oa, ook := LegacyAction(os, or)
	na, nok := LegacyAction(ns, nr)
	if ook && nok {
		actionChange(p, rn, actionField(os, ns, or, nr), oa, na, onlyNS)
	}

	diffValidate(p, rn, or, nr)
	diffVerifyImages(p, rn, or, nr)
	diffMutate(p, rn, os, ns, or, nr)
	diffGenerate(p, rn, os, ns, or, nr)
}

// actionField names the field whose change moved the effective action.
func actionField(os, ns *kyvernov1.Spec, or, nr *kyvernov1.Rule) string {
	rn := or.Name
	if or.HasValidate() || nr.HasValidate() {
		var ofa, nfa, oov, nov any
		if or.Validation != nil {
			ofa, oov = or.Validation.FailureAction, or.Validation.FailureActionOverrides
		}
		if nr.Validation != nil {
			nfa, nov = nr.Validation.FailureAction, nr.Validation.FailureActionOverrides
		}
		switch {
		case canon(ofa) != canon(nfa):
			return RuleField(rn, "validate.failureAction")
		case canon(oov) != canon(nov):
			return RuleField(rn, "validate.failureActionOverrides")
		}
	} else {
		actions := func(r *kyvernov1.Rule) string {
			var s []string
			for _, iv := range r.VerifyImages {
				s = append(s, canon(iv.FailureAction))
			}
			return strings.Join(s, ",")
		}
		if actions(or) != actions(nr) {
			return RuleField(rn, "verifyImages.failureAction")
		}
	}
	if canon(os.ValidationFailureActionOverrides) != canon(ns.ValidationFailureActionOverrides) {
		return "spec.validationFailureActionOverrides"
	}
	return "spec.validationFailureAction"
}

// validation logic components; each yields the set of cases in which the
// rule denies.
type logicPart struct {
	name  string
	field string
	deny  scope.DNF
	// opaque parts are compared by value only
	opaque any
}

func validateLogic(v *kyvernov1.Validation) map[string]logicPart {
	out := map[string]logicPart{}
	if v == nil {
		return out
	}
	if v.RawPattern != nil {
		out["pattern"] = logicPart{name: "pattern", field: "validate.pattern",
			deny: scope.DNF{scope.Conj{}.With("fails pattern", scope.Opaque, canon(v.RawPattern))}}
	}
	if v.RawAnyPattern != nil {
		alts, _ := generic(v.RawAnyPattern).([]any)
		c := scope.Conj{}
		for _, a := range alts {
			c = c.With("fails anyPattern alternative", scope.Opaque, canon(a))
		}
		out["anyPattern"] = logicPart{name: "anyPattern", field: "validate.anyPattern", deny: scope.DNF{c}}
	}
	if v.Deny != nil {
		out["deny"] = logicPart{name: "deny", field: "validate.deny.conditions", deny: conditionsScope("deny condition", v.Deny.GetAnyAllConditions())}
	}
	if v.PodSecurity != nil {
		c := scope.Conj{}
		for _, e := range v.PodSecurity.Exclude {
			c = c.With("not excluded", scope.Opaque, canon(e))
		}
		out["podSecurity"] = logicPart{name: "podSecurity", field: "validate.podSecurity.exclude", deny: scope.DNF{c}}
	}
	if v.CEL != nil {
		var d scope.DNF
		for _, e := range v.CEL.Expressions {
			d = append(d, scope.Conj{}.With("fails CEL expression", scope.Opaque, strings.TrimSpace(e.Expression)))
		}
		out["cel"] = logicPart{name: "cel", field: "validate.cel.expressions", deny: d}
	}
	if len(v.ForEachValidation) > 0 {
		var d scope.DNF
		for _, e := range v.ForEachValidation {
			d = append(d, scope.Conj{}.With("fails foreach", scope.Opaque, canon(stripMessages(generic(e)))))
		}
		out["foreach"] = logicPart{name: "foreach", field: "validate.foreach", deny: d}
	}
	if v.Manifests != nil {
		out["manifests"] = logicPart{name: "manifests", field: "validate.manifests", opaque: v.Manifests}
	}
	return out
}

var psaLevels = map[string]int{"privileged": 0, "baseline": 1, "restricted": 2}

// psaVersion orders Pod Security Standard versions; "latest" (the default)
// is newest.
func psaVersion(v string) (int, int) {
	if v == "" || v == "latest" {
		return 1 << 30, 0
	}
	var maj, min int
	if _, err := fmt.Sscanf(v, "v%d.%d", &maj, &min); err != nil {
		return -1, 0
	}
	return maj, min
}

func diffValidate(p *pctx, rn string, or, nr *kyvernov1.Rule) {
	f := func(rest string) string { return RuleField(rn, rest) }
	oh, nh := or.HasValidate(), nr.HasValidate()
	switch {
	case oh && !nh:
		p.add(Weaker, rn, f("validate"), "present", "absent", fmt.Sprintf("rule %s no longer validates anything", rn))
		return
	case !oh && nh:
		p.add(Stricter, rn, f("validate"), "absent", "present", fmt.Sprintf("rule %s now validates", rn))
		return
	case !oh:
		return
	}
	ov, nv := or.Validation, nr.Validation
	// allowExistingViolations defaults to true; only false -> true matters.
	oa, na := or.HasValidateAllowExistingViolations(), nr.HasValidateAllowExistingViolations()
	if c := boolChange(!oa, !na); c != Equivalent {
		p.add(c, rn, f("validate.allowExistingViolations"), fmtBool(oa), fmtBool(na),
			map[Class]string{Weaker: fmt.Sprintf("rule %s now lets updates of resources that already violate it through", rn),
				Stricter: fmt.Sprintf("rule %s now also blocks updates of resources that already violate it", rn)}[c])
	}
	ol, nl := validateLogic(ov), validateLogic(nv)
	var removed, added []string
	for k := range ol {
		if _, ok := nl[k]; !ok {
			removed = append(removed, k)
		}
	}
	for k := range nl {
		if _, ok := ol[k]; !ok {
			added = append(added, k)
		}
	}
	sort.Strings(removed)
	sort.Strings(added)
	switch {
	case len(removed) > 0 && len(added) > 0:
		p.add(Unknown, rn, f("validate"), strings.Join(removed, ", "), strings.Join(added, ", "),
			fmt.Sprintf("rule %s replaced its %s check with %s; the two cannot be compared", rn, strings.Join(removed, "/"), strings.Join(added, "/")))
	case len(removed) > 0:
		p.add(Weaker, rn, f("validate"), strings.Join(removed, ", "), "absent", fmt.Sprintf("rule %s lost its %s check", rn, strings.Join(removed, "/")))
	case len(added) > 0:
		p.add(Stricter, rn, f("validate"), "absent", strings.Join(added, ", "), fmt.Sprintf("rule %s gained a %s check", rn, strings.Join(added, "/")))
	}
	var common []string
	for k := range ol {
		if _, ok := nl[k]; ok {
			common = append(common, k)
		}
	}
	sort.Strings(common)
	for _, k := range common {
		o, n := ol[k], nl[k]
		if o.opaque != nil || n.opaque != nil {
			opaqueChange(p, rn, f(o.field), k+" of rule "+rn, o.opaque, n.opaque)
			continue
		}
		what := map[string]string{
			"pattern":     "pattern of rule " + rn,
			"anyPattern":  "anyPattern of rule " + rn + " (more alternatives accept more)",
			"deny":        "deny conditions of rule " + rn,
			"podSecurity": "podSecurity exclusions of rule " + rn,
			"cel":         "CEL expressions of rule " + rn,
			"foreach":     "foreach checks of rule " + rn,
		}[k]
		scopeChange(p, rn, f(o.field), what+": the set of denied requests", o.deny, n.deny, true)
	}
	if ov.PodSecurity != nil && nv.PodSecurity != nil {
		ol, nl := string(ov.PodSecurity.Level), string(nv.PodSecurity.Level)
		if ol != nl {
			class := Stricter
			if psaLevels[nl] < psaLevels[ol] {
				class = Weaker
			}
			p.add(class, rn, f("validate.podSecurity.level"), ol, nl, fmt.Sprintf("Pod Security level of rule %s went from %s to %s", rn, ol, nl))
		}
		ovs, nvs := ov.PodSecurity.Version, nv.PodSecurity.Version
		oM, om := psaVersion(ovs)
		nM, nm := psaVersion(nvs)
		if oM != nM || om != nm {
			class := Stricter
			if nM < oM || (nM == oM && nm < om) {
				class = Weaker
			}
			p.add(class, rn, f("validate.podSecurity.version"), orLatest(ovs), orLatest(nvs),
				fmt.Sprintf("Pod Security Standard version of rule %s went from %s to %s", rn, orLatest(ovs), orLatest(nvs)))
		}
	}
	if ov.CEL != nil && nv.CEL != nil {
		opaqueChange(p, rn, f("validate.cel.variables"), "CEL variables of rule "+rn, ov.CEL.Variables, nv.CEL.Variables)
		opaqueChange(p, rn, f("validate.cel.paramKind"), "CEL paramKind of rule "+rn, ov.CEL.ParamKind, nv.CEL.ParamKind)
		opaqueChange(p, rn, f("validate.cel.paramRef"), "CEL paramRef of rule "+rn, ov.CEL.ParamRef, nv.CEL.ParamRef)
	}
}

func orLatest(v string) string {
	if v == "" {
		return "latest"
	}
	return v
}

func diffMutate(p *pctx, rn string, os, ns *kyvernov1.Spec, or, nr *kyvernov1.Rule) {
	f := func(rest string) string { return RuleField(rn, rest) }
	oh, nh := or.HasMutate(), nr.HasMutate()
	switch {
	case oh && !nh:
		p.add(Weaker, rn, f("mutate"), "present", "absent", fmt.Sprintf("rule %s no longer mutates: what it injected or defaulted is gone", rn))
		return
	case !oh && nh:
		p.add(Stricter, rn, f("mutate"), "absent", "present", fmt.Sprintf("rule %s now mutates", rn))
		return
	case !oh:
		return
	}
	existing := func(s *kyvernov1.Spec, r *kyvernov1.Rule) bool {
		if r.Mutation.MutateExistingOnPolicyUpdate != nil {
			return *r.Mutation.MutateExistingOnPolicyUpdate
		}
		return s.MutateExistingOnPolicyUpdate
	}
	if c := boolChange(existing(os, or), existing(ns, nr)); c != Equivalent {
		p.add(c, rn, f("mutate.mutateExistingOnPolicyUpdate"), fmtBool(existing(os, or)), fmtBool(existing(ns, nr)),
			fmt.Sprintf("mutateExistingOnPolicyUpdate of rule %s went from %v to %v", rn, existing(os, or), existing(ns, nr)))
	}
	om, nm := or.Mutation.DeepCopy(), nr.Mutation.DeepCopy()
	om.MutateExistingOnPolicyUpdate, nm.MutateExistingOnPolicyUpdate = nil, nil
	opaqueChange(p, rn, f("mutate"), "mutation of rule "+rn, om, nm)
}

func diffGenerate(p *pctx, rn string, os, ns *kyvernov1.Spec, or, nr *kyvernov1.Rule) {
	f := func(rest string) string { return RuleField(rn, rest) }
	oh, nh := or.HasGenerate(), nr.HasGenerate()
	switch {
	case oh && !nh:
		p.add(Weaker, rn, f("generate"), "present", "absent", fmt.Sprintf("rule %s no longer generates resources", rn))
		return
	case !oh && nh:
		p.add(Stricter, rn, f("generate"), "absent", "present", fmt.Sprintf("rule %s now generates resources", rn))
		return
	case !oh:
		return
	}
	og, ng := or.Generation, nr.Generation
	if c := boolChange(og.Synchronize, ng.Synchronize); c != Equivalent {
		p.add(c, rn, f("generate.synchronize"), fmtBool(og.Synchronize), fmtBool(ng.Synchronize),
			map[Class]string{Weaker: fmt.Sprintf("rule %s no longer synchronizes generated resources: they can be changed or deleted freely", rn),
				Stricter: fmt.Sprintf("rule %s now synchronizes generated resources", rn)}[c])
	}
	existing := func(s *kyvernov1.Spec, g *kyvernov1.Generation) bool {
		if g.GenerateExisting != nil {
			return *g.GenerateExisting
		}
		return s.IsGenerateExisting() || (s.GenerateExistingOnPolicyUpdate != nil && *s.GenerateExistingOnPolicyUpdate)
	}
	if c := boolChange(existing(os, og), existing(ns, ng)); c != Equivalent {
		p.add(c, rn, f("generate.generateExisting"), fmtBool(existing(os, og)), fmtBool(existing(ns, ng)),
			fmt.Sprintf("generateExisting of rule %s went from %v to %v", rn, existing(os, og), existing(ns, ng)))
	}
	oc, nc := og.DeepCopy(), ng.DeepCopy()
	for _, g := range []*kyvernov1.Generation{oc, nc} {
		g.Synchronize, g.GenerateExisting, g.OrphanDownstreamOnPolicyDelete = false, nil, false
	}
	opaqueChange(p, rn, f("generate"), "generated resource of rule "+rn, oc, nc)
}

// verifyImages

func imageRefs(iv *kyvernov1.ImageVerification) []string {
	refs := append([]string(nil), iv.ImageReferences...)
	if iv.Image != "" {
		refs = append(refs, iv.Image)
	}
	return sortedUnique(refs)
}

func diffVerifyImages(p *pctx, rn string, or, nr *kyvernov1.Rule) {
	oh, nh := or.HasVerifyImages(), nr.HasVerifyImages()
	switch {
	case oh && !nh:
		p.add(Weaker, rn, RuleField(rn, "verifyImages"), "present", "absent", fmt.Sprintf("rule %s no longer verifies images", rn))
		return
	case !oh && nh:
		p.add(Stricter, rn, RuleField(rn, "verifyImages"), "absent", "present", fmt.Sprintf("rule %s now verifies images", rn))
		return
	case !oh:
		return
	}
	key := func(iv *kyvernov1.ImageVerification) string { return strings.Join(imageRefs(iv), ",") }
	ol, nl := or.VerifyImages, nr.VerifyImages
	type pair struct{ o, n *kyvernov1.ImageVerification }
	var pairs []pair
	if len(ol) == len(nl) {
		for i := range ol {
			pairs = append(pairs, pair{&ol[i], &nl[i]})
		}
	} else {
		used := make([]bool, len(nl))
		for i := range ol {
			var match *kyvernov1.ImageVerification
			for j := range nl {
				if !used[j] && key(&nl[j]) == key(&ol[i]) {
					used[j], match = true, &nl[j]
					break
				}
			}
			pairs = append(pairs, pair{&ol[i], match})
		}
		for j := range nl {
			if !used[j] {
				pairs = append(pairs, pair{nil, &nl[j]})
			}
		}
	}
	for _, pr := range pairs {
		switch {
		case pr.n == nil:
			p.add(Weaker, rn, RuleField(rn, "verifyImages["+key(pr.o)+"]"), "present", "absent",
				fmt.Sprintf("rule %s no longer verifies images %s", rn, key(pr.o)))
		case pr.o == nil:
			p.add(Stricter, rn, RuleField(rn, "verifyImages["+key(pr.n)+"]"), "absent", "present",
				fmt.Sprintf("rule %s now also verifies images %s", rn, key(pr.n)))
		default:
			diffImageVerification(p, rn, pr.o, pr.n)
		}
	}
}

func diffImageVerification(p *pctx, rn string, o, n *kyvernov1.ImageVerification) {
	base := RuleField(rn, "verifyImages["+strings.Join(imageRefs(o), ",")+"]")
	f := func(rest string) string { return base + "." + rest }
	scopeChange(p, rn, f("imageReferences"), "images verified by rule "+rn,
		scope.DNF{scope.Conj{}.With("image", scope.Glob, imageRefs(o)...)}, scope.DNF{scope.Conj{}.With("image", scope.Glob, imageRefs(n)...)}, true)
	skip := func(iv *kyvernov1.ImageVerification) scope.DNF {
		if len(iv.SkipImageReferences) == 0 {
			return scope.DNF{}
		}
		return scope.DNF{scope.Conj{}.With("image", scope.Glob, iv.SkipImageReferences...)}
	}
	scopeChange(p, rn, f("skipImageReferences"), "images skipped by rule "+rn, skip(o), skip(n), false)
	for _, b := range []struct {
		name     string
		old, new bool
		weak     string
	}{
		{"required", o.Required, n.Required, "images without a verified signature are no longer rejected"},
		{"verifyDigest", o.VerifyDigest, n.VerifyDigest, "images are no longer required to be referenced by a verified digest"},
		{"mutateDigest", o.MutateDigest, n.MutateDigest, "image tags are no longer pinned to the verified digest"},
	} {
		if c := boolChange(b.old, b.new); c != Equivalent {
			msg := fmt.Sprintf("%s of rule %s went from %v to %v", b.name, rn, b.old, b.new)
			if c == Weaker {
				msg += ": " + b.weak
			}
			p.add(c, rn, f(b.name), fmtBool(b.old), fmtBool(b.new), msg)
		}
	}
	insecure := func(iv *kyvernov1.ImageVerification) bool {
		return iv.ImageRegistryCredentials != nil && iv.ImageRegistryCredentials.AllowInsecureRegistry
	}
	if c := boolChange(!insecure(o), !insecure(n)); c != Equivalent {
		p.add(c, rn, f("imageRegistryCredentials.allowInsecureRegistry"), fmtBool(insecure(o)), fmtBool(insecure(n)),
			fmt.Sprintf("allowInsecureRegistry of rule %s went from %v to %v", rn, insecure(o), insecure(n)))
	}
	diffAttestorSets(p, rn, f("attestors"), o.Attestors, n.Attestors)
	var oa, na []string
	for _, a := range o.Attestations {
		oa = append(oa, canon(stripMessages(generic(a))))
	}
	for _, a := range n.Attestations {
		na = append(na, canon(stripMessages(generic(a))))
	}
	listChange(p, rn, f("attestations"), "attestation checks of rule "+rn, oa, na)

	rest := func(iv *kyvernov1.ImageVerification) *kyvernov1.ImageVerification {
		c := iv.DeepCopy()
		c.FailureAction, c.ImageReferences, c.Image, c.SkipImageReferences = nil, nil, "", nil
		c.Required, c.VerifyDigest, c.MutateDigest, c.UseCache = false, false, false, false
		c.Attestors, c.Attestations = nil, nil
		if c.ImageRegistryCredentials != nil {
			c.ImageRegistryCredentials.AllowInsecureRegistry = false
		}
		c.Validation.Message = ""
		return c
	}
	opaqueChange(p, rn, base, "image verification settings of rule "+rn, rest(o), rest(n))
}

// diffAttestorSets compares attestor sets: fewer sets, a lower required
// count or transparency checks turned off are weaker; other edits of the
// trusted keys or identities are unknown.
func diffAttestorSets(p *pctx, rn, field string, ol, nl []kyvernov1.AttestorSet) {
	if len(nl) < len(ol) {
		p.add(Weaker, rn, field, strconv.Itoa(len(ol))+" sets", strconv.Itoa(len(nl))+" sets",
			fmt.Sprintf("rule %s requires fewer attestor sets (%d instead of %d)", rn, len(nl), len(ol)))
	} else if len(nl) > len(ol) {
		p.add(Stricter, rn, field, strconv.Itoa(len(ol))+" sets", strconv.Itoa(len(nl))+" sets",
			fmt.Sprintf("rule %s requires more attestor sets (%d instead of %d)", rn, len(nl), len(ol)))
	}
	for i := 0; i < len(ol) && i < len(nl); i++ {
		o, n := ol[i], nl[i]
		sf := fmt.Sprintf("%s[%d]", field, i)
		if oc, nc := o.RequiredCount(), n.RequiredCount(); oc != nc {
			class := Stricter
			if nc < oc {
				class = Weaker
			}
			p.add(class, rn, sf+".count", strconv.Itoa(oc), strconv.Itoa(nc),
				fmt.Sprintf("rule %s requires %d instead of %d signatures from attestor set %d", rn, nc, oc, i))
		}
		if len(o.Entries) != len(n.Entries) {
			opaqueChange(p, rn, sf+".entries", fmt.Sprintf("trusted attestors of set %d of rule %s", i, rn), o.Entries, n.Entries)
			continue
		}
		for j := range o.Entries {
			oe, ne := o.Entries[j], n.Entries[j]
			ef := fmt.Sprintf("%s.entries[%d]", sf, j)
			ot, os := transparencyOff(&oe)
			nt, ns := transparencyOff(&ne)
			if c := boolChange(!ot, !nt); c != Equivalent {
				p.add(c, rn, ef+".rekor.ignoreTlog", fmtBool(ot), fmtBool(nt), fmt.Sprintf("rule %s: ignoreTlog went from %v to %v (transparency log check)", rn, ot, nt))
			}
			if c := boolChange(!os, !ns); c != Equivalent {
				p.add(c, rn, ef+".ctlog.ignoreSCT", fmtBool(os), fmtBool(ns), fmt.Sprintf("rule %s: ignoreSCT went from %v to %v (certificate transparency check)", rn, os, ns))
			}
			clearTransparency(&oe)
			clearTransparency(&ne)
			opaqueChange(p, rn, ef, fmt.Sprintf("trusted attestor %d of set %d of rule %s", j, i, rn), oe, ne)
		}
	}
}

func transparencyOff(a *kyvernov1.Attestor) (tlog, sct bool) {
	if a.Keys != nil {
		tlog = tlog || (a.Keys.Rekor != nil && a.Keys.Rekor.IgnoreTlog)
		sct = sct || (a.Keys.CTLog != nil && a.Keys.CTLog.IgnoreSCT)
	}
	if a.Certificates != nil {
		tlog = tlog || (a.Certificates.Rekor != nil && a.Certificates.Rekor.IgnoreTlog)
		sct = sct || (a.Certificates.CTLog != nil && a.Certificates.CTLog.IgnoreSCT)
	}
	if a.Keyless != nil {
		tlog = tlog || (a.Keyless.Rekor != nil && a.Keyless.Rekor.IgnoreTlog)
		sct = sct || (a.Keyless.CTLog != nil && a.Keyless.CTLog.IgnoreSCT)
	}
	return tlog, sct
}

func clearTransparency(a *kyvernov1.Attestor) {
	*a = *a.DeepCopy()
	for _, r := range []*kyvernov1.Rekor{rekorOf(a.Keys), rekorOfCert(a.Certificates), rekorOfKeyless(a.Keyless)} {
		if r != nil {
			r.IgnoreTlog = false
		}
	}
	for _, c := range []*kyvernov1.CTLog{ctlogOf(a.Keys), ctlogOfCert(a.Certificates), ctlogOfKeyless(a.Keyless)} {
		if c != nil {
			c.IgnoreSCT = false
		}
	}
}

func rekorOf(k *kyvernov1.StaticKeyAttestor) *kyvernov1.Rekor {
	if k == nil {
		return nil
	}
	return k.Rekor
}

func rekorOfCert(k *kyvernov1.CertificateAttestor) *kyvernov1.Rekor {
	if k == nil {
		return nil
	}
	return k.Rekor
}

func rekorOfKeyless(k *kyvernov1.KeylessAttestor) *kyvernov1.Rekor {
	if k == nil {
		return nil
	}
	return k.Rekor
}

func ctlogOf(k *kyvernov1.StaticKeyAttestor) *kyvernov1.CTLog {
	if k == nil {
		return nil
	}
	return k.CTLog
}

func ctlogOfCert(k *kyvernov1.CertificateAttestor) *kyvernov1.CTLog {
	if k == nil {
		return nil
	}
	return k.CTLog
}

func ctlogOfKeyless(k *kyvernov1.KeylessAttestor) *kyvernov1.CTLog {
	if k == nil {
		return nil
	}
	return k.CTLog
}
