package diff

import (
	"fmt"
	"strings"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// The one place a finding of the weaken and floor gates is made: both
// gates hand each blocking change to Decide, which finds the objects it is
// about, applies the approvals and suggests the approval to add.

// Targets indexes the objects of a head rendering and of its baseline by
// the names changes carry (Change.Kind and Change.Policy).
type Targets struct{ head, base map[string]*render.Resource }

// NewTargets indexes head and base (nil for a gate without a baseline).
func NewTargets(head, base []*kyverno.Object) Targets {
	return Targets{head: objectsByKey(head), base: objectsByKey(base)}
}

// Decide makes the finding of blocking change c of gate gateName, of
// finding kind kind, with message msg: it points at the head object the
// change is about, for a removal at the baseline's, and the approval to
// add goes on that head object, else on any remaining Kyverno object of
// in's rendering (see decide).
func Decide(in *gate.Input, gateName report.Gate, kind report.Kind, c Change, msg string, targets Targets, approvals *Approvals, t time.Time) report.Finding {
	target := targets.head[key(c.Kind, c.Policy)]
	gone := target == nil
	at := target
	var successor *render.Resource
	if gone {
		at = targets.base[key(c.Kind, c.Policy)]
		target = anyTarget(in.Rendered.Resources, c.Policy)
		// A migration is about the policy that replaced the old one: the
		// finding points at it, and its approval goes on it.
		if m := c.Migration; m != nil && len(m.To) > 0 {
			to := m.To[0]
			if successor = targets.head[key(to.Kind, displayName(to.Namespace, to.Name))]; successor != nil {
				target = successor
			}
		}
	}
	f := decide(gateName, kind, c, at, msg, approvals, t, suggest(c, target, gone, in), in)
	if successor != nil && !f.Approved {
		f.File = successor.Source
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
