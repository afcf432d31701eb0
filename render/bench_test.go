package render_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// Scales of the generated large repository that the scaling benchmarks run
// at: the corpus once, twice and four times (renamed copies).
var scales = []int{1, 2, 4}

// BenchmarkRender renders the production overlay of the large repository
// (every corpus policy, patched to Enforce, with origin annotations) with
// render.Render and with plain krusty, the library `kustomize build` runs,
// on the same overlay. Ours adds the confined filesystem, the pre-scan of
// every kustomization, origin tracking and decoding each object for the
// gates.
func BenchmarkRender(b *testing.B) {
	for _, n := range scales {
		repo, err := largerepo.Cached(n)
		if err != nil {
			b.Skip(err)
		}
		overlay := filepath.Join(repo, "overlays", "production")
		b.Run(fmt.Sprintf("ours/x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC() // the setup's garbage is not this stage's cost
			for b.Loop() {
				res, err := render.Render(overlay, render.Options{Root: repo})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(res.Resources)), "resources")
			}
		})
		b.Run(fmt.Sprintf("krusty/x%d", n), func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC()
			opts := krusty.MakeDefaultOptions()
			opts.LoadRestrictions = types.LoadRestrictionsNone
			opts.PluginConfig = types.DisabledPluginConfig()
			for b.Loop() {
				m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), overlay)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.AsYaml(); err != nil { // kustomize build prints it
					b.Fatal(err)
				}
				b.ReportMetric(float64(m.Size()), "resources")
			}
		})
	}
}
