package weaken

import (
	"context"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/gate/witness"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Witnesses. For every blocking change the gate looks for evidence: a
// resource from the repository's test suites (the resources: files of the
// suites the test gate runs) or from the sample folders that the baseline
// denies and the head admits, proven with Kyverno's engine (package
// witness). The finding then names it ("now admits <file> (<Kind ns/name>),
// which the baseline denied"), and an unknown change proven on its own
// becomes weaker. The fingerprint does not change, so approvals stay valid.
// The search never fails the gate: its problems are logged.

// witnesses returns the witness of each blocking change (nil entries where
// none was found or skip says not to search), or nil when the search is off.
func (g Gate) witnesses(ctx context.Context, in *gate.Input, base, head []*kyverno.Object, blocking []diff.Change, skip func(diff.Change) bool) []*witness.Witness {
	if g.NoWitnesses || len(blocking) == 0 {
		return nil
	}
	var targets []witness.Target
	var index []int
	for i, c := range blocking {
		if skip != nil && skip(c) {
			continue
		}
		targets = append(targets, witness.Target{Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Migration: c.Migration != nil})
		index = append(index, i)
	}
	if len(targets) == 0 {
		return nil
	}
	repo, _ := in.Repository() // nil: the search finds nothing and says so
	opts := witness.Options{
		Repo:          repo,
		Samples:       g.samples(in),
		Budget:        g.WitnessBudget,
		MaxCandidates: g.MaxWitnessCandidates,
		Logf:          func(format string, args ...any) { in.Logf("weaken: "+format, args...) },
	}
	if in.Settings != nil {
		opts.TestDirs = in.TestDirs()
		opts.TestFileName = in.Settings.TestFileName
		if in.TestsEverywhere() && repo != nil {
			// The test gate's search: the suites that name a rendered
			// policy, not every suite of the repository.
			opts.Suites = func() ([]*kyvernotest.Suite, error) {
				found, err := kyvernotest.SearchFor(in)
				if err != nil {
					return nil, err
				}
				return found.Suites, nil
			}
		}
	}
	if in.Stage != nil {
		in.Stage("weaken gate: searching for witnesses")
	}
	found := witness.Search(ctx, opts, base, head, targets)
	out := make([]*witness.Witness, len(blocking))
	for j, w := range found {
		out[index[j]] = w
	}
	return out
}

// samples are the folders of sample resources: the Gate's own, else the
// samples parameter.
func (g Gate) samples(in *gate.Input) []string {
	if g.Samples != nil {
		return g.Samples
	}
	if in.Settings != nil {
		return in.Settings.Samples
	}
	return nil
}

// reportWitness is w as reports show it.
func reportWitness(w *witness.Witness) *report.Witness {
	return &report.Witness{File: w.File, APIVersion: w.APIVersion, Kind: w.Kind, Namespace: w.Namespace, Name: w.Name,
		PolicyKind: w.PolicyKind, Policy: w.Policy, Rule: w.Rule, Message: w.Message, Template: w.Template, Pattern: w.Pattern, Exclusive: w.Exclusive}
}

// witnessMessage is the sentence a finding gets for its witness.
func witnessMessage(w *witness.Witness) string {
	s := "; now admits " + w.String() + ", which the baseline denied"
	if !w.Exclusive {
		s += " (this or another change to the same policy lets it through)"
	}
	return s
}
