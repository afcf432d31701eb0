package witness

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/processor"
	"github.com/kyverno/kyverno/ext/cluster"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	restmapperutils "github.com/kyverno/kyverno/pkg/utils/restmapper"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
)

// policySet is what one engine run evaluates: legacy policies with legacy
// exceptions, ValidatingPolicies with CEL exceptions. Results are kept per
// candidate, so every set runs at most once per resource.
type policySet struct {
	id     string
	legacy []kyvernov1.PolicyInterface
	exc    []*kyvernov2.PolicyException
	vps    []policiesv1beta1.ValidatingPolicyLike
	celExc []*policiesv1beta1.PolicyException

	compiled   bool
	prov       vpolengine.Provider
	cp         libs.Context
	compileErr error

	results map[int]result
}

type result struct {
	out *outcome
	err error
}

// set returns the set called id, building it the first time.
func (s *searcher) set(id string, build func() *policySet) *policySet {
	if s.sets == nil {
		s.sets = map[string]*policySet{}
	}
	if ps, ok := s.sets[id]; ok {
		return ps
	}
	ps := build()
	ps.id = id
	s.sets[id] = ps
	return ps
}

// engine is the offline cluster every run shares: a fake client and its
// REST mapper, as the test command uses without --cluster.
type engine struct {
	client dclient.Interface
	rm     meta.RESTMapper
}

func (s *searcher) engine() (*engine, error) {
	if s.eng != nil {
		return s.eng, nil
	}
	dc, err := cluster.NewFake().DClient(nil)
	if err != nil {
		if dc, err = dclient.NewFakeClient(runtime.NewScheme(), map[schema.GroupVersionResource]string{}); err != nil {
			return nil, err
		}
		dc.SetDiscovery(dclient.NewFakeDiscoveryClient(nil))
	}
	rm, err := restmapperutils.GetRESTMapper(dc)
	if err != nil {
		return nil, err
	}
	s.eng = &engine{client: dc, rm: rm}
	return s.eng, nil
}

// run evaluates ps on c once and remembers the outcome.
func (s *searcher) run(ps *policySet, c *candidate) (*outcome, error) {
	if r, ok := ps.results[c.idx]; ok {
		return r.out, r.err
	}
	out, err := s.evaluate(ps, c)
	if ps.results == nil {
		ps.results = map[int]result{}
	}
	ps.results[c.idx] = result{out, err}
	return out, err
}

func (s *searcher) evaluate(ps *policySet, c *candidate) (out *outcome, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("Kyverno crashed: %v\n%s", v, debug.Stack())
		}
	}()
	out = &outcome{}
	if len(ps.legacy) == 0 && len(ps.vps) == 0 {
		return out, nil
	}
	e, err := s.engine()
	if err != nil {
		return nil, err
	}
	res := c.obj.DeepCopy()
	if len(ps.legacy) > 0 {
		pp := processor.PolicyProcessor{
			Store:                c.env.store,
			Policies:             ps.legacy,
			Resource:             *res,
			PolicyExceptions:     ps.exc,
			Variables:            c.env.vars,
			UserInfo:             c.env.user,
			PolicyReport:         true,
			NamespaceSelectorMap: c.env.vars.NamespaceSelectors(),
			Rc:                   &processor.ResultCounts{},
			Client:               e.client,
			Subresources:         c.env.vars.Subresources(),
			Out:                  io.Discard,
			RESTMapper:           e.rm,
		}
		ers, err := pp.ApplyPoliciesOnResource()
		if err != nil {
			return nil, err
		}
		out.legacy = ers
		res = mutated(res, ers)
	}
	if len(ps.vps) > 0 {
		if !ps.compiled {
			ps.compiled = true
			kyvernotest.WithCELContext(func() {
				ps.cp, ps.compileErr = processor.NewContextProvider(e.client, e.rm, nil, "", true, true, nil, nil)
				if ps.compileErr == nil {
					ps.prov, ps.compileErr = vpolengine.NewProvider(vpolcompiler.NewCompiler(), ps.vps, ps.celExc)
				}
			})
		}
		if ps.compileErr != nil {
			return nil, ps.compileErr
		}
		eng := vpolengine.NewEngine(ps.prov, c.env.vars.Namespace, matching.NewMatcher())
		gvk := res.GroupVersionKind()
		gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version}
		if m, err := e.rm.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			gvr = m.Resource
		} else if guessed, _ := meta.UnsafeGuessKindToResource(gvk); guessed.Resource != "" {
			gvr = guessed
		}
		var user authenticationv1.UserInfo
		if c.env.user != nil {
			user = c.env.user.AdmissionUserInfo
		}
		op, obj, old := processor.AdmissionRequestShape(operation(c.env), res)
		req := celengine.Request(ps.cp, gvk, gvr, "", res.GetName(), res.GetNamespace(), op, user, obj, old, false, nil)
		resp, err := eng.Handle(context.TODO(), req, nil)
		if err != nil {
			return nil, err
		}
		out.vps = resp.Policies
	}
	return out, nil
}

