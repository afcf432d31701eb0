// Package cluster reads what a live cluster enforces: every Kyverno policy
// kind of both API groups, normalised so that a live object compares
// cleanly with the repository's rendering (no server-owned fields, no CRD
// defaults equal to Kyverno's), and Kyverno's own configuration that
// changes enforcement. It only ever gets and lists.
//
// Connections to a cluster happen only before kyverno-gate reads a
// repository: commands take their Snapshot first, then the process closes
// the network (internal/sandbox). Connect refuses once it is closed.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kyverno-gate/kyverno-gate/internal/sandbox"
)

// Kind is one Kyverno policy kind export reads.
type Kind struct {
	Group      string
	Resource   string // plural
	Kind       string
	Namespaced bool
}

// CRD is the name of the kind's CustomResourceDefinition.
func (k Kind) CRD() string { return k.Resource + "." + k.Group }

// Kinds are every kind of Kyverno's policy CRDs (v1.19): ClusterPolicy,
// Policy, both PolicyExceptions, cleanup policies, GlobalContextEntry and
// the CEL kinds with their Namespaced variants.
var Kinds = []Kind{
	{"kyverno.io", "clusterpolicies", "ClusterPolicy", false},
	{"kyverno.io", "policies", "Policy", true},
	{"kyverno.io", "policyexceptions", "PolicyException", true},
	{"kyverno.io", "clustercleanuppolicies", "ClusterCleanupPolicy", false},
	{"kyverno.io", "cleanuppolicies", "CleanupPolicy", true},
	{"kyverno.io", "globalcontextentries", "GlobalContextEntry", false},
	{"policies.kyverno.io", "validatingpolicies", "ValidatingPolicy", false},
	{"policies.kyverno.io", "namespacedvalidatingpolicies", "NamespacedValidatingPolicy", true},
	{"policies.kyverno.io", "imagevalidatingpolicies", "ImageValidatingPolicy", false},
	{"policies.kyverno.io", "namespacedimagevalidatingpolicies", "NamespacedImageValidatingPolicy", true},
	{"policies.kyverno.io", "mutatingpolicies", "MutatingPolicy", false},
	{"policies.kyverno.io", "namespacedmutatingpolicies", "NamespacedMutatingPolicy", true},
	{"policies.kyverno.io", "generatingpolicies", "GeneratingPolicy", false},
	{"policies.kyverno.io", "namespacedgeneratingpolicies", "NamespacedGeneratingPolicy", true},
	{"policies.kyverno.io", "deletingpolicies", "DeletingPolicy", false},
	{"policies.kyverno.io", "namespaceddeletingpolicies", "NamespacedDeletingPolicy", true},
	{"policies.kyverno.io", "policyexceptions", "PolicyException", true},
}

// Source says which cluster to read, as kubectl does: the kubeconfig
// (default: KUBECONFIG, else ~/.kube/config) and a context in it (default:
// its current context).
type Source struct {
	Kubeconfig string
	Context    string
}

// Client reads one cluster.
type Client struct {
	Context string // the context's name
	Server  string
	dyn     dynamic.Interface
}

// ErrNetworkClosed is returned by Connect once the process has closed the
// network for reading the repository.
var ErrNetworkClosed = errors.New("the network is closed: kyverno-gate reads a cluster only before it reads the repository")

// Connect makes a read-only client from src; it makes no request yet.
func Connect(src Source) (*Client, error) {
	if sandbox.NetworkDenied() {
		return nil, ErrNetworkClosed
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if src.Kubeconfig != "" {
		rules.ExplicitPath = src.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: src.Context})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %v", err)
	}
	if len(raw.Contexts) == 0 && src.Kubeconfig == "" && src.Context == "" {
		// No kubeconfig at all: inside a Pod (the CronJob examples), its
		// service account.
		if cfg, err := rest.InClusterConfig(); err == nil {
			return newClient("in-cluster", cfg)
		}
	}
	name := src.Context
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil, errors.New("the kubeconfig has no current context; give --context")
	}
	if _, ok := raw.Contexts[name]; !ok {
		return nil, fmt.Errorf("context %q is not in the kubeconfig", name)
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %s: %v", name, err)
	}
	return newClient(name, cfg)
}

func newClient(name string, cfg *rest.Config) (*Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kyverno-gate"
	cfg.QPS, cfg.Burst = 50, 100
	// Kyverno's deprecation warnings for kyverno.io kinds are for authors,
	// not for a backup.
	cfg.WarningHandler = rest.NoWarnings{}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("context %s: %v", name, err)
	}
	return &Client{Context: name, Server: cfg.Host, dyn: dyn}, nil
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Failure is one kind (or configuration object) that could not be read.
type Failure struct {
	What   string // e.g. "ClusterPolicy (clusterpolicies.kyverno.io)"
	Verb   string // "list", "get"
	Reason string
}

