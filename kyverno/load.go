// Package kyverno turns rendered resources into Kyverno's own typed objects,
// the way Kyverno's CLI loader does: each document is checked against
// Kyverno's CRD schemas (unknown fields are errors, CRD defaults applied) and
// converted to the Go type Kyverno's engine and validators use. Loading one
// document at a time keeps every error attached to its object.
//
// This is the only package besides the gates that imports Kyverno, so that
// the cost of linking it stays in one place.
package kyverno

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/data"
	"github.com/kyverno/kyverno/ext/resource/convert"
	resourceloader "github.com/kyverno/kyverno/ext/resource/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/kubectl-validate/pkg/openapiclient"

	"github.com/kyverno-gate/kyverno-gate/internal/parallel"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// Groups whose objects are Kyverno's.
const (
	GroupKyverno  = "kyverno.io"
	GroupPolicies = "policies.kyverno.io"
)

// IsKyverno reports whether r belongs to one of Kyverno's API groups.
func IsKyverno(r *render.Resource) bool { return r.IsKyverno() }

// Object is one rendered Kyverno object, loaded. Exactly one typed field is
// set when Err is nil.
type Object struct {
	Resource *render.Resource
	GVK      schema.GroupVersionKind
	// Defaulted is the object after schema validation and CRD defaults.
	Defaulted unstructured.Unstructured
	Err       error // schema or conversion error

	Policy       kyvernov1.PolicyInterface // ClusterPolicy, Policy
	Exception    *kyvernov2.PolicyException
	CELException *policiesv1beta1.PolicyException // any policies.kyverno.io version
	Validating   policiesv1beta1.ValidatingPolicyLike
	Image        policiesv1beta1.ImageValidatingPolicyLike
	Mutating     policiesv1beta1.MutatingPolicyLike
	Generating   policiesv1beta1.GeneratingPolicyLike
	Deleting     policiesv1beta1.DeletingPolicyLike
	Cleanup      kyvernov2.CleanupPolicyInterface
	GlobalCtx    *unstructured.Unstructured // GlobalContextEntry: schema-checked only
}

// ID names the object for messages.
func (o *Object) ID() string { return o.Resource.ID() }

// schemaLoader validates documents against Kyverno's embedded CRDs and the
// Kubernetes built-ins, as the CLI does. Building it parses every CRD, so it
// is built once per process.
var schemaLoader = sync.OnceValues(func() (resourceloader.Loader, error) {
	crds, err := data.Crds()
	if err != nil {
		return nil, err
	}
	return resourceloader.New(openapiclient.NewComposite(
		openapiclient.NewHardcodedBuiltins("1.32"),
		openapiclient.NewLocalCRDFiles(crds),
	))
})

// loadKey keys LoadResult's value in a rendering's memo.
type loadKey struct{}

// LoadResult is Load over a whole rendering, done once per rendering: the
// validate, weaken and floor gates (and reports) of one run share the
// loaded objects. They are shared, so callers must not modify them; deep-copy
// what needs changing (as the witness search does). The slice is clipped, so
// appending to it never writes into the shared one.
func LoadResult(res *render.Result) ([]*Object, error) {
	v, err := res.Memo(loadKey{}, func() (any, error) { return Load(res.Resources) })
	if err != nil {
		return nil, err
	}
	objs := v.([]*Object)
	return objs[:len(objs):len(objs)], nil
}

