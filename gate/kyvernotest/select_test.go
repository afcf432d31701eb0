package kyvernotest

import (
	"strings"
	"testing"
)

// The test case selector keeps the results upstream keeps, and its
// resource pattern narrows the resources they check (wildcards included).
func TestSelection(t *testing.T) {
	rows := func(selector string) (kept int, dropped int, got []string) {
		t.Helper()
		sel, err := ParseSelector(selector)
		if err != nil {
			t.Fatal(err)
		}
		suites, dropped := sel.Apply(discover(t, "suite-ok"))
		for _, r := range Run(suites, nil) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			for _, row := range r.Rows {
				got = append(got, row.Resource+"="+row.Upstream+map[bool]string{true: "!", false: ""}[row.Failed()])
			}
		}
		return len(suites), dropped, got
	}
	for _, tt := range []struct {
		selector string
		suites   int
		want     string
	}{
		{DefaultSelector, 1, "Pod apps/pod-no-team=pass Pod apps/pod-with-team=pass"},
		{"", 1, "Pod apps/pod-no-team=pass Pod apps/pod-with-team=pass"},
		{"policy=require-*", 1, "Pod apps/pod-no-team=pass Pod apps/pod-with-team=pass"},
		{"resource=pod-with-*", 1, "Pod apps/pod-with-team=pass"},
		{"rule=check-team,resource=pod-no-team", 1, "Pod apps/pod-no-team=pass"},
		{"policy=other", 0, ""},
		{"resource=nothing", 0, ""},
	} {
		n, dropped, got := rows(tt.selector)
		if n != tt.suites || dropped != 1-tt.suites || strings.Join(got, " ") != tt.want {
			t.Errorf("%q: %d suites (%d dropped), rows %q; want %d, %q", tt.selector, n, dropped, got, tt.suites, tt.want)
		}
	}
	for _, bad := range []string{"policy", "suite=x", "policy=a,rule"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
