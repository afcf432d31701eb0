// Package kyvernotest runs `kyverno test` suites (cli.kyverno.io/v1alpha1
// Test files, unchanged) with Kyverno's own loaders and engine, strictly:
// where upstream `kyverno test` counts an invalid policy or a rule that did
// not apply as passed, this runner fails and says why.
//
// The evaluation follows upstream's test command step by step (same loaders,
// same PolicyProcessor, same result computation), so results agree with it;
// it differs in what it shares: policies loaded once per run, CEL
// ValidatingPolicies and MutatingPolicies compiled once per suite and legacy
// validate.cel rules once per policy instead of once per resource
// (celsteps.go, legacycel.go), and suites run in parallel.
package kyvernotest

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/memfs"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/data"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/exception"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/policy"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/processor"
	clires "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/resource"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/store"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/userinfo"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/utils/common"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/variables"
	"github.com/kyverno/kyverno/ext/cluster"
	"github.com/kyverno/kyverno/pkg/autogen"
	"github.com/kyverno/kyverno/pkg/background/generate"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	vpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/vpol/compiler"
	vpolengine "github.com/kyverno/kyverno/pkg/cel/policies/vpol/engine"
	"github.com/kyverno/kyverno/pkg/cli/loader"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	"github.com/kyverno/kyverno/pkg/config"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	restmapperutils "github.com/kyverno/kyverno/pkg/utils/restmapper"
	policyvalidation "github.com/kyverno/kyverno/pkg/validation/policy"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Policies is what a suite runs: the loader's results for its policy files,
// with overlay substitutions already applied.
type Policies = policy.LoaderResults

// Exceptions is what a suite runs with from its exceptions files.
type Exceptions struct {
	Legacy []*kyvernov2.PolicyException
	CEL    []*policiesv1beta1.PolicyException
}

// evaluation holds the engine responses of one suite, keyed like upstream.
type evaluation struct {
	trigger     map[string][]engineapi.EngineResponse
	byOperation map[string]map[string][]engineapi.EngineResponse
	target      map[string][]engineapi.EngineResponse
	invalid     map[string]string // policy name -> validation error
}

