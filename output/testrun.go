package output

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/report"
)

// TestFormats are the test command's output formats: kyverno test's (json,
// yaml, markdown, junit) and the text report.
var TestFormats = []string{"text", "json", "yaml", "markdown", "junit"}

// TestRun is what the test command reports: the run as one overlay (its
// verdict, findings and Tests) and kyverno test's switches.
type TestRun struct {
	Label   string
	Overlay *report.Overlay
	// Unselected counts the suites the test case selector left no result of.
	Unselected  int
	Detailed    bool // every result with its message, not only failures
	FailOnly    bool // the failed results only
	MaxProblems int
}

// Write writes r in format, one of TestFormats.
func (r *TestRun) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r.model())
	case "yaml":
		data, err := yaml.Marshal(r.model())
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case "markdown":
		return r.markdown(w)
	case "junit":
		return r.junit(w)
	}
	return r.text(w)
}

func (r *TestRun) counts() report.TestCounts {
	if r.Overlay.Tests == nil {
		return report.TestCounts{}
	}
	return r.Overlay.Tests.TestCounts
}

// summary is the line after the verdict.
func (r *TestRun) summary() string {
	s := r.counts().String()
	if r.Unselected > 0 {
		s += fmt.Sprintf("; the test case selector left out %s", plural(r.Unselected, "suite"))
	}
	return "[" + s + "]"
}

// testSuite is one suite's cases, in order.
type testSuite struct {
	file, name   string
	skipped, err string
	upstreamStop string
	rows         []report.TestCase
}

func (s *testSuite) failed() bool {
	if s.err != "" {
		return true
	}
	for _, c := range s.rows {
		if c.Status == "fail" {
			return true
		}
	}
	return false
}

// suites groups the run's cases by suite.
func (r *TestRun) suites() []*testSuite {
	var out []*testSuite
	if r.Overlay.Tests == nil {
		return nil
	}
	for _, c := range r.Overlay.Tests.Cases {
		var s *testSuite
		if n := len(out); n > 0 && out[n-1].file == c.Suite && out[n-1].name == c.SuiteName {
			s = out[n-1]
		} else {
			s = &testSuite{file: c.Suite, name: c.SuiteName, upstreamStop: c.UpstreamStop}
			out = append(out, s)
		}
		switch c.Status {
		case "skip":
			if c.Policy == "" && c.Resource == "" { // the whole suite
				s.skipped = c.Message
				continue
			}
		case "error":
			if c.Policy == "" && c.Resource == "" {
				s.err = c.Message
				continue
			}
		}
		s.rows = append(s.rows, c)
	}
	return out
}

func caseResult(c report.TestCase) string {
	if c.Status == "fail" {
		return "Fail"
	}
	return "Pass"
}

// caseReason is upstream's reason, with kyverno-gate's when it is stricter.
func caseReason(c report.TestCase) string {
	if c.Strict != "" {
		return c.Reason + " (kyverno-gate: " + c.Strict + ")"
	}
	return c.Reason
}

// text is the report for a person: the compact report with the counts,
// and with Detailed every result (the failed ones with FailOnly) as a
// table like kyverno test's, with the message.
func (r *TestRun) text(w io.Writer) error {
	Compact(w, r.Label, r.Overlay, r.MaxProblems, r.summary())
	if !r.Detailed {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tPOLICY\tRULE\tRESOURCE\tEXPECTED\tRESULT\tREASON\tMESSAGE")
	for _, s := range r.suites() {
		if s.err != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\tError\tcould not run\t%s\n", s.file, oneLine(s.err))
			continue
		}
		for _, c := range s.rows {
			if r.FailOnly && c.Status != "fail" {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.file, c.Policy, c.Rule, c.Resource, c.Expected,
				caseResult(c), caseReason(c), oneLine(c.Message))
		}
	}
	return tw.Flush()
}

// model is the JSON and YAML form of a run (version 2: counts in lower
// camel case, what each counts in report.TestCounts).
func (r *TestRun) model() any {
	type row struct {
		Policy   string `json:"policy"`
		Rule     string `json:"rule,omitempty"`
		Resource string `json:"resource"`
		Expected string `json:"expected"`
		Got      string `json:"got,omitempty"`
		Upstream string `json:"upstream"`
		Reason   string `json:"reason"`
		Message  string `json:"message,omitempty"`
		Strict   string `json:"strict,omitempty"`
		Failed   bool   `json:"failed"`
	}
	type suite struct {
		File         string `json:"file"`
		Name         string `json:"name"`
		Skipped      string `json:"skipped,omitempty"`
		Error        string `json:"error,omitempty"`
		UpstreamStop string `json:"upstreamStop,omitempty"`
		Rows         []row  `json:"results"`
	}
	out := struct {
		Version    int               `json:"version"`
		Verdict    string            `json:"verdict"`
		Counts     report.TestCounts `json:"counts"`
		Unselected int               `json:"unselected,omitempty"`
		Problems   []report.Finding  `json:"problems"`
		Suites     []suite           `json:"suites"`
	}{Version: 2, Verdict: strings.ToLower(r.Overlay.Verdict.Headline()), Counts: r.counts(), Unselected: r.Unselected,
		Problems: r.Overlay.Findings, Suites: []suite{}}
	if out.Problems == nil {
		out.Problems = []report.Finding{}
	}
	for _, s := range r.suites() {
		if r.FailOnly && !s.failed() {
			continue
		}
		su := suite{File: s.file, Name: s.name, Skipped: s.skipped, Error: s.err, UpstreamStop: s.upstreamStop, Rows: []row{}}
		for _, c := range s.rows {
			if r.FailOnly && c.Status != "fail" {
				continue
			}
			su.Rows = append(su.Rows, row{c.Policy, c.Rule, c.Resource, c.Expected, c.Got, c.Upstream, c.Reason, c.Message, c.Strict, c.Status == "fail"})
		}
		out.Suites = append(out.Suites, su)
	}
	return out
}

