package kyvernotest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/processor"
	clires "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/resource"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/variables"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	dpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/dpol/compiler"
	dpolengine "github.com/kyverno/kyverno/pkg/cel/policies/dpol/engine"
	ivpolengine "github.com/kyverno/kyverno/pkg/cel/policies/ivpol/engine"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	"github.com/kyverno/kyverno/pkg/config"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	imageverifycache "github.com/kyverno/kyverno/pkg/image/verification/cache"
	restmapperutils "github.com/kyverno/kyverno/pkg/utils/restmapper"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// resolveOperation is the processor's effective operation: explicit, then
// the values file's request.operation, then the default.
func resolveOperation(pp *processor.PolicyProcessor, operation string) string {
	if operation != "" {
		return operation
	}
	if pp.Variables != nil {
		if op, err := processor.NormalizeOperation(pp.Variables.GlobalOperation()); err == nil {
			return op
		}
	}
	return ""
}

// resolveGVR maps gvk to its resource as the processor does: the REST
// mapper, else (offline) the plural guessed from the kind or named by a CEL
// policy's resource rules.
func resolveGVR(pp *processor.PolicyProcessor, rm meta.RESTMapper, gvk schema.GroupVersionKind, vps []policiesv1beta1.ValidatingPolicyLike) (schema.GroupVersionResource, error) {
	mapping, err := rm.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil {
		return mapping.Resource, nil
	}
	if pp.Cluster {
		return schema.GroupVersionResource{}, fmt.Errorf("failed to map gvk to gvr %s: %w", gvk, err)
	}
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version}
	if guessed, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Kind: gvk.Kind}); guessed.Resource != "" {
		gvr.Resource = guessed.Resource
		return gvr, nil
	}
	kind := strings.ToLower(gvk.Kind)
	var constraints []*admissionregistrationv1.MatchResources
	for _, p := range vps {
		constraints = append(constraints, p.GetSpec().MatchConstraints)
	}
	for _, p := range pp.MutatingPolicies {
		constraints = append(constraints, p.GetSpec().MatchConstraints)
	}
	for _, p := range pp.GeneratingPolicies {
		constraints = append(constraints, p.GetSpec().MatchConstraints)
	}
	for _, mc := range constraints {
		if mc == nil {
			continue
		}
		for _, rr := range mc.ResourceRules {
			for _, r := range rr.Resources {
				base, _, _ := strings.Cut(r, "/")
				if strings.ToLower(base) == kind {
					gvr.Resource = base
					return gvr, nil
				}
			}
		}
	}
	return gvr, fmt.Errorf("failed to map gvk to gvr %s: cannot infer the resource name of kind %q", gvk, gvk.Kind)
}

// isPlainMatch reports whether match constraints are a single resource rule
// without selectors or exclusions: upstream then reports no row for a
// resource such a policy does not match.
func isPlainMatch(m *admissionregistrationv1.MatchResources) bool {
	if m == nil {
		return false
	}
	if s := m.NamespaceSelector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		return false
	}
	if s := m.ObjectSelector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		return false
	}
	return len(m.ExcludeResourceRules) == 0 && len(m.ResourceRules) == 1 && len(m.ResourceRules[0].ResourceNames) == 0
}

func sortedResources(in clires.ResourceMap) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(in))
	for _, r := range in {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return resourceKey(out[i]) < resourceKey(out[j]) })
	return out
}