// evaluate runs one suite's policies over its resources. It mirrors the
// upstream test command's runTest.
func evaluate(s *Suite, pols *Policies, excs *Exceptions) (*evaluation, error) {
	t := s.Test
	defer holdCRDs(len(t.ClusterResources) > 0)()
	dir := s.Dir()
	var contextPath string
	if t.Context != "" {
		contextPath = filepath.Join(dir, t.Context)
	}
	vars, err := variables.New(io.Discard, nil, dir, t.Variables, t.Values)
	if err != nil {
		return nil, fmt.Errorf("variables/values: %w", err)
	}
	var userInfo *kyvernov2.RequestInfo
	if t.UserInfo != "" {
		info, err := userinfo.Load(nil, t.UserInfo, dir)
		if err != nil {
			return nil, fmt.Errorf("userinfo: %w", err)
		}
		userInfo = &info.RequestInfo
	}
	generic := make([]engineapi.GenericPolicy, 0, len(pols.Policies)+len(pols.VAPs))
	for _, p := range pols.Policies {
		generic = append(generic, engineapi.NewKyvernoPolicy(p))
	}
	for i := range pols.VAPs {
		generic = append(generic, engineapi.NewValidatingAdmissionPolicy(&pols.VAPs[i]))
	}
	for i := range pols.MAPs {
		generic = append(generic, engineapi.NewMutatingAdmissionPolicy(&pols.MAPs[i]))
	}
	loadResources := func(paths []string, what string) ([]*unstructured.Unstructured, error) {
		res, err := common.GetResourceAccordingToResourcePath(io.Discard, nil, path.GetFullPaths(paths, dir, false),
			false, generic, nil, "", false, false, dir, loader.ResourceOptions{}, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return res, nil
	}
	resources, err := loadResources(t.Resources, "resources")
	if err != nil {
		return nil, err
	}
	resources = normalizeNumbers(resources)
	uniques, _ := clires.RemoveDuplicates(resources)
	targets, err := loadResources(t.TargetResources, "targetResources")
	if err != nil {
		return nil, err
	}
	params, err := loadResources(t.ParamResources, "paramResources")
	if err != nil {
		return nil, err
	}
	var all, targetObjs, paramObjs []runtime.Object
	for _, u := range uniques {
		all = append(all, u)
	}
	for _, u := range targets {
		targetObjs = append(targetObjs, u)
	}
	for _, u := range params {
		paramObjs = append(paramObjs, u)
	}
	all = append(append(all, targetObjs...), paramObjs...)

	cl := cluster.NewFake()
	dClient, err := cl.DClient(all)
	if err != nil {
		dClient, err = dclient.NewFakeClient(runtime.NewScheme(), map[schema.GroupVersionResource]string{}, targetObjs...)
		if err != nil {
			return nil, err
		}
		dClient.SetDiscovery(dclient.NewFakeDiscoveryClient(nil))
	}
	var (
		cmResolver engineapi.ConfigmapResolver
		restMapper meta.RESTMapper
		crdPaths   []string
	)
	if len(t.ClusterResources) > 0 {
		var crds []*apiextensionsv1.CustomResourceDefinition
		for _, p := range path.GetFullPaths(t.ClusterResources, dir, false) {
			src, err := common.LoadYAML(nil, p, func() *v1alpha1.ClusterResource { return &v1alpha1.ClusterResource{} })
			if err != nil {
				return nil, fmt.Errorf("clusterResources: %w", err)
			}
			if err := s.confineCRDs(src.Spec.CRDs); err != nil {
				return nil, err
			}
			for _, crdPath := range path.GetFullPaths(src.Spec.CRDs, dir, false) {
				crdPaths = append(crdPaths, crdPath)
				crd, err := common.LoadYAML(nil, crdPath, func() *apiextensionsv1.CustomResourceDefinition { return &apiextensionsv1.CustomResourceDefinition{} })
				if err != nil {
					return nil, fmt.Errorf("clusterResources CRD %s: %w", crdPath, err)
				}
				crds = append(crds, crd)
			}
			for _, r := range src.Spec.Resources {
				all = append(all, r)
			}
		}
		restMapper = cl.RESTMapper(crds)
		for _, crd := range crds {
			all = append(all, crd)
		}
		if dClient, err = cl.DClient(all); err != nil {
			return nil, err
		}
		if cmResolver, err = cluster.NewConfigMapResolver(dClient); err != nil {
			return nil, err
		}
	}
	if len(pols.VAPs) > 0 && len(excs.Legacy) > 0 {
		return nil, fmt.Errorf("exceptions are not supported with ValidatingAdmissionPolicies")
	}
	if err := v1alpha1.ValidateAPICallResponses(t.APICallResponses); err != nil {
		return nil, err
	}
	if err := v1alpha1.ValidateGlobalContextEntries(t.GlobalContextEntries); err != nil {
		return nil, err
	}
	gces := t.GlobalContextEntries
	if len(gces) > 0 {
		if gces, err = store.ResolveGCEResourceFiles(nil, dir, gces); err != nil {
			return nil, fmt.Errorf("globalContextEntries: %w", err)
		}
	}
	var st store.Store
	st.SetLocal(true)
	st.AllowApiCall(len(t.ClusterResources) > 0)
	st.SetAPICallResponses(t.APICallResponses)
	st.SetGlobalContextEntries(gces)
	if vars != nil {
		vars.SetInStore(&st)
	}
	mockIndex, err := httpMockIndex(t.APICallResponses)
	if err != nil {
		return nil, err
	}
	st.SetHTTPMockIndex(mockIndex)
	var gceMap map[string]any
	if len(gces) > 0 {
		gceMap = make(map[string]any, len(gces))
		for _, e := range gces {
			d, err := store.ResolveGlobalContextMockData(e)
			if err != nil {
				return nil, err
			}
			gceMap[e.Name] = d
		}
	}
	cloneSources := cloneSourceResources(t, dir, pols.Policies)
	// The processor would rebuild this mapper from the fake cluster's
	// discovery for every resource; it is the same for the whole suite.
	if restMapper == nil {
		if restMapper, err = restmapperutils.GetRESTMapper(dClient); err != nil {
			return nil, err
		}
	}

	ev := &evaluation{
		trigger:     map[string][]engineapi.EngineResponse{},
		byOperation: map[string]map[string][]engineapi.EngineResponse{},
		target:      map[string][]engineapi.EngineResponse{},
		invalid:     map[string]string{},
	}
	valid := make([]kyvernov1.PolicyInterface, 0, len(pols.Policies))
	sa := config.KyvernoUserName(config.KyvernoServiceAccountName())
	for _, p := range pols.Policies {
		if _, err := validateSafely(p, sa); err != nil {
			ev.invalid[p.GetName()] = err.Error()
			continue
		}
		valid = append(valid, p)
	}
	if _, err := processor.NormalizeValuesOperation(vars.GlobalOperation()); err != nil {
		return nil, err
	}
	operations := sets.New[string]()
	for _, r := range t.Results {
		if _, err := processor.NormalizeOperation(r.Operation); err != nil {
			return nil, fmt.Errorf("result for policy %s: %w", r.Policy, err)
		}
		if r.Operation == "" {
			continue
		}
		if r.IsDeletingPolicy {
			return nil, fmt.Errorf("result for policy %s: operation is not supported for deleting policies", r.Policy)
		}
		operations.Insert(r.Operation)
	}
	// CEL ValidatingPolicies are compiled once for the whole suite: the
	// processor would compile them again for every resource, which is
	// most of upstream's run time.
	var vpols *validatingPolicies
	if len(pols.ValidatingPolicies) > 0 {
		// The context provider must exist before compiling: compiled CEL
		// libraries bind to it.
		rm := restMapper
		celMu.Lock()
		cp, err := processor.NewContextProvider(dClient, rm, nil, contextPath, true, len(t.ClusterResources) == 0, gceMap, st.GetHTTPMockIndex())
		if err == nil {
			vpols, err = newValidatingPolicies(pols.ValidatingPolicies, excs.CEL, vars.Namespace, cp, rm)
		}
		celMu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	// Mutating and GeneratingPolicies are evaluated here when that is
	// exactly the processor's evaluation (celsteps.go), so that celMu is
	// held only while their provider is made and they are compiled.
	var cel *celSteps
	legacyGenerate := false
	for _, p := range valid {
		legacyGenerate = legacyGenerate || p.GetSpec().HasGenerate()
	}
	if !processorCELSteps && ownCELSteps(pols, legacyGenerate, len(t.ClusterResources) > 0, len(targets)) {
		cel = newCELSteps(pols, excs.CEL, dClient, restMapper, contextPath, gceMap, st.GetHTTPMockIndex())
		celStepSuites.Add(1)
	}
	// Legacy validate.cel rules compiled once (legacycel.go).
	var lc *legacyCEL
	if !processorLegacyCEL && len(excs.Legacy) == 0 && len(t.ClusterResources) == 0 && len(vars.Subresources()) == 0 {
		lc = newLegacyCEL(valid)
	}
	var rc processor.ResultCounts
	evalResource := func(res *unstructured.Unstructured, operation string, defaultRun bool) ([]engineapi.EngineResponse, error) {
		pp := processor.PolicyProcessor{
			Store:                             &st,
			Policies:                          valid,
			ValidatingAdmissionPolicies:       pols.VAPs,
			ValidatingAdmissionPolicyBindings: pols.VAPBindings,
			GeneratingPolicies:                pols.GeneratingPolicies,
			MutatingPolicies:                  pols.MutatingPolicies,
			MutatingAdmissionPolicies:         pols.MAPs,
			MutatingAdmissionPolicyBindings:   pols.MAPBindings,
			TargetResources:                   targets,
			Resource:                          *res,
			Operation:                         operation,
			PolicyExceptions:                  excs.Legacy,
			CELExceptions:                     excs.CEL,
			ParameterResources:                paramObjs,
			Variables:                         vars,
			ContextPath:                       contextPath,
			GlobalContextEntries:              gceMap,
			UserInfo:                          userInfo,
			PolicyReport:                      true,
			NamespaceSelectorMap:              vars.NamespaceSelectors(),
			Rc:                                &rc,
			RuleToCloneSourceResource:         cloneSources,
			Cluster:                           len(t.ClusterResources) > 0,
			Client:                            dClient,
			Subresources:                      vars.Subresources(),
			Out:                               io.Discard,
			ConfigMapResolver:                 cmResolver,
			RESTMapper:                        restMapper,
			CrdPaths:                          crdPaths,
		}
		var (
			ers, gen []engineapi.EngineResponse
			err      error
		)
		run := pp
		if cel != nil {
			run.MutatingPolicies, run.GeneratingPolicies = nil, nil
		}
		apply := func(run processor.PolicyProcessor) ([]engineapi.EngineResponse, error) {
			// The processor compiles Mutating and GeneratingPolicies
			// against the global CEL context it has just set: nothing
			// else may set it meanwhile.
			serialize := len(run.MutatingPolicies) > 0 || len(run.GeneratingPolicies) > 0
			if serialize {
				celMu.Lock()
				defer celMu.Unlock()
			}
			return run.ApplyPoliciesOnResource()
		}
		if lc != nil {
			stubbed := run
			stubbed.Policies = lc.policies(valid)
			ers, err = apply(stubbed)
			if err != nil || !lc.apply(&pp, ers) {
				ers, err = apply(run)
			}
		} else {
			ers, err = apply(run)
		}
		if err == nil && cel != nil {
			ers, gen, err = cel.apply(&pp, ers)
		}
		if err != nil {
			return nil, fmt.Errorf("applying policies to %s: %w", res.GetName(), err)
		}
		if vpols != nil {
			vr, err := vpols.apply(&pp, mutated(*res, ers), operation, &rc)
			if err != nil {
				return nil, err
			}
			ers = insertBeforeGenerate(ers, vr)
		}
		// After the ValidatingPolicies, as in the processor.
		ers = append(ers, gen...)
		if len(pols.ImageValidatingPolicies) > 0 {
			ir, err := applyImageValidating(pols.ImageValidatingPolicies, res, excs.CEL, vars, userInfo, dClient, restMapper, contextPath, gceMap, operation, len(t.ClusterResources) == 0)
			if err != nil {
				return nil, err
			}
			ers = append(ers, ir...)
		}
		if defaultRun && len(pols.DeletingPolicies) > 0 {
			dr, err := applyDeleting(pols.DeletingPolicies, res, excs.CEL, vars, dClient, restMapper, contextPath, gceMap, len(t.ClusterResources) == 0)
			if err != nil {
				return nil, err
			}
			ers = append(ers, dr...)
		}
		return ers, nil
	}
	var all2 []engineapi.EngineResponse
	for _, res := range sortedResources(uniques) {
		key := resourceKey(res)
		ers, err := evalResource(res, "", true)
		if err != nil {
			return nil, err
		}
		all2 = append(all2, ers...)
		ev.trigger[key] = ers
		for _, op := range sets.List(operations) {
			ers, err := evalResource(res, op, false)
			if err != nil {
				return nil, err
			}
			all2 = append(all2, ers...)
			if ev.byOperation[op] == nil {
				ev.byOperation[op] = map[string][]engineapi.EngineResponse{}
			}
			ev.byOperation[op][key] = ers
		}
	}
	for _, target := range targets {
		for _, er := range all2 {
			if r, _ := patchedTarget(target.GetAPIVersion(), target.GetKind(), target.GetName(), target.GetNamespace(), er); r != nil {
				key := resourceKey(target)
				ev.target[key] = append(ev.target[key], er)
			}
		}
	}
	return ev, nil
}

// celMu guards Kyverno's global CEL library context (libs.LibraryContext):
// Kyverno's CEL compilers bind whatever context is global when they compile,
// and every context provider made sets it. Suites run in parallel, so each
// "make a context, then compile" sequence holds this lock.
var celMu sync.Mutex

// Kyverno's CLI keeps the resource groups of the CRDs a suite declares
// (clusterResources' spec.crds) in one global "CRD processor", which the
// processor fills for every resource it evaluates (and panics when none is
// registered: upstream's test command registers one before running tests),
// and which REST mappers and the resource loader read. crdMu makes a suite
// with cluster resources the only one running while it has CRDs loaded;
// the others read the global concurrently.
var (
	crdMu   sync.RWMutex
	crdOnce sync.Once
)

// holdCRDs takes crdMu for a suite, exclusively when it has cluster
// resources (and so may load CRDs), and returns the release. On release, an
// exclusive holder empties the processor: CRDs a suite declares apply to
// that suite only (upstream leaves them to every later suite of the run).
func holdCRDs(exclusive bool) (release func()) {
	crdOnce.Do(func() {
		// A no-op when upstream's test or apply command registered one
		// first (the registration happens once per process).
		data.InjectProcessor(data.NewCRDProcessor(nil))
	})
	if !exclusive {
		crdMu.RLock()
		return crdMu.RUnlock
	}
	crdMu.Lock()
	return func() {
		if p := data.GetProcessor(); p != nil {
			p.UpdateResourceGroups(nil)
		}
		crdMu.Unlock()
	}
}

// validateSafely is Kyverno's policy validation as the test command calls
// it, with a panic (a nil cluster client on some fields) turned into an error.
func validateSafely(p kyvernov1.PolicyInterface, sa string) (warnings []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("Kyverno's validation crashed on this policy: %v", v)
		}
	}()
	return policyvalidation.Validate(p, nil, nil, true, sa, sa)
}

