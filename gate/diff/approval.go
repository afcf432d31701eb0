package diff

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Approvals.
//
// A weakening (or a floor violation) passes only when some Kyverno object of
// the head rendering carries an annotation naming the finding's fingerprint:
//
//	metadata:
//	  annotations:
//	    approve.kyverno-gate.io/<fingerprint>: "reason=loosen for migration; ticket=JIRA-123; expires=2026-12-31"
//
// The fingerprint is a hash of the finding itself (kind, policy, rule, field,
// and the effective values before and after), so an approval cannot approve
// any other finding, including a later, different change of the same field.
//
// The value is a list of key=value pairs separated by ";". Whitespace around
// pairs, keys and values is ignored, a value runs to the next ";" (so it
// cannot contain one), and every pair is optional, so an empty value is a
// valid approval. Keys:
//
//	reason   why the weakening is acceptable (free text)
//	ticket   a reference, e.g. JIRA-123
//	by       who approved it
//	expires  last day the approval counts, YYYY-MM-DD (UTC); from the next
//	         day on the finding is rejected again, saying the approval expired
//
// An unknown or repeated key, a malformed date or an unfilled placeholder
// such as <why> makes the approval invalid: it approves nothing, and the
// finding says why. An approval whose fingerprint matches no current finding
// is reported as a stale warning, so it can be removed.

// ApprovalPrefix is the annotation key prefix of approvals.
const ApprovalPrefix = "approve.kyverno-gate.io/"

