package kyvernotest

import (
	"strings"
	"testing"
)

// Suites whose clusterResources declare CRDs run (they crashed with "adding
// resource groups to a nil crd processor"), also in parallel with suites
// that declare none, which must not see their CRDs.
func TestSuitesWithCRDsRun(t *testing.T) {
	var suites []*Suite
	for i := 0; i < 4; i++ {
		suites = append(suites, discover(t, "agreement/crds-apicall")...)
		suites = append(suites, discover(t, "suite-ok")...)
		suites = append(suites, discover(t, "agreement/crds-mutatingpolicy")...)
	}
	for _, r := range Run(suites, nil) {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Suite.Rel, r.Err)
		}
		if len(r.Rows) == 0 {
			t.Fatalf("%s: no results", r.Suite.Rel)
		}
		for _, row := range r.Rows {
			if row.Failed() {
				t.Errorf("%s: %+v", r.Suite.Rel, row)
			}
		}
	}
}

// A crash inside Kyverno is not blamed on the test file.
func TestCrashIsNotTheTestsFault(t *testing.T) {
	s := discover(t, "suite-ok")[0]
	f := Findings([]*SuiteResult{{Suite: s, Err: &CrashError{Value: "adding resource groups to a nil crd processor. exiting"}}})
	if len(f) != 1 {
		t.Fatalf("findings: %+v", f)
	}
	if !strings.Contains(f[0].Message, "Kyverno crashed while running this suite") || strings.Contains(f[0].Hint, "fix the test file") {
		t.Errorf("finding = %+v", f[0])
	}
}
