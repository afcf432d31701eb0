package scope

import "testing"

func TestCompareScopes(t *testing.T) {
	ns := func(vals ...string) Conj { return Conj{}.With("namespaces", Glob, vals...) }
	kinds := func(vals ...string) Conj { return Conj{}.With("kinds", Kinds, vals...) }
	And := func(cs ...Conj) Conj {
		var out Conj
		for _, c := range cs {
			out = append(out, c...)
		}
		return out
	}
	op := func(v string) Conj { return Conj{}.With("condition", Opaque, v) }
	cases := []struct {
		name     string
		old, new DNF
		want     Relation
	}{
		{"same", DNF{ns("a")}, DNF{ns("a")}, Equal},
		{"star is everything", DNF{ns("*")}, Always, Equal},
		{"narrowed", DNF{ns("*")}, DNF{ns("canary-*")}, Narrower},
		{"widened", DNF{ns("canary-*")}, DNF{ns("*")}, Wider},
		{"incomparable", DNF{ns("a-*")}, DNF{ns("b-*")}, Incomparable},
		{"any filter added", DNF{kinds("Pod")}, DNF{kinds("Pod"), kinds("Deployment")}, Wider},
		{"all filter added", DNF{kinds("Pod")}, DNF{And(kinds("Pod"), ns("prod-*"))}, Narrower},
		{"never to something", DNF{}, DNF{ns("a")}, Wider},
		{"opaque added", DNF{op("x")}, DNF{And(op("x"), op("y"))}, Narrower},
		{"opaque changed", DNF{op("x")}, DNF{op("y")}, Incomparable},
		{"opaque any added", DNF{op("x")}, DNF{op("x"), op("y")}, Wider},
		// a third grant next to two others escapes both
		{"union grows", DNF{ns("a"), ns("b")}, DNF{ns("a"), ns("b"), ns("c")}, Wider},
		{"union shrinks", DNF{ns("a"), ns("b"), ns("c")}, DNF{ns("a"), ns("b")}, Narrower},
		// split filters: equal, but only shown one way
		{"split", DNF{ns("a", "b")}, DNF{ns("a"), ns("b")}, NarrowerOrEqual},
		{"all of two namespaces lists", DNF{And(ns("a*"), ns("*b"))}, DNF{ns("a*b", "ab")}, Equal},
		{"sets", DNF{Conj{}.With("operations", Set, "CREATE", "UPDATE")}, DNF{Conj{}.With("operations", Set, "CREATE")}, Narrower},
		{"until later", DNF{Conj{}.With("until", Until, "2026-01-01T00:00:00Z")}, DNF{Conj{}.With("until", Until, "2026-06-01T00:00:00Z")}, Wider},
		{"until removed", DNF{Conj{}.With("until", Until, "2026-01-01T00:00:00Z")}, Always, Wider},
	}
	for _, c := range cases {
		if got := Compare(c.old, c.new); got != c.want {
			t.Errorf("%s: compareScopes(%s, %s) = %v, want %v", c.name, c.old, c.new, got, c.want)
		}
	}
}
