package suggest

import "testing"

func TestNearest(t *testing.T) {
	for _, tc := range []struct {
		word       string
		candidates []string
		want       string
	}{
		{"gen", []string{"generate", "check", "test", "lock"}, "generate"},
		{"lokc", []string{"generate", "check", "test", "lock"}, "lock"},
		{"timeot", []string{"timeout", "tests", "baseline"}, "timeout"},
		{"validationFailureActon", []string{"validationFailureAction", "validationFailureActionOverrides"}, "validationFailureAction"},
		{"frobnicate", []string{"generate", "check"}, ""},
		{"x", []string{"a", "b"}, "a"},
	} {
		if got := Nearest(tc.word, tc.candidates); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}
