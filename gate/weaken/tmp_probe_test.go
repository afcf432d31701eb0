package weaken

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/render"
)

func TestProbe(t *testing.T) {
	root, _ := filepath.Abs("../../examples/policy-repo")
	for _, dir := range []string{"overlays/production", "overlays/staging"} {
		res, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		in := &gate.Input{Root: root, Dir: dir, Rendered: res, Log: func(f string, a ...any) { fmt.Printf("LOG "+f+"\n", a...) }}
		ev, err := FloorGate{}.Evaluate(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range ev.Items {
			fmt.Println(it.Change.String())
			fmt.Println(it.Suggestion.Patch)
		}
		for _, f := range ev.Findings {
			fmt.Printf("%+v\n", f)
		}
	}
}
