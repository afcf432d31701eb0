package report

import "testing"

func TestParseSubject(t *testing.T) {
	for in, want := range map[string]Subject{
		"ClusterPolicy require-labels":     {Kind: "ClusterPolicy", Name: "require-labels"},
		"Policy apps/x":                    {Kind: "Policy", Namespace: "apps", Name: "x"},
		"Pod":                              {Kind: "Pod"},
		"policy apps/x":                    {Kind: SubjectTestPolicy, Name: "apps/x"},
		"PolicyException.kyverno.io ns/ex": {Kind: "PolicyException.kyverno.io", Namespace: "ns", Name: "ex"},
	} {
		got := ParseSubject(in)
		if got != want {
			t.Errorf("%s: %+v", in, got)
		}
		if want.Name != "" && got.String() != in {
			t.Errorf("%s: String() = %q", in, got.String())
		}
	}
}

func TestTallySentence(t *testing.T) {
	for _, tt := range []struct {
		t    Tally
		want string
	}{
		{Tally{}, ""},
		{Tally{Errors: 2, Warnings: 1}, "2 problems (1 warning)"},
		{Tally{Errors: 1, Warnings: 2, Approved: 1}, "1 problem (2 warnings, 1 approved)"},
		{Tally{Warnings: 1}, "1 warning"},
		{Tally{Approved: 3}, "3 approved"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestCombineAndExitCodes(t *testing.T) {
	if Combine() != Vetted || Combine(Vetted, Rejected) != Rejected || Combine(Rejected, Failed, Vetted) != Failed {
		t.Error("Combine does not take the worst verdict")
	}
	for v, want := range map[Verdict]int{Vetted: 0, Rejected: 1, Failed: 2} {
		if got := v.ExitCode(); got != want {
			t.Errorf("%s: exit %d, want %d", v, got, want)
		}
	}
}
