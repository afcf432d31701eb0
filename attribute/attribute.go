// Package attribute points a finding at the place that introduced it.
//
// A rendered object comes from the file that declares it (kustomize's
// origin annotation, render.Resource.Source) and from the patches of its
// kustomization chain (render.Resource.Patches, innermost first). A finding
// about one field of the object (gate.Finding.Field: a failure action, a
// match or exclude block, failurePolicy, an annotation...) was introduced
// by the last patch that sets that field, the outermost overlay winning; if
// no patch sets it, by the declaring file. Findings about the whole object
// (Field and Rule empty) stay on the declaring file.
//
// A patch "sets" a field when one of its operations (a JSON patch op other
// than test, or a strategic merge value) is at the field, inside it (an
// exclude block gained an entry), or above it (the whole rule, or the rules
// list a strategic merge patch replaces). JSON patches address list items
// by index and findings address rules by name: an index is read as the
// item named by a test op of the same patch (/spec/rules/0/name), else as
// the item at that index in the rendered object; an item a patch removes
// without a test can only be one that is no longer rendered.
//
// Limits: the attribution reads what patches set, not what they change (a
// patch that sets a field to the value it already had still counts), does
// not follow other transformers (namespace, labels, replacements), and an
// index is resolved against the final rendering, which is wrong when an
// outer patch inserted or removed rules before it; test ops avoid that.
package attribute

import (
	"strconv"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Overlay attributes every finding of o (see Findings), then finds the
// remaining lines in the repository's files (Locate). The pipeline calls
// it once per overlay, for every command.
func Overlay(o *report.Overlay, rendered *render.Result, repo *repofs.Root) {
	Findings(o.Findings, rendered)
	Locate(repo, o.Findings)
}

// Findings attributes each finding about an object of rendered: File,
// Line (when a patch is chosen; otherwise left for Locate) and Origin.
// Test findings and findings whose object is not rendered are left as they
// are. IDs do not change: FindingID hashes the declaring file.
func Findings(fs []report.Finding, rendered *render.Result) {
	if rendered == nil {
		return
	}
	for i := range fs {
		finding(&fs[i], rendered)
	}
}

func finding(f *report.Finding, rendered *render.Result) {
	if f.Subject.Name == "" || f.Gate == report.GateTest {
		return
	}
	r := Object(rendered, f.Subject)
	if r == nil || r.Source == "" {
		return
	}
	field := f.Field
	if field == "" && f.Rule != "" && hasRules(r) {
		field = RuleField(f.Rule)
	}
	o := &report.Origin{Via: report.OriginObject, ObjectFile: r.Source}
	if p, s := Pick(r, field); p != nil {
		o.Via = report.OriginPatch
		o.Patch = &report.PatchRef{Kustomization: p.Kustomization, List: p.Field, Entry: p.Entry, Type: p.Type, Op: s.Op, Path: s.Path}
		f.File, f.Line = p.File, s.Line
	} else if f.File != r.Source {
		f.File, f.Line = r.Source, 0
	}
	f.Origin = o
}

// Object returns the rendered object a subject names, nil when there is
// none.
func Object(rendered *render.Result, s report.Subject) *render.Resource {
	kind, group := s.BareKind(), s.Group()
	for _, r := range rendered.Resources {
		if r.Kind == kind && r.Name == s.Name && (s.Namespace == "" || r.Namespace == s.Namespace) && (group == "" || r.Group() == group) {
			return r
		}
	}
	return nil
}

// hasRules reports whether r has spec.rules (Kyverno's legacy kinds).
func hasRules(r *render.Resource) bool {
	spec, _ := r.Object["spec"].(map[string]any)
	_, ok := spec["rules"].([]any)
	return ok
}

// Pick returns the last of r's patches that sets field (see the package
// documentation) and the operation of it that does, the one closest to the
// field; nil when none does or field is "".
func Pick(r *render.Resource, field string) (*render.PatchSource, *render.PatchSet) {
	if field == "" {
		return nil, nil
	}
	want := fieldSegs(r.Object, ParseField(field))
	var (
		bestP *render.PatchSource
		bestS *render.PatchSet
	)
	for i := range r.Patches {
		p := &r.Patches[i]
		hints := nameHints(p)
		var (
			found       *render.PatchSet
			depth, diff int
		)
		for j := range p.Sets {
			s := &p.Sets[j]
			if s.Op == "test" {
				continue
			}
			// A move adds at Path and removes at From.
			paths := [][2]string{{s.Path, s.Op}}
			if s.Op == "move" {
				paths = [][2]string{{s.Path, "add"}, {s.From, "remove"}}
			}
			for _, pt := range paths {
				if pt[0] == "" {
					continue
				}
				got := patchSegs(r.Object, pt[0], hints, pt[1])
				d, ok := touches(got, want)
				if !ok {
					continue
				}
				df := len(got) - len(want)
				if df < 0 {
					df = -df
				}
				if found == nil || d > depth || (d == depth && df < diff) {
					found, depth, diff = s, d, df
				}
			}
		}
		if found != nil {
			bestP, bestS = p, found
		}
	}
	return bestP, bestS
}

// seg is one segment of a field or patch path, resolved against the
// rendered object: a map key, or a list item by name (else "#index").
type seg struct {
	key string
	// any: a patch index that could be any item; gone: an item the patch
	// removed, which can only be one that is not rendered.
	any, gone bool
	// absent: a field segment that is not in the rendered object.
	absent bool
}

// touches reports whether a patch path sets the field: one is a prefix of
// the other. depth is the length of the common part.
func touches(patch, field []seg) (int, bool) {
	n := min(len(patch), len(field))
	for i := 0; i < n; i++ {
		p, f := patch[i], field[i]
		switch {
		case p.any:
		case p.gone:
			if !f.absent {
				return 0, false
			}
		case p.key != f.key:
			return 0, false
		}
	}
	return n, true
}

// fieldSegs resolves a finding's field segments against the rendered
// object: list items by name (an autogen rule by its parent), an index
// as the name of the item there.
func fieldSegs(obj map[string]any, raw []string) []seg {
	out := make([]seg, 0, len(raw))
	var cur any = obj
	for _, s := range raw {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[s]
			out = append(out, seg{key: s, absent: !ok})
			cur = v
		case []any:
			i, item := findItem(c, s)
			if item == nil {
				out = append(out, seg{key: s, absent: true})
				cur = nil
				continue
			}
			out = append(out, seg{key: itemKey(item, i)})
			cur = item
		default:
			out = append(out, seg{key: s, absent: true})
			cur = nil
		}
	}
	return out
}

