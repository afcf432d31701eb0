package scope

import (
	"hash/fnv"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kyverno/kyverno/ext/wildcard"
)

// Fuzz targets of the set logic the weakening diff decides with: Kyverno's
// wildcards, glob set inclusion and scope comparison. See docs/fuzzing.md.

// ---- wildcards

// refMatchable keeps the reference matcher (Kyverno's own, which
// backtracks) to inputs it decides in well under a millisecond.
func refMatchable(pattern, s string) bool {
	return strings.Count(pattern, "*") <= 4 && utf8.RuneCountInString(s) <= 24
}

// derive turns pattern into a string it must match: each `*` becomes the
// next piece of fill (split at "|"), each `?` one rune of fill (or 'q').
func derive(pattern, fill string) string {
	pieces := strings.Split(fill, "|")
	var b strings.Builder
	i := 0
	for _, c := range pattern {
		switch c {
		case '*':
			b.WriteString(pieces[i%len(pieces)])
			i++
		case '?':
			r, _ := utf8.DecodeRuneInString(pieces[i%len(pieces)])
			if r == utf8.RuneError {
				r = 'q'
			}
			b.WriteRune(r)
			i++
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// nfaMatch runs globNFA, the automaton findString searches with.
func nfaMatch(pattern, s string) bool {
	n := globNFA(pattern)
	set := n.start()
	for _, c := range s {
		set = n.step(set, c)
	}
	return set[len(n)]
}

// FuzzGlobMatch checks globMatch against Kyverno's wildcard.Match and
// against the automaton the set logic uses, and that a pattern matches
// every string made from it by filling its wildcards (and itself).
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][3]string{
		{"", "", ""}, {"*", "x", ""}, {"a?c", "abc", "b"}, {"canary-*", "canary-1", "1"}, {"*-*", "a-b", "a|b"},
		{"a*b*c", "aXbYc", "X|Y"}, {"**", "", ""}, {"*?", "é", "é"}, {"\xff", "\xfe", ""}, {"?", "ü", "ü"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, s, fill string) {
		if len(pattern) > 256 || len(s) > 256 || len(fill) > 256 {
			return
		}
		got := globMatch(pattern, s)
		if got != globMatch(pattern, s) {
			t.Fatal("not deterministic")
		}
		if want := nfaMatch(pattern, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, its automaton says %v", pattern, s, got, want)
		}
		if refMatchable(pattern, s) {
			if want := wildcard.Match(pattern, s); got != want {
				t.Fatalf("globMatch(%q, %q) = %v, Kyverno says %v", pattern, s, got, want)
			}
		}
		if d := derive(pattern, fill); !globMatch(pattern, d) {
			t.Fatalf("globMatch(%q, %q) = false for a string made from the pattern", pattern, d)
		}
		if !globMatch(pattern, pattern) {
			t.Fatalf("%q does not match itself", pattern)
		}
	})
}

// splitPats turns a fuzz string into at most 4 patterns of at most 12
// runes, keeping the automaton searches small.
func splitPats(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if len(out) == 4 {
			break
		}
		if r := []rune(p); len(r) > 12 {
			p = string(r[:12])
		}
		out = append(out, p)
	}
	return out
}

