package kyvernotest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// benchFolders are the corpus folders whose suites the test gate benchmark
// runs (a subset, so that the 4x run stays short): 33 suites, legacy and
// CEL ClusterPolicies alike.
var benchFolders = []string{"best-practices", "best-practices-cel"}

// BenchmarkTestGate runs the test gate (suites against the rendered
// production overlay, each suite's policies substituted from the rendering)
// on a subset of the corpus's suites in each copy of the large repository:
// at 4x there are four times the suites and four times the rendered
// policies to look them up in.
func BenchmarkTestGate(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		repo, err := largerepo.Cached(n)
		if err != nil {
			b.Skip(err)
		}
		res, err := render.Render(filepath.Join(repo, "overlays", "production"), render.Options{Root: repo})
		if err != nil {
			b.Fatal(err)
		}
		var dirs []string
		for k := 1; k <= n; k++ {
			for _, f := range benchFolders {
				dirs = append(dirs, fmt.Sprintf("policies/c%d/%s", k, f))
			}
		}
		s, err := settings.Resolve(map[string][]string{"tests": dirs}, nil)
		if err != nil {
			b.Fatal(err)
		}
		in := &gate.Input{Root: repo, Dir: "overlays/production", Rendered: res, Settings: s}
		if n == 1 {
			// Once outside the timing: Kyverno's one-time set-up (schema
			// loaders, CEL base environments) is not per-suite cost.
			if _, err := gate.RunOne(context.Background(), in, kyvernotest.Gate{}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC() // the setup's garbage is not this stage's cost
			for b.Loop() {
				// The search is memoized on the rendering: this is the
				// cost of running the suites.
				out, err := gate.RunOne(context.Background(), in, kyvernotest.Gate{})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(out.Tests.Suites), "suites")
			}
		})
	}
}