// findItem finds the list item named s (or s's autogen parent), else
// number s.
func findItem(list []any, s string) (int, any) {
	for _, want := range []string{s, AutogenParent(s)} {
		for i, it := range list {
			if m, ok := it.(map[string]any); ok && m["name"] == want {
				return i, it
			}
		}
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < len(list) {
		return i, list[i]
	}
	return -1, nil
}

// itemKey names a list item: its name, else its index.
func itemKey(item any, i int) string {
	if m, ok := item.(map[string]any); ok {
		if n, ok := m["name"].(string); ok && n != "" {
			return n
		}
	}
	return "#" + strconv.Itoa(i)
}

// patchSegs resolves a patch's JSON pointer against the rendered object.
// A list index is the item a hint names (a test of, or a value set at,
// <index>/name in the same patch), else the rendered item at that index;
// an index the patch removes, or "-" (append) without a hint, is any item
// (a removed one: only items no longer rendered).
func patchSegs(obj map[string]any, pointer string, hints map[string]string, op string) []seg {
	toks := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	if pointer == "" || pointer == "/" {
		return nil
	}
	out := make([]seg, 0, len(toks))
	var cur any = obj
	prefix := ""
	for n, t := range toks {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
		prefix += "/" + toks[n]
		last := n == len(toks)-1
		_, numErr := strconv.Atoi(t)
		isIndex := numErr == nil || t == "-"
		switch c := cur.(type) {
		case map[string]any:
			out = append(out, seg{key: t})
			cur = c[t]
			continue
		case []any:
			if !isIndex {
				out = append(out, seg{key: t})
				cur = nil
				continue
			}
			if name, ok := hints[prefix]; ok {
				i, item := findItem(c, name)
				out = append(out, seg{key: name})
				if i >= 0 {
					cur = item
				} else {
					cur = nil
				}
				continue
			}
			if last && (op == "remove" || op == "delete") {
				out = append(out, seg{gone: true})
				cur = nil
				continue
			}
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(c) {
				out = append(out, seg{any: true})
				cur = nil
				continue
			}
			out = append(out, seg{key: itemKey(c[i], i)})
			cur = c[i]
		default:
			if name, ok := hints[prefix]; ok && isIndex {
				out = append(out, seg{key: name})
			} else if isIndex {
				out = append(out, seg{any: true})
			} else {
				out = append(out, seg{key: t})
			}
			cur = nil
		}
	}
	return out
}

// nameHints maps the pointer of a list item ("/spec/rules/0") to the name
// the patch says it has: a test of, or a value set at, <item>/name. Two
// appends ("/spec/rules/-") with different names give no hint.
func nameHints(p *render.PatchSource) map[string]string {
	hints := map[string]string{}
	ambiguous := map[string]bool{}
	for _, s := range p.Sets {
		item, ok := strings.CutSuffix(s.Path, "/name")
		if !ok || s.Value == "" {
			continue
		}
		last := item[strings.LastIndex(item, "/")+1:]
		if _, err := strconv.Atoi(last); err != nil && last != "-" {
			continue
		}
		prev, seen := hints[item]
		switch {
		case !seen || s.Op == "test":
			hints[item] = s.Value
		case last == "-" && prev != s.Value:
			ambiguous[item] = true
		}
	}
	for item := range ambiguous {
		delete(hints, item)
	}
	return hints
}
