package diff

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/pkg/autogen"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

// largeSides loads the large repository's production rendering (head) and
// its saved baseline (some policies Audit or absent) at scale n.
func largeSides(b *testing.B, n int) (base, head []*kyverno.Object) {
	b.Helper()
	repo, err := largerepo.Cached(n)
	if err != nil {
		b.Skip(err)
	}
	res, err := render.Render(filepath.Join(repo, "overlays", "production"), render.Options{Root: repo})
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repo, "baseline.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	old, err := baseline.Parse(data, "baseline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if head, err = kyverno.Load(res.Resources); err != nil {
		b.Fatal(err)
	}
	if base, err = kyverno.Load(old.Resources); err != nil {
		b.Fatal(err)
	}
	return base, head
}

// BenchmarkDiff compares two large renderings (every policy of the corpus,
// n times) with Diff: the weakening gate's structural comparison, without
// loading and without the witness search.
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		base, head := largeSides(b, n)
		b.Run(fmt.Sprintf("x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC() // the setup's garbage is not this stage's cost
			for b.Loop() {
				changes := Diff(base, head)
				b.ReportMetric(float64(len(changes)), "changes")
			}
		})
	}
}

// legacyRules returns every rule of the corpus's legacy policies as Kyverno
// computes them (autogen included).
func legacyRules(b *testing.B) []kyvernov1.Rule {
	b.Helper()
	_, head := largeSides(b, 1)
	var rules []kyvernov1.Rule
	for _, o := range head {
		if o.Err == nil && o.Policy != nil {
			rules = append(rules, autogen.Default.ComputeRules(o.Policy, "")...)
		}
	}
	if len(rules) == 0 {
		b.Fatal("no rules")
	}
	return rules
}

// BenchmarkScope measures the scope model on every rule of the corpus; ns/op
// is per rule. "build" makes a rule's match and exclude scopes;
// "match-narrowed" compares a rule's match with itself restricted to
// namespaces prod-* (a narrowed match: weaker); "exclude-widened" compares
// its exclude with the exclude plus namespaces team-* (a widened exclude:
// weaker); "covers" asks whether a rule's match covers the next rule's.
func BenchmarkScope(b *testing.B) {
	rules := legacyRules(b)
	match := make([]scope.DNF, len(rules))
	exclude := make([]scope.DNF, len(rules))
	for i := range rules {
		match[i] = matchScope(&rules[i].MatchResources)
		exclude[i] = matchScope(rules[i].ExcludeResources)
	}
	prod := scope.DNF{scope.Conj{}.With("namespaces", scope.Glob, "prod-*")}
	team := scope.Conj{}.With("namespaces", scope.Glob, "team-*")
	narrowed := make([]scope.DNF, len(rules))
	widened := make([]scope.DNF, len(rules))
	for i := range rules {
		narrowed[i] = match[i].And(prod)
		widened[i] = append(append(scope.DNF{}, exclude[i]...), team)
	}
	per := func(name string, f func(k int)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f(i % len(rules))
				i++
			}
		})
	}
	per("build", func(k int) {
		_ = matchScope(&rules[k].MatchResources)
		_ = matchScope(rules[k].ExcludeResources)
	})
	per("match-narrowed", func(k int) {
		if r := scope.Compare(match[k], narrowed[k]); r != scope.Narrower && r != scope.NarrowerOrEqual && r != scope.Equal {
			b.Fatalf("rule %s: narrowed match compares as %v", rules[k].Name, r)
		}
	})
	per("exclude-widened", func(k int) { _ = scope.Compare(exclude[k], widened[k]) })
	per("covers", func(k int) { _ = scope.Covers(match[k], match[(k+1)%len(rules)]) })
}