// markdown is kyverno test's markdown table (ID, POLICY, RULE, RESOURCE,
// RESULT, REASON, and MESSAGE with Detailed), one per test file, after the
// verdict.
func (r *TestRun) markdown(w io.Writer) error {
	cell := func(s string) string {
		return strings.ReplaceAll(oneLine(s), "|", `\|`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## kyverno-gate: %s %s\n\n%s\n", cell(r.Label), r.Overlay.Verdict.Headline(), cell(r.summary()))
	if len(r.Overlay.Findings) > 0 {
		b.WriteString("\n")
		for i := range r.Overlay.Findings {
			fmt.Fprintf(&b, "- %s\n", cell(Line(&r.Overlay.Findings[i])))
		}
	}
	headers := []string{"ID", "POLICY", "RULE", "RESOURCE", "RESULT", "REASON"}
	if r.Detailed {
		headers = append(headers, "MESSAGE")
	}
	for _, s := range r.suites() {
		if (r.FailOnly && !s.failed()) || (s.err == "" && len(s.rows) == 0) {
			continue
		}
		fmt.Fprintf(&b, "\n### %s (%s)\n\n", cell(s.file), cell(s.name))
		if s.err != "" {
			fmt.Fprintf(&b, "Could not run: %s\n", cell(s.err))
			continue
		}
		b.WriteString("| " + strings.Join(headers, " | ") + " |\n")
		b.WriteString("|" + strings.Repeat("----|", len(headers)) + "\n")
		for id, c := range s.rows {
			if r.FailOnly && c.Status != "fail" {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |", id+1, cell(c.Policy), cell(c.Rule), cell(c.Resource), caseResult(c), cell(caseReason(c)))
			if r.Detailed {
				fmt.Fprintf(&b, " %s |", cell(c.Message))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// junit is JUnit XML grouped as kyverno test groups it: one testsuite per
// policy, one testcase per result (classname the rule, name the resource,
// file the test file); a suite that could not run is a testsuite of its
// own with an error case. Unlike kyverno test's, it is one well-formed
// document, written with the same XML model as check's junit format.
func (r *TestRun) junit(w io.Writer) error {
	out := junitSuites{Name: "kyverno-gate test"}
	index := map[string]int{}
	suite := func(name string) *junitSuite {
		i, ok := index[name]
		if !ok {
			i = len(out.Suites)
			index[name] = i
			out.Suites = append(out.Suites, junitSuite{Name: xmlSafe(name)})
		}
		return &out.Suites[i]
	}
	for _, s := range r.suites() {
		if s.skipped != "" {
			continue
		}
		if s.err != "" {
			js := suite(s.file)
			js.Tests++
			js.Errors++
			js.Cases = append(js.Cases, junitCase{Name: xmlSafe(s.name), Classname: xmlSafe(s.file), File: xmlSafe(s.file),
				Error: &junitProblem{Message: xmlSafe(oneLine("could not run: " + s.err)), Type: "kyverno-gate/suite-error", Text: xmlSafe(s.err)}})
			continue
		}
		for _, c := range s.rows {
			if r.FailOnly && c.Status != "fail" {
				continue
			}
			js := suite(c.Policy)
			js.Tests++
			class := c.Rule
			if class == "" {
				class = c.Policy
			}
			jc := junitCase{Name: xmlSafe(c.Resource), Classname: xmlSafe(class), File: xmlSafe(s.file)}
			detail := fmt.Sprintf("Test file: %s\nPolicy: %s\nRule: %s\nResource: %s\nExpected: %s\nResult: %s\nReason: %s\n",
				s.file, c.Policy, c.Rule, c.Resource, c.Expected, caseResult(c), caseReason(c))
			if r.Detailed && c.Message != "" {
				detail += "Message: " + c.Message + "\n"
			}
			if c.Status == "fail" {
				js.Failures++
				msg, typ := c.Reason, "kyverno-test/failed"
				if c.Strict != "" {
					msg, typ = c.Strict, "kyverno-gate/strict"
				}
				jc.Failure = &junitProblem{Message: xmlSafe(oneLine(msg)), Type: typ, Text: xmlSafe(detail)}
			} else {
				jc.SystemOut = &junitText{Text: xmlSafe(detail)}
			}
			js.Cases = append(js.Cases, jc)
		}
	}
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
