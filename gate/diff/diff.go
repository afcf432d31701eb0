// Package diff is the diff engine of the weaken and floor gates. It
// compares two renderings of a Kyverno policy set, a baseline
// and a head, and lists the differences that matter for enforcement, each
// classified as weaker, stricter or unknown. It compares effective meaning:
// the typed objects after Kyverno's CRD defaults, the rule set after
// Kyverno's own autogen (rules for Pod controllers), the failure action each
// rule resolves to with Kyverno's precedence, and match scopes as sets of
// requests (wildcards decided exactly). It never compares YAML text.
//
// Unknown means the change could not be decided structurally (an edited
// pattern, JMESPath condition or CEL expression); callers must treat it
// like Weaker. Equivalent changes (a message edit, a reordered list, a
// field set to its default) are not reported, except a migration
// (Change.Migration), which is reported with every verdict.
//
// Besides Diff it holds what both gates share, so that neither imports the
// other's internals: approvals (approval.go), the one place their findings
// are made (Decide, targets.go), the posture column (posture.go) and a
// read-only view of a rendering for the floors (view.go). The set and
// wildcard logic it decides with is package scope, which links no Kyverno.
package diff

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Class is how a change affects enforcement.
type Class string

const (
	// Equivalent changes do not affect enforcement; they are not reported.
	Equivalent Class = "equivalent"
	// Stricter changes enforce more.
	Stricter Class = "stricter"
	// Weaker changes enforce less.
	Weaker Class = "weaker"
	// Unknown changes could not be decided; treat them as weaker.
	Unknown Class = "unknown"
)

// Blocks reports whether a change of this class must be treated as a
// weakening.
func (c Class) Blocks() bool { return c == Weaker || c == Unknown }

// Change is one difference between baseline and head that matters for
// enforcement.
type Change struct {
	Class  Class  `json:"class"`
	Kind   string `json:"kind"`           // e.g. "ClusterPolicy"; "PolicyException.kyverno.io" where the kind is ambiguous
	Policy string `json:"policy"`         // "name" or "namespace/name"
	Rule   string `json:"rule,omitempty"` // rule name, "" for policy-level changes
	// Field names what changed, by rule name rather than index, e.g.
	// "spec.rules[check-team].validate.failureAction".
	Field  string `json:"field"`
	Before string `json:"before"` // human-readable effective values
	After  string `json:"after"`
	// Message is one sentence for a person.
	Message string `json:"message"`
	// Fingerprint is a short stable hash of kind, policy, rule, field,
	// before and after: the same change has the same fingerprint on every
	// run, whatever the line numbers or YAML layout.
	Fingerprint string `json:"fingerprint"`
	// Migration is set on the removal of a ClusterPolicy or Policy that
	// policies of the new kinds replace (migration.go); such a change is
	// reported whatever its class, equivalent included.
	Migration *report.Migration `json:"migration,omitempty"`
}

// String renders a change on one line, for logs.
func (c Change) String() string {
	s := fmt.Sprintf("%s %s %s", c.Class, c.Kind, c.Policy)
	if c.Rule != "" {
		s += " rule " + c.Rule
	}
	if c.Field != "" {
		s += " " + c.Field
	}
	return fmt.Sprintf("%s: %s -> %s: %s [%s]", s, c.Before, c.After, c.Message, c.Fingerprint)
}

