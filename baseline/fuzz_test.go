package baseline

import (
	"reflect"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// FuzzParse checks Parse, the reader of lock files and saved renderings
// (repository bytes): no panic, the same answer twice, every resource it
// returns is a named object (cluster-scoped Kyverno kinds without a
// namespace), each object's printed YAML parses on its own, and the lock
// file written from them (LockHeader + Stream) reads back to exactly the
// objects of those printed documents. Seeded with the
// YAML files of the example repository and the corpus. See docs/fuzzing.md.
func FuzzParse(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		f.Add(file.Data)
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p, namespace: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Parse(data, "in.yaml")
		res2, err2 := Parse(data, "in.yaml")
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		if !sameResources(res.Resources, res2.Resources) {
			t.Fatal("not deterministic")
		}
		for _, r := range res.Resources {
			if r.APIVersion == "" || r.Kind == "" || r.Name == "" || r.Source != "in.yaml" || r.Object == nil {
				t.Fatalf("resource %+v", r)
			}
			if r.Namespace != "" && render.IsClusterScopedKyvernoKind(r.APIVersion, r.Kind) {
				t.Fatalf("%s keeps namespace %q", r.ID(), r.Namespace)
			}
		}
		// A lock holds each object as printed (YAML), and the rendering's
		// object is decoded from that text (as render does), so reading
		// the lock gives back exactly those objects. (Printing is not
		// idempotent: kyaml adds a blank line to some folded strings each
		// time, so the objects of the printed text may differ from the
		// input's; see docs/development.md.)
		printed := make([]*render.Resource, len(res.Resources))
		for i, r := range res.Resources {
			one, err := Parse(r.YAML, "in.yaml")
			if err != nil || len(one.Resources) != 1 {
				t.Fatalf("%s as printed does not parse as one object: %v\n%s", r.ID(), err, r.YAML)
			}
			printed[i] = one.Resources[0]
		}
		lock := append([]byte(LockHeader("overlays/x")), Stream(res.Resources)...)
		back, err := Parse(lock, "in.yaml")
		if err != nil {
			t.Fatalf("its lock file does not parse: %v\n%s", err, lock)
		}
		if !sameResources(printed, back.Resources) {
			t.Fatalf("its lock file reads back differently:\n%s", lock)
		}
	})
}

func sameResources(a, b []*render.Resource) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.APIVersion != y.APIVersion || x.Kind != y.Kind || x.Namespace != y.Namespace || x.Name != y.Name ||
			!reflect.DeepEqual(x.Object, y.Object) {
			return false
		}
	}
	return true
}
