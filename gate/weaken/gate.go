// Package weaken is the weakening gate: it rejects a rendering that
// weakens enforcement compared with its baseline (the diff engine, package
// diff, decides what is weaker), unless an approval covers each weakening,
// backs findings with witnesses (package witness), warns about stale
// approvals and sets the overlay's posture column. The floor gate (package
// floor) shares the engine; this gate imports it only for floor.Changes,
// the floor violations whose approvals are not stale (see package floor
// for the layout).
package weaken

import (
	"context"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/floor"
	"github.com/kyverno-gate/kyverno-gate/gate/witness"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Gate rejects a rendering that weakens enforcement compared with
// in.Baseline, unless each weakening carries its approval (see
// gate/diff/approval.go). Without a baseline it finds nothing, except under Argo CD
// for an environment that .kyverno-gate.yaml declares: then the missing
// baseline itself is a finding (see missingBaseline). Stricter changes are
// only logged. Approvals that match no current finding (of this gate or of
// the floor gate) are reported as warnings.
type Gate struct {
	// Now is the clock for approval expiry; nil means time.Now.
	Now func() time.Time
	// Samples are folders of sample resources (relative to the repository
	// root) searched for witnesses besides the test suites' resources.
	Samples []string
	// NoWitnesses turns the witness search off (see witness.go).
	NoWitnesses bool
	// WitnessBudget and MaxWitnessCandidates bound the witness search;
	// zero means the witness package's defaults.
	WitnessBudget        time.Duration
	MaxWitnessCandidates int
}

// Name implements gate.Gate.
func (Gate) Name() report.Gate { return report.GateWeaken }

func now(f func() time.Time) time.Time {
	if f != nil {
		return f()
	}
	return time.Now()
}

// Check implements gate.Gate: one finding per blocking change (severity
// note when approved), stale approvals, and the overlay's posture column.
func (g Gate) Check(ctx context.Context, in *gate.Input, out *report.Overlay) error {
	head, err := kyverno.LoadResult(in.Rendered)
	if err != nil {
		return err
	}
	if in.Baseline == nil {
		if in.BaselineName != "" {
			in.Logf("weaken: no baseline (%s); nothing to compare with", in.BaselineName)
		}
		if f := missingBaseline(in); f != nil {
			out.Add(*f)
		}
		out.Posture = diff.Column(head, nil, nil)
		return nil
	}
	// Not LoadResult: this gate is the baseline's only reader, and the
	// pipeline lets the baseline go after it (pipeline.gates).
	base, err := kyverno.Load(in.Baseline.Resources)
	if err != nil {
		return err
	}
	if base == nil {
		base = []*kyverno.Object{} // a baseline with nothing in it
	}
	changes := diff.Diff(base, head)
	var blocking []diff.Change
	stricter := 0
	for _, c := range changes {
		if c.Class.Blocks() {
			blocking = append(blocking, c)
		} else if c.Class == diff.Stricter {
			stricter++
		}
	}
	if stricter > 0 {
		in.Logf("weaken: %d stricter change(s) compared with %s", stricter, in.BaselineName)
	}
	approvals := diff.CollectApprovals(in.Rendered.Resources)
	t := now(g.Now)
	targets := diff.NewTargets(head, base)
	// Approved changes need no evidence: search only the others.
	witnesses := g.witnesses(ctx, in, base, head, blocking, func(c diff.Change) bool {
		for _, a := range approvals.ByFingerprint[c.Fingerprint] {
			if a.Valid(t) {
				return true
			}
		}
		return false
	})
	proven := map[string]diff.Class{}
	live := map[string]bool{}
	migrations := map[string]*report.Migration{}
	for i, c := range blocking {
		live[c.Fingerprint] = true
		var w *witness.Witness
		if witnesses != nil {
			w = witnesses[i]
		}
		// A witness proves the change weaker; the fingerprint does not
		// depend on the class, so approvals stay valid.
		byWitness := w != nil && w.Exclusive && c.Class == diff.Unknown
		if byWitness {
			c.Class = diff.Weaker
		}
		proven[c.Fingerprint] = c.Class
		msg := c.Message
		switch {
		case byWitness:
			msg = "weakens enforcement (proven by witness): " + msg
		case c.Class == diff.Unknown:
			msg = "may weaken enforcement (cannot be decided structurally, so it counts as weaker): " + msg
		}
		if w != nil {
			msg += witnessMessage(w)
		}
		msg += " (baseline: " + in.BaselineName + ")"
		// The finding points at the head object; for a removal at the
		// baseline's, and the approval goes on any remaining object.
		f := diff.Decide(in, report.GateWeaken, Kind(c.Class), c, msg, targets, approvals, t)
		if w != nil {
			f.Resource, f.Witness = w.ID(), reportWitness(w)
		}
		if c.Migration != nil && c.Class == diff.Unknown && !f.Approved {
			f.Hint = "kyverno-gate proves a migration equivalent from validate.cel only, never a pattern or deny rule against CEL " +
				"(docs/migrations.md): review it; " + f.Hint
		}
		if c.Migration != nil {
			m := *c.Migration
			m.Verdict, m.Fingerprint = string(c.Class), c.Fingerprint
			if byWitness { // the rule that denied the witness is weaker
				m.Rules = append([]report.MigrationRule(nil), m.Rules...)
				for i, r := range m.Rules {
					if r.Rule == w.Rule || diff.AutogenParent(w.Rule) == r.Rule {
						m.Rules[i].Verdict = string(diff.Weaker)
						m.Rules[i].Reasons = append(append([]string(nil), r.Reasons...), "weaker: proven by witness "+w.ID())
					}
				}
			}
			f.Migration = &m
			migrations[c.Fingerprint] = &m
		}
		out.Add(f)
	}
	// Every migration is listed, the ones that need no approval too.
	for _, c := range changes {
		if c.Migration == nil {
			continue
		}
		if m := migrations[c.Fingerprint]; m != nil {
			out.Migrations = append(out.Migrations, *m)
			continue
		}
		out.Migrations = append(out.Migrations, *c.Migration)
		in.Logf("weaken: %s", c.Message) // needs no approval: say so
	}
	out.Posture = diff.Column(head, base, changes, proven)
	// Stale approvals: only decidable with a baseline, and only knowing the
	// floor gate's fingerprints too.
	floors, err := floor.Changes(in)
	if err != nil {
		in.Logf("weaken: not checking for stale approvals: the floors could not be evaluated: %v", err)
		return nil
	}
	for _, c := range floors {
		live[c.Fingerprint] = true
	}
	out.Add(staleFindings(approvals, live)...)
	return nil
}

// Kind is the finding kind of a blocking change of class c.
func Kind(c diff.Class) report.Kind {
	if c == diff.Unknown {
		return report.KindUnknown
	}
	return report.KindWeaker
}

// missingBaseline is the finding for a rendering under Argo CD of an
// environment that .kyverno-gate.yaml declares, when the weakening gate has
// nothing to compare with (baseline auto without a lock file, or none):
// every weakening would then pass unnoticed, so the rendering says so
// where the Application's owner looks, as a warning, or as an error when
// the configuration sets missingBaseline: error (for the environment or
// the whole file). Elsewhere (a terminal, CI with an explicit baseline)
// nil: the log line says it. No approval covers it; the lock does.
func missingBaseline(in *gate.Input) *report.Finding {
	if in.Settings == nil || !in.Settings.App.UnderArgoCD() {
		return nil
	}
	repo, err := in.Repository()
	if err != nil {
		return nil
	}
	cfg, err := repoconfig.LoadFrom(repo)
	if err != nil {
		return nil // the floor gate reports a broken configuration
	}
	env := cfg.EnvironmentFor(in.Dir)
	if env == nil {
		return nil
	}
	sev := report.Warning
	if cfg.MissingBaselineFor(env) == repoconfig.MissingBaselineError {
		sev = report.Error
	}
	lock := path.Join(env.Path, render.LockFile)
	f := &report.Finding{Gate: report.GateWeaken, Kind: report.KindMissingBaseline, Severity: sev, File: settings.ConfigFile,
		Subject: report.Subject{Kind: report.SubjectEnvironment, Name: env.Name}}
	const unguarded = ", so nothing is compared and a change that weakens enforcement would pass unnoticed"
	if in.Settings.Baseline == "none" {
		f.Message = "no baseline: the Application sets parameter baseline=none" + unguarded
		f.Hint = "set the Application's parameter baseline to auto (with " + lock + " committed) or git:<rev>"
	} else {
		f.Message = "no baseline: " + lock + " does not exist" + unguarded
		f.Hint = "run `kyverno-gate lock " + env.Path + "` and commit " + lock
	}
	if sev == report.Warning {
		f.Hint += "; `missingBaseline: error` in " + settings.ConfigFile + " makes this a rejection"
	} else {
		f.Message += " (missingBaseline: error)"
	}
	return f
}

// staleFindings warns about approvals that match no live fingerprint and
// about approval keys that are not fingerprints.
func staleFindings(approvals *diff.Approvals, live map[string]bool) []report.Finding {
	var out []report.Finding
	fps := make([]string, 0, len(approvals.ByFingerprint))
	for fp := range approvals.ByFingerprint {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		if live[fp] {
			continue
		}
		for _, a := range approvals.ByFingerprint[fp] {
			out = append(out, report.Finding{Gate: report.GateWeaken, Kind: report.KindStaleApproval, Severity: report.Warning,
				File: a.File, Subject: a.Subject,
				Field:   "metadata.annotations[" + a.Key() + "]",
				Message: fmt.Sprintf("stale approval %s: no current finding has this fingerprint (the change it approved was reverted, locked, or changed since)", a.Key()),
				Hint:    "remove it"})
		}
	}
	for _, a := range approvals.BadKeys {
		out = append(out, report.Finding{Gate: report.GateWeaken, Kind: report.KindInvalidApproval, Severity: report.Warning,
			File: a.File, Subject: a.Subject,
			Field:   "metadata.annotations[" + a.Key() + "]",
			Message: fmt.Sprintf("annotation %s is not an approval: %v", a.Key(), a.Err),
			Hint:    "copy the annotation from the rejection message, or remove it"})
	}
	return out
}