func anyGlob(pats []string, s string) bool {
	for _, p := range pats {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// samples are strings to test set claims on: the patterns themselves and
// strings derived from each with fills drawn from every pattern's text.
func samples(pats ...[]string) []string {
	var all []string
	for _, ps := range pats {
		all = append(all, ps...)
	}
	fills := []string{"", "x", "xx", "-"}
	for _, p := range all {
		fills = append(fills, strings.ReplaceAll(strings.ReplaceAll(p, "*", ""), "?", "q"))
		for _, c := range p {
			if c != '*' && c != '?' {
				fills = append(fills, string(c))
			}
		}
	}
	fills = sortedUnique(fills)
	out := append([]string{}, all...)
	for _, p := range all {
		for _, f := range fills {
			out = append(out, derive(p, f))
		}
		for i, f := range fills {
			out = append(out, derive(p, f+"|"+fills[(i+1)%len(fills)]))
		}
	}
	return sortedUnique(out)
}

// FuzzGlobCovers checks globCovers, the subset test behind every narrowed
// or widened namespace/name list: reflexive, its witness of a "no" really
// separates the sets, its "yes" holds on every sample string, adding
// patterns to the outer side never loses a "yes", and it is transitive.
func FuzzGlobCovers(f *testing.F) {
	for _, s := range [][3]string{
		{"*", "canary-*", "canary-a"}, {"canary-*", "*", "x"}, {"a*,b*", "?*", "a?"}, {"?*", "*", ""},
		{",?*", "*", "*"}, {"*a*", "a*,*a", "a"}, {"a*", "a?", "ab"}, {"*-prod,*-dev", "team-*-prod", "team-a-prod"},
		{"??*", "?", "x"}, {"*??*", "??*", "???"}, {"prod", "prod,dev", "dev"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		outer, inner, third := splitPats(a), splitPats(b), splitPats(c)
		r, w := globCovers(outer, inner)
		if r2, w2 := globCovers(outer, inner); r2 != r || w2 != w {
			t.Fatal("not deterministic")
		}
		if self, _ := globCovers(inner, inner); self == No {
			t.Fatalf("globCovers(%q, itself) = no", inner)
		}
		switch r {
		case No:
			if !anyGlob(inner, w) || anyGlob(outer, w) {
				t.Fatalf("globCovers(%q, %q) = no with witness %q, which does not separate them", outer, inner, w)
			}
		case Yes:
			for _, s := range samples(outer, inner, third) {
				if anyGlob(inner, s) && !anyGlob(outer, s) {
					t.Fatalf("globCovers(%q, %q) = yes, but %q is matched by inner only", outer, inner, s)
				}
			}
			if r2, _ := globCovers(append(append([]string{}, outer...), third...), inner); r2 == No {
				t.Fatalf("globCovers(%q + %q, %q) = no, without %q yes", outer, third, inner, third)
			}
			if r2, _ := globCovers(inner, third); r2 == Yes {
				if r3, w3 := globCovers(outer, third); r3 == No {
					t.Fatalf("not transitive: %q ⊇ %q ⊇ %q, but not %q ⊇ %q (witness %q)", outer, inner, third, outer, third, w3)
				}
			}
		}
	})
}

// ---- scopes

// parseScope reads a scope written compactly for fuzzing: conjunctions
// separated by "|", atoms by "&"; an atom is one letter and values
// separated by ",": n namespaces (glob), m names (glob), o operations
// (set), c a condition (opaque), k kinds, r resources. "-" is "nothing".
func parseScope(s string) DNF {
	if s == "-" {
		return DNF{}
	}
	var d DNF
	for i, cs := range strings.Split(s, "|") {
		if i == 4 {
			break
		}
		c := Conj{}
		for j, as := range strings.Split(cs, "&") {
			if as == "" || j == 4 {
				continue
			}
			vals := splitPats(as[1:])
			switch as[0] {
			case 'n':
				c = c.With("namespaces", Glob, vals...)
			case 'm':
				c = c.With("names", Glob, vals...)
			case 'o':
				c = c.With("operations", Set, vals...)
			case 'k':
				c = c.With("kinds", Kinds, vals...)
			case 'r':
				c = c.With("resources", Resources, vals...)
			default:
				c = c.With("condition", Opaque, as[1:])
			}
		}
		d = append(d, c)
	}
	return d
}

// request is one concrete admission request for the scope model: a value
// per glob or set attribute, and which opaque conditions hold.
type request struct {
	vals   map[string]string
	opaque map[string]bool
}

func (r request) satisfies(d DNF) bool {
	for _, c := range d {
		ok := true
		for _, a := range c {
			switch a.mode {
			case Glob:
				ok = anyGlob(a.vals, r.vals[a.attr])
			case Set:
				ok = contains(a.vals, r.vals[a.attr])
			case Opaque:
				ok = r.opaque[a.key()]
			default:
				return false // not modelled; requests() skips such scopes
			}
			if !ok {
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// requests draws concrete requests for scopes made only of glob, set and
// opaque atoms (nil otherwise): values from samples of every pattern of
// the attribute, a fresh value for sets, opaque conditions on and off.
func requests(seed string, ds ...DNF) []request {
	cands := map[string][]string{}
	var opaque []string
	for _, d := range ds {
		for _, c := range d {
			for _, a := range c {
				switch a.mode {
				case Glob, Set:
					cands[a.attr] = append(cands[a.attr], a.vals...)
				case Opaque:
					opaque = append(opaque, a.key())
				default:
					return nil
				}
			}
		}
	}
	attrs := make([]string, 0, len(cands))
	for attr, vs := range cands {
		cands[attr] = append(samples(vs), "\x00fresh")
		attrs = append(attrs, attr)
	}
	sort.Strings(attrs)
	opaque = sortedUnique(opaque)
	h := fnv.New64a()
	h.Write([]byte(seed))
	rng := rand.New(rand.NewSource(int64(h.Sum64())))
	var out []request
	for i := 0; i < 300; i++ {
		r := request{vals: map[string]string{}, opaque: map[string]bool{}}
		for _, attr := range attrs {
			r.vals[attr] = cands[attr][rng.Intn(len(cands[attr]))]
		}
		for _, k := range opaque {
			r.opaque[k] = rng.Intn(2) == 0
		}
		out = append(out, r)
	}
	return out
}

// FuzzCompareScopes checks compareScopes and covers, which decide whether a
// match, an exclude or an exception selects more or less than before:
// every scope equals itself, comparing the other way round mirrors the
// answer, and a "covers" claim holds on concrete requests drawn from the
// scopes' own values.
func FuzzCompareScopes(f *testing.F) {
	for _, s := range [][2]string{
		{"n*", "ncanary-*"}, {"na-*", "nb-*"}, {"kPod", "kPod|kDeployment"}, {"kPod", "kPod&nprod-*"}, {"-", "na"},
		{"cx", "cx&cy"}, {"cx", "cy"}, {"na|nb", "na|nb|nc"}, {"na,b", "na|nb"}, {"na*&n*b", "na*b,ab"},
		{"oCREATE,UPDATE", "oCREATE"}, {"rpods/*", "r*/*"}, {"na*&oCREATE|cx", "na*|cx&oUPDATE"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		old, new := parseScope(a), parseScope(b)
		rel := Compare(old, new)
		if Compare(old, new) != rel {
			t.Fatal("not deterministic")
		}
		if r := Compare(old, old); r != Equal {
			t.Fatalf("compareScopes(%s, itself) = %v", old, r)
		}
		mirror := map[Relation]Relation{Equal: Equal, Wider: Narrower, Narrower: Wider,
			WiderOrEqual: NarrowerOrEqual, NarrowerOrEqual: WiderOrEqual, Incomparable: Incomparable}
		if back := Compare(new, old); back != mirror[rel] {
			t.Fatalf("compareScopes(%s, %s) = %v, but the other way round %v", old, new, rel, back)
		}
		reqs := requests(a+"\n"+b, old, new)
		for _, pair := range [][2]DNF{{old, new}, {new, old}} {
			if covers(pair[0], pair[1]) != Yes {
				continue
			}
			for _, r := range reqs {
				if r.satisfies(pair[1]) && !r.satisfies(pair[0]) {
					t.Fatalf("covers(%s, %s) = yes, but request %v is selected by the second only", pair[0], pair[1], r)
				}
			}
		}
		if rel == Equal || rel == Wider || rel == Narrower {
			for _, r := range reqs {
				o, n := r.satisfies(old), r.satisfies(new)
				if rel == Equal && o != n || rel == Wider && o && !n || rel == Narrower && n && !o {
					t.Fatalf("compareScopes(%s, %s) = %v, but request %v: old %v, new %v", old, new, rel, r, o, n)
				}
			}
		}
	})
}
