package weaken

import (
	"path/filepath"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/render"
)

func TestExamplesTmp(t *testing.T) {
	root, _ := filepath.Abs("../../examples/policy-repo")
	load := func(dir string) []*kyverno.Object {
		res, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		objs, err := kyverno.Load(res.Resources)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.Err != nil {
				t.Logf("load error %s: %v", o.ID(), o.Err)
			}
		}
		return objs
	}
	prod, stg, dev := load("overlays/production"), load("overlays/staging"), load("overlays/development")
	for _, p := range []struct {
		name string
		a, b []*kyverno.Object
	}{{"production->staging", prod, stg}, {"production->development", prod, dev}, {"staging->production", stg, prod}} {
		t.Logf("=== %s", p.name)
		for _, c := range Diff(p.a, p.b) {
			t.Logf("%s", c)
		}
	}
}
