package output

import (
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
	"sort"
	"strings"
)

// MarkdownFormat writes a pull-request comment: the verdict, one line per
// overlay, the posture matrix, the findings and the approvals to paste.
// It starts with the HTML comment MarkdownMarker so that a bot can find
// and update its previous comment instead of adding one per push.
type MarkdownFormat struct {
	// MaxBytes caps the comment (GitHub refuses comments over 65536
	// characters); findings past the cap are counted, not listed. 0 means
	// DefaultMarkdownMax.
	MaxBytes int
}

// MarkdownMarker is the first line of every Markdown report.
const MarkdownMarker = "<!-- kyverno-gate:check -->"

// DefaultMarkdownMax leaves room under GitHub's comment limit.
const DefaultMarkdownMax = 60000

func (*MarkdownFormat) Name() string { return "markdown" }

func mdVerdict(v report.Verdict) string {
	switch v {
	case report.Vetted:
		return "✅ vetted"
	case report.Rejected:
		return "❌ rejected"
	}
	return "⚠️ could not be evaluated"
}

var markEmoji = map[report.ChangeMark]string{
	report.MarkWeaker:   "🔻",
	report.MarkUnknown:  "❓",
	report.MarkStricter: "🔺",
	report.MarkNew:      "🆕",
	report.MarkRemoved:  "✖️",
	report.MarkChanged:  "✏️",
}

// mdEscaper escapes text so that Markdown and HTML in it show as typed.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"~", `\~`, "#", `\#`, "<", "&lt;", ">", "&gt;", "&", "&amp;", "\r", "", "\n", " ",
)

func mdText(s string) string { return mdEscaper.Replace(s) }

