package cluster

import (
	"bytes"
	"encoding/json"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// LastApplied is the annotation client-side kubectl apply keeps.
const LastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// Normalize returns a copy of a live object as the repository would write
// it: apiVersion, kind, metadata with name, namespace, labels and
// annotations only (no uid, resourceVersion, generation,
// creationTimestamp, managedFields, last-applied annotation), no status,
// and with every field the CRD schema sch defaults removed where it holds
// that default (the server adds them; Kyverno's CRD defaults are Kyverno's
// own defaults, so the meaning is unchanged). sch may be nil.
func Normalize(obj map[string]any, sch *apiextensionsv1.JSONSchemaProps) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		switch k {
		case "status", "metadata":
		default:
			out[k] = deepCopy(v)
		}
	}
	meta := map[string]any{}
	if m, ok := obj["metadata"].(map[string]any); ok {
		for _, k := range []string{"name", "namespace"} {
			if v, ok := m[k].(string); ok && v != "" {
				meta[k] = v
			}
		}
		if l, ok := m["labels"].(map[string]any); ok && len(l) > 0 {
			meta["labels"] = deepCopy(l)
		}
		if a, ok := m["annotations"].(map[string]any); ok {
			keep := map[string]any{}
			for k, v := range a {
				if k != LastApplied {
					keep[k] = v
				}
			}
			if len(keep) > 0 {
				meta["annotations"] = keep
			}
		}
	}
	out["metadata"] = meta
	if sch != nil {
		for k, v := range out {
			if k == "metadata" || k == "apiVersion" || k == "kind" {
				continue
			}
			if p, ok := sch.Properties[k]; ok {
				if stripDefaults(v, &p) {
					delete(out, k)
				}
			}
		}
	}
	return out
}

// stripDefaults removes, inside v, the fields that hold their schema
// default, and reports whether v itself holds the default of sch (so the
// caller removes it).
func stripDefaults(v any, sch *apiextensionsv1.JSONSchemaProps) bool {
	if sch.Default != nil && equalJSON(v, sch.Default.Raw) {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			var cs *apiextensionsv1.JSONSchemaProps
			if p, ok := sch.Properties[k]; ok {
				cs = &p
			} else if sch.AdditionalProperties != nil && sch.AdditionalProperties.Schema != nil {
				cs = sch.AdditionalProperties.Schema
			}
			if cs != nil && stripDefaults(child, cs) {
				delete(x, k)
			}
		}
		// An object whose own default is {} reads the same once its
		// defaulted children are gone.
		if len(x) == 0 && sch.Default != nil && equalJSON(x, sch.Default.Raw) {
			return true
		}
	case []any:
		if sch.Items != nil && sch.Items.Schema != nil {
			for _, item := range x {
				// An item is never removed: only fields inside it.
				stripDefaults(item, sch.Items.Schema)
			}
		}
	}
	return false
}

func equalJSON(v any, raw []byte) bool {
	a, err := json.Marshal(v)
	if err != nil {
		return false
	}
	var d any
	if err := json.Unmarshal(raw, &d); err != nil {
		return false
	}
	b, err := json.Marshal(d)
	if err != nil {
		return false
	}
	return bytes.Equal(a, b)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, c := range x {
			m[k] = deepCopy(c)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, c := range x {
			l[i] = deepCopy(c)
		}
		return l
	}
	return v
}
