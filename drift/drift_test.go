package drift

import (
	"testing"

	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// What each state makes: errors where the cluster enforces less than was
// vetted, warnings for other drift, nothing when equal.
func TestFindings(t *testing.T) {
	weaker := diff.Change{Class: diff.Weaker, Kind: "ClusterPolicy", Policy: "p", Rule: "r",
		Field: "spec.rules[r].validate.failureAction", Before: "Enforce", After: "Audit", Message: "went from Enforce to Audit"}
	stricter := diff.Change{Class: diff.Stricter, Kind: "ClusterPolicy", Policy: "p", Field: "spec.rules[r].validate.failureAction", Message: "went from Audit to Enforce"}
	newException := diff.Change{Class: diff.Weaker, Kind: "PolicyException.kyverno.io", Policy: "kyverno/x", Message: "new exception"}
	cp := report.Subject{Kind: "ClusterPolicy", Name: "p"}
	cases := []struct {
		name   string
		result Result
		want   []report.Severity
		field  string
	}{
		{"equal", Result{Subject: cp, State: Equal}, nil, ""},
		{"equal but not Ready", Result{Subject: cp, State: Equal, Ready: "False"}, []report.Severity{report.Error}, "status.conditions[Ready]"},
		{"weaker: one error per loosened field", Result{Subject: cp, State: Weaker, Changes: []diff.Change{weaker, stricter}}, []report.Severity{report.Error}, weaker.Field},
		{"stricter", Result{Subject: cp, State: Stricter, Changes: []diff.Change{stricter}}, []report.Severity{report.Warning}, ""},
		{"missing", Result{Subject: cp, State: Missing}, []report.Severity{report.Error}, ""},
		{"extra policy", Result{Subject: cp, State: Extra}, []report.Severity{report.Warning}, ""},
		{"extra exception", Result{Subject: report.Subject{Kind: "PolicyException.kyverno.io", Namespace: "kyverno", Name: "x"}, State: Extra, Changes: []diff.Change{newException}}, []report.Severity{report.Error}, ""},
		{"equivalent", Result{Subject: cp, State: Equivalent}, []report.Severity{report.Warning}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := Findings([]Result{tc.result}, "prod")
			if len(fs) != len(tc.want) {
				t.Fatalf("%d findings, want %d: %+v", len(fs), len(tc.want), fs)
			}
			for i, f := range fs {
				if f.Severity != tc.want[i] || f.Gate != Gate {
					t.Errorf("finding %d: %s %s, want %s drift", i, f.Severity, f.Gate, tc.want[i])
				}
				if tc.field != "" && f.Field != tc.field {
					t.Errorf("field %q, want %q", f.Field, tc.field)
				}
			}
		})
	}
	if got := Summary([]Result{{State: Equal}, {State: Equal, Ready: "False"}, {State: Weaker}}); got != "2 equal, 1 weaker-live, 1 not Ready" {
		t.Errorf("summary %q", got)
	}
}

func TestArgoCDTrackingIsNoDifference(t *testing.T) {
	vetted := map[string]any{"kind": "ClusterPolicy", "metadata": map[string]any{"name": "p"}}
	cases := []struct {
		name string
		live map[string]any
		same bool
	}{
		{"tracking id only", map[string]any{"kind": "ClusterPolicy", "metadata": map[string]any{"name": "p", "annotations": map[string]any{ArgoCDTrackingID: "app:kyverno.io/ClusterPolicy:/p"}}}, true},
		{"another annotation", map[string]any{"kind": "ClusterPolicy", "metadata": map[string]any{"name": "p", "annotations": map[string]any{"note": "x"}}}, false},
	}
	for _, tc := range cases {
		if got := sameJSON(vetted, tc.live); got != tc.same {
			t.Errorf("%s: same %v, want %v", tc.name, got, tc.same)
		}
	}
}
