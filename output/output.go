// Package output writes what a run produced: the vetted manifests for Argo CD
// on stdout, and for people a short verdict on stderr that reads well at the
// end of Argo CD's long error prefix.
package output

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Manifests returns resources as one YAML stream. Callers write it in one
// go, only once every gate has passed, so stdout is never half-written.
func Manifests(resources []*render.Resource) []byte {
	var b bytes.Buffer
	for _, r := range resources {
		b.WriteString("---\n")
		b.Write(r.YAML)
		if len(r.YAML) > 0 && r.YAML[len(r.YAML)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// Compact writes the short report generate, lock and test print on
// stderr: one line naming label (the overlay as the reader knows it) with
// the verdict and the summary sentence, then one line per finding, capped
// at max so that Argo CD's UI stays readable. Approved findings are not
// listed (the log says them). detail follows the summary.
func Compact(w io.Writer, label string, o *report.Overlay, max int, detail string) {
	head := fmt.Sprintf("kyverno-gate: %s %s", label, o.Verdict.Headline())
	if o.Verdict == report.Failed {
		head += ": " + printable(oneLine(o.Error))
	}
	t := o.Tally()
	t.Approved = 0
	if s := t.String(); s != "" {
		if t.Errors > 0 {
			head += ": " + s
		} else {
			head += " (" + s + ")"
		}
	}
	if o.Verdict != report.Failed && detail != "" {
		head += " " + detail
	}
	fmt.Fprintln(w, head)
	var shown []*report.Finding
	for i := range o.Findings {
		if o.Findings[i].Severity != report.Note {
			shown = append(shown, &o.Findings[i])
		}
	}
	for i, f := range shown {
		if i == max {
			fmt.Fprintf(w, "... and %d more (set parameter max-problems to list them all)\n", len(shown)-i)
			break
		}
		fmt.Fprintln(w, "- "+findingLine(painter(false), f, ""))
	}
}

// Failure is the compact report of a run that could not be evaluated.
func Failure(w io.Writer, label, msg string) {
	Compact(w, label, &report.Overlay{Verdict: report.Failed, Error: msg}, 0, "")
}

// findingLine renders one finding on one line: where, what, and what to
// do; prefix (e.g. the gate) goes after the severity marker.
func findingLine(p painter, f *report.Finding, prefix string) string {
	var parts []string
	marker := ""
	switch f.Severity {
	case report.Warning:
		marker = p.paint(ansiYellow, "warning:") + " "
	case report.Note:
		marker = p.paint(ansiGreen, "approved:") + " "
	}
	if prefix != "" {
		parts = append(parts, prefix)
	}
	where := []string{}
	for _, p := range []string{f.Place(), f.Subject.String()} {
		if p != "" {
			where = append(where, p)
		}
	}
	if f.Rule != "" {
		where = append(where, "rule "+f.Rule)
	}
	if f.Resource != "" {
		where = append(where, "resource "+f.Resource)
	}
	if len(where) > 0 {
		parts = append(parts, strings.Join(where, ", ")+":")
	}
	parts = append(parts, oneLine(f.Message))
	if f.Hint != "" {
		parts = append(parts, "→ "+oneLine(f.Hint))
	}
	return marker + printable(strings.Join(parts, " "))
}

// Line is one finding on one line, as the compact report lists it.
func Line(f *report.Finding) string { return findingLine(painter(false), f, "") }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, word string) string { return report.Plural(n, word) }
