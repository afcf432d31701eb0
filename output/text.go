package output

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/kyverno-gate/kyverno-gate/report"
)

// TextFormat is the report for people: the verdict first, then each
// overlay with its findings, then the posture matrix.
type TextFormat struct {
	// Colour decides whether to colour the report written to w; nil means
	// Colour(w, os.Getenv): only on a terminal, never with NO_COLOR.
	Colour func(w io.Writer) bool
}

func (*TextFormat) Name() string { return "text" }

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

type painter bool

func (p painter) paint(code, s string) string {
	if !p || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (p painter) verdict(v report.Verdict) string {
	switch v {
	case report.Vetted:
		return p.paint(ansiGreen, report.Vetted.Headline())
	case report.Rejected:
		return p.paint(ansiBold+ansiRed, report.Rejected.Headline())
	}
	return p.paint(ansiBold+ansiRed, report.Failed.Headline())
}

func (p painter) mark(m report.ChangeMark, s string) string {
	switch m {
	case report.MarkWeaker, report.MarkRemoved:
		return p.paint(ansiRed, s)
	case report.MarkUnknown, report.MarkChanged:
		return p.paint(ansiYellow, s)
	case report.MarkStricter, report.MarkNew:
		return p.paint(ansiGreen, s)
	}
	return s
}

func (t *TextFormat) Write(w io.Writer, r *report.Report) error {
	colour := t.Colour
	if colour == nil {
		colour = func(w io.Writer) bool { return Colour(w, os.Getenv) }
	}
	p := painter(colour(w))
	b := bufio.NewWriter(w)

	var total report.Tally
	rejected, failed := 0, 0
	for i := range r.Overlays {
		o := &r.Overlays[i]
		total = total.Add(o.Tally())
		switch o.Verdict {
		case report.Rejected:
			rejected++
		case report.Failed:
			failed++
		}
	}
	cmd := r.Command
	if cmd == "" {
		cmd = "check"
	}
	head := "kyverno-gate " + cmd + ": " + p.verdict(r.Verdict)
	var parts []string
	if n := len(r.Overlays); n != 1 {
		parts = append(parts, plural(n, "overlay"))
	}
	if rejected > 0 {
		parts = append(parts, fmt.Sprintf("%d rejected", rejected))
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d not evaluated", failed))
	}
	if s := total.String(); s != "" {
		parts = append(parts, s)
	}
	if len(parts) > 0 {
		head += ": " + strings.Join(parts, ", ")
	}
	fmt.Fprintln(b, head)

	for i := range r.Overlays {
		o := &r.Overlays[i]
		fmt.Fprintln(b)
		line := p.paint(ansiBold, o.Label()) + " " + p.verdict(o.Verdict)
		if o.Verdict == report.Failed {
			line += ": " + printable(oneLine(o.Error))
		} else {
			if t := o.Tally().String(); t != "" {
				line += ": " + t
			}
		}
		fmt.Fprintln(b, line)
		if o.Baseline != "" {
			fmt.Fprintln(b, "  baseline: "+printable(o.Baseline))
		} else if o.Verdict != report.Failed {
			fmt.Fprintln(b, "  baseline: none (no weakening check)")
		}
		if t := o.Tests; t != nil {
			fmt.Fprintln(b, "  tests: "+testLine(t))
		}
		for _, m := range unlisted(o) {
			fmt.Fprintln(b, "  migration: "+printable(MigrationLine(m)))
		}
		for j := range o.Findings {
			f := &o.Findings[j]
			fmt.Fprintln(b, "  - "+textFinding(p, f))
			if wt := f.Witness; wt != nil {
				place := wt.File
				if wt.Line > 0 {
					place += fmt.Sprintf(":%d", wt.Line)
				}
				line := fmt.Sprintf("    witness: %s (%s)", place, wt.Describe())
				if place == "" { // made by the search, not declared
					line = "    witness: " + wt.Describe()
				}
				fmt.Fprintln(b, printable(line))
			}
			if a := f.Approval; a != nil {
				fmt.Fprintln(b, printable(fmt.Sprintf("    approval: %s on %s: %s", a.Key, a.Object, approvalDetail(a))))
			}
		}
	}
	if m := r.Posture; m != nil && len(m.Rows) > 0 {
		fmt.Fprintln(b)
		writeTextMatrix(b, p, m)
	}
	return b.Flush()
}

func testLine(t *report.TestSummary) string {
	s := fmt.Sprintf("%s in %s", plural(t.Results, "result"), plural(t.Suites, "suite"))
	if t.Skipped > 0 {
		s += fmt.Sprintf(" (%d skipped)", t.Skipped)
	}
	// Results that failed and suites that could not run are different
	// repairs: say which.
	var bad []string
	if t.FailedResults > 0 {
		bad = append(bad, fmt.Sprintf("%d failed", t.FailedResults))
	}
	if t.Errors > 0 {
		bad = append(bad, fmt.Sprintf("%s could not run", plural(t.Errors, "suite")))
	}
	if len(bad) == 0 && t.Failed > 0 { // a report without the split counts
		bad = append(bad, fmt.Sprintf("%d failed", t.Failed))
	}
	if n := len(t.CarriedOver); n > 0 {
		s += fmt.Sprintf(" (%d carried over to migrated policies)", n)
	}
	if len(bad) == 0 {
		return s + ", all passed"
	}
	return s + ", " + strings.Join(bad, ", ")
}

func textFinding(p painter, f *report.Finding) string {
	return findingLine(p, f, string(f.Gate)+":")
}

// printable drops control characters, so that text from the repository
// cannot drive the terminal (colour is this report's own).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

// cellText is a cell for people: the action and, when it changed, how.
func cellText(c report.Cell) (string, report.ChangeMark) {
	s := c.Action
	switch c.Change {
	case "", report.MarkNone:
		return s, c.Change
	case report.MarkNew:
		return s + " (new)", c.Change
	case report.MarkRemoved:
		was := c.Baseline
		if was == "" {
			return s + " (removed)", c.Change
		}
		return s + " (removed, was " + was + ")", c.Change
	}
	if c.Baseline != "" {
		return s + " (" + string(c.Change) + ", was " + c.Baseline + ")", c.Change
	}
	return s + " (" + string(c.Change) + ")", c.Change
}

func writeTextMatrix(w io.Writer, p painter, m *report.Matrix) {
	fmt.Fprintln(w, p.paint(ansiBold, "Posture")+" (effective action per environment; in brackets, the change against its baseline):")
	header := append([]string{"POLICY / RULE"}, m.Environments...)
	rows := [][]string{}
	marks := [][]report.ChangeMark{}
	lastPolicy := ""
	for _, r := range m.Rows {
		pol := r.Kind + " " + r.Policy
		if r.Rule == "" {
			line := []string{pol}
			ms := []report.ChangeMark{""}
			for _, c := range r.Cells {
				s, mk := cellText(c)
				line, ms = append(line, s), append(ms, mk)
			}
			rows, marks = append(rows, line), append(marks, ms)
			lastPolicy = ""
			continue
		}
		if pol != lastPolicy {
			rows = append(rows, []string{pol})
			marks = append(marks, nil)
			lastPolicy = pol
		}
		line := []string{"  " + r.Rule}
		ms := []report.ChangeMark{""}
		for _, c := range r.Cells {
			s, mk := cellText(c)
			line, ms = append(line, s), append(ms, mk)
		}
		rows, marks = append(rows, line), append(marks, ms)
	}
	widths := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, c := range row {
			if i < len(row)-1 || len(row) == len(header) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	// A policy line with no cells may be wider than the first column:
	// it is printed alone.
	writeRow := func(row []string, ms []report.ChangeMark) {
		var b strings.Builder
		for i, c := range row {
			text := c
			if ms != nil && i < len(ms) {
				text = p.mark(ms[i], c)
			}
			b.WriteString(text)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	writeRow(header, nil)
	for i, row := range rows {
		writeRow(row, marks[i])
	}
}

// approvalDetail describes an approval found: its pairs when valid, else
// its status and why.
func approvalDetail(a *report.Approval) string {
	if a.Status != "valid" {
		if a.Error != "" {
			return a.Status + ": " + oneLine(a.Error)
		}
		if a.Expires != "" {
			return a.Status + " on " + a.Expires
		}
		return a.Status
	}
	var ps []string
	for _, kv := range [][2]string{{"reason", a.Reason}, {"ticket", a.Ticket}, {"by", a.By}, {"expires", a.Expires}} {
		if kv[1] != "" {
			ps = append(ps, kv[0]+"="+kv[1])
		}
	}
	if len(ps) == 0 {
		return "valid"
	}
	return strings.Join(ps, "; ")
}
