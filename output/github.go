package output

import (
	"bufio"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
	"strings"
)

// GitHubFormat writes GitHub Actions workflow commands: one annotation per
// finding on the file and line that introduced it (see report.Finding.File) (::error for unapproved errors,
// ::warning for warnings, ::notice for approved findings), and one ::error
// per overlay that could not be evaluated. Written to a step's standard
// output, they show on the pull request's changed files.
type GitHubFormat struct{}

func (GitHubFormat) Name() string { return "github" }

// ghData escapes a workflow command's message.
var ghData = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")

// ghProperty escapes a workflow command property value.
var ghProperty = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")

func ghCommand(w io.Writer, cmd string, props [][2]string, msg string) {
	var ps []string
	for _, p := range props {
		if p[1] != "" {
			ps = append(ps, p[0]+"="+ghProperty.Replace(p[1]))
		}
	}
	line := "::" + cmd
	if len(ps) > 0 {
		line += " " + strings.Join(ps, ",")
	}
	fmt.Fprintf(w, "%s::%s\n", line, ghData.Replace(msg))
}

func (GitHubFormat) Write(w io.Writer, r *report.Report) error {
	b := bufio.NewWriter(w)
	for i := range r.Overlays {
		o := &r.Overlays[i]
		if o.Verdict == report.Failed {
			ghCommand(b, "error", [][2]string{{"title", "kyverno-gate: " + o.Label() + " could not be evaluated"}}, o.Error)
		}
		for j := range o.Findings {
			f := &o.Findings[j]
			cmd := "error"
			switch f.Severity {
			case report.Warning:
				cmd = "warning"
			case report.Note:
				cmd = "notice"
			}
			title := "kyverno-gate " + string(f.Gate)
			if f.Approved {
				title += " (approved)"
			}
			if f.Subject.String() != "" {
				title += ": " + f.Subject.String()
				if f.Rule != "" {
					title += " rule " + f.Rule
				}
			}
			title += " [" + o.Name() + "]"
			msg := o.Label() + ": " + f.Message
			if f.Hint != "" && !f.Approved {
				msg += "\n" + f.Hint
			}
			if d := declaredIn(f); d != "" {
				msg += "\nset by this patch; " + f.Subject.String() + " is declared in " + d
			}
			props := [][2]string{{"file", f.File}}
			if f.File != "" {
				props = append(props, [2]string{"line", fmt.Sprint(max(f.Line, 1))})
			}
			props = append(props, [2]string{"title", title})
			ghCommand(b, cmd, props, msg)
		}
	}
	return b.Flush()
}

// declaredIn is "file:line" of the object a finding attributed to a patch
// is declared in, "" when the finding is on the declaring file.
func declaredIn(f *report.Finding) string {
	o := f.Origin
	if o == nil || o.Via != report.OriginPatch || o.ObjectFile == "" {
		return ""
	}
	if o.ObjectLine > 0 {
		return fmt.Sprintf("%s:%d", o.ObjectFile, o.ObjectLine)
	}
	return o.ObjectFile
}
