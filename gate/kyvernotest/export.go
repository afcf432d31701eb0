package kyvernotest

import (
	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/config"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Helpers shared with other packages that run Kyverno's engine (the witness
// search of the weakening gate), so that they load resources and policies
// the way the test runner does and respect its locks.

// WithCELContext runs fn while holding the lock that guards Kyverno's global
// CEL library context (see celMu). Any code that makes a context provider
// (processor.NewContextProvider, libs.NewContextProvider) or compiles CEL
// policies must do both inside fn, so that the compiled programs bind the
// context made for them and not one made concurrently by a test suite.
func WithCELContext(fn func()) {
	celMu.Lock()
	defer celMu.Unlock()
	fn()
}

// NormalizeNumbers turns integers into float64 in place, as the test
// command does before evaluation, so that patterns compare numbers alike.
func NormalizeNumbers(in []*unstructured.Unstructured) []*unstructured.Unstructured {
	return normalizeNumbers(in)
}

// ValidatePolicy is Kyverno's policy validation as the test command runs it
// (a crash of Kyverno's validator is returned as an error).
func ValidatePolicy(p kyvernov1.PolicyInterface) error {
	sa := config.KyvernoUserName(config.KyvernoServiceAccountName())
	_, err := validateSafely(p, sa)
	return err
}
