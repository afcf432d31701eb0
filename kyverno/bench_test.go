package kyverno_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// BenchmarkLoad loads every Kyverno object of the large repository's
// production rendering (schema check with CRD defaults, conversion to
// Kyverno's types) at 1x, 2x and 4x the corpus.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		repo, err := largerepo.Cached(n)
		if err != nil {
			b.Skip(err)
		}
		res, err := render.Render(filepath.Join(repo, "overlays", "production"), render.Options{Root: repo})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kyverno.Load(res.Resources[:1]); err != nil { // build the schema loader outside the timing
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC() // the setup's garbage is not this stage's cost
			for b.Loop() {
				objs, err := kyverno.Load(res.Resources)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(objs)), "objects")
			}
		})
	}
}
