package render_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// TestSlicedLargeRepositoryIsKustomizes compares the production overlay
// of the large repository (every corpus policy) in slices of the default
// size with kustomize's own build of it (plain krusty on disk, each object
// printed as render prints it).
func TestSlicedLargeRepositoryIsKustomizes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the large repository whole (seconds)")
	}
	scales := []int{1, 2}
	if s := os.Getenv("KYVERNO_GATE_SLICED_SCALES"); s != "" { // e.g. 4,7 (x7 builds whole for a minute)
		scales = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			scales = append(scales, n)
		}
	}
	for _, n := range scales {
		repo, err := largeRepo(t, n)
		if err != nil {
			t.Skip(err)
		}
		overlay := filepath.Join(repo, "overlays", "production")
		res, err := render.Render(overlay, render.Options{Root: repo})
		if err != nil {
			t.Fatal(err)
		}
		if render.Builds(res) < 2 {
			t.Fatalf("x%d: %d builds, want slices", n, render.Builds(res))
		}
		opts := krusty.MakeDefaultOptions()
		opts.LoadRestrictions = types.LoadRestrictionsNone
		opts.PluginConfig = types.DisabledPluginConfig()
		opts.Reorder = krusty.ReorderOptionUnspecified // the legacy order, as kustomize build
		m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), overlay)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		for i, r := range m.Resources() {
			if i > 0 {
				want = append(want, "---\n"...)
			}
			// render's one change: no namespace on cluster-scoped Kyverno kinds.
			if render.IsClusterScopedKyvernoKind(r.GetApiVersion(), r.GetKind()) {
				if err := r.SetNamespace(""); err != nil {
					t.Fatal(err)
				}
			}
			text, err := r.RNode.String()
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, text...)
		}
		var got bytes.Buffer
		for i, r := range res.Resources {
			if i > 0 {
				got.WriteString("---\n")
			}
			got.Write(r.YAML)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("x%d: rendering in slices differs from kustomize build (%d vs %d bytes)", n, got.Len(), len(want))
		}
	}
}

// largeRepo is $KYVERNO_GATE_LARGEREPO/x<n> when make bench made it, else
// a copy generated in the test's own folder: a test leaves nothing in the
// system's temporary folder.
func largeRepo(t *testing.T, n int) (string, error) {
	if d := os.Getenv("KYVERNO_GATE_LARGEREPO"); d != "" {
		return largerepo.Cached(n)
	}
	corpus, err := largerepo.Corpus()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("x%d", n))
	if _, err := largerepo.Generate(largerepo.Options{Corpus: corpus, Dir: dir, Scale: n}); err != nil {
		return "", err
	}
	return dir, nil
}
