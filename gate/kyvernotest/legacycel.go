package kyvernotest

import (
	"context"
	"fmt"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/processor"
	"github.com/kyverno/kyverno/pkg/admissionpolicy"
	"github.com/kyverno/kyverno/pkg/autogen"
	"github.com/kyverno/kyverno/pkg/config"
	"github.com/kyverno/kyverno/pkg/engine"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	"github.com/kyverno/kyverno/pkg/engine/handlers"
	"github.com/kyverno/kyverno/pkg/engine/jmespath"
	datautils "github.com/kyverno/kyverno/pkg/utils/data"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Legacy validate.cel rules compiled once (issue 18).
//
// Kyverno's engine compiles a ClusterPolicy's validate.cel rule for every
// resource (validateCELHandler.Process: admissionpolicy.NewCompiler, which
// builds CEL environments from scratch), and offers no hook to pass a
// compiled one. For an eligible policy (legacyCELEligible), the processor
// gets a copy whose validate.cel rules have a stub body instead (a deny
// without conditions, which always returns one response): the engine's own
// rule order, match and policy-level checks decide when the handler runs;
// each stub response is then replaced by the handler's evaluation, done here
// with the compiler and validator made once per policy and rule, and the
// original policy is put back on the response.

// legacyCELEligible reports whether a policy's validate.cel rules can be
// evaluated here: only validate rules; applyRules All (One stops on the
// stub's status); every CEL rule without context entries, JMESPath
// preconditions, report properties (all handled before the handler) or
// params, with no other validate body, and no expression naming the
// authorizer (the handler's authorizer is internal to Kyverno's engine); no
// generated VAP (the handler skips then).
func legacyCELEligible(p kyvernov1.PolicyInterface) bool {
	spec := p.GetSpec()
	if spec.GetApplyRules() != kyvernov1.ApplyAll || p.GetStatus().ValidatingAdmissionPolicy.Generated {
		return false
	}
	n := 0
	for i := range spec.Rules {
		r := &spec.Rules[i]
		if r.HasMutate() || r.HasGenerate() || r.HasVerifyImages() || r.HasVerifyImageChecks() || !r.HasValidate() {
			return false
		}
		if !r.HasValidateCEL() {
			continue
		}
		v := r.Validation
		if len(r.Context) > 0 || r.GetAnyAllConditions() != nil || len(r.ReportProperties) > 0 ||
			v.CEL.HasParam() || v.Deny != nil || v.GetPattern() != nil || v.GetAnyPattern() != nil ||
			len(v.ForEachValidation) > 0 || v.PodSecurity != nil || v.Manifests != nil {
			return false
		}
		if strings.Contains(celText(r), "authorizer") {
			return false
		}
		n++
	}
	return n > 0
}

func celText(r *kyvernov1.Rule) string {
	var b strings.Builder
	c := r.Validation.CEL
	for _, e := range c.Expressions {
		b.WriteString(e.Expression + "\n" + e.MessageExpression + "\n")
	}
	for _, v := range c.Variables {
		b.WriteString(v.Expression + "\n")
	}
	for _, a := range c.AuditAnnotations {
		b.WriteString(a.ValueExpression + "\n")
	}
	for _, m := range r.CELPreconditions {
		b.WriteString(m.Expression + "\n")
	}
	return b.String()
}

// legacyCEL is a suite's eligible policies, with their stub copies and
// what is compiled for them.
type legacyCEL struct {
	orig  map[kyvernov1.PolicyInterface]kyvernov1.PolicyInterface // stub -> original
	stubs map[kyvernov1.PolicyInterface]kyvernov1.PolicyInterface // original -> stub
	// per original policy and kind: the autogen rules, or nil when the
	// stub's autogen rules differ (then the result is not used)
	rules    map[legacyKey]map[string]kyvernov1.Rule
	compiled map[legacyRuleKey]*compiledCELRule
}

type legacyKey struct {
	p    kyvernov1.PolicyInterface
	kind string
}

type legacyRuleKey struct {
	p          kyvernov1.PolicyInterface
	kind, rule string
}

func newLegacyCEL(pols []kyvernov1.PolicyInterface) *legacyCEL {
	var lc *legacyCEL
	for _, p := range pols {
		if !legacyCELEligible(p) {
			continue
		}
		if lc == nil {
			lc = &legacyCEL{
				orig: map[kyvernov1.PolicyInterface]kyvernov1.PolicyInterface{}, stubs: map[kyvernov1.PolicyInterface]kyvernov1.PolicyInterface{},
				rules: map[legacyKey]map[string]kyvernov1.Rule{}, compiled: map[legacyRuleKey]*compiledCELRule{},
			}
		}
		stub := p.CreateDeepCopy()
		spec := stub.GetSpec()
		for i := range spec.Rules {
			if v := spec.Rules[i].Validation; spec.Rules[i].HasValidateCEL() {
				// Audit: an enforced deny evaluates the old object too
				// on UPDATE, which the CEL handler does not.
				audit := kyvernov1.Audit
				v.CEL, v.Deny, v.FailureAction = nil, &kyvernov1.Deny{}, &audit
			}
		}
		lc.orig[stub], lc.stubs[p] = p, stub
	}
	return lc
}

// policies is pols with eligible policies replaced by their stubs.
func (lc *legacyCEL) policies(pols []kyvernov1.PolicyInterface) []kyvernov1.PolicyInterface {
	out := make([]kyvernov1.PolicyInterface, len(pols))
	for i, p := range pols {
		out[i] = p
		if s, ok := lc.stubs[p]; ok {
			out[i] = s
		}
	}
	return out
}

// ruleSet returns the autogen rules of p for kind by name, when the stub's
// are the same rules (by name, CEL rules stubbed), else nil.
func (lc *legacyCEL) ruleSet(p kyvernov1.PolicyInterface, kind string) map[string]kyvernov1.Rule {
	k := legacyKey{p, kind}
	if rs, ok := lc.rules[k]; ok {
		return rs
	}
	orig := autogen.Default.ComputeRules(p, kind)
	stub := autogen.Default.ComputeRules(lc.stubs[p], kind)
	rs := map[string]kyvernov1.Rule{}
	ok := len(orig) == len(stub)
	for i := 0; ok && i < len(orig); i++ {
		if !orig[i].HasValidateCEL() {
			ok = datautils.DeepEqual(orig[i], stub[i])
			continue
		}
		// The same rule but for the validate body.
		a, b := orig[i].DeepCopy(), stub[i].DeepCopy()
		ok = b.Validation != nil && b.Validation.Deny != nil && !b.HasValidateCEL()
		a.Validation, b.Validation = nil, nil
		ok = ok && datautils.DeepEqual(*a, *b)
		rs[orig[i].Name] = orig[i]
	}
	if !ok {
		rs = nil
	}
	lc.rules[k] = rs
	return rs
}

// apply replaces, in the processor's responses ers for the resource pp.Resource,
// each stub policy's response by the original's. It reports false when a
// stub's response cannot be replaced exactly (then the caller runs the
// processor with the original policies).
func (lc *legacyCEL) apply(pp *processor.PolicyProcessor, ers []engineapi.EngineResponse) bool {
	resource := pp.Resource
	gvk := processorGVK(pp)
	for i := range ers {
		in := resource
		resource = ers[i].PatchedResource
		gp := ers[i].Policy()
		if gp == nil {
			continue
		}
		kp := gp.AsKyvernoPolicy()
		if kp == nil {
			continue
		}
		p, ok := lc.orig[kp]
		if !ok {
			continue
		}
		rs := lc.ruleSet(p, gvk.Kind)
		if rs == nil {
			return false
		}
		var pc *contextReplica
		rules := ers[i].PolicyResponse.Rules
		out := make([]engineapi.RuleResponse, 0, len(rules))
		for _, rr := range rules {
			rule, ok := rs[rr.Name()]
			if !ok {
				out = append(out, rr)
				continue
			}
			if pc == nil {
				var err error
				if pc, err = newContextReplica(pp, p, in, gvk); err != nil {
					return false
				}
			}
			got := lc.process(pc, p, rule)
			if len(got) != 1 {
				return false
			}
			out = append(out, got[0].WithStats(rr.Stats()))
			legacyCELResponses.Add(1)
		}
		er := ers[i].WithPolicy(engineapi.NewKyvernoPolicy(p))
		er.PolicyResponse.Rules = out
		ers[i] = er
	}
	return true
}

// contextReplica is what the processor's policy context holds for the
// handler (makePolicyContext, without subresources).
type contextReplica struct {
	newResource, oldResource unstructured.Unstructured
	operation                kyvernov1.AdmissionOperation
	admissionInfo            kyvernov2.RequestInfo
	gvk                      schema.GroupVersionKind
}

func newContextReplica(pp *processor.PolicyProcessor, p kyvernov1.PolicyInterface, resource unstructured.Unstructured, gvk schema.GroupVersionKind) (*contextReplica, error) {
	cfg := config.NewDefaultConfiguration(false)
	jp := jmespath.New(cfg)
	operation := kyvernov1.Create
	var values map[string]any
	if pp.Variables != nil {
		vals, err := pp.Variables.ComputeVariables(pp.Store, p.GetName(), resource.GetName(), resource.GetKind(), nil)
		if err != nil {
			return nil, err
		}
		values = vals
	}
	switch values["request.operation"] {
	case "DELETE":
		operation = kyvernov1.Delete
	case "UPDATE":
		operation = kyvernov1.Update
	}
	if pp.Operation != "" {
		switch pp.Operation {
		case "CREATE":
			operation = kyvernov1.Create
		case "DELETE":
			operation = kyvernov1.Delete
		case "UPDATE":
			operation = kyvernov1.Update
		}
		if values == nil {
			values = map[string]any{}
		}
		values["request.operation"] = pp.Operation
	}
	newResource := resource
	if operation == kyvernov1.Delete {
		newResource = unstructured.Unstructured{}
	}
	pc, err := engine.NewPolicyContext(jp, newResource, operation, pp.UserInfo, cfg)
	if err != nil {
		return nil, err
	}
	if operation == kyvernov1.Update {
		r := resource.DeepCopy()
		pc = pc.WithOldResource(*r)
		if err := pc.JSONContext().AddOldResource(r.Object); err != nil {
			return nil, err
		}
	}
	if operation == kyvernov1.Delete {
		pc = pc.WithOldResource(resource)
		if err := pc.JSONContext().AddOldResource(resource.Object); err != nil {
			return nil, err
		}
	}
	for k, v := range values {
		if err := pc.JSONContext().AddVariable(k, v); err != nil {
			return nil, err
		}
	}
	query := func(q string) (unstructured.Unstructured, error) {
		ret, err := pc.JSONContext().Query(q)
		if err != nil || ret == nil {
			return unstructured.Unstructured{}, err
		}
		object, ok := ret.(map[string]any)
		if !ok {
			return unstructured.Unstructured{}, fmt.Errorf("the object retrieved from the json context is not valid")
		}
		return unstructured.Unstructured{Object: object}, nil
	}
	out := &contextReplica{operation: operation, gvk: gvk, oldResource: pc.OldResource()}
	switch operation {
	case kyvernov1.Create:
		if out.newResource, err = query("request.object"); err != nil {
			return nil, err
		}
	case kyvernov1.Update:
		if out.newResource, err = query("request.object"); err != nil {
			return nil, err
		}
		if out.oldResource, err = query("request.oldObject"); err != nil {
			return nil, err
		}
	case kyvernov1.Delete:
		if out.oldResource, err = query("request.oldObject"); err != nil {
			return nil, err
		}
	}
	out.admissionInfo = pc.AdmissionInfo()
	return out, nil
}

// compiledCELRule is what the handler compiles for a rule.
type compiledCELRule struct {
	err       error
	validator validating.Validator
}

func (lc *legacyCEL) compile(p kyvernov1.PolicyInterface, kind string, rule kyvernov1.Rule) *compiledCELRule {
	k := legacyRuleKey{p, kind, rule.Name}
	if c, ok := lc.compiled[k]; ok {
		return c
	}
	c := &compiledCELRule{}
	lc.compiled[k] = c
	hasParam := rule.Validation.CEL.HasParam()
	validations := rule.Validation.CEL.Expressions
	for i := range validations { // as the handler (in place)
		if validations[i].Message == "" {
			validations[i].Message = rule.Validation.Message
		}
	}
	optionalVars := cel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: true}
	expressionOptionalVars := cel.OptionalVariableDeclarations{HasParams: hasParam, HasAuthorizer: false}
	compiler, err := admissionpolicy.NewCompiler(rule.CELPreconditions, rule.Validation.CEL.Variables)
	if err != nil {
		c.err = err
		return c
	}
	compiler.WithValidations(validations)
	compiler.WithAuditAnnotations(rule.Validation.CEL.AuditAnnotations)
	compiler.CompileVariables(optionalVars)
	filter := compiler.CompileValidations(optionalVars)
	messageFilter := compiler.CompileMessageExpressions(expressionOptionalVars)
	auditFilter := compiler.CompileAuditAnnotationsExpressions(optionalVars)
	matchFilter := compiler.CompileMatchConditions(optionalVars)
	matcher := matchconditions.NewMatcher(matchFilter, nil, p.GetKind(), "", p.GetName())
	c.validator = validating.NewValidator(filter, matcher, auditFilter, messageFilter, nil, nil)
	return c
}