// Load loads every Kyverno object among resources, in order. Prefer
// LoadResult for a whole rendering. Objects load on every core (Kyverno's
// loader is most of a large rendering's load time), the first of each
// apiVersion and kind alone first: kubectl-validate computes a kind's
// structural schema on first use, without a lock.
func Load(resources []*render.Resource) ([]*Object, error) {
	var todo []*render.Resource
	for _, r := range resources {
		if IsKyverno(r) {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	// Built on first need: parsing Kyverno's CRDs is most of the start-up
	// cost of a run.
	l, err := schemaLoader()
	if err != nil {
		return nil, fmt.Errorf("loading Kyverno's schemas: %w", err)
	}
	out := make([]*Object, len(todo))
	first := map[[2]string]bool{}
	var rest []int
	for i, r := range todo {
		if k := [2]string{r.APIVersion, r.Kind}; !first[k] {
			first[k] = true
			out[i] = loadOne(l, r)
		} else {
			rest = append(rest, i)
		}
	}
	parallel.Each(len(rest), func(j int) { out[rest[j]] = loadOne(l, todo[rest[j]]) })
	return out, nil
}

func loadOne(l resourceloader.Loader, r *render.Resource) *Object {
	o := &Object{Resource: r}
	doc, err := json.Marshal(r.Object)
	if err != nil {
		o.Err = err
		return o
	}
	gvk, u, err := l.Load(doc)
	o.GVK = gvk
	if err != nil {
		o.Err = cleanLoadError(err)
		return o
	}
	o.Defaulted = u
	o.Err = o.convert(u)
	return o
}

func (o *Object) convert(u unstructured.Unstructured) error {
	var err error
	switch o.GVK.Group + "/" + o.GVK.Kind {
	case GroupKyverno + "/ClusterPolicy":
		var p *kyvernov1.ClusterPolicy
		p, err = convert.To[kyvernov1.ClusterPolicy](u)
		if err == nil {
			o.Policy = p
		}
	case GroupKyverno + "/Policy":
		var p *kyvernov1.Policy
		p, err = convert.To[kyvernov1.Policy](u)
		if err == nil {
			o.Policy = p
		}
	case GroupKyverno + "/PolicyException":
		o.Exception, err = convert.To[kyvernov2.PolicyException](u)
	case GroupKyverno + "/CleanupPolicy":
		var p *kyvernov2.CleanupPolicy
		p, err = convert.To[kyvernov2.CleanupPolicy](u)
		if err == nil {
			o.Cleanup = p
		}
	case GroupKyverno + "/ClusterCleanupPolicy":
		var p *kyvernov2.ClusterCleanupPolicy
		p, err = convert.To[kyvernov2.ClusterCleanupPolicy](u)
		if err == nil {
			o.Cleanup = p
		}
	case GroupKyverno + "/GlobalContextEntry":
		o.GlobalCtx = &u
	// The CEL kinds share one Go spec type across v1alpha1, v1beta1 and v1,
	// so every served version converts to the v1beta1 type the engine uses.
	case GroupPolicies + "/PolicyException":
		o.CELException, err = convert.To[policiesv1beta1.PolicyException](u)
	case GroupPolicies + "/ValidatingPolicy":
		o.Validating, err = to[policiesv1beta1.ValidatingPolicy](u)
	case GroupPolicies + "/NamespacedValidatingPolicy":
		o.Validating, err = to[policiesv1beta1.NamespacedValidatingPolicy](u)
	case GroupPolicies + "/ImageValidatingPolicy":
		o.Image, err = to[policiesv1beta1.ImageValidatingPolicy](u)
	case GroupPolicies + "/NamespacedImageValidatingPolicy":
		o.Image, err = to[policiesv1beta1.NamespacedImageValidatingPolicy](u)
	case GroupPolicies + "/MutatingPolicy":
		o.Mutating, err = to[policiesv1beta1.MutatingPolicy](u)
	case GroupPolicies + "/NamespacedMutatingPolicy":
		o.Mutating, err = to[policiesv1beta1.NamespacedMutatingPolicy](u)
	case GroupPolicies + "/GeneratingPolicy":
		o.Generating, err = to[policiesv1beta1.GeneratingPolicy](u)
	case GroupPolicies + "/NamespacedGeneratingPolicy":
		o.Generating, err = to[policiesv1beta1.NamespacedGeneratingPolicy](u)
	case GroupPolicies + "/DeletingPolicy":
		o.Deleting, err = to[policiesv1beta1.DeletingPolicy](u)
	case GroupPolicies + "/NamespacedDeletingPolicy":
		o.Deleting, err = to[policiesv1beta1.NamespacedDeletingPolicy](u)
	default:
		return fmt.Errorf("%s is not a Kyverno kind this version of Kyverno knows", o.GVK)
	}
	return err
}

// to converts u to *T and returns it as the interface the caller expects.
func to[T any](u unstructured.Unstructured) (*T, error) { return convert.To[T](u) }

// cleanLoadError strips the loader's wrapping ("failed to validate resource
// (...)") so the reader sees the field and the reason first.
func cleanLoadError(err error) error {
	msg := err.Error()
	for _, p := range []string{"failed to validate resource (", "failed to parse document ("} {
		if strings.HasPrefix(msg, p) && strings.HasSuffix(msg, ")") {
			msg = strings.TrimSuffix(strings.TrimPrefix(msg, p), ")")
		}
	}
	return &LoadError{Msg: msg}
}

// LoadError is a schema or parse error of one object.
type LoadError struct{ Msg string }

func (e *LoadError) Error() string { return e.Msg }

// SetLogger routes the logs of Kyverno and controller-runtime to l; without
// it controller-runtime prints a stack trace to stderr on its first log call.
// kyverno-gate passes a discarding logger unless debugging.
func SetLogger(l logr.Logger) {
	ctrllog.SetLogger(l)
}
