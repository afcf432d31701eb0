package scope

import (
	"math/rand"
	"testing"

	"github.com/kyverno/kyverno/ext/wildcard"
)

func TestGlobMatchAgreesWithKyverno(t *testing.T) {
	pats := []string{"", "*", "?", "a*", "*a", "a?c", "*-*", "canary-*", "??", "a*b*c", "**", "*?", "x"}
	strs := []string{"", "a", "ab", "abc", "a-c", "canary-1", "canary-", "xx", "aXbYc", "x"}
	for _, p := range pats {
		for _, s := range strs {
			if got, want := globMatch(p, s), wildcard.Match(p, s); got != want {
				t.Errorf("globMatch(%q, %q) = %v, Kyverno says %v", p, s, got, want)
			}
		}
	}
}

func TestGlobCovers(t *testing.T) {
	cases := []struct {
		outer, inner []string
		want         Tri
	}{
		{[]string{"*"}, []string{"canary-*"}, Yes},
		{[]string{"canary-*"}, []string{"*"}, No},
		{[]string{"canary-*"}, []string{"canary-a", "canary-?b"}, Yes},
		{[]string{"a*", "b*"}, []string{"?*"}, No},
		{[]string{"a*", "*"}, []string{"zzz"}, Yes},
		{[]string{"?*"}, []string{"*"}, No},
		{[]string{"", "?*"}, []string{"*"}, Yes},
		{[]string{"*a*"}, []string{"a*", "*a"}, Yes},
		{[]string{"a*"}, []string{"a?"}, Yes},
		{[]string{"a?"}, []string{"a*"}, No},
		{[]string{"prod"}, []string{"prod"}, Yes},
		{[]string{"prod"}, []string{"prod", "dev"}, No},
		{[]string{"*-prod", "*-dev"}, []string{"team-*-prod"}, Yes},
		{[]string{"??*"}, []string{"?"}, No},
		{[]string{"*??*"}, []string{"??*"}, Yes},
	}
	for _, c := range cases {
		got, w := globCovers(c.outer, c.inner)
		if got != c.want {
			t.Errorf("globCovers(%q, %q) = %v (witness %q), want %v", c.outer, c.inner, got, w, c.want)
			continue
		}
		if got == No {
			// the witness must really separate the two sets
			in, out := false, false
			for _, p := range c.inner {
				in = in || globMatch(p, w)
			}
			for _, p := range c.outer {
				out = out || globMatch(p, w)
			}
			if !in || out {
				t.Errorf("globCovers(%q, %q): witness %q is not matched by inner only", c.outer, c.inner, w)
			}
		}
	}
}

// TestGlobCoversRandom checks the decision against brute force on short
// strings over a small alphabet.
func TestGlobCoversRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alpha := []rune("ab*?")
	gen := func() string {
		n := rng.Intn(4)
		rs := make([]rune, n)
		for i := range rs {
			rs[i] = alpha[rng.Intn(len(alpha))]
		}
		return string(rs)
	}
	var strs []string
	var build func(prefix string, n int)
	build = func(prefix string, n int) {
		strs = append(strs, prefix)
		if n == 0 {
			return
		}
		for _, c := range "abx" {
			build(prefix+string(c), n-1)
		}
	}
	build("", 6)
	for i := 0; i < 400; i++ {
		outer := []string{gen(), gen()}
		inner := []string{gen()}
		got, _ := globCovers(outer, inner)
		want := Yes
		for _, s := range strs {
			in := globMatch(inner[0], s)
			out := globMatch(outer[0], s) || globMatch(outer[1], s)
			if in && !out {
				want = No
				break
			}
		}
		// Brute force over strings of length <= 6 can miss longer
		// witnesses only when patterns are longer than that; ours are <= 3.
		if got != want {
			t.Errorf("globCovers(%q, %q) = %v, brute force says %v", outer, inner, got, want)
		}
	}
}

func TestResourceAndKindCovers(t *testing.T) {
	for _, c := range []struct {
		o, i string
		want bool
	}{
		{"*", "pods", true}, {"*", "pods/status", false}, {"*/*", "pods/status", true}, {"pods/*", "pods/status", true},
		{"pods/*", "pods", false}, {"*/scale", "deployments/scale", true}, {"pods", "*", false},
	} {
		if got := resourceCovers(c.o, c.i); got != c.want {
			t.Errorf("resourceCovers(%q, %q) = %v", c.o, c.i, got)
		}
	}
	for _, c := range []struct {
		o, i string
		want bool
	}{
		{"Pod", "v1/Pod", true}, {"v1/Pod", "Pod", false}, {"*", "Pod", true}, {"*", "Pod/exec", false},
		{"*/*", "Pod/exec", true}, {"apps/v1/Deployment", "Deployment", false}, {"Deployment", "apps/v1/Deployment", true},
	} {
		if got := kindCovers(c.o, c.i); got != c.want {
			t.Errorf("kindCovers(%q, %q) = %v", c.o, c.i, got)
		}
	}
}