// mutated returns the resource as the processor left it before evaluating
// ValidatingPolicies: the last response of a mutate, image or validate step
// carries it as PatchedResource.
func mutated(res unstructured.Unstructured, ers []engineapi.EngineResponse) unstructured.Unstructured {
	for i := len(ers) - 1; i >= 0; i-- {
		er := ers[i]
		if isGenerate(er) || er.PatchedResource.Object == nil {
			continue
		}
		return er.PatchedResource
	}
	return res
}

func isGenerate(er engineapi.EngineResponse) bool {
	for _, r := range er.PolicyResponse.Rules {
		if r.RuleType() == engineapi.Generation {
			return true
		}
	}
	if p := er.Policy(); p != nil && p.AsGeneratingPolicy() != nil {
		return true
	}
	return false
}

// insertBeforeGenerate keeps upstream's response order: ValidatingPolicy
// responses come after mutation and validation, before generation.
func insertBeforeGenerate(ers, vr []engineapi.EngineResponse) []engineapi.EngineResponse {
	i := len(ers)
	for i > 0 && isGenerate(ers[i-1]) {
		i--
	}
	out := make([]engineapi.EngineResponse, 0, len(ers)+len(vr))
	out = append(append(append(out, ers[:i]...), vr...), ers[i:]...)
	return out
}

