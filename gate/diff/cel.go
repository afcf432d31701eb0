package diff

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	ivpolautogen "github.com/kyverno/kyverno/pkg/cel/policies/ivpol/autogen"
	mpolautogen "github.com/kyverno/kyverno/pkg/cel/policies/mpol/autogen"
	vpolautogen "github.com/kyverno/kyverno/pkg/cel/policies/vpol/autogen"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kyverno-gate/kyverno-gate/kyverno"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

func celMeta(o *kyverno.Object) metav1.Object {
	switch {
	case o.Validating != nil:
		return o.Validating
	case o.Image != nil:
		return o.Image
	case o.Mutating != nil:
		return o.Mutating
	case o.Generating != nil:
		return o.Generating
	case o.Deleting != nil:
		return o.Deleting
	}
	return nil
}

func diffCELSet(r *recorder, old, new *side) {
	for _, id := range sortedKeys(old.cel, new.cel) {
		kind, ns, name := splitIdentity(id)
		p := &pctx{r: r, kind: kind, policy: displayName(ns, name)}
		o, n := old.cel[id], new.cel[id]
		switch {
		case o != nil && n == nil:
			p.add(Weaker, "", "", "present", "absent", removalMessage(kind, ns, name, new, new.cel))
		case o == nil && n != nil:
			p.add(Stricter, "", "", "absent", "present", fmt.Sprintf("%s %s was added", kind, displayName(ns, name)))
		default:
			mo, mn := celMeta(o), celMeta(n)
			reportingMeta(p, mo.GetAnnotations(), mn.GetAnnotations(), mo.GetLabels(), mn.GetLabels())
			switch {
			case o.Validating != nil && n.Validating != nil:
				diffVP(p, o.Validating, n.Validating)
			case o.Image != nil && n.Image != nil:
				diffIVP(p, o.Image, n.Image)
			case o.Mutating != nil && n.Mutating != nil:
				diffMP(p, o.Mutating, n.Mutating)
			case o.Generating != nil && n.Generating != nil:
				diffGP(p, o.Generating, n.Generating)
			case o.Deleting != nil && n.Deleting != nil:
				diffDP(p, o.Deleting.GetDeletingPolicySpec(), n.Deleting.GetDeletingPolicySpec())
			}
		}
		p.flush()
	}
}

// celCommon is what every CEL policy kind has, with Kyverno's defaults
// applied through its own accessors.
type celCommon struct {
	match      *admissionregistrationv1.MatchResources
	conds      []admissionregistrationv1.MatchCondition
	vars       []admissionregistrationv1.Variable
	failure    admissionregistrationv1.FailurePolicyType // "" when the kind has none
	timeout    *int32
	admission  *bool // nil when the kind has no such switch
	background *bool
	mode       string
}

func ptr[T any](v T) *T { return &v }

func webhookTimeout(w *policiesv1beta1.WebhookConfiguration) *int32 {
	if w == nil {
		return nil
	}
	return w.TimeoutSeconds
}