// Fingerprint computes a change's fingerprint.
func Fingerprint(kind, policy, rule, field, before, after string) string {
	h := sha256.New()
	for _, s := range []string{kind, policy, rule, field, before, after} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Diff lists the enforcement-relevant differences from baseline to head, in
// a deterministic order. Objects that failed to load are treated as absent
// (the validate gate reports them).
func Diff(baseline, head []*kyverno.Object) []Change {
	old, new := index(baseline), index(head)
	r := &recorder{}

	diffLegacySet(r, old, new)
	diffCELSet(r, old, new)
	diffCleanupSet(r, old, new)
	diffGlobalContext(r, old, new)
	diffExceptions(r, old, new)

	out := r.changes()
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		for _, p := range [][2]string{{a.Kind, b.Kind}, {a.Policy, b.Policy}, {a.Rule, b.Rule}, {a.Field, b.Field}, {string(a.Class), string(b.Class)}, {a.Before, b.Before}, {a.After, b.After}, {a.Message, b.Message}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
	return out
}

// recorder collects changes, dropping duplicates.
type recorder struct {
	out  []Change
	seen map[string]bool
	// migrations found by diffLegacySet, for diffExceptions.
	migrations []*report.Migration
}

func (r *recorder) add(c Change) {
	if (c.Class == Equivalent && c.Migration == nil) || c.Class == "" {
		return
	}
	c.Fingerprint = Fingerprint(c.Kind, c.Policy, c.Rule, c.Field, c.Before, c.After)
	k := c.Fingerprint + string(c.Class) + c.Message
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[k] {
		return
	}
	r.seen[k] = true
	r.out = append(r.out, c)
}

func (r *recorder) changes() []Change { return r.out }

// pctx is the policy a comparison is about.
type pctx struct {
	r      *recorder
	kind   string
	policy string
	// collected changes of this policy, for post-processing (autogen
	// duplicates) before they reach the recorder.
	buf []Change
}

func (p *pctx) add(class Class, rule, field, before, after, msg string) {
	if class == Equivalent {
		return
	}
	p.buf = append(p.buf, Change{Class: class, Kind: p.kind, Policy: p.policy, Rule: rule, Field: field, Before: before, After: after, Message: msg})
}

func (p *pctx) flush() {
	for _, c := range p.buf {
		p.r.add(c)
	}
	p.buf = nil
}

// objects of one side, by identity. Identity is kind (group-qualified for
// PolicyException), namespace and name — never the apiVersion.
type side struct {
	legacy  map[string]*kyverno.Object
	cel     map[string]*kyverno.Object
	cleanup map[string]*kyverno.Object
	gctx    map[string]*kyverno.Object
	exc     []*kyverno.Object
	celExc  []*kyverno.Object
	failed  map[string]error // identities that did not load
}

func identity(kind, ns, name string) string { return kind + "\x00" + ns + "\x00" + name }

func splitIdentity(id string) (kind, ns, name string) {
	p := strings.SplitN(id, "\x00", 3)
	return p[0], p[1], p[2]
}

func displayName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func index(objs []*kyverno.Object) *side {
	s := &side{legacy: map[string]*kyverno.Object{}, cel: map[string]*kyverno.Object{}, cleanup: map[string]*kyverno.Object{},
		gctx: map[string]*kyverno.Object{}, failed: map[string]error{}}
	put := func(m map[string]*kyverno.Object, id string, o *kyverno.Object) {
		if _, dup := m[id]; !dup { // kustomize never renders duplicates; keep the first
			m[id] = o
		}
	}
	for _, o := range objs {
		if o == nil || o.Resource == nil {
			continue
		}
		if o.Err != nil {
			s.failed[identity(o.Resource.Kind, o.Resource.Namespace, o.Resource.Name)] = o.Err
			continue
		}
		switch {
		case o.Policy != nil:
			ns := ""
			if o.Policy.IsNamespaced() {
				ns = o.Policy.GetNamespace()
			}
			put(s.legacy, identity(o.Policy.GetKind(), ns, o.Policy.GetName()), o)
		case o.Exception != nil:
			s.exc = append(s.exc, o)
		case o.CELException != nil:
			s.celExc = append(s.celExc, o)
		case o.Validating != nil, o.Image != nil, o.Mutating != nil, o.Generating != nil, o.Deleting != nil:
			m := celMeta(o)
			ns := m.GetNamespace()
			if render.IsClusterScopedKyvernoKind(o.GVK.GroupVersion().String(), o.GVK.Kind) {
				ns = "" // as the API server would
			}
			put(s.cel, identity(o.GVK.Kind, ns, m.GetName()), o)
		case o.Cleanup != nil:
			ns := ""
			if o.Cleanup.IsNamespaced() {
				ns = o.Cleanup.GetNamespace()
			}
			put(s.cleanup, identity(o.GVK.Kind, ns, o.Cleanup.GetName()), o)
		case o.GlobalCtx != nil:
			put(s.gctx, identity(o.GVK.Kind, "", o.GlobalCtx.GetName()), o)
		}
	}
	return s
}

// sortedKeys returns the union of the maps' keys, sorted.
func sortedKeys(ms ...map[string]*kyverno.Object) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// removal describes a policy present in the baseline and absent from head,
// noting a kind change or a namespace move of the same name.
func removalMessage(kind, ns, name string, head *side, headObjs map[string]*kyverno.Object) string {
	what := fmt.Sprintf("%s %s", kind, displayName(ns, name))
	if err, ok := head.failed[identity(kind, ns, name)]; ok {
		return fmt.Sprintf("%s no longer loads (%v), so it would not be enforced", what, err)
	}
	var moved []string
	for id := range headObjs {
		k, n, nm := splitIdentity(id)
		if nm == name && (k != kind || n != ns) {
			moved = append(moved, fmt.Sprintf("%s %s", k, displayName(n, nm)))
		}
	}
	sort.Strings(moved)
	if len(moved) > 0 {
		return fmt.Sprintf("%s was removed; it is replaced by %s, which covers a different scope (a namespaced policy applies only in its own namespace)", what, strings.Join(moved, ", "))
	}
	return fmt.Sprintf("%s was removed, so none of its rules apply any more (neither what it enforced nor what it audited)", what)
}

func fmtBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// boolChange classifies a boolean switch where true is the stronger value.
func boolChange(old, new bool) Class {
	switch {
	case old == new:
		return Equivalent
	case old:
		return Weaker
	}
	return Stricter
}
