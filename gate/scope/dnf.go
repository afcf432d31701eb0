package scope

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A scope (what a match selects, what an exclude or an exception exempts,
// when preconditions hold, when a validation denies) is modelled as a
// disjunction of conjunctions of atoms. An atom constrains one attribute of
// a request; atoms on different attributes are independent. Comparing two
// scopes answers "does the new one select at least everything the old one
// did" with a sound sufficient check: every old conjunction must be implied
// by a single new conjunction. When that cannot be shown and cannot be
// refuted with a witness, the answer is unsure.

// Mode is how an atom constrains its attribute.
type Mode int

const (
	// Glob: the attribute matches one of vals (Kyverno wildcards).
	Glob Mode = iota
	// Set: the attribute is one of vals (exact strings).
	Set
	// Opaque: a condition we cannot analyse (a JMESPath condition, a
	// CEL expression, a pattern); two are the same only if equal.
	Opaque
	// Kinds: the request's group/version/kind/subresource matches one
	// of the Kyverno kind selectors in vals.
	Kinds
	// Resources: the request's resource matches one of the Kubernetes
	// admission resource patterns in vals ("pods", "*", "pods/*", "*/*").
	Resources
	// Until: the request happens before the time in vals[0].
	Until
)

// Atom constrains one attribute of a request (built with Conj.With).
type Atom struct {
	attr string
	mode Mode
	vals []string // sorted, deduplicated
}

// String renders the atom for messages.
func (a Atom) String() string {
	switch a.mode {
	case Opaque:
		vals := make([]string, len(a.vals))
		for i, v := range a.vals {
			vals[i] = Abbreviate(v)
		}
		return a.attr + " " + strings.Join(vals, ", ")
	case Until:
		return a.attr + " " + a.vals[0]
	}
	return a.attr + "=[" + strings.Join(a.vals, ", ") + "]"
}

// Abbreviate shortens a long opaque value (a whole pattern, a long
// expression) for display, keeping a hash of the full text so that
// different values never render the same.
func Abbreviate(v string) string {
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

func (a Atom) key() string {
	return fmt.Sprintf("%d\x00%s\x00%s", a.mode, a.attr, strings.Join(a.vals, "\x00"))
}

// Conj is a conjunction; no atoms means "always".
type Conj []Atom

// DNF is a disjunction; no conjunctions means "never".
type DNF []Conj

// Always selects every request.
var Always = DNF{Conj{}}

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
func newAtom(attr string, mode Mode, vals []string) (Atom, bool) {
	vals = sortedUnique(vals)
	if len(vals) == 0 {
		return Atom{}, false
	}
	if mode == Glob {
		for _, v := range vals {
			if v == "*" {
				return Atom{}, false
			}
		}
	}
	return Atom{attr: attr, mode: mode, vals: vals}, true
}

// With adds an atom on attr (vals sorted and deduplicated), unless it
// constrains nothing: no values, a `*` glob.
func (c Conj) With(attr string, mode Mode, vals ...string) Conj {
	if a, ok := newAtom(attr, mode, vals); ok {
		return append(c, a)
	}
	return c
}

// Without returns c without its atoms on attrs.
func (c Conj) Without(attrs ...string) Conj {
	out := Conj{}
	for _, a := range c {
		if !contains(attrs, a.attr) {
			out = append(out, a)
		}
	}
	return out
}

// Values returns the values of c's atoms on attr (nil when c does not
// constrain it).
func (c Conj) Values(attr string) []string {
	var out []string
	for _, a := range c {
		if a.attr == attr {
			out = append(out, a.vals...)
		}
	}
	return out
}

// And returns the conjunction of two DNFs.
func (d DNF) And(e DNF) DNF {
	var out DNF
	for _, a := range d {
		for _, b := range e {
			c := append(append(Conj{}, a...), b...)
			out = append(out, c)
		}
	}
	return out
}

// String renders the conjunction for messages; "everything" when empty.
func (c Conj) String() string {
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

// String renders the scope for messages, canonically (conjunctions sorted):
// equal strings are equal scopes; "nothing" when empty.
func (d DNF) String() string {
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

// Relation is what a new scope selects compared with an old one.
type Relation int

const (
	Equal           Relation = iota // the same requests
	Wider                           // strictly wider
	WiderOrEqual                    // at least as wide; strictness not shown
	Narrower                        // strictly narrower
	NarrowerOrEqual                 // at most as wide; strictness not shown
	Incomparable                    // changed both ways, or undecided
)

// Compare compares new against old.
func Compare(old, new DNF) Relation {
	if old.String() == new.String() {
		return Equal
	}
	w := covers(new, old) // new selects all old did
	n := covers(old, new) // old selects all new does
	switch {
	case w == Yes && n == Yes:
		return Equal
	case w == Yes && n == No:
		return Wider
	case w == Yes:
		return WiderOrEqual
	case n == Yes && w == No:
		return Narrower
	case n == Yes:
		return NarrowerOrEqual
	}
	return Incomparable
}

// Covers reports whether outer is shown to select everything inner
// selects (false also when that is undecided).
func Covers(outer, inner DNF) bool { return covers(outer, inner) == Yes }

// covers reports whether outer selects everything inner selects.
func covers(outer, inner DNF) Tri {
	res := Yes
	for _, ci := range inner {
		best := No
		for _, co := range outer {
			switch conjCovers(co, ci) {
			case Yes:
				best = Yes
			case Unsure:
				if best == No {
					best = Unsure
				}
			}
			if best == Yes {
				break
			}
		}
		// Not implied by any single conjunction: with several, the union
		// might still cover it unless one request escapes them all.
		if best == No && len(outer) > 1 && !escapesAll(ci, outer) {
			best = Unsure
		}
		if best == No {
			return No
		}
		if best == Unsure {
			res = Unsure
		}
	}
	return res
}

// escapesAll reports whether some request satisfies c and none of the
// conjunctions of outer. Opaque atoms are independent unknowns: a
// conjunction with one that c does not assert can be escaped by making it
// false. The others must all be escaped through one attribute.
func escapesAll(c Conj, outer DNF) bool {
	mine := map[string]bool{}
	for _, a := range c {
		mine[a.key()] = true
	}
	var rest DNF
	for _, o := range outer {
		free := false
		for _, a := range o {
			if a.mode == Opaque && !mine[a.key()] {
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
		mode Mode
	}
	atomsOf := func(x Conj, k attrKey) []Atom {
		var out []Atom
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
			if seen[k] || (k.mode != Glob && k.mode != Set) {
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
			case Set:
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
			case Glob:
				var pats []string
				group := func(as []Atom) [][2]int {
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
				if found == Yes {
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
func conjCovers(outer, inner Conj) Tri {
	res := Yes
	for _, a := range outer {
		switch implied(inner, a) {
		case No:
			return No
		case Unsure:
			res = Unsure
		}
	}
	return res
}

// implied reports whether the atoms of c imply a. "no" comes with an
// (implicit) witness: attributes are independent, so a value satisfying
// c's atoms on a's attribute but not a is enough.
func implied(c Conj, a Atom) Tri {
	var same []Atom
	for _, b := range c {
		if b.attr == a.attr && b.mode == a.mode {
			same = append(same, b)
		}
	}
	if len(same) == 0 {
		return No
	}
	for _, b := range same {
		if b.key() == a.key() {
			return Yes
		}
	}
	switch a.mode {
	case Opaque:
		return No
	case Set:
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
			return Yes
		}
		return No
	case Glob:
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
		case Yes:
			return No
		case No:
			return Yes
		}
		return Unsure
	case Kinds, Resources:
		var r Tri = Unsure
		for _, b := range same {
			ok := true
			for _, v := range b.vals {
				if !selectorCovered(a.mode, a.vals, v) {
					ok = false
					break
				}
			}
			if ok {
				return Yes
			}
		}
		if len(same) == 1 {
			r = No
		}
		return r
	case Until:
		ta, err1 := time.Parse(time.RFC3339, a.vals[0])
		for _, b := range same {
			tb, err2 := time.Parse(time.RFC3339, b.vals[0])
			if err1 == nil && err2 == nil && !ta.Before(tb) {
				return Yes
			}
		}
		return No
	}
	return Unsure
}

// selectorCovered reports whether the single selector v is covered by one
// of the selectors in outer.
func selectorCovered(mode Mode, outer []string, v string) bool {
	for _, o := range outer {
		if mode == Kinds && kindCovers(o, v) {
			return true
		}
		if mode == Resources && resourceCovers(o, v) {
			return true
		}
	}
	return false
}

// kindCovers reports whether Kyverno kind selector o matches everything
// selector i matches (parseKindSelector + wildcard per part, as
// pkg/utils/match.CheckKind does).
func kindCovers(o, i string) bool {
	og, ov, ok, os := parseKindSelector(o)
	ig, iv, ik, is := parseKindSelector(i)
	for _, p := range [][2]string{{og, ig}, {ov, iv}, {ok, ik}, {os, is}} {
		if r, _ := globCovers([]string{p[0]}, []string{p[1]}); r != Yes {
			return false
		}
	}
	return true
}

// versionRE and parseKindSelector are Kyverno v1.19.1's
// pkg/utils/kube.versionRegex and ParseKindSelector, copied so that this
// package does not link Kyverno: a selector "[group/]version/]Kind[/sub]"
// (or "Kind.sub") split into group, version, kind and subresource.
var versionRE = regexp.MustCompile(`^(v\d((alpha|beta)\d)?|\*)$`)

func parseKindSelector(input string) (string, string, string, string) {
	parts := strings.Split(input, "/")
	if len(parts) > 0 {
		parts = append(parts[:len(parts)-1], strings.Split(parts[len(parts)-1], ".")...)
	}
	switch len(parts) {
	case 1:
		return "*", "*", parts[0], ""
	case 2:
		if parts[0] == "*" && parts[1] == "*" {
			return "*", "*", "*", "*"
		}
		if parts[0] == "*" && strings.ToLower(parts[1]) == parts[1] {
			return "*", "*", parts[0], parts[1]
		}
		if versionRE.MatchString(parts[0]) {
			return "*", parts[0], parts[1], ""
		}
		return "*", "*", parts[0], parts[1]
	case 3:
		if versionRE.MatchString(parts[0]) {
			return "*", parts[0], parts[1], parts[2]
		}
		return parts[0], parts[1], parts[2], ""
	case 4:
		return parts[0], parts[1], parts[2], parts[3]
	default:
		return "", "", "", ""
	}
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

// DiffAtoms lists the atoms only in old and only in new, for messages.
func DiffAtoms(old, new DNF) (removed, added []string) {
	in := func(d DNF) map[string]Atom {
		m := map[string]Atom{}
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