func diffCELCommon(p *pctx, o, n celCommon) {
	scopeChange(p, "", "spec.matchConstraints", "matchConstraints (resources the policy applies to)", celMatchScope(o.match), celMatchScope(n.match), true)
	scopeChange(p, "", "spec.matchConstraints.excludeResourceRules", "excludeResourceRules", celExcludeScope(o.match), celExcludeScope(n.match), false)
	scopeChange(p, "", "spec.matchConditions", "matchConditions", celConditionsScope("matchCondition", o.conds), celConditionsScope("matchCondition", n.conds), true)
	opaqueChange(p, "", "spec.variables", "variables (used by the policy's expressions)", o.vars, n.vars)
	if o.failure != "" && n.failure != "" && o.failure != n.failure {
		class := Stricter
		msg := "failure policy went from Ignore to Fail: evaluation errors now block requests"
		if o.failure == admissionregistrationv1.Fail {
			class = Weaker
			msg = "failure policy went from Fail to Ignore: when evaluation errors or times out, requests are let through unchecked"
		}
		p.add(class, "", "spec.failurePolicy", string(o.failure), string(n.failure), msg)
	}
	ot, nt := timeoutOf(o.timeout), timeoutOf(n.timeout)
	if ot != nt && n.failure == admissionregistrationv1.Ignore {
		class, verb := Stricter, "raised"
		if nt < ot {
			class, verb = Weaker, "lowered"
		}
		p.add(class, "", "spec.webhookConfiguration.timeoutSeconds", strconv.Itoa(ot)+"s", strconv.Itoa(nt)+"s",
			fmt.Sprintf("webhook timeout %s from %ds to %ds with failure policy Ignore: requests the policy cannot evaluate in time are let through", verb, ot, nt))
	}
	if o.admission != nil && n.admission != nil {
		if c := boolChange(*o.admission, *n.admission); c != Equivalent {
			p.add(c, "", "spec.evaluation.admission.enabled", fmtBool(*o.admission), fmtBool(*n.admission),
				map[Class]string{Weaker: "admission evaluation turned off: the policy no longer checks any request", Stricter: "admission evaluation turned on"}[c])
		}
	}
	if o.background != nil && n.background != nil {
		if c := boolChange(*o.background, *n.background); c != Equivalent {
			p.add(c, "", "spec.evaluation.background.enabled", fmtBool(*o.background), fmtBool(*n.background),
				map[Class]string{Weaker: "background evaluation turned off: existing resources are no longer scanned and reported", Stricter: "background evaluation turned on"}[c])
		}
	}
	if o.mode != n.mode {
		p.add(Unknown, "", "spec.evaluation.mode", o.mode, n.mode, fmt.Sprintf("evaluation mode went from %s to %s; what the policy applies to changes entirely", o.mode, n.mode))
	}
}

// validationActions compares CEL validationActions: only losing Deny
// matters for enforcement.
func validationActions(p *pctx, o, n []admissionregistrationv1.ValidationAction) {
	has := func(as []admissionregistrationv1.ValidationAction) bool {
		for _, a := range as {
			if a == admissionregistrationv1.Deny {
				return true
			}
		}
		return false
	}
	str := func(as []admissionregistrationv1.ValidationAction) string {
		s := make([]string, len(as))
		for i, a := range as {
			s[i] = string(a)
		}
		return "[" + strings.Join(sortedUnique(s), ", ") + "]"
	}
	if c := boolChange(has(o), has(n)); c != Equivalent {
		p.add(c, "", "spec.validationActions", str(o), str(n), map[Class]string{
			Weaker:   fmt.Sprintf("validationActions went from %s to %s: failing requests are no longer denied", str(o), str(n)),
			Stricter: fmt.Sprintf("validationActions went from %s to %s: failing requests are now denied", str(o), str(n)),
		}[c])
	}
}

// validationsDeny: a request is denied when any validation fails.
func validationsDeny(vs []admissionregistrationv1.Validation) scope.DNF {
	var d scope.DNF
	for _, v := range vs {
		d = append(d, scope.Conj{}.With("fails validation", scope.Opaque, strings.TrimSpace(v.Expression)))
	}
	return d
}

// autogenTargets compares the Pod controller targets Kyverno generates
// policies for.
func autogenTargets(p *pctx, o, n []policiesv1beta1.Target, oerr, nerr error) {
	str := func(ts []policiesv1beta1.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, strings.TrimPrefix(t.Group+"/"+t.Version+"/"+t.Resource, "/"))
		}
		return sortedUnique(out)
	}
	if oerr != nil || nerr != nil {
		if (oerr == nil) != (nerr == nil) {
			p.add(Unknown, "", "spec.autogen", "", "", "Kyverno's autogen for Pod controllers failed on one side; generated checks cannot be compared")
		}
		return
	}
	os, ns := str(o), str(n)
	have := map[string]bool{}
	for _, t := range ns {
		have[t] = true
	}
	var lost []string
	for _, t := range os {
		if !have[t] {
			lost = append(lost, t)
		}
	}
	if len(lost) > 0 {
		p.add(Weaker, "", "spec.autogen.podControllers.controllers", "["+strings.Join(os, ", ")+"]", "["+strings.Join(ns, ", ")+"]",
			fmt.Sprintf("Kyverno no longer generates this policy for Pod controllers %s: pods they create are only checked at the Pod level", strings.Join(lost, ", ")))
	} else if len(ns) > len(os) {
		p.add(Stricter, "", "spec.autogen.podControllers.controllers", "["+strings.Join(os, ", ")+"]", "["+strings.Join(ns, ", ")+"]",
			"Kyverno now generates this policy for more Pod controllers")
	}
}

