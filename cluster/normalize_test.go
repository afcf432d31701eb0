package cluster

import (
	"encoding/json"
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func def(v string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(v)} }

// A schema shaped like ClusterPolicy's: defaults at the policy level, in
// rule items and in a map.
var testSchema = &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
	"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
		"admission":               {Type: "boolean", Default: def("true")},
		"validationFailureAction": {Type: "string", Default: def(`"Audit"`)},
		"webhookTimeoutSeconds":   {Type: "integer", Default: def("10")},
		"options":                 {Type: "object", Default: def("{}"), Properties: map[string]apiextensionsv1.JSONSchemaProps{"mode": {Type: "string", Default: def(`"a"`)}}},
		"rules": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"name":                   {Type: "string"},
				"skipBackgroundRequests": {Type: "boolean", Default: def("true")},
			}}}},
	}},
}}

func TestNormalize(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string
	}{
		{"server fields go",
			`{"apiVersion":"kyverno.io/v1","kind":"ClusterPolicy","metadata":{"name":"p","uid":"u","resourceVersion":"7","generation":2,"creationTimestamp":"2026-01-01T00:00:00Z","managedFields":[{}],"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"status":{"ready":true}}`,
			`{"apiVersion":"kyverno.io/v1","kind":"ClusterPolicy","metadata":{"name":"p"}}`},
		{"labels and other annotations stay",
			`{"apiVersion":"v1","kind":"X","metadata":{"name":"p","namespace":"n","labels":{"a":"b"},"annotations":{"k":"v","kubectl.kubernetes.io/last-applied-configuration":"{}"}}}`,
			`{"apiVersion":"v1","kind":"X","metadata":{"name":"p","namespace":"n","labels":{"a":"b"},"annotations":{"k":"v"}}}`},
		{"defaults go, other values stay",
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{"admission":true,"validationFailureAction":"Enforce","webhookTimeoutSeconds":10,"rules":[{"name":"r","skipBackgroundRequests":true},{"name":"s","skipBackgroundRequests":false}]}}`,
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{"validationFailureAction":"Enforce","rules":[{"name":"r"},{"name":"s","skipBackgroundRequests":false}]}}`},
		{"an object defaulted to {} goes once its defaulted fields are gone",
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{"options":{"mode":"a"},"validationFailureAction":"Audit"}}`,
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{}}`},
		{"a non-default inside a defaulted object stays",
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{"options":{"mode":"b"}}}`,
			`{"kind":"ClusterPolicy","metadata":{"name":"p"},"spec":{"options":{"mode":"b"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var in, want map[string]any
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			before, _ := json.Marshal(in)
			got := Normalize(in, testSchema)
			if !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Errorf("got  %s\nwant %s", g, tc.want)
			}
			if after, _ := json.Marshal(in); string(after) != string(before) {
				t.Errorf("Normalize modified its input")
			}
		})
	}
}

func TestObjectPath(t *testing.T) {
	cases := []struct {
		kind      Kind
		ns, name  string
		want, err string
	}{
		{Kinds[0], "", "require-labels", "kyverno.io/clusterpolicies/require-labels.yaml", ""},
		{Kinds[2], "kyverno", "allow-x", "kyverno.io/policyexceptions/kyverno/allow-x.yaml", ""},
		{Kinds[len(Kinds)-1], "kyverno", "e", "policies.kyverno.io/policyexceptions/kyverno/e.yaml", ""},
		{Kinds[0], "", "../escape", "", `ClusterPolicy "../escape": not a Kubernetes object name`},
		{Kinds[1], "a/b", "p", "", `Policy "a/b": not a Kubernetes object name`},
	}
	for _, tc := range cases {
		meta := map[string]any{"name": tc.name}
		if tc.ns != "" {
			meta["namespace"] = tc.ns
		}
		got, err := ObjectPath(&Object{Kind: tc.kind, Object: map[string]any{"metadata": meta}})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err %v, want %s", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}