// cloneSourceResources maps generate clone rules to the cloneSourceResource
// file named by the test result for them.
func cloneSourceResources(t *v1alpha1.Test, dir string, pols []kyvernov1.PolicyInterface) map[string]string {
	out := map[string]string{}
	for _, p := range pols {
		if !p.GetSpec().HasGenerate() {
			continue
		}
		for _, rule := range autogen.Default.ComputeRules(p, "") {
			if !rule.HasGenerate() {
				continue
			}
			for _, r := range t.Results {
				ns, name := "", r.Policy
				if a, b, ok := strings.Cut(r.Policy, "/"); ok {
					if strings.Contains(b, "/") {
						continue
					}
					ns, name = a, b
				}
				if name == "" || p.GetName() != name || p.GetNamespace() != ns || rule.Name != r.Rule {
					continue
				}
				if len(rule.Generation.CloneList.Kinds) != 0 {
					out[processor.PolicyRuleKey(p, rule.Name)] = path.GetFullPath(r.CloneSourceResource, dir)
				} else if u, err := generate.GetUnstrRule(rule.Generation.DeepCopy()); err == nil {
					if clone, _, _ := unstructured.NestedMap(u.Object, "clone"); len(clone) != 0 {
						out[processor.PolicyRuleKey(p, rule.Name)] = path.GetFullPath(r.CloneSourceResource, dir)
					}
				}
				break
			}
		}
	}
	return out
}