func targetsOf[T any](m map[string]T, targets func(T) []policiesv1beta1.Target) []policiesv1beta1.Target {
	var out []policiesv1beta1.Target
	for _, v := range m {
		out = append(out, targets(v)...)
	}
	return out
}

func diffVP(p *pctx, o, n policiesv1beta1.ValidatingPolicyLike) {
	os, ns := o.GetValidatingPolicySpec(), n.GetValidatingPolicySpec()
	common := func(x policiesv1beta1.ValidatingPolicyLike, s *policiesv1beta1.ValidatingPolicySpec) celCommon {
		var to *int32
		if s.WebhookConfiguration != nil {
			to = s.WebhookConfiguration.TimeoutSeconds
		}
		return celCommon{match: s.MatchConstraints, conds: s.MatchConditions, vars: s.Variables, failure: x.GetFailurePolicy(false),
			timeout: to, admission: ptr(s.AdmissionEnabled()), background: ptr(s.BackgroundEnabled()), mode: s.EvaluationMode()}
	}
	diffCELCommon(p, common(o, os), common(n, ns))
	validationActions(p, os.ValidationActions(), ns.ValidationActions())
	scopeChange(p, "", "spec.validations", "validations (the set of denied requests)", validationsDeny(os.Validations), validationsDeny(ns.Validations), true)
	oa, oerr := vpolautogen.Autogen(o)
	na, nerr := vpolautogen.Autogen(n)
	t := func(a policiesv1beta1.ValidatingPolicyAutogen) []policiesv1beta1.Target { return a.Targets }
	autogenTargets(p, targetsOf(oa, t), targetsOf(na, t), oerr, nerr)
}

