package floor_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Helpers shared with gate/weaken's and gate/diff's tests (copied: an
// external test package, since these tests run the weaken gate, which
// imports this package).

// evaluation is one gate's outcome as the tests look at it: the findings
// that reject or warn, and every enforcement change or floor violation,
// approved or not.
type evaluation struct {
	Findings []report.Finding
	Items    []report.Finding
}

func evaluate(g gate.Gate, in *gate.Input) (*evaluation, error) {
	out, err := gate.RunOne(context.Background(), in, g)
	if err != nil {
		return nil, err
	}
	return &evaluation{Findings: out.Problems(), Items: out.Changes(g.Name())}, nil
}

// check is what a gate reports that is not approved.
func check(g gate.Gate, in *gate.Input) ([]report.Finding, error) {
	ev, err := evaluate(g, in)
	if err != nil {
		return nil, err
	}
	return ev.Findings, nil
}

func mustReadFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func show(c diff.Change) string {
	return string(c.Class) + " " + c.Kind + " " + c.Policy + " rule=" + c.Rule + " field=" + c.Field + " [" + c.Before + " -> " + c.After + "] " + c.Message + " #" + c.Fingerprint
}

// wantFinding describes a finding; empty fields are not checked, Message
// and Hint are substrings.
type wantFinding struct {
	severity report.Severity
	file     string
	object   string
	rule     string
	message  string
	hint     string
}

func (w wantFinding) matches(f report.Finding) bool {
	return f.Severity == w.severity && (w.file == "" || f.File == w.file) && (w.object == "" || f.Subject.String() == w.object) &&
		(w.rule == "" || f.Rule == w.rule) && strings.Contains(f.Message, w.message) && strings.Contains(f.Hint, w.hint)
}