// validatingPolicies is a suite's CEL ValidatingPolicies, compiled once.
type validatingPolicies struct {
	k8s, json  vpolengine.Engine
	context    libs.Context
	restMapper meta.RESTMapper
}

func newValidatingPolicies(pols []policiesv1beta1.ValidatingPolicyLike, excs []*policiesv1beta1.PolicyException,
	ns func(string) *corev1.Namespace, cp libs.Context, rm meta.RESTMapper,
) (*validatingPolicies, error) {
	var k8s, js []policiesv1beta1.ValidatingPolicyLike
	for _, p := range pols {
		if p.GetValidatingPolicySpec().EvaluationMode() == "JSON" {
			js = append(js, p)
		} else {
			k8s = append(k8s, p)
		}
	}
	vp := &validatingPolicies{context: cp, restMapper: rm}
	compiler := vpolcompiler.NewCompiler()
	if len(k8s) > 0 {
		prov, err := vpolengine.NewProvider(compiler, k8s, excs)
		if err != nil {
			return nil, err
		}
		vp.k8s = vpolengine.NewEngine(prov, ns, matching.NewMatcher())
	}
	if len(js) > 0 {
		prov, err := vpolengine.NewProvider(compiler, js, excs)
		if err != nil {
			return nil, err
		}
		vp.json = vpolengine.NewEngine(prov, nil, nil)
	}
	return vp, nil
}