func diffIVP(p *pctx, o, n policiesv1beta1.ImageValidatingPolicyLike) {
	os, ns := o.GetSpec(), n.GetSpec()
	common := func(x policiesv1beta1.ImageValidatingPolicyLike, s *policiesv1beta1.ImageValidatingPolicySpec) celCommon {
		return celCommon{match: s.MatchConstraints, conds: s.MatchConditions, vars: s.Variables, failure: x.GetFailurePolicy(false),
			timeout: webhookTimeout(x.GetWebhookConfiguration()), admission: ptr(s.AdmissionEnabled()), background: ptr(s.BackgroundEnabled()), mode: s.EvaluationMode()}
	}
	diffCELCommon(p, common(o, os), common(n, ns))
	validationActions(p, os.ValidationActions(), ns.ValidationActions())
	scopeChange(p, "", "spec.validations", "validations (the set of denied requests)", validationsDeny(os.Validations), validationsDeny(ns.Validations), true)

	refs := func(s *policiesv1beta1.ImageValidatingPolicySpec) scope.DNF {
		var globs []string
		var d scope.DNF
		for _, r := range s.MatchImageReferences {
			if r.Glob != "" {
				globs = append(globs, r.Glob)
			}
			if r.Expression != "" {
				d = append(d, scope.Conj{}.With("image matches expression", scope.Opaque, strings.TrimSpace(r.Expression)))
			}
		}
		if len(globs) > 0 {
			d = append(d, scope.Conj{}.With("image", scope.Glob, globs...))
		}
		return d
	}
	scopeChange(p, "", "spec.matchImageReferences", "images the policy verifies", refs(os), refs(ns), true)

	flag := func(b *bool) bool { return b == nil || *b } // CRD defaults: true
	for _, b := range []struct {
		name     string
		old, new bool
	}{
		{"required", flag(os.ValidationConfigurations.Required), flag(ns.ValidationConfigurations.Required)},
		{"verifyDigest", flag(os.ValidationConfigurations.VerifyDigest), flag(ns.ValidationConfigurations.VerifyDigest)},
		{"mutateDigest", flag(os.ValidationConfigurations.MutateDigest), flag(ns.ValidationConfigurations.MutateDigest)},
	} {
		if c := boolChange(b.old, b.new); c != Equivalent {
			p.add(c, "", "spec.validationConfigurations."+b.name, fmtBool(b.old), fmtBool(b.new),
				fmt.Sprintf("validationConfigurations.%s went from %v to %v", b.name, b.old, b.new))
		}
	}
	insecure := func(s *policiesv1beta1.ImageValidatingPolicySpec) bool {
		return s.Credentials != nil && s.Credentials.AllowInsecureRegistry
	}
	if c := boolChange(!insecure(os), !insecure(ns)); c != Equivalent {
		p.add(c, "", "spec.credentials.allowInsecureRegistry", fmtBool(insecure(os)), fmtBool(insecure(ns)),
			fmt.Sprintf("allowInsecureRegistry went from %v to %v", insecure(os), insecure(ns)))
	}
	opaqueChange(p, "", "spec.images", "image extractors", os.ImageExtractors, ns.ImageExtractors)

	// attestors and attestations, by name
	oat, nat := map[string]policiesv1beta1.Attestor{}, map[string]policiesv1beta1.Attestor{}
	for _, a := range os.Attestors {
		oat[a.Name] = a
	}
	for _, a := range ns.Attestors {
		nat[a.Name] = a
	}
	var names []string
	for k := range oat {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		oa := oat[name]
		na, ok := nat[name]
		f := "spec.attestors[" + name + "]"
		if !ok {
			p.add(Unknown, "", f, "present", "absent", fmt.Sprintf("attestor %s was removed; validations that used it changed meaning", name))
			continue
		}
		ot, osct := celTransparencyOff(&oa)
		nt, nsct := celTransparencyOff(&na)
		if c := boolChange(!ot, !nt); c != Equivalent {
			p.add(c, "", f+".cosign.ctlog.insecureIgnoreTlog", fmtBool(ot), fmtBool(nt), fmt.Sprintf("attestor %s: insecureIgnoreTlog went from %v to %v", name, ot, nt))
		}
		if c := boolChange(!osct, !nsct); c != Equivalent {
			p.add(c, "", f+".cosign.ctlog.insecureIgnoreSCT", fmtBool(osct), fmtBool(nsct), fmt.Sprintf("attestor %s: insecureIgnoreSCT went from %v to %v", name, osct, nsct))
		}
		oc, nc := oa.DeepCopy(), na.DeepCopy()
		for _, c := range []*policiesv1beta1.Attestor{oc, nc} {
			if c.Cosign != nil && c.Cosign.CTLog != nil {
				c.Cosign.CTLog.InsecureIgnoreTlog, c.Cosign.CTLog.InsecureIgnoreSCT = false, false
			}
		}
		opaqueChange(p, "", f, "trusted keys or identities of attestor "+name, oc, nc)
	}
	oas, nas := map[string]string{}, map[string]string{}
	for _, a := range os.Attestations {
		oas[a.Name] = canon(a)
	}
	for _, a := range ns.Attestations {
		nas[a.Name] = canon(a)
	}
	names = names[:0]
	for k := range oas {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		f := "spec.attestations[" + name + "]"
		if _, ok := nas[name]; !ok {
			p.add(Unknown, "", f, "present", "absent", fmt.Sprintf("attestation %s was removed; validations that used it changed meaning", name))
			continue
		}
		opaqueChange(p, "", f, "attestation "+name, oas[name], nas[name])
	}

	oa, oerr := ivpolautogen.Autogen(o)
	na, nerr := ivpolautogen.Autogen(n)
	t := func(a policiesv1beta1.ImageValidatingPolicyAutogen) []policiesv1beta1.Target { return a.Targets }
	autogenTargets(p, targetsOf(oa, t), targetsOf(na, t), oerr, nerr)
}

func celTransparencyOff(a *policiesv1beta1.Attestor) (tlog, sct bool) {
	if a.Cosign != nil && a.Cosign.CTLog != nil {
		return a.Cosign.CTLog.InsecureIgnoreTlog, a.Cosign.CTLog.InsecureIgnoreSCT
	}
	return false, false
}

func canonList[T any](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = canon(x)
	}
	return out
}

