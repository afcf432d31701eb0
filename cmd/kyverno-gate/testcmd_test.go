package main

import (
	"encoding/json"
	"encoding/xml"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"sigs.k8s.io/yaml"
)

// A repository laid out for `kyverno-gate test`: one suite that passes,
// one whose policy message carries characters XML must escape, and (when
// failing) a result that fails.
func testRepo(t *testing.T, failing bool) string {
	t.Helper()
	suite := func(name, policy, expectNoTeam string) string {
		return `apiVersion: cli.kyverno.io/v1alpha1
kind: Test
metadata:
  name: ` + name + `
policies: [` + policy + `]
resources: [../resources.yaml]
results:
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [no-team]
    result: ` + expectNoTeam + `
  - policy: require-team
    rule: check-team
    kind: Pod
    resources: [with-team]
    result: pass
`
	}
	pods := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: no-team\nspec:\n  containers: [{name: c, image: nginx}]\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: with-team\n  labels: {team: a}\nspec:\n  containers: [{name: c, image: nginx}]\n"
	expect := "fail"
	if failing {
		expect = "pass"
	}
	odd := strings.Replace(goodPolicy, `message: "label team is required"`, `message: "label <team> & ]]> are required"`, 1)
	return repotest.WriteTree(t, map[string]string{
		".kyverno-gate.yaml":             "apiVersion: kyverno-gate.io/v1alpha1\nkind: Config\n",
		"policies/require-team.yaml":     goodPolicy,
		"policies/odd/require-team.yaml": odd,
		"tests/resources.yaml":           pods,
		"tests/plain/kyverno-test.yaml":  suite("plain", "../../policies/require-team.yaml", "fail"),
		"tests/odd/kyverno-test.yaml":    suite("odd", "../../policies/odd/require-team.yaml", expect),
		"other/tests/custom-name.yaml":   suite("custom", "../../policies/require-team.yaml", "fail"),
		"other/resources.yaml":           pods,
	})
}