func (vp *validatingPolicies) apply(pp *processor.PolicyProcessor, res unstructured.Unstructured, operation string, rc *processor.ResultCounts,
) ([]engineapi.EngineResponse, error) {
	if res.Object == nil {
		return nil, nil
	}
	cp, restMapper := vp.context, vp.restMapper
	var out []engineapi.EngineResponse
	collect := func(reps celengine.EngineResponse, skipEmptyWithSelector bool, skipEmpty bool) {
		// The engine returns a policy and its autogen variants in map
		// order. Responses with rule results go first so that an empty
		// variant never makes the resource look excluded (upstream's row
		// count varies from run to run here).
		sort.SliceStable(reps.Policies, func(i, j int) bool {
			return len(reps.Policies[i].Rules) > 0 && len(reps.Policies[j].Rules) == 0
		})
		for _, r := range reps.Policies {
			if skipEmpty && len(r.Rules) == 0 {
				continue
			}
			if skipEmptyWithSelector && len(r.Rules) == 0 && isPlainMatch(r.Policy.GetSpec().MatchConstraints) {
				continue
			}
			er := engineapi.EngineResponse{Resource: *reps.Resource, PolicyResponse: engineapi.PolicyResponse{Rules: r.Rules}}
			er = er.WithPolicy(engineapi.NewValidatingPolicyFromLike(r.Policy))
			rc.AddValidatingPolicyResponse(er)
			out = append(out, er)
		}
	}
	if vp.k8s != nil {
		gvk := res.GroupVersionKind()
		gvr, err := resolveGVR(pp, restMapper, gvk, pp.ValidatingPolicies)
		if err != nil {
			return nil, err
		}
		var user authenticationv1.UserInfo
		if pp.UserInfo != nil {
			user = pp.UserInfo.AdmissionUserInfo
		}
		op, obj, old := processor.AdmissionRequestShape(resolveOperation(pp, operation), &res)
		req := celengine.Request(cp, gvk, gvr, "", res.GetName(), res.GetNamespace(), op, user, obj, old, false, nil)
		reps, err := vp.k8s.Handle(context.TODO(), req, nil)
		if err != nil {
			return nil, fmt.Errorf("applying validating policies to %s: %w", res.GetName(), err)
		}
		collect(reps, true, false)
	}
	if vp.json != nil {
		reps, err := vp.json.Handle(context.TODO(), celengine.RequestFromJSON(cp, &res), nil)
		if err != nil {
			return nil, fmt.Errorf("applying JSON-mode validating policies to %s: %w", res.GetName(), err)
		}
		collect(reps, false, true)
	}
	return out, nil
}

