package output

import (
	"encoding/xml"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
	"strings"
)

// JUnitFormat writes JUnit XML: one testsuite per overlay, one testcase
// per Kyverno test result row and per finding (test-gate findings that a
// failing row already reports are not repeated). Unapproved errors are
// failures, warnings and approved findings pass with a note in
// system-out, an overlay that could not be evaluated is one error case,
// and an overlay with nothing to report is one passing case.
type JUnitFormat struct{}

func (JUnitFormat) Name() string { return "junit" }

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitProblem `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

// xmlSafe replaces the characters XML 1.0 cannot carry, even in CDATA.
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

func (JUnitFormat) Write(w io.Writer, r *report.Report) error {
	out := junitSuites{Name: "kyverno-gate check"}
	for i := range r.Overlays {
		o := &r.Overlays[i]
		s := junitSuite{Name: o.Label()}
		s.Properties = append(s.Properties, junitProperty{"verdict", string(o.Verdict)})
		if o.Environment != "" {
			s.Properties = append(s.Properties, junitProperty{"environment", o.Environment})
		}
		if o.Baseline != "" {
			s.Properties = append(s.Properties, junitProperty{"baseline", o.Baseline})
		}
		if o.Verdict == report.Failed {
			s.Cases = append(s.Cases, junitCase{Name: "evaluate " + o.Path, Classname: o.Path,
				Error: &junitProblem{Message: oneLine(o.Error), Type: "error", Text: o.Error}})
		}
		// Test rows.
		covered := map[string]bool{}
		if t := o.Tests; t != nil {
			for _, c := range t.Cases {
				jc := junitCase{Name: c.Name(), Classname: o.Path + ".test." + c.Suite, File: c.Suite}
				if c.Expected != "" {
					jc.Name += " (expect " + c.Expected + ")"
				}
				switch c.Status {
				case "fail":
					msg := c.Strict
					if msg == "" {
						msg = "expected " + c.Expected + ": " + c.Reason
					}
					jc.Failure = &junitProblem{Message: oneLine(msg), Type: "test/failed", Text: testDetail(c)}
					covered[c.Suite+"\x00"+c.Policy+"\x00"+c.Rule+"\x00"+c.Resource] = true
				case "error":
					jc.Error = &junitProblem{Message: oneLine(c.Message), Type: "test/suite-error", Text: c.Message}
					covered[c.Suite+"\x00suite"] = true
				case "skip":
					jc.Skipped = &junitProblem{Message: oneLine(c.Message)}
				}
				s.Cases = append(s.Cases, jc)
			}
		}
		// Findings.
		for j := range o.Findings {
			f := &o.Findings[j]
			if f.Gate == report.GateTest {
				pol := f.Subject.Name
				if covered[f.File+"\x00"+pol+"\x00"+f.Rule+"\x00"+f.Resource] || (f.Kind == report.KindSuiteError && covered[f.File+"\x00suite"]) {
					continue
				}
			}
			name := string(f.Gate) + ":"
			for _, p := range []string{f.Subject.String(), prefixed("rule ", f.Rule), prefixed("resource ", f.Resource)} {
				if p != "" {
					name += " " + p
				}
			}
			name += " [" + f.ID + "]"
			jc := junitCase{Name: name, Classname: o.Path + "." + string(f.Gate), File: f.File, Line: f.Line}
			detail := findingDetail(f)
			switch f.Severity {
			case report.Error:
				jc.Failure = &junitProblem{Message: oneLine(f.Message), Type: ruleID(f), Text: detail}
			case report.Warning:
				jc.SystemOut = &junitText{"warning: " + detail}
			default:
				jc.SystemOut = &junitText{"approved: " + detail}
			}
			s.Cases = append(s.Cases, jc)
		}
		if len(s.Cases) == 0 {
			s.Cases = append(s.Cases, junitCase{Name: "all gates passed", Classname: o.Path})
		}
		for i := range s.Cases {
			c := &s.Cases[i]
			for _, p := range []*junitProblem{c.Failure, c.Error, c.Skipped} {
				if p != nil {
					p.Message, p.Text = xmlSafe(p.Message), xmlSafe(p.Text)
				}
			}
			if c.SystemOut != nil {
				c.SystemOut.Text = xmlSafe(c.SystemOut.Text)
			}
			c.Name = xmlSafe(c.Name)
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Error != nil:
				s.Errors++
			case c.Skipped != nil:
				s.Skipped++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
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

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func testDetail(c report.TestCase) string {
	var b strings.Builder
	fmt.Fprintf(&b, "suite: %s\n", c.Suite)
	for _, kv := range [][2]string{{"policy", c.Policy}, {"rule", c.Rule}, {"resource", c.Resource}, {"expected", c.Expected},
		{"got", c.Got}, {"kyverno test", c.Upstream}, {"reason", c.Reason}, {"message", c.Message}, {"strict", c.Strict}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
		}
	}
	return b.String()
}

func findingDetail(f *report.Finding) string {
	var b strings.Builder
	b.WriteString(f.Message + "\n")
	if p := f.Place(); p != "" {
		b.WriteString("at: " + p + "\n")
	}
	if wt := f.Witness; wt != nil {
		fmt.Fprintf(&b, "witness: %s, denied by the baseline, admitted now\n", wt.String())
	}
	if f.Fingerprint != "" {
		b.WriteString("fingerprint: " + f.Fingerprint + "\n")
	}
	if a := f.Approval; a != nil {
		fmt.Fprintf(&b, "approval: %s on %s (%s)\n", a.Key, a.Object, a.Status)
	}
	if f.Hint != "" && !f.Approved {
		b.WriteString("hint: " + f.Hint + "\n")
	}
	return b.String()
}