// mdCode is s as a code span.
func mdCode(s string) string {
	s = oneLine(s)
	if s == "" {
		return ""
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdCell makes s safe inside a table cell.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// mdFence returns a code fence longer than any backtick run in s.
func mdFence(s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence
}

func (m *MarkdownFormat) Write(w io.Writer, r *report.Report) error {
	limit := m.MaxBytes
	if limit <= 0 {
		limit = DefaultMarkdownMax
	}
	var head, matrix, approvals strings.Builder

	// Headline and overlays.
	fmt.Fprintf(&head, "%s\n## kyverno-gate: %s\n\n", MarkdownMarker, mdVerdict(r.Verdict))
	var tally report.Tally
	for i := range r.Overlays {
		tally = tally.Add(r.Overlays[i].Tally())
	}
	found := tally.String()
	if found == "" {
		found = "no findings"
	}
	sum := []string{plural(len(r.Overlays), "overlay"), found}
	tool := r.Tool.Name
	if r.Tool.Version != "" {
		tool += " " + r.Tool.Version
	}
	fmt.Fprintf(&head, "%s · %s\n\n", strings.Join(sum, " · "), mdText(tool))
	head.WriteString("| Overlay | Environment | Verdict | Baseline | Findings | Tests |\n| --- | --- | --- | --- | --- | --- |\n")
	for i := range r.Overlays {
		o := &r.Overlays[i]
		findings := ""
		if o.Verdict == report.Failed {
			findings = mdText(oneLine(o.Error))
		} else {
			findings = o.Tally().String()
			if findings == "" {
				findings = "none"
			}
		}
		baseline := "none"
		if o.Verdict == report.Failed {
			baseline = "–"
		}
		if o.Baseline != "" {
			baseline = mdCode(o.Baseline)
		}
		tests := "–"
		if o.Tests != nil {
			tests = testLine(o.Tests)
		}
		fmt.Fprintf(&head, "| %s | %s | %s | %s | %s | %s |\n", mdCell(mdCode(o.Path)), mdCell(mdText(o.Environment)),
			mdVerdict(o.Verdict), mdCell(baseline), mdCell(findings), mdCell(tests))
	}

	// Posture.
	if p := r.Posture; p != nil && len(p.Rows) > 0 {
		matrix.WriteString("\n### Posture\n\nEffective action of each rule per environment, marked with its change against that environment's baseline.\n\n")
		matrix.WriteString("| Policy | Rule |")
		for _, e := range p.Environments {
			matrix.WriteString(" " + mdCell(mdText(e)) + " |")
		}
		matrix.WriteString("\n| --- | --- |" + strings.Repeat(" --- |", len(p.Environments)) + "\n")
		used := map[report.ChangeMark]bool{}
		for _, row := range p.Rows {
			fmt.Fprintf(&matrix, "| %s %s | %s |", mdText(row.Kind), mdCell(mdCode(row.Policy)), mdCell(mdCode(row.Rule)))
			for _, c := range row.Cells {
				matrix.WriteString(" " + mdCell(mdCellText(c)) + " |")
				if e := markEmoji[c.Change]; e != "" {
					used[c.Change] = true
				}
			}
			matrix.WriteString("\n")
		}
		var legend []string
		for _, mk := range []report.ChangeMark{report.MarkWeaker, report.MarkUnknown, report.MarkRemoved, report.MarkStricter, report.MarkNew, report.MarkChanged} {
			if used[mk] {
				desc := map[report.ChangeMark]string{
					report.MarkWeaker: "weaker", report.MarkUnknown: "unknown (counts as weaker)", report.MarkRemoved: "removed",
					report.MarkStricter: "stricter", report.MarkNew: "new", report.MarkChanged: "changed, blocks the same",
				}[mk]
				legend = append(legend, markEmoji[mk]+" "+desc)
			}
		}
		if len(legend) > 0 {
			matrix.WriteString("\n" + strings.Join(legend, " · ") + "\n")
		}
	}

	// Approvals to paste, grouped by kustomization file.
	type group struct {
		file    string
		patches []string
		common  []string
	}
	groups := map[string]*group{}
	var order []string
	for i := range r.Overlays {
		o := &r.Overlays[i]
		for j := range o.Findings {
			f := &o.Findings[j]
			s := f.ApprovalToAdd
			if s == nil || f.Approved {
				continue
			}
			file := s.Kustomization
			if file == "" {
				file = strings.TrimSuffix(o.Path, "/") + "/kustomization.yaml"
			}
			g := groups[file]
			if g == nil {
				g = &group{file: file}
				groups[file] = g
				order = append(order, file)
			}
			if s.Patch != "" {
				if !contains(g.patches, s.Patch) {
					g.patches = append(g.patches, s.Patch)
				}
			} else {
				line := fmt.Sprintf("  %s: %q", s.Key, s.Value)
				if !contains(g.common, line) {
					g.common = append(g.common, line)
				}
			}
		}
	}
	sort.Strings(order)
	if len(order) > 0 {
		approvals.WriteString("\n### Approvals to paste\n\nIf a weakening is intended, add its approval to the overlay's kustomization, fill in `reason`, `ticket` and `expires` (or drop them), and have it reviewed; otherwise revert the change. Each approval is bound to exactly one finding.\n")
		for _, file := range order {
			g := groups[file]
			var y strings.Builder
			if len(g.patches) > 0 {
				y.WriteString("patches:\n")
				for _, p := range g.patches {
					y.WriteString(p)
					if !strings.HasSuffix(p, "\n") {
						y.WriteString("\n")
					}
				}
			}
			if len(g.common) > 0 {
				y.WriteString("commonAnnotations:\n")
				for _, l := range g.common {
					y.WriteString(l + "\n")
				}
			}
			fence := mdFence(y.String())
			fmt.Fprintf(&approvals, "\n%s\n\n%syaml\n%s%s\n", mdCode(file), fence, y.String(), fence)
		}
	}

	// Findings, within what is left of the budget.
	migrations := mdMigrations(r)
	budget := limit - head.Len() - matrix.Len() - len(migrations) - approvals.Len() - 200
	var findings strings.Builder
	total, shown := 0, 0
	for i := range r.Overlays {
		o := &r.Overlays[i]
		if len(o.Findings) == 0 {
			continue
		}
		total += len(o.Findings)
		var sec strings.Builder
		fmt.Fprintf(&sec, "\n#### %s\n\n", strings.TrimSpace(mdCode(o.Path)+" "+mdText(envSuffix(o))))
		n := 0
		for j := range o.Findings {
			item := mdFinding(&o.Findings[j])
			if findings.Len()+sec.Len()+len(item) > budget {
				break
			}
			sec.WriteString(item)
			n++
		}
		if n > 0 {
			findings.WriteString(sec.String())
			shown += n
		}
	}

	var out strings.Builder
	out.WriteString(head.String())
	out.WriteString(matrix.String())
	out.WriteString(migrations)
	if total > 0 {
		out.WriteString("\n### Findings\n")
		out.WriteString(findings.String())
		if shown < total {
			fmt.Fprintf(&out, "\n… and %d more (the comment is capped; see the job's log or the SARIF/JSON report).\n", total-shown)
		}
	}
	out.WriteString(approvals.String())
	_, err := io.WriteString(w, out.String())
	return err
}

func envSuffix(o *report.Overlay) string {
	if o.Environment == "" || o.Environment == o.Path {
		return ""
	}
	return "(" + o.Environment + ")"
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func mdCellText(c report.Cell) string {
	action := mdText(c.Action)
	if c.Action == report.ActionAbsent {
		action = "–"
	}
	e := markEmoji[c.Change]
	if e == "" {
		return action
	}
	s := "**" + action + "** " + e + " " + string(c.Change)
	if c.Baseline != "" && c.Baseline != c.Action && c.Change != report.MarkNew {
		s += " (was " + mdText(c.Baseline) + ")"
	}
	return s
}

// mdFinding is one finding as a list item.
func mdFinding(f *report.Finding) string {
	icon := "❌"
	switch f.Severity {
	case report.Warning:
		icon = "⚠️"
	case report.Note:
		icon = "✅ approved"
	}
	var where []string
	if p := f.Place(); p != "" {
		where = append(where, mdCode(p))
	}
	if f.Subject.String() != "" {
		where = append(where, mdText(f.Subject.String()))
	}
	if d := declaredIn(f); d != "" {
		where = append(where, "declared in "+mdCode(d))
	}
	if f.Rule != "" {
		where = append(where, "rule "+mdCode(f.Rule))
	}
	if f.Resource != "" {
		where = append(where, "resource "+mdCode(f.Resource))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "- %s **%s**", icon, mdText(string(f.Gate)))
	if len(where) > 0 {
		b.WriteString(" · " + strings.Join(where, " · "))
	}
	b.WriteString("  \n  " + mdText(oneLine(f.Message)) + "\n")
	if w := f.Witness; w != nil {
		place := w.File
		if w.Line > 0 {
			place += fmt.Sprintf(":%d", w.Line)
		}
		if place == "" { // made by the search, not declared
			fmt.Fprintf(&b, "  - witness: %s, denied by the baseline, admitted now\n", mdText(w.Describe()))
		} else {
			fmt.Fprintf(&b, "  - witness: %s (%s), denied by the baseline, admitted now\n", mdCode(place), mdText(w.Describe()))
		}
	}
	if a := f.Approval; a != nil {
		fmt.Fprintf(&b, "  - approval %s on %s: %s\n", mdCode(a.Key), mdText(a.Object), mdText(approvalDetail(a)))
	}
	if s := f.ApprovalToAdd; s != nil && !f.Approved {
		fmt.Fprintf(&b, "  - to accept it: %s (see the approvals below)\n", mdCode(s.Key))
	} else if f.Hint != "" && f.Severity != report.Note {
		b.WriteString("  - " + mdText(oneLine(f.Hint)) + "\n")
	}
	return b.String()
}