// AccessError is a snapshot that could not read every kind; nothing of it
// may be written.
type AccessError struct {
	Context  string
	Failures []Failure
}

func (e *AccessError) Error() string {
	var parts []string
	for _, f := range e.Failures {
		parts = append(parts, f.What+": "+f.Verb+": "+f.Reason)
	}
	return fmt.Sprintf("context %s: could not read %d kind(s), nothing written: %s", e.Context, len(e.Failures), strings.Join(parts, "; "))
}

// NotInstalledError: the cluster serves none of Kyverno's policy CRDs.
type NotInstalledError struct{ Context string }

func (e *NotInstalledError) Error() string {
	return "context " + e.Context + ": Kyverno's CRDs are not installed (no CustomResourceDefinition clusterpolicies.kyverno.io nor any other Kyverno policy kind); is this the cluster Kyverno runs in?"
}

// Snapshot is what a cluster enforces now.
type Snapshot struct {
	Context string
	Server  string
	Objects []*Object // normalised, sorted by group, kind, namespace, name
	Config  *Config   // Kyverno's own configuration; nil parts were not found
	// Missing lists the kinds whose CRD is not installed (an older Kyverno):
	// the cluster can hold none of them.
	Missing []Kind
	Notes   []string

	// served is each installed kind's served version and schema, by
	// group and kind.
	served map[string]servedKind
}

type servedKind struct {
	kind    Kind
	version string
	schema  *apiextensionsv1.JSONSchemaProps
}

// NormalizeObject makes an object of the repository comparable with the
// snapshot's objects: Normalize with its kind's schema, and apiVersion the
// version the cluster serves and the snapshot was read in. It returns nil
// for an object of no Kyverno kind the cluster serves.
func (s *Snapshot) NormalizeObject(obj map[string]any) (map[string]any, *Kind) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	sk, ok := s.served[group+"/"+kind]
	if !ok {
		return nil, nil
	}
	out := Normalize(obj, sk.schema)
	out["apiVersion"] = group + "/" + sk.version
	if !sk.kind.Namespaced {
		if m, ok := out["metadata"].(map[string]any); ok {
			delete(m, "namespace")
		}
	}
	k := sk.kind
	return out, &k
}

// Object is one live policy object.
type Object struct {
	Kind   Kind
	Object map[string]any // normalised: apiVersion, kind, metadata (name, namespace, labels, annotations), spec...
	// Ready is "True", "False" or "" (no status: Kyverno has not looked
	// at it) from the object's Ready condition; Reason its message.
	Ready  string
	Reason string
}

func (o *Object) APIVersion() string { s, _ := o.Object["apiVersion"].(string); return s }
func (o *Object) Name() string       { return metaString(o.Object, "name") }
func (o *Object) Namespace() string  { return metaString(o.Object, "namespace") }

