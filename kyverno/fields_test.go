package kyverno

import "testing"

func TestSuggestField(t *testing.T) {
	tests := []struct{ kind, path, want string }{
		{"kyverno.io/ClusterPolicy", "spec.validationFailureActon", "validationFailureAction"},
		{"kyverno.io/ClusterPolicy", "spec.rules[0].validate.failureActon", "failureAction"},
		{"kyverno.io/ClusterPolicy", "spec.rules[2].mach", "match"},
		{"kyverno.io/Policy", "spec.backgrund", "background"},
		{"policies.kyverno.io/ValidatingPolicy", "spec.validationActons", "validationActions"},
		{"kyverno.io/PolicyException", "spec.exeptions", "exceptions"},
		{"kyverno.io/ClusterPolicy", "spec.somethingElseEntirely", ""},
		{"example.com/Unknown", "spec.x", ""},
	}
	for _, tt := range tests {
		if got := SuggestField(tt.kind, tt.path); got != tt.want {
			t.Errorf("SuggestField(%s, %s) = %q, want %q", tt.kind, tt.path, got, tt.want)
		}
	}
}

func TestUnknownFields(t *testing.T) {
	msg := `spec.rules[0].validate.failureActon: Invalid value: value provided for unknown field, spec.x: Invalid value: value provided for unknown field`
	got := UnknownFields(msg)
	if len(got) != 2 || got[0] != "spec.rules[0].validate.failureActon" || got[1] != "spec.x" {
		t.Errorf("got %q", got)
	}
}
