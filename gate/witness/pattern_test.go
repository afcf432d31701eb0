package witness

import (
	"encoding/json"
	"strings"
	"testing"
)

// What a pattern's made resources look like: one satisfying value, and
// one violation per leaf it models.
func TestPatternResources(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		good    string // satisfy, as JSON; "" when the pattern is not modelled
		leaves  []string
	}{
		{`{"metadata":{"labels":{"team":"?*"}}}`, `{"metadata":{"labels":{"team":"x"}}}`, []string{"metadata.labels.team=<removed>"}},
		{`{"spec":{"containers":[{"=(securityContext)":{"=(privileged)":"false"}}]}}`, `{"spec":{"containers":[{"securityContext":{"privileged":"false"}}]}}`,
			[]string{`spec.containers.[0].securityContext.privileged="true"`}},
		{`{"spec":{"X(hostNetwork)":"null","replicas":">1"}}`, `{"spec":{"replicas":2}}`, []string{`spec.hostNetwork="present"`, "spec.replicas=1"}},
		{`{"spec":{"image":"registry.example.com/* | ghcr.io/*"}}`, `{"spec":{"image":"registry.example.com/x"}}`, []string{`spec.image="kyverno-gate-none-of-these"`}},
		{`{"spec":{"(name)":"x"}}`, "", nil},
		{`{"spec":{"^(name)":"x"}}`, "", nil},
		{`{"spec":{"v":"{{ request.object.x }}"}}`, "", nil},
	} {
		var p any
		if err := json.Unmarshal([]byte(tt.pattern), &p); err != nil {
			t.Fatal(err)
		}
		good, ok := satisfy(p)
		got := ""
		if ok {
			b, _ := json.Marshal(good)
			got = string(b)
		}
		if got != tt.good {
			t.Errorf("%s: satisfied by %s, want %s", tt.pattern, got, tt.good)
			continue
		}
		if !ok {
			continue
		}
		var vs []violation
		violations(p, nil, &vs)
		var leaves []string
		for _, v := range vs {
			val := "<removed>"
			if !v.remove {
				b, _ := json.Marshal(v.value)
				val = string(b)
			}
			leaves = append(leaves, strings.Join(v.path, ".")+"="+val)
		}
		if strings.Join(leaves, " ") != strings.Join(tt.leaves, " ") {
			t.Errorf("%s: leaves %v, want %v", tt.pattern, leaves, tt.leaves)
		}
	}
}
