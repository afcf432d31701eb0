package kyvernotest

import (
	"errors"
	"strings"
	"testing"
)

func TestTests(t *testing.T) {
	s := &Suite{Rel: "tests/require-labels/kyverno-test.yaml"}
	res := []*SuiteResult{
		{Suite: s, Rows: []Row{
			{Policy: "require-labels", Rule: "check-team", Resource: "good", Expected: "pass", Got: "pass", Upstream: "pass", Reason: "Ok"},
			{Policy: "require-labels", Rule: "check-team", Resource: "bad", Expected: "fail", Got: "pass", Upstream: "fail", Reason: "Want fail, got pass"},
			{Policy: "require-labels", Rule: "check-team", Resource: "typo", Expected: "fail", Upstream: "pass", Reason: "Not selected", Strict: "not among the resources"},
		}},
		{Suite: &Suite{Rel: "tests/other/kyverno-test.yaml"}, Skipped: "none of its policies is in the overlay"},
		{Suite: &Suite{Rel: "tests/broken/kyverno-test.yaml"}, Err: errors.New("no such file")},
	}
	ts := Summary(res)
	if ts.Suites != 3 || ts.Skipped != 1 || ts.Errors != 1 || ts.Results != 3 || ts.Failed != 3 || len(ts.Cases) != 5 {
		t.Fatalf("%+v", ts)
	}
	var statuses []string
	for _, c := range ts.Cases {
		statuses = append(statuses, c.Status)
	}
	if strings.Join(statuses, ",") != "pass,fail,fail,skip,error" {
		t.Errorf("statuses %v", statuses)
	}
	if ts.Cases[0].SuiteName != "tests/require-labels/kyverno-test.yaml" {
		t.Errorf("suite name %q", ts.Cases[0].SuiteName)
	}
}
