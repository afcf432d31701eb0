package diff

import (
	"strings"
	"testing"
	"time"
)

func TestParseApproval(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  Approval
		err   string
	}{
		{value: ""},
		{value: " ; ;"},
		{value: "reason=JIRA-123 loosen for migration; expires=2026-12-31",
			want: Approval{Reason: "JIRA-123 loosen for migration", Expires: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}},
		{value: " ticket = SEC-1 ;by=alice@example.com;reason=a=b ", want: Approval{Ticket: "SEC-1", By: "alice@example.com", Reason: "a=b"}},
		{value: "reason=", want: Approval{}},
		{value: "reason", err: `"reason" is not key=value`},
		{value: "reason=a; reason=b", err: "key reason is given twice"},
		{value: "expires=31.12.2026", err: "expires=31.12.2026 is not a date YYYY-MM-DD"},
		{value: "expires=2026-12-31T00:00:00Z", err: "not a date"},
		{value: "Reason=x", err: `unknown key "Reason"`},
		{value: "approved=true", err: `unknown key "approved"`},
		{value: SuggestedValue, err: "reason=<why>: fill in the placeholder"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			got, err := ParseApproval(tc.value)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestApprovalExpired(t *testing.T) {
	a, err := ParseApproval("expires=2026-12-31")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now     string
		expired bool
	}{
		{"2026-12-30T12:00:00Z", false},
		{"2026-12-31T00:00:00Z", false},
		{"2026-12-31T23:59:59Z", false},
		{"2027-01-01T00:00:00Z", true},
		// 2026-12-31 23:30 in New York is 2027-01-01 04:30 UTC: expired.
		{"2026-12-31T23:30:00-05:00", true},
		// 2027-01-01 00:30 in Berlin is still 2026-12-31 UTC: valid.
		{"2027-01-01T00:30:00+01:00", false},
	} {
		if got := a.Expired(day(tc.now)()); got != tc.expired {
			t.Errorf("%s: expired=%v", tc.now, got)
		}
	}
	if (Approval{}).Expired(time.Now()) {
		t.Error("no expiry never expires")
	}
}

// day is a clock stopped at s (RFC 3339).
func day(s string) func() time.Time {
	return func() time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
}