// applyImageValidating evaluates ImageValidatingPolicies on one resource,
// as the test command does (registry access off: signatures are not fetched).
func applyImageValidating(ivps []policiesv1beta1.ImageValidatingPolicyLike, res *unstructured.Unstructured,
	excs []*policiesv1beta1.PolicyException, vars *variables.Variables, userInfo *kyvernov2.RequestInfo,
	dClient dclient.Interface, rm meta.RESTMapper, contextPath string, gceMap map[string]any, operation string, isFake bool,
) ([]engineapi.EngineResponse, error) {
	celMu.Lock() // see celMu: the context is made and bound below
	defer celMu.Unlock()
	prov, err := ivpolengine.NewProvider(ivps, excs)
	if err != nil {
		return nil, err
	}
	var lister corev1listers.SecretLister
	if dClient != nil {
		factory := informers.NewSharedInformerFactory(dClient.GetKubeClient(), 0)
		stop := make(chan struct{})
		defer close(stop)
		factory.Start(stop)
		factory.WaitForCacheSync(stop)
		lister = factory.Core().V1().Secrets().Lister()
	}
	eng := ivpolengine.NewEngine(prov, vars.Namespace, matching.NewMatcher(), lister,
		imageverifycache.DisabledImageVerifyCache(), config.NewDefaultConfiguration(false))
	if rm == nil {
		if rm, err = restmapperutils.GetRESTMapper(dClient); err != nil {
			return nil, err
		}
	}
	cp, err := processor.NewContextProvider(dClient, rm, nil, contextPath, true, isFake, gceMap, nil)
	if err != nil {
		return nil, err
	}
	gvk := res.GroupVersionKind()
	mapping, err := rm.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("failed to map gvk to gvr %s (%v)", gvk, err)
	}
	var user authenticationv1.UserInfo
	if userInfo != nil {
		user = userInfo.AdmissionUserInfo
	}
	op, obj, old := processor.AdmissionRequestShape(operation, res)
	req := celengine.Request(cp, gvk, mapping.Resource, "", res.GetName(), res.GetNamespace(), op, user, obj, old, false, nil)
	out, err := eng.HandleValidating(context.TODO(), req, nil)
	if err != nil {
		return nil, fmt.Errorf("applying image validating policies to %s: %w", res.GetName(), err)
	}
	var ers []engineapi.EngineResponse
	for _, r := range out.Policies {
		er := engineapi.EngineResponse{Resource: *res}
		if !reflect.DeepEqual(r.Result, engineapi.RuleResponse{}) {
			er.PolicyResponse.Rules = []engineapi.RuleResponse{r.Result}
		} else {
			er.PolicyResponse.Rules = []engineapi.RuleResponse{}
		}
		ers = append(ers, er.WithPolicy(engineapi.NewImageValidatingPolicyFromLike(r.Policy)))
	}
	return ers, nil
}

// applyDeleting evaluates DeletingPolicies on one resource: a match is a
// pass, a resource selected by the constraints but not by the conditions a
// fail, and a resource outside the constraints gives no row.
func applyDeleting(dps []policiesv1beta1.DeletingPolicyLike, res *unstructured.Unstructured,
	excs []*policiesv1beta1.PolicyException, vars *variables.Variables,
	dClient dclient.Interface, rm meta.RESTMapper, contextPath string, gceMap map[string]any, isFake bool,
) ([]engineapi.EngineResponse, error) {
	celMu.Lock() // see celMu: the context is made and bound below
	defer celMu.Unlock()
	var err error
	if rm == nil {
		if rm, err = restmapperutils.GetRESTMapper(dClient); err != nil {
			return nil, err
		}
	}
	cp, err := processor.NewContextProvider(dClient, rm, nil, contextPath, true, isFake, gceMap, nil)
	if err != nil {
		return nil, err
	}
	prov, err := dpolengine.NewProvider(dpolcompiler.NewCompiler(), dps, excs)
	if err != nil {
		return nil, err
	}
	eng := dpolengine.NewEngine(vars.Namespace, rm, cp, matching.NewMatcher())
	pols, err := prov.Fetch(context.Background())
	if err != nil {
		return nil, err
	}
	var ers []engineapi.EngineResponse
	for _, dp := range pols {
		gp := engineapi.NewDeletingPolicyFromLike(dp.Policy)
		if gp == nil {
			return nil, fmt.Errorf("unsupported deleting policy type %T", dp.Policy)
		}
		name := dp.Policy.GetName()
		resp, err := eng.Handle(context.TODO(), dp, *res)
		var rule *engineapi.RuleResponse
		switch {
		case err != nil:
			rule = engineapi.NewRuleResponse(name, engineapi.Deletion, err.Error(), engineapi.RuleStatusError, nil)
		case resp.Match:
			rule = engineapi.NewRuleResponse(name, engineapi.Deletion, "resource matched", engineapi.RuleStatusPass, nil)
		case !resp.PolicyMatched:
			continue
		default:
			rule = engineapi.NewRuleResponse(name, engineapi.Deletion, "resource did not match", engineapi.RuleStatusFail, nil)
		}
		er := engineapi.NewEngineResponse(*res, gp, nil).WithPolicyResponse(engineapi.PolicyResponse{Rules: []engineapi.RuleResponse{*rule}})
		ers = append(ers, er)
	}
	return ers, nil
}
