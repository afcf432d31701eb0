package witness

import (
	"fmt"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/pkg/autogen"

	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// side is one rendering's policies, ready for the engine.
type side struct {
	name string
	// legacy policies by key, as loaded (validated); nil entries are
	// policies that exist but cannot be evaluated.
	legacy map[string]kyvernov1.PolicyInterface
	exc    []*kyvernov2.PolicyException
	excKey map[*kyvernov2.PolicyException]string
	vps    map[string]policiesv1beta1.ValidatingPolicyLike
	celExc []*policiesv1beta1.PolicyException
	celKey map[*policiesv1beta1.PolicyException]string
	// full is every evaluable policy of the side with its exceptions.
	full *policySet
}

func displayName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func key(kind, policy string) string { return kind + "\x00" + policy }

func legacyKey(p kyvernov1.PolicyInterface) string {
	ns := ""
	if p.IsNamespaced() {
		ns = p.GetNamespace()
	}
	return key(p.GetKind(), displayName(ns, p.GetName()))
}

func vpKey(p policiesv1beta1.ValidatingPolicyLike) string {
	ns := ""
	if p.GetKind() == KindNamespacedValidatingPolicy {
		ns = p.GetNamespace()
	}
	return key(p.GetKind(), displayName(ns, p.GetName()))
}

// loadSide indexes a rendering's policies. Policies Kyverno's validation
// rejects are left out of every run (the validate gate reports them).
func (s *searcher) loadSide(name string, objs []*kyverno.Object) *side {
	sd := &side{name: name, legacy: map[string]kyvernov1.PolicyInterface{}, vps: map[string]policiesv1beta1.ValidatingPolicyLike{},
		excKey: map[*kyvernov2.PolicyException]string{}, celKey: map[*policiesv1beta1.PolicyException]string{}}
	full := &policySet{id: "full:" + name}
	for _, o := range objs {
		if o == nil || o.Resource == nil || o.Err != nil {
			continue
		}
		switch {
		case o.Policy != nil:
			p := o.Policy.CreateDeepCopy()
			k := legacyKey(p)
			if _, dup := sd.legacy[k]; dup {
				continue
			}
			if err := kyvernotest.ValidatePolicy(p); err != nil {
				s.logOnce(fmt.Sprintf("witness search: %s %s is left out of the %s: Kyverno rejects it: %v", p.GetKind(), p.GetName(), name, err))
				sd.legacy[k] = nil
				continue
			}
			sd.legacy[k] = p
			if e := evaluable(p); e != nil {
				full.legacy = append(full.legacy, e)
			}
		case o.Exception != nil:
			e := o.Exception.DeepCopy()
			sd.exc = append(sd.exc, e)
			sd.excKey[e] = key(KindLegacyException, displayName(e.GetNamespace(), e.GetName()))
		case o.CELException != nil:
			e := o.CELException.DeepCopy()
			sd.celExc = append(sd.celExc, e)
			sd.celKey[e] = key(KindCELException, displayName(e.GetNamespace(), e.GetName()))
		case o.Validating != nil:
			p := o.Validating.DeepCopyObject().(policiesv1beta1.ValidatingPolicyLike)
			if render.IsClusterScopedKyvernoKind(o.GVK.GroupVersion().String(), o.GVK.Kind) {
				p.SetNamespace("") // as the API server would
			}
			if p.GetKind() == "" {
				s.logOnce(fmt.Sprintf("witness search: %s %s has no kind after loading; left out", o.GVK.Kind, p.GetName()))
				continue
			}
			k := vpKey(p)
			if _, dup := sd.vps[k]; dup {
				continue
			}
			sd.vps[k] = p
			if vpEvaluable(p) {
				full.vps = append(full.vps, p)
			}
		}
	}
	full.exc, full.celExc = sd.exc, sd.celExc
	sd.full = full
	return sd
}

// evaluable returns a copy of p with only the rules the search simulates
// (validate and mutate: verifyImages would reach registries, generate does
// not decide admission), or nil when p decides nothing at admission.
func evaluable(p kyvernov1.PolicyInterface) kyvernov1.PolicyInterface {
	if p == nil || !p.AdmissionProcessingEnabled() {
		return nil
	}
	c := p.CreateDeepCopy()
	spec := c.GetSpec()
	var rules []kyvernov1.Rule
	for i := range spec.Rules {
		r := &spec.Rules[i]
		if (r.HasValidate() || r.HasMutate()) && !r.HasVerifyImages() && !r.HasGenerate() {
			rules = append(rules, *r)
		}
	}
	if len(rules) == 0 {
		return nil
	}
	spec.Rules = rules
	return c
}

func vpEvaluable(p policiesv1beta1.ValidatingPolicyLike) bool {
	if p == nil {
		return false
	}
	spec := p.GetValidatingPolicySpec()
	return spec.AdmissionEnabled() && spec.EvaluationMode() != "JSON"
}

// hasValidateRule reports whether p (after Kyverno's autogen) has a
// validate rule called rule, or any validate rule when rule is "".
func hasValidateRule(p kyvernov1.PolicyInterface, rule string) bool {
	for _, r := range autogen.Default.ComputeRules(p, "") {
		if r.HasValidate() && !r.HasVerifyImages() && (rule == "" || r.Name == rule) {
			return true
		}
	}
	return false
}

func isAutogen(rule string) bool { return strings.HasPrefix(rule, "autogen-") }

// plan fills p in; false when the target cannot be searched (logged when
// that is worth knowing).
func (s *searcher) plan(p *plan) bool {
	t := p.target
	switch t.Kind {
	case KindClusterPolicy, KindPolicy:
		return s.planLegacy(p)
	case KindValidatingPolicy, KindNamespacedValidatingPolicy:
		return s.planVP(p)
	case KindLegacyException:
		return s.planLegacyException(p)
	case KindCELException:
		return s.planCELException(p)
	}
	return false
}

func (s *searcher) planLegacy(p *plan) bool {
	t := p.target
	k := key(t.Kind, t.Policy)
	bp := s.base.legacy[k]
	if bp == nil || !bp.AdmissionProcessingEnabled() || !hasValidateRule(bp, t.Rule) {
		return false // the baseline never denied anything through it
	}
	p.key, p.rule, p.policyName = k, t.Rule, baseName(t.Policy)
	p.fb = s.set("lb:"+k, func() *policySet { return &policySet{legacy: one(evaluable(bp)), exc: s.base.exc} })
	hp, inHead := s.head.legacy[k]
	if inHead && hp == nil {
		s.logOnce(fmt.Sprintf("witness search: %s %s does not validate in the head; its findings are not searched", t.Kind, t.Policy))
		return false
	}
	// A change of one rule's own fields is tested on the baseline policy
	// with only that rule taken from the head.
	if hp != nil && t.Rule != "" && !isAutogen(t.Rule) && strings.HasPrefix(t.Field, "spec.rules["+t.Rule+"]") {
		if hybrid := withRuleFrom(bp, hp, t.Rule); hybrid != nil {
			p.scope = "R"
			p.fh = s.set("lr:"+k+"\x00"+t.Rule, func() *policySet { return &policySet{legacy: one(evaluable(hybrid)), exc: s.base.exc} })
			return true
		}
	}
	p.scope = "P"
	p.fh = s.set("lh:"+k, func() *policySet { return &policySet{legacy: one(evaluable(hp)), exc: s.base.exc} })
	return true
}

// withRuleFrom returns a copy of base whose rule called name is head's
// (removed when head has none), nil when base declares no such rule.
func withRuleFrom(base, head kyvernov1.PolicyInterface, name string) kyvernov1.PolicyInterface {
	c := base.CreateDeepCopy()
	spec := c.GetSpec()
	idx := -1
	for i := range spec.Rules {
		if spec.Rules[i].Name == name {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil
	}
	var hr *kyvernov1.Rule
	for i, r := range head.GetSpec().Rules {
		if r.Name == name {
			hr = head.GetSpec().Rules[i].DeepCopy()
			break
		}
	}
	if hr == nil {
		spec.Rules = append(spec.Rules[:idx:idx], spec.Rules[idx+1:]...)
	} else {
		spec.Rules[idx] = *hr
	}
	return c
}

func (s *searcher) planVP(p *plan) bool {
	t := p.target
	k := key(t.Kind, t.Policy)
	bp := s.base.vps[k]
	if bp == nil || !vpEvaluable(bp) {
		return false
	}
	p.key, p.policyName, p.scope = k, baseName(t.Policy), "P"
	p.fb = s.set("vb:"+k, func() *policySet {
		return &policySet{vps: []policiesv1beta1.ValidatingPolicyLike{bp}, celExc: s.base.celExc}
	})
	p.fh = s.set("vh:"+k, func() *policySet {
		ps := &policySet{celExc: s.base.celExc}
		if hp := s.head.vps[k]; hp != nil && vpEvaluable(hp) {
			ps.vps = append(ps.vps, hp)
		}
		return ps
	})
	return true
}

// legacyPolicyKey turns an exception's policyName ("name" for a
// ClusterPolicy, "namespace/name" for a Policy) into a policy key.
func legacyPolicyKey(policyName string) string {
	if strings.Contains(policyName, "/") {
		return key(KindPolicy, policyName)
	}
	return key(KindClusterPolicy, policyName)
}

func (s *searcher) planLegacyException(p *plan) bool {
	t := p.target
	ref, ok := parseRef(t.Field, "spec.exceptions[")
	if !ok {
		return false
	}
	k := legacyPolicyKey(ref)
	bp := s.base.legacy[k]
	if bp == nil || !bp.AdmissionProcessingEnabled() || !hasValidateRule(bp, "") {
		return false
	}
	ek := key(t.Kind, t.Policy)
	var he *kyvernov2.PolicyException
	for _, e := range s.head.exc {
		if s.head.excKey[e] == ek {
			he = e
			break
		}
	}
	if he == nil {
		return false
	}
	p.key, p.policyName, p.scope = k, baseName(ref), "E"
	p.fb = s.set("lb:"+k, func() *policySet { return &policySet{legacy: one(evaluable(bp)), exc: s.base.exc} })
	p.fh = s.set("le:"+ek+"\x00"+k, func() *policySet {
		var excs []*kyvernov2.PolicyException
		for _, e := range s.base.exc {
			if s.base.excKey[e] != ek {
				excs = append(excs, e)
			}
		}
		return &policySet{legacy: one(evaluable(bp)), exc: append(excs, he)}
	})
	return true
}

func (s *searcher) planCELException(p *plan) bool {
	t := p.target
	ref, ok := parseRef(t.Field, "spec.policyRefs[")
	if !ok {
		return false
	}
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || (kind != KindValidatingPolicy && kind != KindNamespacedValidatingPolicy) {
		return false
	}
	// CEL exceptions name policies by kind and name only; take the first
	// baseline policy that fits.
	var k string
	for _, pk := range sortedKeys(s.base.vps) {
		pkind, pol, _ := strings.Cut(pk, "\x00")
		if pkind == kind && baseName(pol) == name {
			k = pk
			break
		}
	}
	bp := s.base.vps[k]
	if bp == nil || !vpEvaluable(bp) {
		return false
	}
	ek := key(t.Kind, t.Policy)
	var he *policiesv1beta1.PolicyException
	for _, e := range s.head.celExc {
		if s.head.celKey[e] == ek {
			he = e
			break
		}
	}
	if he == nil {
		return false
	}
	p.key, p.policyName, p.scope = k, name, "E"
	p.fb = s.set("vb:"+k, func() *policySet {
		return &policySet{vps: []policiesv1beta1.ValidatingPolicyLike{bp}, celExc: s.base.celExc}
	})
	p.fh = s.set("ve:"+ek+"\x00"+k, func() *policySet {
		var excs []*policiesv1beta1.PolicyException
		for _, e := range s.base.celExc {
			if s.base.celKey[e] != ek {
				excs = append(excs, e)
			}
		}
		return &policySet{vps: []policiesv1beta1.ValidatingPolicyLike{bp}, celExc: append(excs, he)}
	})
	return true
}

func one(p kyvernov1.PolicyInterface) []kyvernov1.PolicyInterface {
	if p == nil {
		return nil
	}
	return []kyvernov1.PolicyInterface{p}
}

func sortedKeys[V any](m map[string]V) []string {
	b := map[string]bool{}
	for k := range m {
		b[k] = true
	}
	return sortedStrings(b)
}