func diffMP(p *pctx, o, n policiesv1beta1.MutatingPolicyLike) {
	os, ns := o.GetSpec(), n.GetSpec()
	common := func(x policiesv1beta1.MutatingPolicyLike, s *policiesv1beta1.MutatingPolicySpec) celCommon {
		return celCommon{match: s.MatchConstraints, conds: s.MatchConditions, vars: s.Variables, failure: x.GetFailurePolicy(false),
			timeout: webhookTimeout(x.GetWebhookConfiguration()), admission: ptr(s.AdmissionEnabled()), background: ptr(s.BackgroundEnabled()), mode: s.EvaluationMode()}
	}
	diffCELCommon(p, common(o, os), common(n, ns))
	listChange(p, "", "spec.mutations", "mutations", canonList(os.Mutations), canonList(ns.Mutations))
	opaqueChange(p, "", "spec.targetMatchConstraints", "targetMatchConstraints", os.TargetMatchConstraints, ns.TargetMatchConstraints)
	opaqueChange(p, "", "spec.targetMatchConditions", "targetMatchConditions", os.TargetMatchConditions, ns.TargetMatchConditions)
	if c := boolChange(os.MutateExistingEnabled(), ns.MutateExistingEnabled()); c != Equivalent {
		p.add(c, "", "spec.evaluation.mutateExisting.enabled", fmtBool(os.MutateExistingEnabled()), fmtBool(ns.MutateExistingEnabled()),
			fmt.Sprintf("mutateExisting went from %v to %v", os.MutateExistingEnabled(), ns.MutateExistingEnabled()))
	}
	oa, oerr := mpolautogen.Autogen(o)
	na, nerr := mpolautogen.Autogen(n)
	t := func(a policiesv1beta1.MutatingPolicyAutogen) []policiesv1beta1.Target { return a.Targets }
	autogenTargets(p, targetsOf(oa, t), targetsOf(na, t), oerr, nerr)
}

func diffGP(p *pctx, o, n policiesv1beta1.GeneratingPolicyLike) {
	os, ns := o.GetSpec(), n.GetSpec()
	common := func(s *policiesv1beta1.GeneratingPolicySpec) celCommon {
		return celCommon{match: s.MatchConstraints, conds: s.MatchConditions, vars: s.Variables,
			timeout: webhookTimeout(s.WebhookConfiguration), admission: ptr(s.AdmissionEnabled())}
	}
	diffCELCommon(p, common(os), common(ns))
	listChange(p, "", "spec.generate", "generated resources", canonList(os.Generation), canonList(ns.Generation))
	if c := boolChange(os.SynchronizationEnabled(), ns.SynchronizationEnabled()); c != Equivalent {
		p.add(c, "", "spec.evaluation.synchronize.enabled", fmtBool(os.SynchronizationEnabled()), fmtBool(ns.SynchronizationEnabled()),
			map[Class]string{Weaker: "generated resources are no longer kept in sync: they can be changed or deleted freely", Stricter: "generated resources are now kept in sync"}[c])
	}
	if c := boolChange(os.GenerateExistingEnabled(), ns.GenerateExistingEnabled()); c != Equivalent {
		p.add(c, "", "spec.evaluation.generateExisting.enabled", fmtBool(os.GenerateExistingEnabled()), fmtBool(ns.GenerateExistingEnabled()),
			fmt.Sprintf("generateExisting went from %v to %v", os.GenerateExistingEnabled(), ns.GenerateExistingEnabled()))
	}
}

func diffDP(p *pctx, os, ns *policiesv1beta1.DeletingPolicySpec) {
	diffCELCommon(p, celCommon{match: os.MatchConstraints, vars: os.Variables}, celCommon{match: ns.MatchConstraints, vars: ns.Variables})
	scopeChange(p, "", "spec.conditions", "conditions (resources that get deleted)", celConditionsScope("condition", os.Conditions), celConditionsScope("condition", ns.Conditions), true)
	if os.Schedule != ns.Schedule {
		p.add(Unknown, "", "spec.schedule", os.Schedule, ns.Schedule, fmt.Sprintf("schedule went from %q to %q", os.Schedule, ns.Schedule))
	}
}
