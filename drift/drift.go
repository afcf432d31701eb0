// Package drift compares what a cluster enforces with the vetted rendering
// of an overlay, per policy: equal, equivalent (different text, same
// enforcement), weaker live (loosened out of band), stricter live, missing
// live, extra live, and not Ready. Enforcement is judged by the weakening
// gate's engine (gate/diff) with the rendering as the baseline and the live
// objects as the head, so "weaker live" means exactly what a weakening PR
// means; both sides are normalised as `kyverno-gate export` writes objects,
// so server defaults are no difference.
package drift

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/cluster"
	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// State is how a live policy compares with the vetted one.
type State string

const (
	Equal      State = "equal"      // the same object
	Equivalent State = "equivalent" // differs, same enforcement (a message, a label)
	Weaker     State = "weaker-live"
	Stricter   State = "stricter-live"
	Missing    State = "missing-live"
	Extra      State = "extra-live"
)

// Gate is the name drift findings carry.
const Gate report.Gate = "drift"

// Result is one policy object.
type Result struct {
	Subject report.Subject // kind with its group where ambiguous (PolicyException.kyverno.io)
	State   State
	// Changes are the enforcement changes from the vetted object to the
	// live one (for Weaker: the loosened fields).
	Changes []diff.Change
	// Ready is the live object's Ready condition ("True", "False", "" when
	// it has none); Reason its message.
	Ready, Reason string
	// File declared the vetted object ("" for an extra live one).
	File string
}

// NotReady reports a live object whose Ready condition is False: Kyverno
// does not enforce it.
func (r Result) NotReady() bool { return r.Ready == "False" }

type entry struct {
	kind    cluster.Kind
	ns      string
	name    string
	vetted  *render.Resource // normalised
	live    *render.Resource
	liveObj *cluster.Object
}

// Compare compares every Kyverno object of vetted with snap's, in export's
// order (group, kind, namespace, name).
func Compare(vetted *render.Result, snap *cluster.Snapshot) ([]Result, error) {
	entries := map[string]*entry{}
	var keys []string
	get := func(k cluster.Kind, ns, name string) *entry {
		key := k.Group + "/" + k.Kind + "/" + ns + "/" + name
		e := entries[key]
		if e == nil {
			e = &entry{kind: k, ns: ns, name: name}
			entries[key] = e
			keys = append(keys, key)
		}
		return e
	}
	liveRes, err := baseline.ClusterRendering(snap)
	if err != nil {
		return nil, err
	}
	for i, o := range snap.Objects {
		e := get(o.Kind, o.Namespace(), o.Name())
		e.live, e.liveObj = liveRes.Resources[i], o
	}
	for _, r := range vetted.Resources {
		if !r.IsKyverno() {
			continue
		}
		n, k := snap.NormalizeObject(r.Object)
		if k == nil {
			// A kind the cluster does not serve: not live, certainly.
			group, _, _ := strings.Cut(r.APIVersion, "/")
			e := get(cluster.Kind{Group: group, Kind: r.Kind}, r.Namespace, r.Name)
			e.vetted = r
			continue
		}
		rr, err := asResource(n, r.Source)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", r.ID(), err)
		}
		e := get(*k, metaString(n, "namespace"), r.Name)
		e.vetted = rr
	}
	var vettedSide, liveSide []*render.Resource
	for _, key := range keys {
		e := entries[key]
		if e.vetted != nil {
			vettedSide = append(vettedSide, e.vetted)
		}
		if e.live != nil {
			liveSide = append(liveSide, e.live)
		}
	}
	vo, err := kyverno.Load(vettedSide)
	if err != nil {
		return nil, err
	}
	lo, err := kyverno.Load(liveSide)
	if err != nil {
		return nil, err
	}
	changes := diff.Diff(vo, lo)

	sort.Strings(keys)
	ambiguous := map[string]int{}
	for _, key := range keys {
		e := entries[key]
		ambiguous[e.kind.Kind+"/"+e.ns+"/"+e.name]++
	}
	var out []Result
	index := map[string]int{} // "Kind ns/name" as diff names it -> result
	for _, key := range keys {
		e := entries[key]
		subject := report.Subject{Kind: e.kind.Kind, Namespace: e.ns, Name: e.name}
		if e.kind.Kind == "PolicyException" {
			subject.Kind += "." + e.kind.Group
		}
		r := Result{Subject: subject}
		if e.vetted != nil {
			r.File = e.vetted.Source
		}
		switch {
		case e.live == nil:
			r.State = Missing
		case e.vetted == nil:
			r.State = Extra
		case sameJSON(e.vetted.Object, e.live.Object):
			r.State = Equal
		default:
			r.State = Equivalent
		}
		if e.liveObj != nil {
			r.Ready, r.Reason = e.liveObj.Ready, e.liveObj.Reason
		}
		policy := e.name
		if e.ns != "" {
			policy = e.ns + "/" + e.name
		}
		index[e.kind.Kind+"\x00"+policy] = len(out)
		index[subject.Kind+"\x00"+policy] = len(out)
		out = append(out, r)
	}
	for _, c := range changes {
		i, ok := index[c.Kind+"\x00"+c.Policy]
		if !ok {
			bare, _, _ := strings.Cut(c.Kind, ".")
			i, ok = index[bare+"\x00"+c.Policy]
		}
		if !ok {
			return nil, fmt.Errorf("drift: a change of %s %s matches no object", c.Kind, c.Policy)
		}
		out[i].Changes = append(out[i].Changes, c)
	}
	for i := range out {
		r := &out[i]
		if r.State != Equivalent && r.State != Equal {
			continue
		}
		weaker, stricter := false, false
		for _, c := range r.Changes {
			if c.Class.Blocks() {
				weaker = true
			} else if c.Class == diff.Stricter {
				stricter = true
			}
		}
		switch {
		case weaker:
			r.State = Weaker
		case stricter:
			r.State = Stricter
		}
	}
	return out, nil
}