// SuggestedValue is the approval value printed in rejection hints; its
// placeholders must be filled in (or the pairs removed) before it counts.
const SuggestedValue = "reason=<why>; ticket=<id>; expires=<YYYY-MM-DD>"

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{12}$`)

// ApprovalKey returns the annotation key approving the finding with this
// fingerprint.
func ApprovalKey(fingerprint string) string { return ApprovalPrefix + fingerprint }

// ApprovalAnnotation returns the annotation (key and suggested value) that
// approves c, for machine use (reports, bots). The value's placeholders are
// meant to be filled in.
func ApprovalAnnotation(c Change) (key, value string) {
	return ApprovalKey(c.Fingerprint), SuggestedValue
}

// Approval is one approval annotation found on a head object.
type Approval struct {
	Fingerprint string
	Reason      string
	Ticket      string
	By          string
	// Expires is the last day the approval counts (UTC midnight); zero when
	// it does not expire.
	Expires time.Time
	// Where it was found.
	Subject report.Subject // e.g. ClusterPolicy require-labels
	File    string
	// Err says why the annotation is not a valid approval; an invalid
	// approval approves nothing.
	Err error
}

// Key returns the annotation key of a.
func (a Approval) Key() string { return ApprovalKey(a.Fingerprint) }

// Expired reports whether a no longer counts at now: its expiry day is
// before now's day, in UTC.
func (a Approval) Expired(now time.Time) bool {
	if a.Expires.IsZero() {
		return false
	}
	y, m, d := now.UTC().Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return a.Expires.Before(today)
}

// Valid reports whether a counts at now.
func (a Approval) Valid(now time.Time) bool { return a.Err == nil && !a.Expired(now) }

var placeholderRE = regexp.MustCompile(`<[^<>]*>`)

// ParseApproval parses an approval annotation's value (see the grammar
// above) into a; the fingerprint and location are the caller's.
func ParseApproval(value string) (Approval, error) {
	var a Approval
	seen := map[string]bool{}
	for _, pair := range strings.Split(value, ";") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return a, fmt.Errorf("%q is not key=value", pair)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if seen[k] {
			return a, fmt.Errorf("key %s is given twice", k)
		}
		seen[k] = true
		if placeholderRE.MatchString(v) {
			return a, fmt.Errorf("%s=%s: fill in the placeholder", k, v)
		}
		switch k {
		case "reason":
			a.Reason = v
		case "ticket":
			a.Ticket = v
		case "by":
			a.By = v
		case "expires":
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				return a, fmt.Errorf("expires=%s is not a date YYYY-MM-DD", v)
			}
			if t.IsZero() { // 0001-01-01 is Go's zero time, which means "never expires"
				return a, fmt.Errorf("expires=%s is not a plausible date", v)
			}
			a.Expires = t
		default:
			return a, fmt.Errorf("unknown key %q (keys: reason, ticket, expires, by)", k)
		}
	}
	return a, nil
}

// report is the approval as reports show it, with its status ("valid",
// "expired" or "invalid").
func (a *Approval) report(status string) *report.Approval {
	ap := &report.Approval{Key: a.Key(), Status: status, Reason: a.Reason, Ticket: a.Ticket, By: a.By, Object: a.Subject.String(), File: a.File}
	if !a.Expires.IsZero() {
		ap.Expires = a.Expires.Format("2006-01-02")
	}
	if a.Err != nil {
		ap.Error = a.Err.Error()
	}
	return ap
}

// describe renders the approval's metadata for logs.
func (a Approval) describe() string {
	var parts []string
	for _, p := range [][2]string{{"reason", a.Reason}, {"ticket", a.Ticket}, {"by", a.By}} {
		if p[1] != "" {
			parts = append(parts, p[0]+"="+p[1])
		}
	}
	if !a.Expires.IsZero() {
		parts = append(parts, "expires="+a.Expires.Format("2006-01-02"))
	}
	return strings.Join(parts, "; ")
}

// Approvals are the approval annotations of a rendering, by fingerprint.
// Malformed keys (the prefix followed by something that is not a
// fingerprint) are kept apart in BadKeys.
type Approvals struct {
	ByFingerprint map[string][]Approval
	BadKeys       []Approval // Fingerprint holds the key's suffix, Err why
}

// CollectApprovals reads the approval annotations of every Kyverno object
// of resources.
func CollectApprovals(resources []*render.Resource) *Approvals {
	out := &Approvals{ByFingerprint: map[string][]Approval{}}
	for _, r := range resources {
		if !kyverno.IsKyverno(r) {
			continue
		}
		meta, _ := r.Object["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		keys := make([]string, 0, len(ann))
		for k := range ann {
			if strings.HasPrefix(k, ApprovalPrefix) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fp := strings.TrimPrefix(k, ApprovalPrefix)
			v, _ := ann[k].(string)
			a, err := ParseApproval(v)
			a.Fingerprint, a.Subject, a.File, a.Err = fp, r.Subject(), r.Source, err
			if !fingerprintRE.MatchString(fp) {
				a.Err = fmt.Errorf("%q is not a fingerprint (12 lowercase hex digits)", fp)
				out.BadKeys = append(out.BadKeys, a)
				continue
			}
			out.ByFingerprint[fp] = append(out.ByFingerprint[fp], a)
		}
	}
	return out
}

// Suggestion says how to approve one finding: the annotation, the object
// to put it on, and a kustomize patch that does it.
type Suggestion struct {
	Key, Value string
	// The object to annotate; Kind is "" when the overlay renders no
	// Kyverno object (then only commonAnnotations is suggested).
	APIVersion, Kind, Namespace, Name string
	// Object names it for people, e.g. "ClusterPolicy require-labels".
	Object string
	// Kustomization is the overlay's kustomization file relative to the
	// root, "" when the rendered folder has none.
	Kustomization string
	// AnyObject is true when the finding's own object is gone (a removal):
	// the annotation may go on any Kyverno object of the overlay, for
	// example on all of them with the kustomization's commonAnnotations.
	AnyObject bool
	// Patch is an entry for the kustomization's `patches:` list that adds
	// the annotation to the object.
	Patch string
}

// report is the suggestion as reports show it.
func (s Suggestion) report() *report.ApprovalSuggestion {
	sg := &report.ApprovalSuggestion{Key: s.Key, Value: s.Value, Object: s.Object, Kustomization: s.Kustomization,
		AnyObject: s.AnyObject, Patch: s.Patch}
	if s.Kind != "" {
		sg.Target = &report.ObjectRef{APIVersion: s.APIVersion, Kind: s.Kind, Namespace: s.Namespace, Name: s.Name}
	}
	return sg
}

// Line returns the annotation as one YAML line.
func (s Suggestion) Line() string {
	return fmt.Sprintf("%s: %q", s.Key, s.Value)
}

// Hint phrases the suggestion as a finding's hint, on one line.
func (s Suggestion) Hint() string {
	where := "the overlay's kustomization"
	if s.Kustomization != "" {
		where = s.Kustomization
	}
	var b strings.Builder
	fmt.Fprintf(&b, "to accept it, add the annotation `%s` ", s.Line())
	switch {
	case s.Kind == "":
		fmt.Fprintf(&b, "to any Kyverno object of the overlay (commonAnnotations in %s)", where)
	case s.AnyObject:
		fmt.Fprintf(&b, "to any Kyverno object the overlay still renders, e.g. %s (a patch in %s), or to all of them with commonAnnotations in %s", s.Object, where, where)
	default:
		fmt.Fprintf(&b, "to %s (metadata.annotations, e.g. a patch in %s)", s.Object, where)
	}
	b.WriteString(" and fill in or drop the placeholders; otherwise revert the change")
	return b.String()
}

// suggest builds the suggestion for change c, to be put on target (nil when
// the overlay has no Kyverno object). anyObject says the change's own
// object is gone.
func suggest(c Change, target *render.Resource, anyObject bool, in *gate.Input) Suggestion {
	key, value := ApprovalAnnotation(c)
	s := Suggestion{Key: key, Value: value, AnyObject: anyObject, Kustomization: kustomizationOf(in)}
	if target == nil {
		return s
	}
	s.APIVersion, s.Kind, s.Namespace, s.Name, s.Object = target.APIVersion, target.Kind, target.Namespace, target.Name, target.ID()
	group, version, _ := strings.Cut(target.APIVersion, "/")
	var b strings.Builder
	b.WriteString("- target:\n")
	if version != "" {
		fmt.Fprintf(&b, "    group: %s\n    version: %s\n", group, version)
	}
	fmt.Fprintf(&b, "    kind: %s\n    name: %s\n", target.Kind, regexp.QuoteMeta(target.Name))
	b.WriteString("  patch: |-\n")
	fmt.Fprintf(&b, "    apiVersion: %s\n    kind: %s\n    metadata:\n      name: %s\n      annotations:\n        %s\n",
		target.APIVersion, target.Kind, target.Name, s.Line())
	s.Patch = b.String()
	return s
}

// kustomizationOf returns the kustomization file of the rendered folder
// relative to the root, or "" when it has none.
func kustomizationOf(in *gate.Input) string {
	if in.Root == "" && in.Repo == nil {
		return ""
	}
	repo, err := in.Repository()
	if err != nil {
		return ""
	}
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		p := path.Join(in.Dir, name)
		if info, err := repo.Stat(p); err == nil && info.Mode().IsRegular() {
			return p
		}
	}
	return ""
}
