package witness

import (
	"context"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"testing"
)

func TestRuleMatches(t *testing.T) {
	for _, tc := range []struct {
		filter, name string
		want         bool
	}{
		{"", "anything", true},
		{"check", "check", true},
		{"check", "autogen-check", true},
		{"check", "autogen-cronjob-check", true},
		{"check", "other", false},
		{"autogen-check", "autogen-check", true},
		{"autogen-check", "autogen-autogen-check", false},
		{"autogen-check", "check", false},
	} {
		if got := ruleMatches(tc.filter, tc.name); got != tc.want {
			t.Errorf("ruleMatches(%q, %q) = %v", tc.filter, tc.name, got)
		}
	}
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		t          Target
		searchable bool
		ref        string
	}{
		{Target{Kind: KindClusterPolicy, Policy: "p"}, true, ""},
		{Target{Kind: KindValidatingPolicy, Policy: "p"}, true, ""},
		{Target{Kind: "MutatingPolicy", Policy: "p"}, false, ""},
		{Target{Kind: "GlobalContextEntry", Policy: "p"}, false, ""},
		{Target{Kind: KindLegacyException, Policy: "kyverno/e", Field: "spec.exceptions[ns/pol]"}, true, "ns/pol"},
		{Target{Kind: KindCELException, Policy: "kyverno/e", Field: "spec.policyRefs[ValidatingPolicy/pol]"}, true, "ValidatingPolicy/pol"},
		{Target{Kind: KindCELException, Policy: "kyverno/e", Field: "spec.matchConditions"}, false, ""},
	} {
		if got := searchable(tc.t); got != tc.searchable {
			t.Errorf("searchable(%+v) = %v", tc.t, got)
		}
		if tc.ref == "" {
			continue
		}
		prefix := "spec.exceptions["
		if tc.t.Kind == KindCELException {
			prefix = "spec.policyRefs["
		}
		if got, ok := parseRef(tc.t.Field, prefix); !ok || got != tc.ref {
			t.Errorf("parseRef(%q) = %q, %v", tc.t.Field, got, ok)
		}
	}
	if legacyPolicyKey("ns/p") != key(KindPolicy, "ns/p") || legacyPolicyKey("p") != key(KindClusterPolicy, "p") {
		t.Error("legacyPolicyKey")
	}
}

func TestExclusivity(t *testing.T) {
	p := func(scope, kind, policy, rule, field string) *plan {
		return &plan{scope: scope, target: Target{Kind: kind, Policy: policy, Rule: rule, Field: field}}
	}
	plans := []*plan{
		p("R", "ClusterPolicy", "a", "r1", "spec.rules[r1].exclude"),
		p("R", "ClusterPolicy", "a", "r2", "spec.rules[r2].exclude"),
		p("R", "ClusterPolicy", "a", "r2", "spec.rules[r2].validate.pattern"),
		p("P", "ClusterPolicy", "a", "", "spec.applyRules"),
		p("P", "ClusterPolicy", "b", "", "spec.applyRules"),
		nil,
		p("E", KindLegacyException, "kyverno/e", "", "spec.exceptions[a]"),
		p("E", KindLegacyException, "kyverno/e", "", "spec.exceptions[b]"),
	}
	exclusivity(plans)
	want := []bool{true, false, false, false, true, false, true, true}
	for i, pl := range plans {
		if pl != nil && pl.exclusive != want[i] {
			t.Errorf("plan %d (%+v): exclusive = %v", i, pl.target, pl.exclusive)
		}
	}
}

// Search never fails and never panics, whatever it is given.
func TestSearchDegenerate(t *testing.T) {
	var logs []string
	repo, err := repofs.Open(t.TempDir(), repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Repo: repo, TestDirs: []string{"tests"}, TestFileName: "kyverno-test.yaml", Samples: []string{"nope"},
		Logf: func(f string, a ...any) { logs = append(logs, f) }}
	targets := []Target{{Kind: KindClusterPolicy, Policy: "p"}, {Kind: "Unknown"}}
	out := Search(context.Background(), opts, nil, nil, targets)
	if len(out) != 2 || out[0] != nil || out[1] != nil {
		t.Errorf("got %v", out)
	}
	if out := Search(context.Background(), Options{}, nil, nil, targets); len(out) != 2 {
		t.Errorf("got %v", out)
	}
	if out := Search(context.Background(), opts, nil, nil, nil); len(out) != 0 {
		t.Errorf("got %v", out)
	}
}