// operation is the admission operation a candidate is evaluated for: its
// suite's request.operation, else CREATE.
func operation(e *env) string {
	if op, err := processor.NormalizeOperation(e.vars.GlobalOperation()); err == nil && op != "" {
		return op
	}
	return "CREATE"
}

// mutated is the resource as the legacy policies left it: ValidatingPolicies
// see the mutated object, as behind the webhook.
func mutated(res *unstructured.Unstructured, ers []engineapi.EngineResponse) *unstructured.Unstructured {
	for i := len(ers) - 1; i >= 0; i-- {
		if ers[i].PatchedResource.Object != nil {
			r := ers[i].PatchedResource
			return &r
		}
	}
	return res
}

// outcome is one run's engine responses.
type outcome struct {
	legacy []engineapi.EngineResponse
	vps    []celengine.ValidatingPolicyResponse
}

// ruleMatches reports whether the engine's rule name is the rule filter
// (or one of the rules Kyverno's autogen made from it).
func ruleMatches(filter, name string) bool {
	if filter == "" || name == filter {
		return true
	}
	return !isAutogen(filter) && (name == "autogen-"+filter || name == "autogen-cronjob-"+filter)
}

// deniedBy reports whether the policy with key, through rule ("" for any),
// blocked the resource with a failure; it returns the rule and message.
func (o *outcome) deniedBy(k, rule string) (string, string, bool) {
	for _, er := range o.legacy {
		gp := er.Policy()
		if gp == nil {
			continue
		}
		kp := gp.AsKyvernoPolicy()
		if kp == nil || legacyKey(kp) != k {
			continue
		}
		for _, rr := range er.PolicyResponse.Rules {
			if rr.Status() != engineapi.RuleStatusFail || !ruleMatches(rule, rr.Name()) {
				continue
			}
			// Kyverno's own resolution of the rule's effective action.
			if er.WithPolicyResponse(engineapi.PolicyResponse{Rules: []engineapi.RuleResponse{rr}}).HasEnforcedFailure() {
				return rr.Name(), rr.Message(), true
			}
		}
	}
	for _, pr := range o.vps {
		if pr.Policy == nil || vpKey(pr.Policy) != k || !pr.Actions.Has(admissionregistrationv1.Deny) {
			continue
		}
		for _, rr := range pr.Rules {
			if rr.Status() == engineapi.RuleStatusFail && ruleMatches(rule, rr.Name()) {
				return rr.Name(), rr.Message(), true
			}
		}
	}
	return "", "", false
}

// blocks reports whether anything in the run could block the request: an
// enforced failure, a failing or erroring Deny validation, or any engine
// error (which might block in a cluster, so it never counts as admitted).
func (o *outcome) blocks() bool {
	for _, er := range o.legacy {
		if er.HasEnforcedFailure() || er.IsError() {
			return true
		}
	}
	for _, pr := range o.vps {
		if !pr.Actions.Has(admissionregistrationv1.Deny) {
			continue
		}
		for _, rr := range pr.Rules {
			if rr.Status() == engineapi.RuleStatusFail || rr.Status() == engineapi.RuleStatusError {
				return true
			}
		}
	}
	return false
}