// process is validateCELHandler.Process for a suite without legacy
// exceptions, cluster or params, with the rule compiled once.
func (lc *legacyCEL) process(pc *contextReplica, p kyvernov1.PolicyInterface, rule kyvernov1.Rule) []engineapi.RuleResponse {
	resource := pc.newResource
	gvr := schema.GroupVersionResource{} // the CLI's policy context has no request resource
	gvk := pc.gvk
	var object, oldObject runtime.Object
	oldResource := pc.oldResource
	if oldResource.Object != nil {
		oldResource = *oldResource.DeepCopy()
		oldResource.SetGroupVersionKind(gvk)
		oldObject = oldResource.DeepCopyObject()
	}
	var ns, name string
	if resource.Object == nil {
		ns, name = oldResource.GetNamespace(), oldResource.GetName()
	} else {
		ns, name = resource.GetNamespace(), resource.GetName()
		resource = *resource.DeepCopy()
		resource.SetGroupVersionKind(gvk)
		object = resource.DeepCopyObject()
	}
	c := lc.compile(p, gvk.Kind, rule)
	if c.err != nil {
		return handlers.WithError(rule, engineapi.Validation, "Error while creating composited compiler", c.err)
	}
	var namespace *corev1.Namespace
	if gvk.Kind == "Namespace" && gvk.Version == "v1" && gvk.Group == "" {
		ns = ""
	}
	if ns != "" {
		namespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	}
	userInfo := admissionpolicy.NewUser(pc.admissionInfo.AdmissionUserInfo)
	attr := admission.NewAttributesRecord(object, oldObject, gvk, ns, name, gvr, "", admission.Operation(pc.operation), nil, false, &userInfo)
	o := admission.NewObjectInterfacesFromScheme(runtime.NewScheme())
	versionedAttr, err := admission.NewVersionedAttributes(attr, attr.GetKind(), o)
	if err != nil {
		return handlers.WithError(rule, engineapi.Validation, "error while creating versioned attributes", err)
	}
	result := c.validator.Validate(context.TODO(), gvr, versionedAttr, nil, namespace, celconfig.RuntimeCELCostBudget, noAuthorizer{})
	if datautils.DeepEqual(result, validating.ValidateResult{}) {
		return handlers.WithResponses(engineapi.RuleSkip(rule.Name, engineapi.Validation, "cel preconditions not met", rule.ReportProperties))
	}
	for _, decision := range result.Decisions {
		switch decision.Action {
		case validating.ActionAdmit:
			if decision.Evaluation == validating.EvalError {
				return handlers.WithResponses(engineapi.RuleError(rule.Name, engineapi.Validation, decision.Message, nil, rule.ReportProperties))
			}
		case validating.ActionDeny:
			return handlers.WithResponses(engineapi.RuleFail(rule.Name, engineapi.Validation, decision.Message, rule.ReportProperties))
		}
	}
	return handlers.WithResponses(engineapi.RulePass(rule.Name, engineapi.Validation, fmt.Sprintf("Validation rule '%s' passed.", rule.Name), rule.ReportProperties))
}

// noAuthorizer stands for the handler's authorizer, which no eligible rule
// uses (legacyCELEligible).
type noAuthorizer struct{}

func (noAuthorizer) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return authorizer.DecisionNoOpinion, "", nil
}
