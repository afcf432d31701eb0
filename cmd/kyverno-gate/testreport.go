package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// testFormats are the test command's output formats: kyverno test's
// (json, yaml, markdown, junit) and the text report.
var testFormats = []string{"text", "json", "yaml", "markdown", "junit"}

func validTestFormat(f string) bool {
	for _, v := range testFormats {
		if f == v {
			return true
		}
	}
	return false
}

// testRun is a finished run of the test command, for its reports.
type testRun struct {
	Label       string
	Verdict     report.Verdict
	Results     []*kyvernotest.SuiteResult
	Counts      kyvernotest.Counts
	Findings    []report.Finding
	Unselected  int // suites the test case selector left no result of
	Detailed    bool
	FailOnly    bool
	MaxProblems int
}

func (r *testRun) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r.report())
	case "yaml":
		data, err := yaml.Marshal(r.report())
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

// summary is the line after the verdict.
func (r *testRun) summary() string {
	s := r.Counts.Summary()
	if r.Unselected > 0 {
		s += fmt.Sprintf("; the test case selector left out %d %s", r.Unselected, plural(r.Unselected, "suite", "suites"))
	}
	return "[" + s + "]"
}

// text is the report for a person: the verdict with the counts, the
// problems, and with --detailed-results every result (the failed ones with
// --fail-only) as a table like kyverno test's, with the message.
func (r *testRun) text(w io.Writer) error {
	output.Compact(w, r.Label, &report.Overlay{Verdict: r.Verdict, Findings: r.Findings}, r.MaxProblems, r.summary())
	if !r.Detailed {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tPOLICY\tRULE\tRESOURCE\tEXPECTED\tRESULT\tREASON\tMESSAGE")
	for _, rr := range r.Results {
		if rr.Err != nil {
			fmt.Fprintf(tw, "%s\t\t\t\t\tError\tcould not run\t%s\n", rr.Suite.Rel, oneLine(rr.Err.Error()))
			continue
		}
		for _, row := range rr.Rows {
			if r.FailOnly && !row.Failed() {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rr.Suite.Rel, row.Policy, row.Rule, row.Resource, row.Expected,
				rowResult(row), rowReason(row), oneLine(row.Message))
		}
	}
	return tw.Flush()
}

func rowResult(row kyvernotest.Row) string {
	if row.Failed() {
		return "Fail"
	}
	return "Pass"
}

// rowReason is upstream's reason, with kyverno-gate's when it is stricter.
func rowReason(row kyvernotest.Row) string {
	if row.Strict != "" {
		return row.Reason + " (kyverno-gate: " + row.Strict + ")"
	}
	return row.Reason
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// report is the JSON and YAML form of a run (schema version 2: counts in
// lower camel case, what each counts in kyvernotest.Counts).
func (r *testRun) report() any {
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
		Version    int                `json:"version"`
		Verdict    string             `json:"verdict"`
		Counts     kyvernotest.Counts `json:"counts"`
		Unselected int                `json:"unselected,omitempty"`
		Problems   []report.Finding   `json:"problems"`
		Suites     []suite            `json:"suites"`
	}{Version: 2, Verdict: strings.ToLower(r.Verdict.Headline()), Counts: r.Counts, Unselected: r.Unselected,
		Problems: r.Findings, Suites: []suite{}}
	if out.Problems == nil {
		out.Problems = []report.Finding{}
	}
	for _, rr := range r.Results {
		if r.FailOnly && !rr.Failed() {
			continue
		}
		su := suite{File: rr.Suite.Rel, Name: rr.Suite.Name(), Skipped: rr.Skipped, UpstreamStop: rr.UpstreamStop, Rows: []row{}}
		if rr.Err != nil {
			su.Error = rr.Err.Error()
		}
		for _, x := range rr.Rows {
			if r.FailOnly && !x.Failed() {
				continue
			}
			su.Rows = append(su.Rows, row{x.Policy, x.Rule, x.Resource, x.Expected, x.Got, x.Upstream, x.Reason, x.Message, x.Strict, x.Failed()})
		}
		out.Suites = append(out.Suites, su)
	}
	return out
}

// markdown is kyverno test's markdown table (ID, POLICY, RULE, RESOURCE,
// RESULT, REASON, and MESSAGE with --detailed-results), one per test file,
// after the verdict.
func (r *testRun) markdown(w io.Writer) error {
	cell := func(s string) string {
		return strings.ReplaceAll(oneLine(s), "|", `\|`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## kyverno-gate: %s %s\n\n%s\n", cell(r.Label), r.Verdict.Headline(), cell(r.summary()))
	if len(r.Findings) > 0 {
		b.WriteString("\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "- %s\n", cell(output.Line(&f)))
		}
	}
	headers := []string{"ID", "POLICY", "RULE", "RESOURCE", "RESULT", "REASON"}
	if r.Detailed {
		headers = append(headers, "MESSAGE")
	}
	for _, rr := range r.Results {
		if (r.FailOnly && !rr.Failed()) || (rr.Err == nil && len(rr.Rows) == 0) {
			continue
		}
		fmt.Fprintf(&b, "\n### %s (%s)\n\n", cell(rr.Suite.Rel), cell(rr.Suite.Name()))
		if rr.Err != nil {
			fmt.Fprintf(&b, "Could not run: %s\n", cell(rr.Err.Error()))
			continue
		}
		b.WriteString("| " + strings.Join(headers, " | ") + " |\n")
		b.WriteString("|" + strings.Repeat("----|", len(headers)) + "\n")
		id := 0
		for _, row := range rr.Rows {
			id++
			if r.FailOnly && !row.Failed() {
				continue
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |", id, cell(row.Policy), cell(row.Rule), cell(row.Resource), rowResult(row), cell(rowReason(row)))
			if r.Detailed {
				fmt.Fprintf(&b, " %s |", cell(row.Message))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// JUnit XML, grouped as kyverno test groups it: one testsuite per policy,
// one testcase per result (classname the rule, name the resource, file the
// test file); a suite that could not run is a testsuite of its own with an
// error case. Unlike kyverno test's, it is one well-formed document.
type testJUnitSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Suites   []testJUnitSuite `xml:"testsuite"`
}

type testJUnitSuite struct {
	Name     string          `xml:"name,attr"`
	Tests    int             `xml:"tests,attr"`
	Failures int             `xml:"failures,attr"`
	Errors   int             `xml:"errors,attr"`
	Cases    []testJUnitCase `xml:"testcase"`
}

type testJUnitCase struct {
	Name      string            `xml:"name,attr"`
	Classname string            `xml:"classname,attr"`
	File      string            `xml:"file,attr,omitempty"`
	Failure   *testJUnitProblem `xml:"failure,omitempty"`
	Error     *testJUnitProblem `xml:"error,omitempty"`
	SystemOut *testJUnitText    `xml:"system-out,omitempty"`
}

type testJUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

type testJUnitText struct {
	Text string `xml:",cdata"`
}

func (r *testRun) junit(w io.Writer) error {
	out := testJUnitSuites{Name: "kyverno-gate test"}
	index := map[string]int{}
	suite := func(name string) *testJUnitSuite {
		i, ok := index[name]
		if !ok {
			i = len(out.Suites)
			index[name] = i
			out.Suites = append(out.Suites, testJUnitSuite{Name: xmlSafe(name)})
		}
		return &out.Suites[i]
	}
	for _, rr := range r.Results {
		if rr.Skipped != "" {
			continue
		}
		if rr.Err != nil {
			s := suite(rr.Suite.Rel)
			s.Tests++
			s.Errors++
			s.Cases = append(s.Cases, testJUnitCase{Name: xmlSafe(rr.Suite.Name()), Classname: xmlSafe(rr.Suite.Rel), File: xmlSafe(rr.Suite.Rel),
				Error: &testJUnitProblem{Message: xmlSafe(oneLine("could not run: " + rr.Err.Error())), Type: "kyverno-gate/suite-error", Text: xmlSafe(rr.Err.Error())}})
			continue
		}
		for _, row := range rr.Rows {
			if r.FailOnly && !row.Failed() {
				continue
			}
			s := suite(row.Policy)
			s.Tests++
			class := row.Rule
			if class == "" {
				class = row.Policy
			}
			c := testJUnitCase{Name: xmlSafe(row.Resource), Classname: xmlSafe(class), File: xmlSafe(rr.Suite.Rel)}
			detail := fmt.Sprintf("Test file: %s\nPolicy: %s\nRule: %s\nResource: %s\nExpected: %s\nResult: %s\nReason: %s\n",
				rr.Suite.Rel, row.Policy, row.Rule, row.Resource, row.Expected, rowResult(row), rowReason(row))
			if r.Detailed && row.Message != "" {
				detail += "Message: " + row.Message + "\n"
			}
			if row.Failed() {
				s.Failures++
				msg, typ := row.Reason, "kyverno-test/failed"
				if row.Strict != "" {
					msg, typ = row.Strict, "kyverno-gate/strict"
				}
				c.Failure = &testJUnitProblem{Message: xmlSafe(oneLine(msg)), Type: typ, Text: xmlSafe(detail)}
			} else {
				c.SystemOut = &testJUnitText{Text: xmlSafe(detail)}
			}
			s.Cases = append(s.Cases, c)
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

// xmlSafe replaces the characters XML 1.0 cannot carry, even escaped.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
