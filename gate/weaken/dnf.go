package weaken

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	kubeutils "github.com/kyverno/kyverno/pkg/utils/kube"
)

// A scope (what a match selects, what an exclude or an exception exempts,
// when preconditions hold, when a validation denies) is modelled as a
// disjunction of conjunctions of atoms. An atom constrains one attribute of
// a request; atoms on different attributes are independent. Comparing two
// scopes answers "does the new one select at least everything the old one
// did" with a sound sufficient check: every old conjunction must be implied
// by a single new conjunction. When that cannot be shown and cannot be
// refuted with a witness, the answer is unsure.

type atomMode int

const (
	// modeGlob: the attribute matches one of vals (Kyverno wildcards).
	modeGlob atomMode = iota
	// modeSet: the attribute is one of vals (exact strings).
	modeSet
	// modeOpaque: a condition we cannot analyse (a JMESPath condition, a
	// CEL expression, a pattern); two are the same only if equal.
	modeOpaque
	// modeKinds: the request's group/version/kind/subresource matches one
	// of the Kyverno kind selectors in vals.
	modeKinds
	// modeResources: the request's resource matches one of the Kubernetes
	// admission resource patterns in vals ("pods", "*", "pods/*", "*/*").
	modeResources
	// modeUntil: the request happens before the time in vals[0].
	modeUntil
)

type atom struct {
	attr string
	mode atomMode
	vals []string // sorted, deduplicated
}

func (a atom) String() string {
	switch a.mode {
	case modeOpaque:
		vals := make([]string, len(a.vals))
		for i, v := range a.vals {
			vals[i] = abbreviate(v)
		}
		return a.attr + " " + strings.Join(vals, ", ")
	case modeUntil:
		return a.attr + " " + a.vals[0]
	}
	return a.attr + "=[" + strings.Join(a.vals, ", ") + "]"
}

