package gate

import (
	"reflect"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

func TestTestDirs(t *testing.T) {
	rendered := &render.Result{Resources: []*render.Resource{
		{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "a", Source: "policies/a/a.yaml"},
		{APIVersion: "policies.kyverno.io/v1", Kind: "ValidatingPolicy", Name: "b", Source: "policies/b/b.yaml"},
		{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "a2", Source: "policies/a/a2.yaml"}, // same folder
		{APIVersion: "v1", Kind: "ConfigMap", Name: "c", Source: "config/c.yaml"},                      // not Kyverno's
		{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "d"},                                // no source
	}}
	tests := []struct {
		name  string
		tests []string
		want  []string
	}{
		{"plain and overlay", []string{"tests", "{overlay}/tests"}, []string{"tests", "overlays/prod/tests"}},
		{"policy folders, once each", []string{"{policy-dirs}/.kyverno-test"}, []string{"policies/a/.kyverno-test", "policies/b/.kyverno-test"}},
		{"repeats dropped", []string{"tests", "./tests"}, []string{"tests"}},
		{"not given: the whole repository", nil, []string{"."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Dir: "overlays/prod", Rendered: rendered, Settings: &settings.Settings{Tests: tt.tests}}
			if got := in.TestDirs(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TestDirs() = %q, want %q", got, tt.want)
			}
		})
	}
}