func asResource(obj map[string]any, source string) (*render.Resource, error) {
	y, err := cluster.ObjectYAML(&cluster.Object{Object: obj})
	if err != nil {
		return nil, err
	}
	res, err := baseline.Parse(append([]byte("---\n"), y...), source)
	if err != nil {
		return nil, err
	}
	return res.Resources[0], nil
}

func metaString(obj map[string]any, key string) string {
	m, _ := obj["metadata"].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// ArgoCDTrackingID is the annotation Argo CD's annotation-based resource
// tracking sets on the objects it applies: not a difference from the
// rendering.
const ArgoCDTrackingID = "argocd.argoproj.io/tracking-id"

func sameJSON(a, b map[string]any) bool {
	x, err1 := json.Marshal(withoutTracking(a))
	y, err2 := json.Marshal(withoutTracking(b))
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Findings are the results as findings of the report model: a weaker live
// policy (one finding per loosened field), a missing one and one that is
// not Ready are errors (the cluster enforces less than was vetted);
// stricter, extra and equivalent ones are warnings (drift, but nothing
// enforced less). Equal policies make no finding.
func Findings(results []Result, context string) []report.Finding {
	var out []report.Finding
	for _, r := range results {
		f := report.Finding{Gate: Gate, Kind: report.Kind(r.State), Subject: r.Subject, File: r.File}
		fix := "re-sync the overlay (Argo CD sync, or kubectl apply --server-side -k of the vetted rendering), or vet the live change in the repository"
		switch r.State {
		case Weaker:
			for _, c := range r.Changes {
				if !c.Class.Blocks() {
					continue
				}
				g := f
				g.Severity = report.Error
				g.Rule, g.Field = c.Rule, c.Field
				g.Message = fmt.Sprintf("weaker live in context %s, %s: %s (vetted %s, live %s)", context, c.Field, c.Message, c.Before, c.After)
				g.Hint = fix
				g.Fingerprint = c.Fingerprint
				g.Change = &report.Change{Class: string(c.Class), Kind: c.Kind, Policy: c.Policy, Rule: c.Rule, Field: c.Field, Before: c.Before, After: c.After}
				out = append(out, g)
			}
		case Missing:
			f.Severity = report.Error
			f.Message = "missing live in context " + context + ": the vetted object is not in the cluster"
			f.Hint = fix
			out = append(out, f)
		case Stricter:
			f.Severity = report.Warning
			f.Message = "stricter live in context " + context + ": " + changeList(r.Changes)
			f.Hint = "vet the live change in the repository, or re-sync the overlay"
			out = append(out, f)
		case Extra:
			f.Severity = report.Warning
			f.Message = "extra live in context " + context + ": the cluster has it, the vetted rendering does not"
			if len(r.Changes) > 0 {
				f.Message += " (" + changeList(r.Changes) + ")"
				for _, c := range r.Changes {
					if c.Class.Blocks() { // an extra exception loosens enforcement
						f.Severity = report.Error
					}
				}
			}
			f.Hint = "add it to the repository, or delete it from the cluster"
			out = append(out, f)
		case Equivalent:
			f.Severity = report.Warning
			f.Message = "differs live in context " + context + " without changing enforcement (text, labels or annotations)"
			f.Hint = "re-sync the overlay"
			out = append(out, f)
		}
		if r.NotReady() {
			g := report.Finding{Gate: Gate, Kind: "not-ready", Subject: r.Subject, File: r.File, Severity: report.Error,
				Field:   "status.conditions[Ready]",
				Message: "not Ready live in context " + context + ": Kyverno does not enforce it",
				Hint:    "kubectl describe it for Kyverno's reason and fix the policy"}
			if r.Reason != "" {
				g.Message += " (" + r.Reason + ")"
			}
			out = append(out, g)
		}
	}
	return out
}

func changeList(cs []diff.Change) string {
	var parts []string
	for _, c := range cs {
		s := c.Message
		if c.Field != "" {
			s = c.Field + ": " + s
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no enforcement change"
	}
	return strings.Join(parts, "; ")
}

// Summary counts results by state, in a fixed order, for the one-line
// summary ("9 equal, 1 weaker-live, 0 not Ready").
func Summary(results []Result) string {
	counts := map[State]int{}
	notReady := 0
	for _, r := range results {
		counts[r.State]++
		if r.NotReady() {
			notReady++
		}
	}
	var parts []string
	for _, s := range []State{Equal, Equivalent, Weaker, Stricter, Missing, Extra} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if notReady > 0 {
		parts = append(parts, fmt.Sprintf("%d not Ready", notReady))
	}
	if len(parts) == 0 {
		return "no Kyverno objects on either side"
	}
	return strings.Join(parts, ", ")
}

func withoutTracking(obj map[string]any) map[string]any {
	meta, _ := obj["metadata"].(map[string]any)
	ann, _ := meta["annotations"].(map[string]any)
	if _, ok := ann[ArgoCDTrackingID]; !ok {
		return obj
	}
	out := map[string]any{}
	for k, v := range obj {
		out[k] = v
	}
	m := map[string]any{}
	for k, v := range meta {
		m[k] = v
	}
	a := map[string]any{}
	for k, v := range ann {
		if k != ArgoCDTrackingID {
			a[k] = v
		}
	}
	if len(a) > 0 {
		m["annotations"] = a
	} else {
		delete(m, "annotations")
	}
	out["metadata"] = m
	return out
}
