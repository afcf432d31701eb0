package repofs

import (
	"regexp"
	"strings"
)

// Redact turns a parser's error about repository content into a message
// that carries none of that content: YAML and kustomize errors append the
// offending document ("for the following resource: <the whole Secret>"),
// echo a malformed line ("invalid document separator: <the line>") or quote
// a value ("cannot unmarshal !!str `<the value>`"). What is kept: the first
// line, the parser's own "line N: ..." list under it, key names and line
// numbers.
func Redact(msg string) string {
	if i := strings.Index(msg, "for the following resource"); i >= 0 {
		msg = msg[:i]
	}
	lines := strings.Split(msg, "\n")
	kept := []string{strings.TrimSpace(lines[0])}
	for _, l := range lines[1:] {
		if !parserLine.MatchString(l) {
			break
		}
		kept = append(kept, strings.TrimSpace(l))
	}
	msg = strings.Join(kept, " ")
	msg = quoted.ReplaceAllString(msg, "a value")
	msg = separator.ReplaceAllString(msg, "invalid document separator")
	msg = strings.TrimSpace(msg)
	if len(msg) > 400 {
		msg = msg[:400] + "..."
	}
	return msg
}

var (
	parserLine = regexp.MustCompile(`^\s+line \d+: `)
	quoted     = regexp.MustCompile("`[^`]*`")
	separator  = regexp.MustCompile(`invalid document separator: [^'\n]*`)
)