// The flags `test` offers are the ones it uses: kyverno test's, and the
// parameters that apply to a test run. Rendering parameters are refused.
func TestTestCommandFlags(t *testing.T) {
	code, stdout, stderr := runGate(t, nil, "test", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	help := stdout + stderr
	for _, want := range []string{"--file-name value, -f value", "--test-case-selector value, -t value", "--output value, -o value, --output-format value",
		"--detailed-results", "--fail-only", "--require-tests", "--remove-color", "--timeout value", "--allow-no-tests"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, flag := range []string{"baseline", "tests", "samples", "allow-empty", "enable-helm"} {
		if strings.Contains(help, "--"+flag+" ") {
			t.Errorf("help offers --%s, which test does not use", flag)
		}
		root := testRepo(t, false)
		code, _, stderr := runGate(t, nil, "test", root, "--"+flag, "x")
		if code != 2 || !strings.Contains(stderr, "flag provided but not defined: -"+flag) && !strings.Contains(stderr, "unknown flag") {
			t.Errorf("--%s: exit %d, want 2\n%s", flag, code, stderr)
		}
	}
}

func TestTestCommandExitCodes(t *testing.T) {
	pass, fail := testRepo(t, false), testRepo(t, true)
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stderr
	}{
		{"passing", []string{pass}, 0, []string{"vetted [2 suites; 4 results: 0 failed, 4 passed; kyverno test would report 4 passed, 0 failed]"}},
		{"failing", []string{fail}, 1, []string{"REJECTED: 1 problem [2 suites (1 with failed results); 4 results: 1 failed, 3 passed; kyverno test would report 3 passed, 1 failed]"}},
		{"missing folder", []string{filepath.Join(pass, "nope")}, 2, []string{"nope does not exist"}},
		{"missing folder outside any repository", []string{"/nonexistent/tests"}, 2, []string{"/nonexistent/tests does not exist"}},
		{"a file", []string{filepath.Join(pass, "tests", "plain", "kyverno-test.yaml")}, 2, []string{"is a file; kyverno-gate test, like kyverno test, takes folders"}},
		{"mistyped flag", []string{pass, "--detailed-result"}, 2, nil},
		{"unknown format", []string{pass, "-o", "xml"}, 2, []string{`unknown output format "xml" (text, json, yaml, markdown, junit)`}},
		{"malformed selector", []string{pass, "-t", "policy"}, 2, []string{"--test-case-selector: Invalid test-case-selector argument (policy)"}},
		{"timeout asked for", []string{pass, "--timeout", "1ms"}, 2, []string{"gave up after 1ms", "raise --timeout"}},
		{"no tests", []string{pass, "-f", "none.yaml"}, 1, []string{"no none.yaml found"}},
		{"no tests allowed", []string{pass, "--file-name", "none.yaml", "--allow-no-tests"}, 0, nil},
		{"no tests required", []string{pass, "-f", "none.yaml", "--allow-no-tests", "--require-tests"}, 1, []string{"no none.yaml found"}},
		{"other file name", []string{pass, "--file-name", "custom-name.yaml"}, 0, []string{"vetted [1 suite; 2 results"}},
		{"selector", []string{fail, "-t", "policy=require-team,resource=with-*"}, 0, []string{"vetted [2 suites; 2 results: 0 failed, 2 passed"}},
		{"selector picks nothing", []string{pass, "-t", "rule=nothing"}, 1, []string{`the test case selector "rule=nothing" picks no result of the 2 suites found`}},
		{"two folders", []string{filepath.Join(pass, "tests"), filepath.Join(pass, "other")}, 0, []string{"tests in " + filepath.Join(pass, "tests") + ", " + filepath.Join(pass, "other") + " vetted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runGate(t, nil, append([]string{"test"}, tt.args...)...)
			if code != tt.code || stdout != "" {
				t.Fatalf("exit %d, stdout %q; want %d and nothing\n%s", code, stdout, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// The summary says what upstream would do when it would not report
// results: a test file that does not load stops it before any suite runs.
func TestTestCommandSummarySaysWhereUpstreamStops(t *testing.T) {
	root := testRepo(t, false)
	writeFile(t, filepath.Join(root, "tests", "broken", "kyverno-test.yaml"), "apiVersion: cli.kyverno.io/v1alpha1\nkind: Test\nmetadata: {name: broken}\nchecks: []\n")
	code, _, stderr := runGate(t, nil, "test", root)
	want := "REJECTED: 1 problem [3 suites (1 could not run); 4 results: 0 failed, 4 passed; kyverno test would fail before running any suite: it cannot load the test file tests/broken/kyverno-test.yaml]"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, want 1 and %q:\n%s", code, want, stderr)
	}
}

// A CI step that ran `kyverno test . --detailed-results -o junit` runs
// unchanged with kyverno-gate test, and what it prints on stdout is one
// JUnit XML document.
func TestTestCommandJUnitAsInCI(t *testing.T) {
	t.Chdir(example)
	code, stdout, stderr := runGate(t, nil, "test", ".", "--detailed-results", "-o", "junit")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	suites := parseJUnit(t, stdout)
	if suites.Tests < 40 || suites.Failures != 0 || suites.Errors != 0 || len(suites.Suites) < 5 {
		t.Errorf("tests %d, failures %d, errors %d, %d testsuites", suites.Tests, suites.Failures, suites.Errors, len(suites.Suites))
	}
	messages := 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if c.File == "" || c.Name == "" || c.SystemOut == nil {
				t.Errorf("case %+v: want file, name and details", c)
			}
			if c.SystemOut != nil && strings.Contains(c.SystemOut.Text, "Message: ") {
				messages++
			}
		}
	}
	if messages < suites.Tests*3/4 {
		t.Errorf("%d of %d cases carry the message (--detailed-results)", messages, suites.Tests)
	}

	// Failures, and text that XML must escape, parse too.
	code, stdout, stderr = runGate(t, nil, "test", testRepo(t, true), "-o", "junit", "--fail-only", "--detailed-results")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	suites = parseJUnit(t, stdout)
	if suites.Tests != 1 || suites.Failures != 1 || len(suites.Suites) != 1 {
		t.Fatalf("--fail-only: %+v", suites)
	}
	c := suites.Suites[0].Cases[0]
	if c.Failure == nil || c.Failure.Message != "Want pass, got fail" || !strings.Contains(c.Failure.Text, "label <team> & ]]> are required") ||
		c.File != "tests/odd/kyverno-test.yaml" || c.Classname != "check-team" || c.Name != "Pod default/no-team" {
		t.Errorf("case %+v", c)
	}
}

// parseJUnit decodes a JUnit document and checks that it survives a round
// trip through encoding/xml and that its counts add up.
func parseJUnit(t *testing.T, doc string) *testJUnitSuites {
	t.Helper()
	if !strings.HasPrefix(doc, xml.Header) {
		t.Errorf("no XML header: %.80q", doc)
	}
	var s testJUnitSuites
	if err := xml.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatalf("not XML: %v\n%s", err, doc)
	}
	again, err := xml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var s2 testJUnitSuites
	if err := xml.Unmarshal(again, &s2); err != nil || !reflect.DeepEqual(s, s2) {
		t.Fatalf("round trip: %v", err)
	}
	tests, failures, errors := 0, 0, 0
	for _, su := range s.Suites {
		n, f, e := 0, 0, 0
		for _, c := range su.Cases {
			n++
			if c.Failure != nil {
				f++
			}
			if c.Error != nil {
				e++
			}
		}
		if su.Tests != n || su.Failures != f || su.Errors != e {
			t.Errorf("testsuite %s: tests=%d failures=%d errors=%d, cases say %d %d %d", su.Name, su.Tests, su.Failures, su.Errors, n, f, e)
		}
		tests, failures, errors = tests+n, failures+f, errors+e
	}
	if s.Tests != tests || s.Failures != failures || s.Errors != errors {
		t.Errorf("testsuites: tests=%d failures=%d errors=%d, cases say %d %d %d", s.Tests, s.Failures, s.Errors, tests, failures, errors)
	}
	return &s
}

// JSON and YAML carry the same report; every key is lower camel case like
// the rest of the tool's JSON; --fail-only keeps the failed results.
func TestTestCommandJSONAndYAML(t *testing.T) {
	root := testRepo(t, true)
	code, stdout, stderr := runGate(t, nil, "test", root, "-o", "json")
	if code != 1 || !strings.Contains(stderr, "REJECTED") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var report map[string]any
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatal(err)
	}
	var keys func(v any, path string)
	keys = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "" || !unicode.IsLower(rune(k[0])) || strings.ContainsAny(k, "_- ") {
					t.Errorf("key %s.%s is not lower camel case", path, k)
				}
				keys(e, path+"."+k)
			}
		case []any:
			for _, e := range x {
				keys(e, path+"[]")
			}
		}
	}
	keys(report, "")
	counts := report["counts"].(map[string]any)
	if counts["failedResults"] != 1.0 || counts["failedSuites"] != 1.0 || counts["results"] != 4.0 || report["version"] != 2.0 || report["verdict"] != "rejected" {
		t.Errorf("counts %v, version %v, verdict %v", counts, report["version"], report["verdict"])
	}

	_, ystdout, _ := runGate(t, nil, "test", root, "--output-format", "yaml")
	var fromYAML map[string]any
	if err := yaml.Unmarshal([]byte(ystdout), &fromYAML); err != nil || !reflect.DeepEqual(fromYAML, report) {
		t.Errorf("yaml differs from json (%v)", err)
	}

	_, stdout, _ = runGate(t, nil, "test", root, "-o", "json", "--fail-only")
	var failed struct {
		Suites []struct {
			File    string
			Results []struct{ Failed bool }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &failed); err != nil {
		t.Fatal(err)
	}
	if len(failed.Suites) != 1 || failed.Suites[0].File != "tests/odd/kyverno-test.yaml" || len(failed.Suites[0].Results) != 1 || !failed.Suites[0].Results[0].Failed {
		t.Errorf("--fail-only: %+v", failed)
	}
}