// abbreviate shortens a long opaque value (a whole pattern, a long
// expression) for display, keeping a hash of the full text so that
// different values never render the same.
func abbreviate(v string) string {
	const max = 160
	if len(v) <= max {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	cut := max - 40
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…(" + strconv.Itoa(len(v)) + " chars, sha256 " + hex.EncodeToString(sum[:])[:8] + ")"
}

func (a atom) key() string {
	return fmt.Sprintf("%d\x00%s\x00%s", a.mode, a.attr, strings.Join(a.vals, "\x00"))
}

// conj is a conjunction; no atoms means "always".
type conj []atom

// dnf is a disjunction; no conjunctions means "never".
type dnf []conj

var always = dnf{conj{}}

func sortedUnique(vals []string) []string {
	out := append([]string(nil), vals...)
	sort.Strings(out)
	j := 0
	for i, v := range out {
		if i == 0 || v != out[j-1] {
			out[j] = v
			j++
		}
	}
	return out[:j]
}

// newAtom builds an atom, or reports false when it does not constrain
// anything (a `*` glob, every admission operation).
func newAtom(attr string, mode atomMode, vals []string) (atom, bool) {
	vals = sortedUnique(vals)
	if len(vals) == 0 {
		return atom{}, false
	}
	if mode == modeGlob {
		for _, v := range vals {
			if v == "*" {
				return atom{}, false
			}
		}
	}
	return atom{attr: attr, mode: mode, vals: vals}, true
}

func (c conj) with(attr string, mode atomMode, vals ...string) conj {
	if a, ok := newAtom(attr, mode, vals); ok {
		return append(c, a)
	}
	return c
}

// and returns the conjunction of two DNFs.
func (d dnf) and(e dnf) dnf {
	var out dnf
	for _, a := range d {
		for _, b := range e {
			c := append(append(conj{}, a...), b...)
			out = append(out, c)
		}
	}
	return out
}

func (c conj) String() string {
	if len(c) == 0 {
		return "everything"
	}
	parts := make([]string, len(c))
	for i, a := range c {
		parts[i] = a.String()
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, "; ") + "}"
}

func (d dnf) String() string {
	if len(d) == 0 {
		return "nothing"
	}
	parts := make([]string, len(d))
	for i, c := range d {
		parts[i] = c.String()
	}
	sort.Strings(parts)
	parts = sortedUnique(parts)
	return strings.Join(parts, " OR ")
}

// relation of a new scope to an old one.
type relation int

const (
	relEqual           relation = iota
	relWider                    // strictly wider
	relWiderOrEqual             // at least as wide; strictness not shown
	relNarrower                 // strictly narrower
	relNarrowerOrEqual          // at most as wide; strictness not shown
	relUnknown                  // changed both ways, or undecided
)

// compareScopes compares new against old.
func compareScopes(old, new dnf) relation {
	if old.String() == new.String() {
		return relEqual
	}
	w := covers(new, old) // new selects all old did
	n := covers(old, new) // old selects all new does
	switch {
	case w == yes && n == yes:
		return relEqual
	case w == yes && n == no:
		return relWider
	case w == yes:
		return relWiderOrEqual
	case n == yes && w == no:
		return relNarrower
	case n == yes:
		return relNarrowerOrEqual
	}
	return relUnknown
}

// classify turns a relation into a class; narrowIsWeak says whether
// selecting less weakens enforcement (a match, a precondition, a deny
// region) or strengthens it (an exclude, an exception).
func (r relation) classify(narrowIsWeak bool) Class {
	if !narrowIsWeak {
		switch r {
		case relWider:
			r = relNarrower
		case relWiderOrEqual:
			r = relNarrowerOrEqual
		case relNarrower:
			r = relWider
		case relNarrowerOrEqual:
			r = relWiderOrEqual
		}
	}
	switch r {
	case relNarrower:
		return Weaker
	case relNarrowerOrEqual, relUnknown:
		return Unknown
	case relWider:
		return Stricter
	}
	return Equivalent
}

// covers reports whether outer selects everything inner selects.
func covers(outer, inner dnf) tri {
	res := yes
	for _, ci := range inner {
		best := no
		for _, co := range outer {
			switch conjCovers(co, ci) {
			case yes:
				best = yes
			case unsure:
				if best == no {
					best = unsure
				}
			}
			if best == yes {
				break
			}
		}
		// Not implied by any single conjunction: with several, the union
		// might still cover it unless one request escapes them all.
		if best == no && len(outer) > 1 && !escapesAll(ci, outer) {
			best = unsure
		}
		if best == no {
			return no
		}
		if best == unsure {
			res = unsure
		}
	}
	return res
}

// escapesAll reports whether some request satisfies c and none of the
// conjunctions of outer. Opaque atoms are independent unknowns: a
// conjunction with one that c does not assert can be escaped by making it
// false. The others must all be escaped through one attribute.
func escapesAll(c conj, outer dnf) bool {
	mine := map[string]bool{}
	for _, a := range c {
		mine[a.key()] = true
	}
	var rest dnf
	for _, o := range outer {
		free := false
		for _, a := range o {
			if a.mode == modeOpaque && !mine[a.key()] {
				free = true
				break
			}
		}
		if !free {
			rest = append(rest, o)
		}
	}
	if len(rest) == 0 {
		return true
	}
	type attrKey struct {
		attr string
		mode atomMode
	}
	atomsOf := func(x conj, k attrKey) []atom {
		var out []atom
		for _, a := range x {
			if a.attr == k.attr && a.mode == k.mode {
				out = append(out, a)
			}
		}
		return out
	}
	seen := map[attrKey]bool{}
	for _, o := range rest {
		for _, a := range o {
			k := attrKey{a.attr, a.mode}
			if seen[k] || (k.mode != modeGlob && k.mode != modeSet) {
				continue
			}
			seen[k] = true
			everyone := true
			for _, o2 := range rest {
				if len(atomsOf(o2, k)) == 0 {
					everyone = false
					break
				}
			}
			if !everyone {
				continue
			}
			switch k.mode {
			case modeSet:
				var cands []string
				if own := atomsOf(c, k); len(own) > 0 {
					inter := map[string]bool{}
					for _, v := range own[0].vals {
						inter[v] = true
					}
					for _, b := range own[1:] {
						keep := map[string]bool{}
						for _, v := range b.vals {
							if inter[v] {
								keep[v] = true
							}
						}
						inter = keep
					}
					for v := range inter {
						cands = append(cands, v)
					}
					sort.Strings(cands)
				} else {
					cands = []string{"\x00fresh"}
				}
				for _, v := range cands {
					ok := true
					for _, o2 := range rest {
						escaped := false
						for _, b := range atomsOf(o2, k) {
							if !contains(b.vals, v) {
								escaped = true
								break
							}
						}
						if !escaped {
							ok = false
							break
						}
					}
					if ok {
						return true
					}
				}
			case modeGlob:
				var pats []string
				group := func(as []atom) [][2]int {
					var gs [][2]int
					for _, b := range as {
						gs = append(gs, [2]int{len(pats), len(pats) + len(b.vals)})
						pats = append(pats, b.vals...)
					}
					return gs
				}
				own := group(atomsOf(c, k))
				var others [][][2]int
				for _, o2 := range rest {
					others = append(others, group(atomsOf(o2, k)))
				}
				anyMatch := func(m []bool, g [2]int) bool {
					for _, v := range m[g[0]:g[1]] {
						if v {
							return true
						}
					}
					return false
				}
				_, found := findString(pats, func(m []bool) bool {
					for _, g := range own {
						if !anyMatch(m, g) {
							return false
						}
					}
					for _, gs := range others {
						escaped := false
						for _, g := range gs {
							if !anyMatch(m, g) {
								escaped = true
								break
							}
						}
						if !escaped {
							return false
						}
					}
					return true
				})
				if found == yes {
					return true
				}
			}
		}
	}
	return false
}

func contains(xs []string, v string) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// conjCovers reports whether outer holds whenever inner holds.
func conjCovers(outer, inner conj) tri {
	res := yes
	for _, a := range outer {
		switch implied(inner, a) {
		case no:
			return no
		case unsure:
			res = unsure
		}
	}
	return res
}

// implied reports whether the atoms of c imply a. "no" comes with an
// (implicit) witness: attributes are independent, so a value satisfying
// c's atoms on a's attribute but not a is enough.
func implied(c conj, a atom) tri {
	var same []atom
	for _, b := range c {
		if b.attr == a.attr && b.mode == a.mode {
			same = append(same, b)
		}
	}
	if len(same) == 0 {
		return no
	}
	for _, b := range same {
		if b.key() == a.key() {
			return yes
		}
	}
	switch a.mode {
	case modeOpaque:
		return no
	case modeSet:
		// the intersection of the constraints, minus a's values
		inter := map[string]bool{}
		for _, v := range same[0].vals {
			inter[v] = true
		}
		for _, b := range same[1:] {
			keep := map[string]bool{}
			for _, v := range b.vals {
				if inter[v] {
					keep[v] = true
				}
			}
			inter = keep
		}
		for _, v := range a.vals {
			delete(inter, v)
		}
		if len(inter) == 0 {
			return yes
		}
		return no
	case modeGlob:
		if len(same) == 1 {
			r, _ := globCovers(a.vals, same[0].vals)
			return r
		}
		var pats []string
		var groups [][2]int
		for _, b := range same {
			groups = append(groups, [2]int{len(pats), len(pats) + len(b.vals)})
			pats = append(pats, b.vals...)
		}
		start := len(pats)
		pats = append(pats, a.vals...)
		_, found := findString(pats, func(m []bool) bool {
			for _, g := range groups {
				ok := false
				for _, v := range m[g[0]:g[1]] {
					ok = ok || v
				}
				if !ok {
					return false
				}
			}
			for _, v := range m[start:] {
				if v {
					return false
				}
			}
			return true
		})
		switch found {
		case yes:
			return no
		case no:
			return yes
		}
		return unsure
	case modeKinds, modeResources:
		var r tri = unsure
		for _, b := range same {
			ok := true
			for _, v := range b.vals {
				if !selectorCovered(a.mode, a.vals, v) {
					ok = false
					break
				}
			}
			if ok {
				return yes
			}
		}
		if len(same) == 1 {
			r = no
		}
		return r
	case modeUntil:
		ta, err1 := time.Parse(time.RFC3339, a.vals[0])
		for _, b := range same {
			tb, err2 := time.Parse(time.RFC3339, b.vals[0])
			if err1 == nil && err2 == nil && !ta.Before(tb) {
				return yes
			}
		}
		return no
	}
	return unsure
}

// selectorCovered reports whether the single selector v is covered by one
// of the selectors in outer.
func selectorCovered(mode atomMode, outer []string, v string) bool {
	for _, o := range outer {
		if mode == modeKinds && kindCovers(o, v) {
			return true
		}
		if mode == modeResources && resourceCovers(o, v) {
			return true
		}
	}
	return false
}

// kindCovers reports whether Kyverno kind selector o matches everything
// selector i matches (kubeutils.ParseKindSelector + wildcard per part, as
// pkg/utils/match.CheckKind does).
func kindCovers(o, i string) bool {
	og, ov, ok, os := kubeutils.ParseKindSelector(o)
	ig, iv, ik, is := kubeutils.ParseKindSelector(i)
	for _, p := range [][2]string{{og, ig}, {ov, iv}, {ok, ik}, {os, is}} {
		if r, _ := globCovers([]string{p[0]}, []string{p[1]}); r != yes {
			return false
		}
	}
	return true
}

// resourceCovers implements Kubernetes' admission resource patterns: "*"
// is every resource but no subresource, "*/*" everything, "pods/*" every
// subresource of pods, "*/scale" the scale subresource of everything.
func resourceCovers(o, i string) bool {
	if o == i || o == "*/*" {
		return true
	}
	or, os, _ := strings.Cut(o, "/")
	ir, is, _ := strings.Cut(i, "/")
	resOK := or == "*" || or == ir
	var subOK bool
	switch {
	case os == is:
		subOK = true
	case os == "*":
		subOK = is != ""
	}
	return resOK && subOK
}

// diffAtoms lists the atoms only in old and only in new, for messages.
func diffAtoms(old, new dnf) (removed, added []string) {
	in := func(d dnf) map[string]atom {
		m := map[string]atom{}
		for _, c := range d {
			for _, a := range c {
				m[a.String()] = a
			}
		}
		return m
	}
	o, n := in(old), in(new)
	for k := range o {
		if _, ok := n[k]; !ok {
			removed = append(removed, k)
		}
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			added = append(added, k)
		}
	}
	sort.Strings(removed)
	sort.Strings(added)
	return removed, added
}
