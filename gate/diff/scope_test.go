package diff

import (
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate/scope"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		r            scope.Relation
		narrowIsWeak bool
		want         Class
	}{
		{scope.Narrower, true, Weaker}, {scope.Narrower, false, Stricter}, {scope.Wider, true, Stricter}, {scope.Wider, false, Weaker},
		{scope.NarrowerOrEqual, true, Unknown}, {scope.NarrowerOrEqual, false, Equivalent}, {scope.WiderOrEqual, true, Equivalent},
		{scope.WiderOrEqual, false, Unknown}, {scope.Incomparable, true, Unknown}, {scope.Incomparable, false, Unknown}, {scope.Equal, true, Equivalent},
	} {
		if got := classify(c.r, c.narrowIsWeak); got != c.want {
			t.Errorf("classify(%v, %v) = %v, want %v", c.r, c.narrowIsWeak, got, c.want)
		}
	}
}