func metaString(obj map[string]any, key string) string {
	m, _ := obj["metadata"].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// Options of Read.
type Options struct {
	// KyvernoNamespace and KyvernoConfigMap name Kyverno's ConfigMap
	// (default kyverno and kyverno).
	KyvernoNamespace string
	KyvernoConfigMap string
}

// Read takes a snapshot: the CRD of every kind (for its served version
// and defaults), every object of every installed kind, and Kyverno's
// configuration where readable. A kind that cannot be listed fails the
// whole snapshot with an *AccessError naming every such kind.
func (c *Client) Read(ctx context.Context, opts Options) (*Snapshot, error) {
	if opts.KyvernoNamespace == "" {
		opts.KyvernoNamespace = "kyverno"
	}
	if opts.KyvernoConfigMap == "" {
		opts.KyvernoConfigMap = "kyverno"
	}
	snap := &Snapshot{Context: c.Context, Server: c.Server, served: map[string]servedKind{}}
	var failures []Failure
	for _, k := range Kinds {
		what := k.Kind + " (" + k.CRD() + ")"
		u, err := c.dyn.Resource(crdGVR).Get(ctx, k.CRD(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			snap.Missing = append(snap.Missing, k)
			continue
		}
		if err != nil {
			failures = append(failures, Failure{What: what, Verb: "get customresourcedefinition", Reason: reason(err)})
			continue
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &crd); err != nil {
			return nil, fmt.Errorf("CRD %s: %v", k.CRD(), err)
		}
		v := servedVersion(&crd)
		if v == nil {
			snap.Missing = append(snap.Missing, k)
			continue
		}
		gvr := schema.GroupVersionResource{Group: k.Group, Version: v.Name, Resource: k.Resource}
		items, err := c.list(ctx, gvr)
		if err != nil {
			failures = append(failures, Failure{What: what, Verb: "list " + k.Resource + "." + k.Group, Reason: reason(err)})
			continue
		}
		var sch *apiextensionsv1.JSONSchemaProps
		if v.Schema != nil {
			sch = v.Schema.OpenAPIV3Schema
		}
		snap.served[k.Group+"/"+k.Kind] = servedKind{kind: k, version: v.Name, schema: sch}
		for _, it := range items {
			o := &Object{Kind: k}
			o.Ready, o.Reason = readiness(it.Object)
			o.Object = Normalize(it.Object, sch)
			snap.Objects = append(snap.Objects, o)
		}
	}
	if len(snap.Missing) == len(Kinds) && len(failures) == 0 {
		return nil, &NotInstalledError{Context: c.Context}
	}
	if len(failures) > 0 {
		return nil, &AccessError{Context: c.Context, Failures: failures}
	}
	if len(snap.Missing) > 0 {
		var names []string
		for _, k := range snap.Missing {
			names = append(names, k.Kind+" ("+k.CRD()+")")
		}
		snap.Notes = append(snap.Notes, "not installed, so the cluster holds none: "+strings.Join(names, ", "))
	}
	cfg, notes := c.readConfig(ctx, opts)
	snap.Config = cfg
	snap.Notes = append(snap.Notes, notes...)
	SortObjects(snap.Objects)
	return snap, nil
}

// SortObjects orders objects by group, kind, namespace and name.
func SortObjects(objs []*Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i], objs[j]
		if a.Kind.Group != b.Kind.Group {
			return a.Kind.Group < b.Kind.Group
		}
		if a.Kind.Kind != b.Kind.Kind {
			return a.Kind.Kind < b.Kind.Kind
		}
		if a.Namespace() != b.Namespace() {
			return a.Namespace() < b.Namespace()
		}
		return a.Name() < b.Name()
	})
}

func (c *Client) list(ctx context.Context, gvr schema.GroupVersionResource) ([]unstructured.Unstructured, error) {
	var out []unstructured.Unstructured
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := c.dyn.Resource(gvr).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.GetContinue() == "" {
			return out, nil
		}
		opts.Continue = l.GetContinue()
	}
}

// reason is the short cause of an API error.
func reason(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		switch st.Reason {
		case metav1.StatusReasonForbidden:
			return "forbidden (RBAC: the user needs get and list on this kind): " + st.Message
		case metav1.StatusReasonUnauthorized:
			return "unauthorized (the kubeconfig's credentials were refused)"
		}
		return st.Message
	}
	return err.Error()
}

// servedVersion is the CRD's preferred served version, by Kubernetes'
// version priority (v1 before v1beta1 before v1alpha1, GA before beta).
func servedVersion(crd *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinitionVersion {
	var best *apiextensionsv1.CustomResourceDefinitionVersion
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if !v.Served {
			continue
		}
		if best == nil || version.CompareKubeAwareVersionStrings(v.Name, best.Name) > 0 {
			best = v
		}
	}
	return best
}

// readiness reads the Ready condition of Kyverno's statuses: kyverno.io
// kinds keep status.conditions, policies.kyverno.io kinds
// status.conditionStatus (conditions and a ready flag).
func readiness(obj map[string]any) (string, string) {
	status, _ := obj["status"].(map[string]any)
	if status == nil {
		return "", ""
	}
	find := func(conds any) (string, string, bool) {
		list, _ := conds.([]any)
		for _, c := range list {
			m, _ := c.(map[string]any)
			if m["type"] == "Ready" {
				s, _ := m["status"].(string)
				msg, _ := m["message"].(string)
				if msg == "" {
					msg, _ = m["reason"].(string)
				}
				return s, msg, true
			}
		}
		return "", "", false
	}
	if s, msg, ok := find(status["conditions"]); ok {
		return s, msg
	}
	if cs, _ := status["conditionStatus"].(map[string]any); cs != nil {
		if s, msg, ok := find(cs["conditions"]); ok {
			return s, msg
		}
		if r, ok := cs["ready"].(bool); ok {
			msg, _ := cs["message"].(string)
			return boolStatus(r), msg
		}
	}
	if r, ok := status["ready"].(bool); ok {
		return boolStatus(r), ""
	}
	return "", ""
}

func boolStatus(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
