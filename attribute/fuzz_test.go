package attribute

import (
	"bytes"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
	"github.com/kyverno-gate/kyverno-gate/report"
)

var (
	seedKindRE = regexp.MustCompile(`(?m)^kind:\s*(\S+)`)
	seedNameRE = regexp.MustCompile(`(?m)^  name:\s*(\S+)`)
	seedRuleRE = regexp.MustCompile(`(?m)^\s*- name:\s*(\S+)`)
	seedPolRE  = regexp.MustCompile(`(?m)^\s*(?:- )?policy:\s*(\S+)`)
)

// FuzzFindingLine checks how a finding's line is found in a repository file
// (FindingLine, ObjectLine, ParseField): no panic, the same line twice, a
// line inside the file, and blank lines added before the file move the
// line by as many. Seeded with the example repository's and the corpus's
// YAML files, naming their own first object, rule and test entry. See
// docs/fuzzing.md.
func FuzzFindingLine(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		s := string(file.Data)
		kind, name, rule := "ClusterPolicy", "x", ""
		if m := seedKindRE.FindStringSubmatch(s); m != nil {
			kind = m[1]
		}
		if m := seedNameRE.FindStringSubmatch(s); m != nil {
			name = m[1]
		}
		if m := seedRuleRE.FindStringSubmatch(s); m != nil {
			rule = m[1]
		}
		f.Add(file.Data, kind+" "+name, rule, "")
		f.Add(file.Data, kind+" "+name, "", "spec.rules["+rule+"].validate.failureAction")
		if m := seedPolRE.FindStringSubmatch(s); m != nil {
			f.Add(file.Data, "policy "+m[1], rule, "")
		}
	}
	f.Add([]byte(policies), "ClusterPolicy require-labels", "check-team", "")
	f.Add([]byte("kind: Policy\nmetadata:\n  name: a\n  namespace: b\n"), "Policy b/a", "", "metadata.annotations[example.com/x]")
	f.Add([]byte("kind: X\r  name: y\r"), "X y", "", "")
	f.Fuzz(func(t *testing.T, data []byte, object, rule, field string) {
		subject := report.ParseSubject(object)
		fd := &report.Finding{Gate: "weaken", Subject: subject, Rule: rule, Field: field, Resource: rule}
		line := FindingLine(data, fd)
		if again := FindingLine(data, fd); again != line {
			t.Fatalf("not deterministic: %d, then %d", line, again)
		}
		if max := lineCount(data); line < 0 || line > max {
			t.Fatalf("line %d of a file of %d lines", line, max)
		}
		kind, ns, name := subject.Kind, subject.Namespace, subject.Name
		ol := ObjectLine(data, kind, ns, name)
		if ol < 0 || ol > lineCount(data) {
			t.Fatalf("object line %d of a file of %d lines", ol, lineCount(data))
		}
		if utf8.Valid(data) && !bytes.HasPrefix(data, []byte("\ufeff")) && !strings.ContainsAny(object+rule, "\r\n") {
			const k = 3
			shifted := append([]byte(strings.Repeat("\n", k)), data...)
			for _, c := range [][2]int{{line, FindingLine(shifted, fd)}, {ol, ObjectLine(shifted, kind, ns, name)}} {
				if want := c[0] + k; c[0] > 0 && c[1] != want || c[0] == 0 && c[1] != 0 {
					t.Fatalf("line %d, after %d blank lines %d", c[0], k, c[1])
				}
			}
		}
		if segs := ParseField(field); !reflect.DeepEqual(segs, ParseField(field)) {
			t.Fatal("ParseField is not deterministic")
		}
		if !strings.ContainsAny(rule, "]") {
			if got := ParseField(RuleField(rule)); len(got) != 3 || got[2] != rule {
				t.Fatalf("ParseField(RuleField(%q)) = %q", rule, got)
			}
		}
	})
}

// lineCount counts lines as the YAML parser does: \r\n, \r, \n, NEL, LS
// and PS each end one.
func lineCount(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	n := 1
	for _, sep := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += strings.Count(s, sep)
	}
	return n
}
