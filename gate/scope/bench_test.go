package scope

import (
	"runtime"
	"testing"
)

// BenchmarkGlobCovers decides inclusion of Kyverno wildcard sets, the
// primitive under namespace, name and image scopes.
func BenchmarkGlobCovers(b *testing.B) {
	cases := []struct {
		name         string
		outer, inner []string
	}{
		{"literal", []string{"kube-system", "kyverno"}, []string{"kyverno"}},
		{"prefix", []string{"team-*"}, []string{"team-a-*", "team-b"}},
		{"not-covered", []string{"team-*", "prod-?"}, []string{"te*m-*"}},
		{"images", []string{"ghcr.io/acme/*", "*.dkr.ecr.*.amazonaws.com/*"}, []string{"ghcr.io/acme/app:*", "123.dkr.ecr.eu-west-1.amazonaws.com/x:*"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			runtime.GC() // the setup's garbage is not this stage's cost
			for b.Loop() {
				globCovers(c.outer, c.inner)
			}
		})
	}
}