func resourceKey(r *unstructured.Unstructured) string {
	return r.GetAPIVersion() + "," + r.GetKind() + "," + r.GetNamespace() + "," + r.GetName()
}

func patchedTarget(apiVersion, kind, name, namespace string, er engineapi.EngineResponse) (*unstructured.Unstructured, *engineapi.RuleResponse) {
	for _, rule := range er.PolicyResponse.Rules {
		r, _, _ := rule.PatchedTarget()
		if r == nil {
			continue
		}
		ns := namespace
		if ns == "" {
			ns = r.GetNamespace()
		}
		if r.GetAPIVersion() == apiVersion && r.GetKind() == kind && r.GetName() == name && r.GetNamespace() == ns {
			rule := rule
			return r, &rule
		}
	}
	return nil, nil
}

// normalizeNumbers turns integers into float64 as upstream does before
// evaluation, so that patterns compare numbers alike.
func normalizeNumbers(in []*unstructured.Unstructured) []*unstructured.Unstructured {
	for _, r := range in {
		r.Object = toFloat(r.Object).(map[string]any)
	}
	return in
}

func toFloat(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = toFloat(e)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toFloat(e)
		}
		return out
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	default:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && !rv.IsNil() {
			return toFloat(rv.Elem().Interface())
		}
		return v
	}
}

func httpMockIndex(mocks []v1alpha1.APICallResponseEntry) (map[string]any, error) {
	if len(mocks) == 0 {
		return nil, nil
	}
	index := make(map[string]any, len(mocks))
	for _, m := range mocks {
		body, err := v1alpha1.RawExtensionToObject(m.Response.Body)
		if err != nil {
			return nil, fmt.Errorf("apiCallResponses %q: invalid body: %w", m.ResolvedURL(), err)
		}
		code := m.Response.StatusCode
		if code == 0 {
			code = 200
		}
		key := m.ResolvedURL()
		if method := strings.ToUpper(strings.TrimSpace(m.Method)); method != "" {
			key = method + ":" + key
		}
		index[key] = map[string]any{"body": body, "statusCode": code}
	}
	return index, nil
}

// loadPolicyDocs loads policy documents the way `kyverno test` loads policy
// files, from memory.
func loadPolicyDocs(docs []byte) (*Policies, error) {
	fs := memfs.New()
	if err := writeMemFile(fs, "/policies.yaml", docs); err != nil {
		return nil, err
	}
	return policy.Load(fs, "", "/policies.yaml")
}

// loadExceptions loads exception files as `kyverno test` does.
func loadExceptions(paths []string) (*Exceptions, error) {
	res, err := exception.Load(paths...)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return &Exceptions{}, nil
	}
	return &Exceptions{Legacy: res.Exceptions, CEL: res.CELExceptions}, nil
}
