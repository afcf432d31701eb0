package scope

import (
	"regexp"
	"sort"
	"strings"
)

// Kyverno's wildcards (ext/wildcard, IGLOU-EU/go-wildcard): `*` matches any
// run of characters including none, `?` exactly one character, everything
// else itself; the empty pattern matches only the empty string. Such a
// pattern is a regular language, so questions like "does every string one
// set of patterns matches also match another set" are decidable exactly: run
// every pattern's automaton in lockstep over a finite alphabet (each literal
// character of any pattern, plus one character standing for all the others,
// which no pattern can tell apart) and search the reachable states for a
// string with the wanted property. The search is bounded; when the bound is
// hit the answer is "don't know", which the diff engine turns into Unknown.

// maxGlobStates bounds one search. Real policies use a handful of short
// patterns and need a few hundred states.
const maxGlobStates = 20000

// Tri is a three-valued answer; Unsure when a search hit its bound.
type Tri int

const (
	No Tri = iota
	Yes
	Unsure
)

// globMatch reports whether pattern matches s with Kyverno's semantics.
// Kyverno's own matcher backtracks recursively, which takes seconds to
// hours on a pattern with a dozen `*` and a long name (both come from the
// repository); this is the greedy matcher that, on a mismatch, only moves
// the last `*` on by one character: O(len(pattern)*len(s)) at worst,
// linear on real patterns. FuzzGlobMatch checks it against Kyverno's and
// against the automaton (globNFA) the set logic searches with.
// GlobMatchAny reports whether s matches one of the Kyverno wildcard
// patterns.
func GlobMatchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	if pattern == "*" {
		return true
	}
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0 // the last `*` seen, and where in t its match ends
	for ti < len(t) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case star >= 0:
			mark++
			pi, ti = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// hasWildcard reports whether p contains `*` or `?`.
func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?") }

// globNFA is one pattern's automaton: state i means "the first i runes of
// the pattern are consumed".
type globNFA []rune

// closure adds the states reachable without input (a `*` may match nothing).
func (p globNFA) closure(set []bool) {
	for i := 0; i < len(p); i++ {
		if set[i] && p[i] == '*' {
			set[i+1] = true
		}
	}
}

func (p globNFA) start() []bool {
	set := make([]bool, len(p)+1)
	set[0] = true
	p.closure(set)
	return set
}

func (p globNFA) step(set []bool, c rune) []bool {
	next := make([]bool, len(p)+1)
	for i := 0; i < len(p); i++ {
		if !set[i] {
			continue
		}
		switch p[i] {
		case '*':
			next[i] = true
		case '?':
			next[i+1] = true
		default:
			if p[i] == c {
				next[i+1] = true
			}
		}
	}
	p.closure(next)
	return next
}

// otherRune picks a character no pattern mentions, preferring ones valid in
// Kubernetes names so that witnesses read naturally.
func otherRune(lits map[rune]bool) rune {
	for _, c := range "xyzabcdefghijklmnopqrstuvw0123456789-" {
		if !lits[c] {
			return c
		}
	}
	for c := rune(0x100); ; c++ {
		if !lits[c] {
			return c
		}
	}
}