// Markdown is kyverno test's table, MESSAGE with --detailed-results;
// text asked for by name goes to stdout.
func TestTestCommandMarkdownAndText(t *testing.T) {
	root := testRepo(t, true)
	_, stdout, _ := runGate(t, nil, "test", root, "-o", "markdown")
	if !strings.Contains(stdout, "| ID | POLICY | RULE | RESOURCE | RESULT | REASON |\n") || strings.Contains(stdout, "MESSAGE") ||
		!strings.Contains(stdout, "| 1 | require-team | check-team | Pod default/no-team | Fail | Want pass, got fail |") {
		t.Errorf("markdown:\n%s", stdout)
	}
	_, stdout, _ = runGate(t, nil, "test", root, "-o", "markdown", "--detailed-results")
	if !strings.Contains(stdout, "| REASON | MESSAGE |") || !strings.Contains(stdout, `label <team> & ]]> are required`) {
		t.Errorf("markdown --detailed-results:\n%s", stdout)
	}
	code, stdout, stderr := runGate(t, nil, "test", root, "-o", "text", "--detailed-results", "--fail-only")
	if code != 1 || !strings.HasPrefix(stdout, "kyverno-gate: tests in "+root+" REJECTED") || strings.Contains(stderr, "REJECTED") {
		t.Fatalf("text to stdout: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if rows := strings.Count(stdout, "tests/odd/kyverno-test.yaml  require-team"); rows != 1 || strings.Contains(stdout, "tests/plain/kyverno-test.yaml  require-team") {
		t.Errorf("--fail-only table:\n%s", stdout)
	}
}

// The JUnit document as a CI system reads it.
type testJUnitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Name     string   `xml:"name,attr"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Cases    []struct {
			Name      string            `xml:"name,attr"`
			Classname string            `xml:"classname,attr"`
			File      string            `xml:"file,attr,omitempty"`
			Failure   *testJUnitProblem `xml:"failure,omitempty"`
			Error     *testJUnitProblem `xml:"error,omitempty"`
			SystemOut *struct {
				Text string `xml:",cdata"`
			} `xml:"system-out,omitempty"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type testJUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}
