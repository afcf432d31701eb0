package kyverno

import (
	"github.com/kyverno-gate/kyverno-gate/internal/suggest"
	"reflect"
	"regexp"
	"strings"

	policiesv1beta1 "github.com/kyverno/api/api/policies.kyverno.io/v1beta1"
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	kyvernov2beta1 "github.com/kyverno/kyverno/api/kyverno/v2beta1"
)

// goTypes maps group/kind to the Go type whose JSON fields the CRD mirrors;
// it is used to suggest the field a typo meant.
var goTypes = map[string]reflect.Type{
	GroupKyverno + "/ClusterPolicy":                    reflect.TypeOf(kyvernov1.ClusterPolicy{}),
	GroupKyverno + "/Policy":                           reflect.TypeOf(kyvernov1.Policy{}),
	GroupKyverno + "/PolicyException":                  reflect.TypeOf(kyvernov2.PolicyException{}),
	GroupKyverno + "/CleanupPolicy":                    reflect.TypeOf(kyvernov2.CleanupPolicy{}),
	GroupKyverno + "/ClusterCleanupPolicy":             reflect.TypeOf(kyvernov2.ClusterCleanupPolicy{}),
	GroupKyverno + "/GlobalContextEntry":               reflect.TypeOf(kyvernov2beta1.GlobalContextEntry{}),
	GroupPolicies + "/PolicyException":                 reflect.TypeOf(policiesv1beta1.PolicyException{}),
	GroupPolicies + "/ValidatingPolicy":                reflect.TypeOf(policiesv1beta1.ValidatingPolicy{}),
	GroupPolicies + "/NamespacedValidatingPolicy":      reflect.TypeOf(policiesv1beta1.NamespacedValidatingPolicy{}),
	GroupPolicies + "/ImageValidatingPolicy":           reflect.TypeOf(policiesv1beta1.ImageValidatingPolicy{}),
	GroupPolicies + "/NamespacedImageValidatingPolicy": reflect.TypeOf(policiesv1beta1.NamespacedImageValidatingPolicy{}),
	GroupPolicies + "/MutatingPolicy":                  reflect.TypeOf(policiesv1beta1.MutatingPolicy{}),
	GroupPolicies + "/NamespacedMutatingPolicy":        reflect.TypeOf(policiesv1beta1.NamespacedMutatingPolicy{}),
	GroupPolicies + "/GeneratingPolicy":                reflect.TypeOf(policiesv1beta1.GeneratingPolicy{}),
	GroupPolicies + "/NamespacedGeneratingPolicy":      reflect.TypeOf(policiesv1beta1.NamespacedGeneratingPolicy{}),
	GroupPolicies + "/DeletingPolicy":                  reflect.TypeOf(policiesv1beta1.DeletingPolicy{}),
	GroupPolicies + "/NamespacedDeletingPolicy":        reflect.TypeOf(policiesv1beta1.NamespacedDeletingPolicy{}),
}

var unknownFieldRE = regexp.MustCompile(`([A-Za-z0-9_$.\[\]-]+): Invalid value: value provided for unknown field`)

// UnknownFields returns the paths of unknown fields named in a schema error.
func UnknownFields(msg string) []string {
	var out []string
	for _, m := range unknownFieldRE.FindAllStringSubmatch(msg, -1) {
		out = append(out, m[1])
	}
	return out
}

// SuggestField returns the field of kind (group/Kind) that the unknown field
// path most likely meant, or "" when nothing is close.
func SuggestField(groupKind, path string) string {
	t, ok := goTypes[groupKind]
	if !ok {
		return ""
	}
	segs := strings.Split(stripIndexes(path), ".")
	for _, s := range segs[:len(segs)-1] {
		if t = fieldType(t, s); t == nil {
			return ""
		}
	}
	return nearest(segs[len(segs)-1], jsonFields(t))
}

var indexRE = regexp.MustCompile(`\[[^\]]*\]`)

func stripIndexes(p string) string { return indexRE.ReplaceAllString(p, "") }

// deref follows pointers, slices and arrays to the element struct type.
func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

func fieldType(t reflect.Type, name string) reflect.Type {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, inline := jsonName(f)
		if inline {
			if ft := fieldType(f.Type, name); ft != nil {
				return ft
			}
			continue
		}
		if tag == name {
			return f.Type
		}
	}
	return nil
}

func jsonFields(t reflect.Type) []string {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, inline := jsonName(f)
		if inline {
			out = append(out, jsonFields(f.Type)...)
		} else if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}

func jsonName(f reflect.StructField) (name string, inline bool) {
	tag := f.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(opts, "inline") || (name == "" && f.Anonymous) {
		return "", true
	}
	if name == "" && f.IsExported() {
		return f.Name, false
	}
	return name, false
}

// nearest returns the candidate closest to word, if close enough to be a
// plausible typo.
func nearest(word string, candidates []string) string { return suggest.Nearest(word, candidates) }