// findString searches for a string s such that pred(m) holds, where m[i]
// says whether patterns[i] matches s. It prefers a non-empty witness. The
// answer is yes (with a witness), no (no such string exists), or unsure
// (search bound reached).
func findString(patterns []string, pred func(m []bool) bool) (string, Tri) {
	nfas := make([]globNFA, len(patterns))
	lits := map[rune]bool{}
	for i, p := range patterns {
		nfas[i] = globNFA(p)
		for _, c := range p {
			if c != '*' && c != '?' {
				lits[c] = true
			}
		}
	}
	alphabet := make([]rune, 0, len(lits)+1)
	for c := range lits {
		alphabet = append(alphabet, c)
	}
	sort.Slice(alphabet, func(i, j int) bool { return alphabet[i] < alphabet[j] })
	alphabet = append(alphabet, otherRune(lits))

	type node struct {
		sets   [][]bool
		parent int
		via    rune
	}
	key := func(sets [][]bool) string {
		var b strings.Builder
		for _, s := range sets {
			for _, v := range s {
				if v {
					b.WriteByte('1')
				} else {
					b.WriteByte('0')
				}
			}
			b.WriteByte('|')
		}
		return b.String()
	}
	accepts := func(sets [][]bool) []bool {
		m := make([]bool, len(sets))
		for i, s := range sets {
			m[i] = s[len(s)-1]
		}
		return m
	}
	witness := func(nodes []node, i int) string {
		var rs []rune
		for ; i > 0; i = nodes[i].parent {
			rs = append(rs, nodes[i].via)
		}
		for l, r := 0, len(rs)-1; l < r; l, r = l+1, r-1 {
			rs[l], rs[r] = rs[r], rs[l]
		}
		return string(rs)
	}

	first := make([][]bool, len(nfas))
	for i, n := range nfas {
		first[i] = n.start()
	}
	nodes := []node{{sets: first, parent: -1}}
	seen := map[string]bool{key(first): true}
	emptyOK := pred(accepts(first))
	for i := 0; i < len(nodes); i++ {
		if i > 0 && pred(accepts(nodes[i].sets)) {
			return witness(nodes, i), Yes
		}
		for _, c := range alphabet {
			next := make([][]bool, len(nfas))
			for j, n := range nfas {
				next[j] = n.step(nodes[i].sets[j], c)
			}
			k := key(next)
			if seen[k] {
				continue
			}
			if len(nodes) >= maxGlobStates {
				if emptyOK {
					return "", Yes
				}
				return "", Unsure
			}
			seen[k] = true
			nodes = append(nodes, node{sets: next, parent: i, via: c})
		}
	}
	if emptyOK {
		return "", Yes
	}
	return "", No
}

// dnsLabel matches Kubernetes namespace names.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// niceWitness turns a witness into a valid namespace name when one more
// character keeps it a witness, so that messages name a plausible
// namespace ("dev-x" rather than "dev-").
func niceWitness(w string, patterns []string, pred func(m []bool) bool) string {
	if dnsLabel.MatchString(w) {
		return w
	}
	eval := func(s string) bool {
		m := make([]bool, len(patterns))
		for i, p := range patterns {
			m[i] = globMatch(p, s)
		}
		return pred(m)
	}
	for _, suffix := range []string{"x", "a", "1", "xx", "-x"} {
		if c := w + suffix; dnsLabel.MatchString(c) && eval(c) {
			return c
		}
	}
	return w
}

// globCovers reports whether every string matched by some pattern of inner
// is matched by some pattern of outer. It also returns a string matched by
// inner and not by outer when there is one.
func globCovers(outer, inner []string) (Tri, string) {
	if len(inner) == 0 {
		return Yes, ""
	}
	// Fast paths for the common cases.
	for _, o := range outer {
		if o == "*" {
			return Yes, ""
		}
	}
	all := true
	for _, i := range inner {
		if hasWildcard(i) {
			all = false
			break
		}
	}
	if all {
		for _, i := range inner {
			matched := false
			for _, o := range outer {
				if globMatch(o, i) {
					matched = true
					break
				}
			}
			if !matched {
				return No, i
			}
		}
		return Yes, ""
	}
	pats := append(append([]string{}, inner...), outer...)
	n := len(inner)
	w, found := findString(pats, func(m []bool) bool {
		in := false
		for _, v := range m[:n] {
			in = in || v
		}
		if !in {
			return false
		}
		for _, v := range m[n:] {
			if v {
				return false
			}
		}
		return true
	})
	switch found {
	case Yes:
		return No, w
	case No:
		return Yes, ""
	}
	return Unsure, ""
}
