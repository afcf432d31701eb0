package weaken

import (
	"context"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/report"
)

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

var _ = testing.T{}
