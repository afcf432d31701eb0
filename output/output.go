// Package output writes what a run produced: the vetted manifests for Argo CD
// on stdout, and for people a short verdict on stderr that reads well at the
// end of Argo CD's long error prefix.
package output

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/render"
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

// Verdict is the headline of a run.
type Verdict string

const (
	Vetted   Verdict = "vetted"
	Rejected Verdict = "REJECTED"
	Failed   Verdict = "could not be evaluated"
)

// ExitCode is the exit status every subcommand uses for a verdict.
func (v Verdict) ExitCode() int {
	switch v {
	case Vetted:
		return 0
	case Rejected:
		return 1
	}
	return 2
}

// Text writes the human report: a one-line summary naming the path first,
// then one line per finding, capped at max so that Argo CD's UI stays
// readable.
func Text(w io.Writer, path string, v Verdict, findings []gate.Finding, max int, detail string) {
	errs, warns := 0, 0
	for _, f := range findings {
		if f.Severity == gate.Error {
			errs++
		} else {
			warns++
		}
	}
	head := fmt.Sprintf("kyverno-gate: %s %s", path, v)
	switch {
	case v == Failed:
		head += ": " + detail
	case errs > 0:
		head += fmt.Sprintf(": %s", plural(errs, "problem"))
	}
	if warns > 0 {
		head += fmt.Sprintf(" (%s)", plural(warns, "warning"))
	}
	if v != Failed && detail != "" {
		head += " " + detail
	}
	fmt.Fprintln(w, head)
	shown := 0
	for _, f := range findings {
		if shown == max {
			fmt.Fprintf(w, "... and %d more (set parameter max-problems to list them all)\n", len(findings)-shown)
			break
		}
		fmt.Fprintln(w, "- "+Line(f))
		shown++
	}
}

// Line renders one finding on one line: where, what, and what to do.
func Line(f gate.Finding) string {
	var parts []string
	if f.Severity == gate.Warning {
		parts = append(parts, "warning:")
	}
	where := []string{}
	for _, p := range []string{f.File, f.Object} {
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
	return strings.Join(parts, " ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
