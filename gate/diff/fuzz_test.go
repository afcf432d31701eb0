package weaken

import (
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kyverno/kyverno/ext/wildcard"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// Fuzz targets of the weakening gate: approval annotations (repository
// bytes), Kyverno's wildcards and the set logic the diff decides with, and
// the diff itself on repository policies. See docs/fuzzing.md.

// ---- approvals

var approvalLineRE = regexp.MustCompile(`approve\.kyverno-gate\.io/(\S+):\s*"([^"]*)"`)

// FuzzApproval checks ParseApproval and CollectApprovals on an annotation
// key suffix and value: no panic, the same answer twice, an accepted value
// holds no placeholder or ";" and reads back from its own rendering
// (describe), an expiry date is kept and ends the approval the day after,
// and every approval key lands in exactly one place.
func FuzzApproval(f *testing.F) {
	for _, s := range [][2]string{
		{"3ee624205261", "reason=migration window; ticket=SEC-42; expires=2026-12-31"},
		{"163d6ff11364", "reason=registries stay at Audit; ticket=PLAT-1234; by=security-team"},
		{"3ee624205261", ""},
		{"3ee624205261", SuggestedValue},
		{"3ee624205261", "reason=a; reason=b"},
		{"3ee624205261", " expires = 2026-02-30 "},
		{"3EE624205261", "ticket=x=y;;by=me"},
		{"<fingerprint>", "why"},
	} {
		f.Add(s[0], s[1])
	}
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		for _, m := range approvalLineRE.FindAllStringSubmatch(string(file.Data), -1) {
			f.Add(m[1], m[2])
		}
	}
	f.Fuzz(func(t *testing.T, suffix, value string) {
		a, err := ParseApproval(value)
		a2, err2 := ParseApproval(value)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(a, a2) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", a, err, a2, err2)
		}
		if err == nil {
			for _, v := range []string{a.Reason, a.Ticket, a.By} {
				if strings.Contains(v, ";") || strings.TrimSpace(v) != v || placeholderRE.MatchString(v) {
					t.Fatalf("accepted value %q", v)
				}
			}
			back, err := ParseApproval(a.describe())
			if err != nil || !reflect.DeepEqual(back, a) {
				t.Fatalf("%q: parsed %+v, its rendering %q reads back as %+v, %v", value, a, a.describe(), back, err)
			}
			if hasKey(value, "expires") {
				if a.Expires.IsZero() {
					t.Fatalf("%q: accepted with an expiry, but Expires is zero (never expires)", value)
				}
				last := a.Expires.Add(24*time.Hour - time.Nanosecond)
				if a.Expired(last) || !a.Expired(last.Add(time.Nanosecond)) || !a.Valid(a.Expires) {
					t.Fatalf("%q: expiry %v not honoured", value, a.Expires)
				}
			} else if !a.Expires.IsZero() || a.Expired(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Fatalf("%q: no expiry given, but Expires = %v", value, a.Expires)
			}
		}

		key := ApprovalPrefix + suffix
		res := &render.Resource{APIVersion: "kyverno.io/v1", Kind: "ClusterPolicy", Name: "p", Source: "p.yaml",
			Object: map[string]any{"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
				"metadata": map[string]any{"name": "p", "annotations": map[string]any{key: value, "other": value}}}}
		got := CollectApprovals([]*render.Resource{res})
		n := len(got.BadKeys)
		for fp, as := range got.ByFingerprint {
			n += len(as)
			for _, x := range as {
				if x.Fingerprint != fp || !fingerprintRE.MatchString(fp) || x.Key() != key {
					t.Fatalf("approval %+v filed under %q", x, fp)
				}
				if fmt.Sprint(x.Err) != fmt.Sprint(err) {
					t.Fatalf("collected error %v, ParseApproval says %v", x.Err, err)
				}
			}
		}
		if n != 1 {
			t.Fatalf("key %q: %d approvals collected, want 1: %+v", key, n, got)
		}
		if len(got.BadKeys) == 1 && (got.BadKeys[0].Err == nil || fingerprintRE.MatchString(suffix)) {
			t.Fatalf("key %q: bad key %+v", key, got.BadKeys[0])
		}
	})
}

