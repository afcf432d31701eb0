package kyvernotest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/data"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/processor"
	celengine "github.com/kyverno/kyverno/pkg/cel/engine"
	"github.com/kyverno/kyverno/pkg/cel/libs"
	"github.com/kyverno/kyverno/pkg/cel/matching"
	gpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/gpol/compiler"
	gpolengine "github.com/kyverno/kyverno/pkg/cel/policies/gpol/engine"
	mpolcompiler "github.com/kyverno/kyverno/pkg/cel/policies/mpol/compiler"
	mpolengine "github.com/kyverno/kyverno/pkg/cel/policies/mpol/engine"
	"github.com/kyverno/kyverno/pkg/clients/dclient"
	engineapi "github.com/kyverno/kyverno/pkg/engine/api"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/openapi"
	"sigs.k8s.io/kubectl-validate/pkg/openapiclient"
)

// Mutating and GeneratingPolicies outside the processor (issue 18).
//
// Inside PolicyProcessor.ApplyPoliciesOnResource, the MutatingPolicy step
// and the GeneratingPolicy step each make a context provider
// (processor.NewContextProvider, which assigns the global
// libs.LibraryContext) and then compile the policies (the mpol and gpol
// compilers read libs.GetLibsCtx() once, at compile time, and bind it into
// the CEL libraries of the programs). Nothing else in those steps reads the
// global: evaluation goes through the compiled programs and the provider
// passed in the request (Kyverno v1.19.1: pkg/cel/libs/context.go,
// pkg/cel/policies/{mpol,gpol}/compiler, cmd/cli/kubectl-kyverno/processor).
// So only "make the provider, compile" needs celMu. Since the processor does
// both per resource, holding celMu around it serialised every suite with
// such policies; here the processor runs without them and these steps are
// done the processor's way, with celMu held only around making the
// provider and compiling.
//
// MutatingPolicies are compiled once per suite, with one provider (as the
// suite's ValidatingPolicies are): the mpol CEL libraries only read the fake
// provider (resources and images of the context file, global context
// entries, HTTP mocks: the same for every resource of the suite).
// GeneratingPolicies keep a provider and a compilation per resource, as
// upstream: the generator library records generated resources in its
// provider.
//
// Only suites where this changes nothing in the processor's order of steps
// or in what each step sees take this path (ownCELSteps); the others run
// the processor whole under celMu, as before.

// ownCELSteps reports whether a suite's Mutating and GeneratingPolicies are
// evaluated here. Excluded: VAPs (the processor evaluates them on the
// resource after the MutatingPolicies and puts them last), legacy generate
// rules (evaluated after the GeneratingPolicies, on the mutated resource),
// target resources (mutateExisting), cluster resources (a real provider
// with informers, CRD OpenAPI documents).
func ownCELSteps(pols *Policies, legacyGenerate, cluster bool, targets int) bool {
	if len(pols.MutatingPolicies) == 0 && len(pols.GeneratingPolicies) == 0 {
		return false
	}
	return !legacyGenerate && !cluster && targets == 0 && len(pols.VAPs) == 0
}

// For TestCELStepsAgreeWithProcessor: processorCELSteps leaves every
// suite's Mutating and GeneratingPolicies to the processor (as before
// these steps were taken out of it); celStepSuites counts the suites that
// took them out.
var (
	processorCELSteps bool
	celStepSuites     atomic.Int64
	// processorLegacyCEL leaves legacy validate.cel rules to the
	// processor (legacycel.go).
	processorLegacyCEL bool
	legacyCELResponses atomic.Int64 // stub responses replaced
)

// celSteps is one suite's Mutating and GeneratingPolicies.
type celSteps struct {
	mpols []policiesv1beta1.MutatingPolicyLike
	gpols []policiesv1beta1.GeneratingPolicyLike
	excs  []*policiesv1beta1.PolicyException

	client      dclient.Interface
	restMapper  meta.RESTMapper
	contextPath string
	gce         map[string]any
	httpMocks   map[string]any

	// The suite's MutatingPolicies, compiled once, and what compiling
	// them returned: the processor returns the same error for every
	// resource.
	mctx  libs.Context
	mprov mpolengine.Provider
	merr  error
}

