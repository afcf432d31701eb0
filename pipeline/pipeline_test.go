package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// The gates of one run share the Kyverno objects loaded from each rendering
// (kyverno.LoadResult). That is only sound if no gate changes them: after a
// whole run with a baseline that has blocking changes (so that the witness
// search runs too), every shared object must still equal a fresh load.
func TestGatesDoNotModifySharedObjects(t *testing.T) {
	repo := t.TempDir()
	if err := largerepo.CopyDir(filepath.Join("..", "examples", "policy-repo"), repo); err != nil {
		t.Fatal(err)
	}
	// Staging as the baseline of production: production is stricter, and
	// the production overlay's own changes include blocking ones.
	staging, err := render.Render(filepath.Join(repo, "overlays", "staging"), render.Options{Root: repo})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "baseline.yaml"), output.Manifests(staging.Resources), 0o644); err != nil {
		t.Fatal(err)
	}
	checkShared(t, repo, "overlays/production", "file:baseline.yaml", nil)
}

// The same on the large repository of the benchmarks, when the corpus is
// there and KYVERNO_GATE_LARGE=1 (it takes about a minute).
func TestGatesDoNotModifySharedObjectsLarge(t *testing.T) {
	if os.Getenv("KYVERNO_GATE_LARGE") != "1" {
		t.Skip("set KYVERNO_GATE_LARGE=1 to run on the generated large repository")
	}
	repo, err := largerepo.Cached(1)
	if err != nil {
		t.Skip(err)
	}
	checkShared(t, repo, "overlays/production", "file:baseline.yaml", map[string][]string{"tests": {"policies"}, "timeout": {"10m"}})
}

func checkShared(t *testing.T, repo, dir, base string, flags map[string][]string) {
	t.Helper()
	if flags == nil {
		flags = map[string][]string{}
	}
	flags["baseline"] = []string{base}
	flags["repo-root"] = []string{repo}
	s, err := settings.Resolve(flags, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Run(context.Background(), filepath.Join(repo, dir), s, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if out.Overlay.Baseline == "" || len(out.Overlay.Changes(report.GateWeaken)) == 0 {
		t.Fatalf("the run compared nothing (baseline %q, findings %+v): the test would prove nothing", out.Overlay.Baseline, out.Overlay.Findings)
	}
	// The baseline's objects are not shared: the weakening gate, their only
	// reader, loads them for itself.
	for name, res := range map[string]*render.Result{"head": out.Rendered} {
		shared, err := kyverno.LoadResult(res)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := kyverno.LoadResult(res)
		if len(shared) == 0 || &shared[0] != &again[0] {
			t.Fatalf("%s: LoadResult did not return the loaded objects again", name)
		}
		fresh, err := kyverno.Load(res.Resources)
		if err != nil {
			t.Fatal(err)
		}
		if len(fresh) != len(shared) {
			t.Fatalf("%s: %d objects shared, %d loaded afresh", name, len(shared), len(fresh))
		}
		for i := range fresh {
			if got, want := snapshot(t, shared[i]), snapshot(t, fresh[i]); got != want {
				t.Errorf("%s: %s was modified by a gate:\n got %s\nwant %s", name, fresh[i].ID(), got, want)
			}
		}
	}
}

func snapshot(t *testing.T, o *kyverno.Object) string {
	t.Helper()
	errText := ""
	if o.Err != nil {
		errText = o.Err.Error()
	}
	b, err := json.Marshal(map[string]any{
		"gvk": o.GVK, "defaulted": o.Defaulted.Object, "err": errText,
		"policy": o.Policy, "exception": o.Exception, "celException": o.CELException, "validating": o.Validating,
		"image": o.Image, "mutating": o.Mutating, "generating": o.Generating, "deleting": o.Deleting,
		"cleanup": o.Cleanup, "globalCtx": o.GlobalCtx,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