// hasKey reports whether the approval value has a pair with key k.
func hasKey(value, k string) bool {
	for _, pair := range strings.Split(value, ";") {
		if key, _, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.TrimSpace(key) == k {
			return true
		}
	}
	return false
}

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
		if self, _ := globCovers(inner, inner); self == no {
			t.Fatalf("globCovers(%q, itself) = no", inner)
		}
		switch r {
		case no:
			if !anyGlob(inner, w) || anyGlob(outer, w) {
				t.Fatalf("globCovers(%q, %q) = no with witness %q, which does not separate them", outer, inner, w)
			}
		case yes:
			for _, s := range samples(outer, inner, third) {
				if anyGlob(inner, s) && !anyGlob(outer, s) {
					t.Fatalf("globCovers(%q, %q) = yes, but %q is matched by inner only", outer, inner, s)
				}
			}
			if r2, _ := globCovers(append(append([]string{}, outer...), third...), inner); r2 == no {
				t.Fatalf("globCovers(%q + %q, %q) = no, without %q yes", outer, third, inner, third)
			}
			if r2, _ := globCovers(inner, third); r2 == yes {
				if r3, w3 := globCovers(outer, third); r3 == no {
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
func parseScope(s string) dnf {
	if s == "-" {
		return dnf{}
	}
	var d dnf
	for i, cs := range strings.Split(s, "|") {
		if i == 4 {
			break
		}
		c := conj{}
		for j, as := range strings.Split(cs, "&") {
			if as == "" || j == 4 {
				continue
			}
			vals := splitPats(as[1:])
			switch as[0] {
			case 'n':
				c = c.with("namespaces", modeGlob, vals...)
			case 'm':
				c = c.with("names", modeGlob, vals...)
			case 'o':
				c = c.with("operations", modeSet, vals...)
			case 'k':
				c = c.with("kinds", modeKinds, vals...)
			case 'r':
				c = c.with("resources", modeResources, vals...)
			default:
				c = c.with("condition", modeOpaque, as[1:])
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

func (r request) satisfies(d dnf) bool {
	for _, c := range d {
		ok := true
		for _, a := range c {
			switch a.mode {
			case modeGlob:
				ok = anyGlob(a.vals, r.vals[a.attr])
			case modeSet:
				ok = contains(a.vals, r.vals[a.attr])
			case modeOpaque:
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
func requests(seed string, ds ...dnf) []request {
	cands := map[string][]string{}
	var opaque []string
	for _, d := range ds {
		for _, c := range d {
			for _, a := range c {
				switch a.mode {
				case modeGlob, modeSet:
					cands[a.attr] = append(cands[a.attr], a.vals...)
				case modeOpaque:
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
		rel := compareScopes(old, new)
		if compareScopes(old, new) != rel {
			t.Fatal("not deterministic")
		}
		if r := compareScopes(old, old); r != relEqual {
			t.Fatalf("compareScopes(%s, itself) = %v", old, r)
		}
		mirror := map[relation]relation{relEqual: relEqual, relWider: relNarrower, relNarrower: relWider,
			relWiderOrEqual: relNarrowerOrEqual, relNarrowerOrEqual: relWiderOrEqual, relUnknown: relUnknown}
		if back := compareScopes(new, old); back != mirror[rel] {
			t.Fatalf("compareScopes(%s, %s) = %v, but the other way round %v", old, new, rel, back)
		}
		reqs := requests(a+"\n"+b, old, new)
		for _, pair := range [][2]dnf{{old, new}, {new, old}} {
			if covers(pair[0], pair[1]) != yes {
				continue
			}
			for _, r := range reqs {
				if r.satisfies(pair[1]) && !r.satisfies(pair[0]) {
					t.Fatalf("covers(%s, %s) = yes, but request %v is selected by the second only", pair[0], pair[1], r)
				}
			}
		}
		if rel == relEqual || rel == relWider || rel == relNarrower {
			for _, r := range reqs {
				o, n := r.satisfies(old), r.satisfies(new)
				if rel == relEqual && o != n || rel == relWider && o && !n || rel == relNarrower && n && !o {
					t.Fatalf("compareScopes(%s, %s) = %v, but request %v: old %v, new %v", old, new, rel, r, o, n)
				}
			}
		}
	})
}

// ---- the diff on repository policies

// renderedFuzz reads a YAML stream as a lock file is read, then makes each
// object what render makes of it: decoded from its printed YAML. nil when
// it is not a stream of objects.
func renderedFuzz(data []byte) []*render.Resource {
	res, err := baseline.Parse(data, "fuzz.yaml")
	if err != nil {
		return nil
	}
	out := make([]*render.Resource, 0, len(res.Resources))
	for _, r := range res.Resources {
		one, err := baseline.Parse(r.YAML, "fuzz.yaml")
		if err != nil || len(one.Resources) != 1 {
			return nil
		}
		p := one.Resources[0]
		p.YAML = r.YAML
		out = append(out, p)
	}
	return out
}

func loadFuzz(t *testing.T, resources []*render.Resource) []*kyverno.Object {
	if resources == nil {
		return nil
	}
	objs, err := kyverno.Load(resources)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func checkChanges(t *testing.T, cs []Change) {
	t.Helper()
	for _, c := range cs {
		switch c.Class {
		case Weaker, Stricter, Unknown:
		default:
			t.Fatalf("change of class %q: %v", c.Class, c)
		}
		if c.Fingerprint != Fingerprint(c.Kind, c.Policy, c.Rule, c.Field, c.Before, c.After) || !fingerprintRE.MatchString(c.Fingerprint) {
			t.Fatalf("bad fingerprint: %v", c)
		}
	}
}

// FuzzDiffSelf feeds the diff a rendering (a YAML stream, each object
// decoded from its printed YAML as render does) seeded with the example
// repository's and the corpus's policies: a rendering compared with itself,
// with a second load of the same bytes and with its own lock file
// (LockHeader + Stream, read back by baseline.Parse) has no change, and
// adding or removing it all gives the same changes every time.
func FuzzDiffSelf(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		f.Add(file.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resources := renderedFuzz(data)
		objs := loadFuzz(t, resources)
		if objs == nil {
			return
		}
		if cs := Diff(objs, objs); len(cs) > 0 {
			t.Fatalf("a rendering differs from itself: %v", cs)
		}
		if cs := Diff(objs, loadFuzz(t, renderedFuzz(data))); len(cs) > 0 {
			t.Fatalf("two loads of the same bytes differ: %v", cs)
		}
		lock, err := baseline.Parse(append([]byte(baseline.LockHeader("overlays/x")), baseline.Stream(resources)...), "lock.yaml")
		if err != nil {
			t.Fatalf("its lock file does not read back: %v", err)
		}
		if cs := Diff(objs, loadFuzz(t, lock.Resources)); len(cs) > 0 {
			t.Fatalf("the rendering differs from its lock file: %v", cs)
		}
		for _, pair := range [][2][]*kyverno.Object{{nil, objs}, {objs, nil}} {
			cs := Diff(pair[0], pair[1])
			checkChanges(t, cs)
			if again := Diff(pair[0], pair[1]); !reflect.DeepEqual(cs, again) {
				t.Fatalf("not deterministic:\n%v\n%v", cs, again)
			}
		}
	})
}

// FuzzDiff feeds the diff two renderings, seeded with the gate's test
// cases (baseline, then head): the same changes every time, each with a
// valid class and fingerprint.
func FuzzDiff(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cases", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		if parts := headSep.Split(string(data), -1); len(parts) == 2 {
			f.Add([]byte(parts[0]), []byte(parts[1]))
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		old, new := loadFuzz(t, renderedFuzz(a)), loadFuzz(t, renderedFuzz(b))
		if old == nil || new == nil {
			return
		}
		cs := Diff(old, new)
		checkChanges(t, cs)
		if again := Diff(loadFuzz(t, renderedFuzz(a)), loadFuzz(t, renderedFuzz(b))); !reflect.DeepEqual(cs, again) {
			t.Fatalf("not deterministic:\n%v\n%v", cs, again)
		}
	})
}