func newCELSteps(pols *Policies, excs []*policiesv1beta1.PolicyException, client dclient.Interface, rm meta.RESTMapper,
	contextPath string, gce, httpMocks map[string]any,
) *celSteps {
	c := &celSteps{
		mpols: pols.MutatingPolicies, gpols: pols.GeneratingPolicies, excs: excs,
		client: client, restMapper: rm, contextPath: contextPath, gce: gce, httpMocks: httpMocks,
	}
	if len(c.mpols) > 0 {
		celMu.Lock() // see celMu: the context is made and bound below
		c.mctx, c.merr = c.newContext()
		if c.merr == nil {
			c.mprov, c.merr = mpolengine.NewProvider(mpolcompiler.NewCompiler(), c.mpols, c.excs, c.mctx)
		}
		celMu.Unlock()
	}
	return c
}

// newContext is the processor's provider for a suite without cluster
// resources (isFake).
func (c *celSteps) newContext() (libs.Context, error) {
	return processor.NewContextProvider(c.client, c.restMapper, nil, c.contextPath, true, true, c.gce, c.httpMocks)
}

// apply runs the MutatingPolicy and GeneratingPolicy steps on one resource
// after the processor ran the steps before them (ers, its responses), as
// the processor would: it returns ers with the MutatingPolicy responses
// appended, and the GeneratingPolicy responses, which go after the
// ValidatingPolicies. pp is the suite's processor with all its policies.
func (c *celSteps) apply(pp *processor.PolicyProcessor, ers []engineapi.EngineResponse) (out, gen []engineapi.EngineResponse, err error) {
	// The processor's resource at this point: every step before these
	// sets it to the PatchedResource of the response it appends.
	resource := pp.Resource
	if len(ers) > 0 {
		resource = ers[len(ers)-1].PatchedResource
	}
	gvk := processorGVK(pp)
	gvr := func() (schema.GroupVersionResource, error) {
		mapping, err := c.restMapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			return mapping.Resource, nil
		}
		// pp.Cluster is false here (ownCELSteps).
		r, err := resolveResourceName(pp, gvk.Kind)
		if err != nil {
			return schema.GroupVersionResource{}, fmt.Errorf("failed to map gvk to gvr %s: %w", gvk, err)
		}
		return schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: r}, nil
	}
	request := func(cp libs.Context, gvr schema.GroupVersionResource) celengine.EngineRequest {
		var user authenticationv1.UserInfo
		if pp.UserInfo != nil {
			user = pp.UserInfo.AdmissionUserInfo
		}
		op, obj, old := processor.AdmissionRequestShape(resolveOperation(pp, pp.Operation), &resource)
		return celengine.Request(cp, gvk, gvr, "", resource.GetName(), resource.GetNamespace(), op, user, obj, old, false, nil)
	}
	out = ers
	if len(c.mpols) > 0 {
		if c.merr != nil {
			return nil, nil, c.merr
		}
		if resource.Object != nil {
			eng := mpolengine.NewEngine(c.mprov, pp.Variables.Namespace, matching.NewMatcher(), sharedTypeConverters(), c.mctx)
			r, err := gvr()
			if err != nil {
				return nil, nil, err
			}
			reps, err := eng.Handle(context.TODO(), request(c.mctx, r), nil)
			if err != nil {
				return nil, nil, fmt.Errorf("failed to apply mutating policies on resource %s (%w)", resource.GetName(), err)
			}
			for _, r := range reps.Policies {
				if len(r.Rules) == 0 && isPlainMatch(r.Policy.GetSpec().MatchConstraints) {
					continue
				}
				patched := *reps.Resource
				if reps.PatchedResource != nil {
					patched = *reps.PatchedResource
				}
				er := engineapi.EngineResponse{
					Resource:        *reps.Resource,
					PatchedResource: patched,
					PolicyResponse:  engineapi.PolicyResponse{Rules: r.Rules},
				}
				er = er.WithPolicy(engineapi.NewMutatingPolicyFromLike(r.Policy))
				out = append(out, er)
				resource = er.PatchedResource
			}
		}
	}
	if len(c.gpols) > 0 {
		var (
			cp       libs.Context
			compiled []gpolengine.Policy
		)
		celMu.Lock() // see celMu: the context is made and bound below
		cp, err = c.newContext()
		if err == nil {
			compiler := gpolcompiler.NewCompiler()
			for _, pol := range c.gpols {
				p, errs := compiler.Compile(pol, c.excs)
				if len(errs) > 0 {
					err = fmt.Errorf("failed to compile policy %s (%w)", pol.GetName(), errs.ToAggregate())
					break
				}
				compiled = append(compiled, gpolengine.Policy{
					Policy:         engineapi.NewGeneratingPolicyFromLike(pol).AsGeneratingPolicy(),
					CompiledPolicy: p,
				})
			}
		}
		celMu.Unlock()
		if err != nil {
			return nil, nil, err
		}
		if resource.Object != nil {
			eng := gpolengine.NewEngine(pp.Variables.Namespace, matching.NewMatcher())
			r, err := gvr()
			if err != nil {
				return nil, nil, err
			}
			req := request(cp, r)
			for _, policy := range compiled {
				resp, err := eng.Handle(req, policy, false)
				if err != nil {
					return nil, nil, err
				}
				for _, res := range resp.Policies {
					if res.Result == nil {
						continue
					}
					er := engineapi.EngineResponse{
						Resource:       *resp.Trigger,
						PolicyResponse: engineapi.PolicyResponse{Rules: []engineapi.RuleResponse{*res.Result}},
					}
					gen = append(gen, er.WithPolicy(engineapi.NewGeneratingPolicyFromLike(res.Policy)))
				}
			}
		}
	}
	// The processor also prints each response (to io.Discard here) with a
	// YAML encoder that cannot fail on decoded JSON values, and counts it
	// (pp.Rc, which the test gate does not read).
	return out, gen, nil
}

