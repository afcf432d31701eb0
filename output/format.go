package output

import (
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/report"
	"io"
	"os"
	"sort"
	"strings"
)

// Format writes a report.Report in one output format. Formats write only the
// report: progress and logs belong on stderr, so the machine formats can
// be redirected to a file or piped as they are.
type Format interface {
	// Name is the name --output takes.
	Name() string
	// Write writes r to w; r should be Finalized.
	Write(w io.Writer, r *report.Report) error
}

var formats = map[string]func() Format{
	"text":     func() Format { return &TextFormat{} },
	"json":     func() Format { return JSONFormat{} },
	"markdown": func() Format { return &MarkdownFormat{} },
	"sarif":    func() Format { return SARIFFormat{} },
	"junit":    func() Format { return JUnitFormat{} },
	"github":   func() Format { return GitHubFormat{} },
}

// Names lists the formats, sorted.
func Names() []string {
	out := make([]string, 0, len(formats))
	for n := range formats {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the format called name (case-insensitive; "md" is
// markdown). The text format decides on colour when it writes (see
// TextFormat).
func Lookup(name string) (Format, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "md" {
		n = "markdown"
	}
	if f, ok := formats[n]; ok {
		return f(), nil
	}
	return nil, fmt.Errorf("unknown output format %q (%s)", name, strings.Join(Names(), ", "))
}

// Target is one --output value: a format and the file to write it to (""
// for standard output).
type Target struct {
	Format Format
	File   string
}

// ParseTarget parses an --output value: "FORMAT" or "FORMAT=FILE".
func ParseTarget(spec string) (Target, error) {
	name, file, _ := strings.Cut(spec, "=")
	f, err := Lookup(name)
	if err != nil {
		return Target{}, err
	}
	if strings.Contains(spec, "=") && strings.TrimSpace(file) == "" {
		return Target{}, fmt.Errorf("--output %s: no file after =", spec)
	}
	return Target{Format: f, File: file}, nil
}

// Colour decides whether the text report is coloured: never when NO_COLOR
// is set to anything non-empty (https://no-color.org) or TERM is "dumb",
// otherwise only when w is a terminal. getenv is os.Getenv outside tests.
func Colour(w io.Writer, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
