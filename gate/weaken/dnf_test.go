package weaken

import "testing"

func TestCompareScopes(t *testing.T) {
	ns := func(vals ...string) conj { return conj{}.with("namespaces", modeGlob, vals...) }
	kinds := func(vals ...string) conj { return conj{}.with("kinds", modeKinds, vals...) }
	and := func(cs ...conj) conj {
		var out conj
		for _, c := range cs {
			out = append(out, c...)
		}
		return out
	}
	op := func(v string) conj { return conj{}.with("condition", modeOpaque, v) }
	cases := []struct {
		name     string
		old, new dnf
		want     relation
	}{
		{"same", dnf{ns("a")}, dnf{ns("a")}, relEqual},
		{"star is everything", dnf{ns("*")}, always, relEqual},
		{"narrowed", dnf{ns("*")}, dnf{ns("canary-*")}, relNarrower},
		{"widened", dnf{ns("canary-*")}, dnf{ns("*")}, relWider},
		{"incomparable", dnf{ns("a-*")}, dnf{ns("b-*")}, relUnknown},
		{"any filter added", dnf{kinds("Pod")}, dnf{kinds("Pod"), kinds("Deployment")}, relWider},
		{"all filter added", dnf{kinds("Pod")}, dnf{and(kinds("Pod"), ns("prod-*"))}, relNarrower},
		{"never to something", dnf{}, dnf{ns("a")}, relWider},
		{"opaque added", dnf{op("x")}, dnf{and(op("x"), op("y"))}, relNarrower},
		{"opaque changed", dnf{op("x")}, dnf{op("y")}, relUnknown},
		{"opaque any added", dnf{op("x")}, dnf{op("x"), op("y")}, relWider},
		// a third grant next to two others escapes both
		{"union grows", dnf{ns("a"), ns("b")}, dnf{ns("a"), ns("b"), ns("c")}, relWider},
		{"union shrinks", dnf{ns("a"), ns("b"), ns("c")}, dnf{ns("a"), ns("b")}, relNarrower},
		// split filters: equal, but only shown one way
		{"split", dnf{ns("a", "b")}, dnf{ns("a"), ns("b")}, relNarrowerOrEqual},
		{"all of two namespaces lists", dnf{and(ns("a*"), ns("*b"))}, dnf{ns("a*b", "ab")}, relEqual},
		{"sets", dnf{conj{}.with("operations", modeSet, "CREATE", "UPDATE")}, dnf{conj{}.with("operations", modeSet, "CREATE")}, relNarrower},
		{"until later", dnf{conj{}.with("until", modeUntil, "2026-01-01T00:00:00Z")}, dnf{conj{}.with("until", modeUntil, "2026-06-01T00:00:00Z")}, relWider},
		{"until removed", dnf{conj{}.with("until", modeUntil, "2026-01-01T00:00:00Z")}, always, relWider},
	}
	for _, c := range cases {
		if got := compareScopes(c.old, c.new); got != c.want {
			t.Errorf("%s: compareScopes(%s, %s) = %v, want %v", c.name, c.old, c.new, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		r            relation
		narrowIsWeak bool
		want         Class
	}{
		{relNarrower, true, Weaker}, {relNarrower, false, Stricter}, {relWider, true, Stricter}, {relWider, false, Weaker},
		{relNarrowerOrEqual, true, Unknown}, {relNarrowerOrEqual, false, Equivalent}, {relWiderOrEqual, true, Equivalent},
		{relWiderOrEqual, false, Unknown}, {relUnknown, true, Unknown}, {relUnknown, false, Unknown}, {relEqual, true, Equivalent},
	} {
		if got := c.r.classify(c.narrowIsWeak); got != c.want {
			t.Errorf("%v.classify(%v) = %v, want %v", c.r, c.narrowIsWeak, got, c.want)
		}
	}
}