// processorGVK is the processor's gvk of the resource without cluster
// resources: a declared subresource is evaluated as its parent's kind.
func processorGVK(pp *processor.PolicyProcessor) schema.GroupVersionKind {
	gvk := pp.Resource.GroupVersionKind()
	for _, s := range pp.Subresources {
		sub := schema.GroupVersionKind{Group: s.Subresource.Group, Version: s.Subresource.Version, Kind: s.Subresource.Kind}
		if gvk == sub {
			gvk = schema.GroupVersionKind{Group: s.ParentResource.Group, Version: s.ParentResource.Version, Kind: s.ParentResource.Kind}
		}
	}
	return gvk
}

// resolveResourceName is the processor's resolveResource: the plural
// guessed from the kind, else named by a CEL policy's resource rules (the
// processor's own ValidatingPolicies are none: the test gate evaluates
// them itself).
func resolveResourceName(pp *processor.PolicyProcessor, kind string) (string, error) {
	if guessed, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Kind: kind}); guessed.Resource != "" {
		return guessed.Resource, nil
	}
	lower := strings.ToLower(kind)
	for _, p := range pp.MutatingPolicies {
		if r, ok := resourceNamed(p.GetSpec().MatchConstraints, lower); ok {
			return r, nil
		}
	}
	for _, p := range pp.GeneratingPolicies {
		if r, ok := resourceNamed(p.GetSpec().MatchConstraints, lower); ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("failed to infer resource name for Kind %q: no RESTMapper available and no matching policy resource rule found", kind)
}

// typeConverters is one type-converter manager for the process: the
// processor makes one per resource, from the same OpenAPI documents (the
// CLI's embedded CRDs and the hard-coded built-ins, for a suite without
// cluster resources), and each re-reads a group version's document the first
// time it is asked for it. Kyverno's manager fills its path table without a
// lock, so calls are serialised here; the converters it returns are safe
// for concurrent use (the API server shares them between requests).
type typeConverters struct {
	mu  sync.Mutex
	tcm mpolcompiler.TypeConverterManager
}

func (t *typeConverters) GetTypeConverter(gvk schema.GroupVersionKind) managedfields.TypeConverter {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tcm.GetTypeConverter(gvk)
}

var sharedTypeConverters = sync.OnceValue(func() mpolcompiler.TypeConverterManager {
	// The processor's openAPI() without cluster and CRD paths.
	var clients []openapi.Client
	if crds, err := data.Crds(); err == nil {
		clients = append(clients, openapiclient.NewLocalSchemaFiles(crds))
	}
	clients = append(clients, openapiclient.NewHardcodedBuiltins("1.32"))
	return &typeConverters{tcm: mpolcompiler.NewStaticTypeConverterManager(openapiclient.NewComposite(clients...))}
})

// resourceNamed returns the resource of constraints' resource rules whose
// name (without subresource) is kind, lower-cased.
func resourceNamed(mc *admissionregistrationv1.MatchResources, kind string) (string, bool) {
	if mc == nil {
		return "", false
	}
	for _, rr := range mc.ResourceRules {
		for _, r := range rr.Resources {
			base, _, _ := strings.Cut(r, "/")
			if strings.ToLower(base) == kind {
				return base, true
			}
		}
	}
	return "", false
}
