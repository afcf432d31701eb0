package render

import (
	"strings"

	"sigs.k8s.io/kustomize/kyaml/resid"
)

// kustomize's legacy order (api/internal/builtins/SortOrderTransformer.go,
// marked "DO NOT CHANGE" there), for joining slices built apart (chunk.go):
// kinds of legacyFirst first in that order, legacyLast last, the rest by
// group_version_kind, then by ID string. IDs are unique, so the order is
// total and does not depend on the input order; joinSlices checks that it
// agrees with kustomize's on every slice.
var (
	legacyFirst = []string{"Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
		"ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
		"ConfigMap", "Secret", "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume",
		"PersistentVolumeClaim", "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"}
	legacyLast = []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
)

type legacyKey struct {
	gvk    resid.Gvk
	rank   int
	gvkStr string
	idStr  string
}

func newLegacyKey(id resid.ResId, first, last []string) legacyKey {
	rank := 0
	// As kustomize builds its map: a kind in both lists ranks as a last one.
	for i, k := range first {
		if k == id.Kind {
			rank = -len(first) + i
		}
	}
	for i, k := range last {
		if k == id.Kind {
			rank = 1 + i
		}
	}
	ns, name := id.Namespace, id.Name
	if ns == "" {
		ns = "~X"
	}
	if name == "" {
		name = "~N"
	}
	return legacyKey{gvk: id.Gvk, rank: rank, gvkStr: legacyGVKString(id.Gvk),
		idStr: strings.Join([]string{id.Gvk.String(), ns, name}, "|")}
}

func legacyGVKString(x resid.Gvk) string {
	g, v, k := x.Group, x.Version, x.Kind
	if g == "" {
		g = "~G"
	}
	if v == "" {
		v = "~V"
	}
	if k == "" {
		k = "~K"
	}
	return strings.Join([]string{g, v, k}, "_")
}

func (a legacyKey) less(b legacyKey) bool {
	if !a.gvk.Equals(b.gvk) {
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.gvk.Kind == "Namespace" && b.gvk.Kind == "Namespace" && (a.gvk.Group == "" || b.gvk.Group == "") {
			return a.gvkStr > b.gvkStr
		}
		return a.gvkStr < b.gvkStr
	}
	return a.idStr < b.idStr
}
