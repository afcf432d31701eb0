package weaken

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/witness"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Gate rejects a rendering that weakens enforcement compared with
// in.Baseline, unless each weakening carries its approval (see
// approval.go). Without a baseline it finds nothing, except under Argo CD
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
		out.Posture = column(head, nil, nil)
		return nil
	}
	base, err := kyverno.LoadResult(in.Baseline)
	if err != nil {
		return err
	}
	if base == nil {
		base = []*kyverno.Object{} // a baseline with nothing in it
	}
	changes := Diff(base, head)
	var blocking []Change
	stricter := 0
	for _, c := range changes {
		if c.Class.Blocks() {
			blocking = append(blocking, c)
		} else if c.Class == Stricter {
			stricter++
		}
	}
	if stricter > 0 {
		in.Logf("weaken: %d stricter change(s) compared with %s", stricter, in.BaselineName)
	}
	approvals := CollectApprovals(in.Rendered.Resources)
	t := now(g.Now)
	hd, bs := objectsByKey(head), objectsByKey(base)
	// Approved changes need no evidence: search only the others.
	witnesses := g.witnesses(ctx, in, base, head, blocking, func(c Change) bool {
		for _, a := range approvals.ByFingerprint[c.Fingerprint] {
			if a.Valid(t) {
				return true
			}
		}
		return false
	})
	proven := map[string]Class{}
	live := map[string]bool{}
	for i, c := range blocking {
		live[c.Fingerprint] = true
		var w *witness.Witness
		if witnesses != nil {
			w = witnesses[i]
		}
		// A witness proves the change weaker; the fingerprint does not
		// depend on the class, so approvals stay valid.
		byWitness := w != nil && w.Exclusive && c.Class == Unknown
		if byWitness {
			c.Class = Weaker
		}
		proven[c.Fingerprint] = c.Class
		// The finding points at the head object; for a removal at the
		// baseline's, and the approval goes on any remaining object.
		target := hd[key(c.Kind, c.Policy)]
		gone := target == nil
		at := target
		if gone {
			at = bs[key(c.Kind, c.Policy)]
			target = anyTarget(in.Rendered.Resources, c.Policy)
		}
		msg := c.Message
		switch {
		case byWitness:
			msg = "weakens enforcement (proven by witness): " + msg
		case c.Class == Unknown:
			msg = "may weaken enforcement (cannot be decided structurally, so it counts as weaker): " + msg
		}
		if w != nil {
			msg += witnessMessage(w)
		}
		msg += " (baseline: " + in.BaselineName + ")"
		f := decide(report.GateWeaken, Kind(c.Class), c, at, msg, approvals, t, suggest(c, target, gone, in), in)
		if w != nil {
			f.Resource, f.Witness = w.ID(), reportWitness(w)
		}
		out.Add(f)
	}
	out.Posture = column(head, base, changes, proven)
	// Stale approvals: only decidable with a baseline, and only knowing the
	// floor gate's fingerprints too.
	floors, err := FloorChanges(in)
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
func Kind(c Class) report.Kind {
	if c == Unknown {
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

// decide applies the approvals to one blocking change (of gateName, of
// finding kind kind) and makes its finding: an error with the approval to
// add, or a note when a valid approval covers it. at is the rendered object
// the change is about (nil when neither rendering has it).
func decide(gateName report.Gate, kind report.Kind, c Change, at *render.Resource, msg string, approvals *Approvals, t time.Time,
	s Suggestion, in *gate.Input) report.Finding {
	f := report.Finding{Gate: gateName, Kind: kind, Severity: report.Error, Subject: report.Subject{Kind: c.Kind, Name: c.Policy},
		Rule: c.Rule, Field: c.Field, Message: msg, Fingerprint: c.Fingerprint, ID: c.Fingerprint,
		Change: &report.Change{Class: string(c.Class), Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Before: c.Before, After: c.After}}
	if at != nil {
		f.File, f.Subject = at.Source, at.Subject()
	}
	var expired, invalid *Approval
	for _, a := range approvals.ByFingerprint[c.Fingerprint] {
		switch {
		case a.Valid(t):
			detail := a.describe()
			if detail != "" {
				detail = " (" + detail + ")"
			}
			in.Logf("%s: approved by %s on %s%s: %s", gateName, a.Key(), a.Subject, detail, c.Message)
			f.Severity, f.Approved, f.Approval = report.Note, true, a.report("valid")
			// The finding is about the change; its file is where it was
			// approved when that is the same object.
			f.Message, f.File = c.Message, ""
			if a.Subject == f.Subject {
				f.File = a.File
			}
			return f
		case a.Err == nil && expired == nil:
			expired = &a
		case a.Err != nil && invalid == nil:
			invalid = &a
		}
	}
	f.ApprovalToAdd = s.report()
	f.Hint = s.Hint()
	switch {
	case expired != nil:
		f.Approval = expired.report("expired")
		f.Message += fmt.Sprintf("; its approval %s on %s expired on %s", expired.Key(), expired.Subject, expired.Expires.Format("2006-01-02"))
		f.Hint = "renew the approval with a later expires= date if the weakening is still accepted, or revert the change; " + s.Hint()
	case invalid != nil:
		f.Approval = invalid.report("invalid")
		f.Message += fmt.Sprintf("; its approval %s on %s is not valid: %v", invalid.Key(), invalid.Subject, invalid.Err)
	}
	return f
}

// staleFindings warns about approvals that match no live fingerprint and
// about approval keys that are not fingerprints.
func staleFindings(approvals *Approvals, live map[string]bool) []report.Finding {
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

func key(kind, policy string) string { return kind + "\x00" + policy }

// changeKey returns the Kind and Policy a Change of object o carries, the
// same way Diff names objects.
func changeKey(o *kyverno.Object) (kind, policy string) {
	r := o.Resource
	if o.Err != nil {
		return r.Kind, displayName(r.Namespace, r.Name)
	}
	switch {
	case o.Policy != nil:
		ns := ""
		if o.Policy.IsNamespaced() {
			ns = o.Policy.GetNamespace()
		}
		return o.Policy.GetKind(), displayName(ns, o.Policy.GetName())
	case o.Exception != nil:
		return kindLegacyException, displayName(o.Exception.GetNamespace(), o.Exception.GetName())
	case o.CELException != nil:
		return kindCELException, displayName(o.CELException.GetNamespace(), o.CELException.GetName())
	case o.Validating != nil, o.Image != nil, o.Mutating != nil, o.Generating != nil, o.Deleting != nil:
		m := celMeta(o)
		ns := m.GetNamespace()
		if render.IsClusterScopedKyvernoKind(o.GVK.GroupVersion().String(), o.GVK.Kind) {
			ns = ""
		}
		return o.GVK.Kind, displayName(ns, m.GetName())
	case o.Cleanup != nil:
		ns := ""
		if o.Cleanup.IsNamespaced() {
			ns = o.Cleanup.GetNamespace()
		}
		return o.GVK.Kind, displayName(ns, o.Cleanup.GetName())
	case o.GlobalCtx != nil:
		return o.GVK.Kind, o.GlobalCtx.GetName()
	}
	return r.Kind, displayName(r.Namespace, r.Name)
}

// objectsByKey indexes objects' resources by the names changes carry.
func objectsByKey(objs []*kyverno.Object) map[string]*render.Resource {
	out := map[string]*render.Resource{}
	for _, o := range objs {
		if o == nil || o.Resource == nil {
			continue
		}
		k, p := changeKey(o)
		if _, dup := out[key(k, p)]; !dup {
			out[key(k, p)] = o.Resource
		}
	}
	return out
}

// anyTarget picks the object to carry the approval of a removed policy:
// an object of the same name (a policy that changed kind or namespace),
// else the first Kyverno object of the rendering; nil when there is none.
func anyTarget(resources []*render.Resource, policy string) *render.Resource {
	name := policy
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	var first *render.Resource
	for _, r := range resources {
		if !kyverno.IsKyverno(r) {
			continue
		}
		if r.Name == name {
			return r
		}
		if first == nil {
			first = r
		}
	}
	return first
}
