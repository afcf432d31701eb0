package attribute

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Source lines. Findings name a source file (relative to the repository
// root) and an object ("ClusterPolicy require-labels", "Policy ns/name");
// SARIF and GitHub annotations also want the line. A finding attributed to
// a patch (package output/attribute) has its line already. Otherwise the
// line is the one of the finding's field (or rule) in the object when the
// file has it, else of the object's metadata.name, found by parsing the
// file's YAML documents; when that fails, a textual search for
// `name: <name>` after `kind: <Kind>`. Best effort: 0 means unknown, and
// formats that need a line use 1.

// maxSourceBytes bounds what Locate reads of one file.
const maxSourceBytes = 16 << 20

// ObjectLine returns the 1-based line of metadata.name of the object of
// this kind (and namespace, when both the object and the document say) and
// name in the YAML stream data, 0 when it cannot be found. When no
// document has that name (kustomize's namePrefix/nameSuffix rename objects
// after the source is read) but exactly one document has that kind, that
// document's name line is returned.
func ObjectLine(data []byte, kind, namespace, name string) int {
	_, line := objectDoc(data, kind, namespace, name)
	return line
}

// objectDoc returns the document of the object (see ObjectLine) and the
// line of its metadata.name; the document is nil when the stream does not
// parse and the line was found textually.
func objectDoc(data []byte, kind, namespace, name string) (*yaml.Node, int) {
	type doc struct {
		kind, ns, name string
		line           int
		root           *yaml.Node
	}
	var docs []doc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	parsed := true
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			parsed = false
			break
		}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if root.Kind != yaml.MappingNode {
			continue
		}
		d := doc{root: root}
		if v := mapValue(root, "kind"); v != nil && v.Kind == yaml.ScalarNode {
			d.kind = v.Value
		}
		if meta := mapValue(root, "metadata"); meta != nil && meta.Kind == yaml.MappingNode {
			if v := mapValue(meta, "name"); v != nil && v.Kind == yaml.ScalarNode {
				d.name, d.line = v.Value, v.Line
			}
			if v := mapValue(meta, "namespace"); v != nil && v.Kind == yaml.ScalarNode {
				d.ns = v.Value
			}
		}
		if d.line > 0 {
			docs = append(docs, d)
		}
	}
	if parsed || len(docs) > 0 {
		var ofKind []doc
		for _, d := range docs {
			if d.kind != kind {
				continue
			}
			ofKind = append(ofKind, d)
			if d.name == name && (namespace == "" || d.ns == "" || d.ns == namespace) {
				return d.root, d.line
			}
		}
		if len(ofKind) == 1 {
			return ofKind[0].root, ofKind[0].line
		}
		if parsed {
			return nil, 0
		}
	}
	return nil, textualLine(data, kind, name)
}

// ParseField splits a finding's Field ("spec.rules[check-team].validate",
// "metadata.annotations[example.com/x]") into its segments: map keys and
// list items (the bracketed name or index, taken as is).
func ParseField(field string) []string {
	var out []string
	cur := strings.Builder{}
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(field); i++ {
		switch c := field[i]; c {
		case '.':
			flush()
		case '[':
			flush()
			j := strings.IndexByte(field[i:], ']')
			if j < 0 {
				cur.WriteString(field[i+1:])
				i = len(field)
				break
			}
			out = append(out, field[i+1:i+j])
			i += j
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// RuleField is the field of a legacy policy's rule: "spec.rules[name]".
func RuleField(rule string) string { return "spec.rules[" + rule + "]" }

// AutogenParent returns the rule an autogen rule was generated from (the
// rule itself when it is not an autogen rule).
func AutogenParent(rule string) string {
	if strings.HasPrefix(rule, "autogen-cronjob-") {
		return strings.TrimPrefix(rule, "autogen-cronjob-")
	}
	return strings.TrimPrefix(rule, "autogen-")
}

// fieldLine returns the line of field (segments) in the object document
// root: the line of the field's key when the document has it, else of the
// name of the deepest list item (a rule) on its way, else 0. A list item
// is found by its name field (an autogen rule by the rule it is made
// from), else by its index.
func fieldLine(root *yaml.Node, segs []string) int {
	cur, itemLine := root, 0
	for i, s := range segs {
		var next *yaml.Node
		line := 0
		switch cur.Kind {
		case yaml.MappingNode:
			for k := 0; k+1 < len(cur.Content); k += 2 {
				if cur.Content[k].Value == s {
					next, line = cur.Content[k+1], cur.Content[k].Line
					break
				}
			}
		case yaml.SequenceNode:
			next, line = listItem(cur, s)
			if next != nil {
				itemLine = line
			}
		}
		if next == nil {
			return itemLine
		}
		if i == len(segs)-1 {
			return line
		}
		cur = next
	}
	return itemLine
}

// listItem finds the item named s (or s's autogen parent) in a sequence,
// else item number s; it returns the item and the line of its name (or
// of the item).
func listItem(seq *yaml.Node, s string) (*yaml.Node, int) {
	for _, want := range []string{s, AutogenParent(s)} {
		for _, it := range seq.Content {
			if it.Kind != yaml.MappingNode {
				continue
			}
			for k := 0; k+1 < len(it.Content); k += 2 {
				if it.Content[k].Value == "name" && it.Content[k+1].Value == want {
					return it, it.Content[k].Line
				}
			}
		}
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < len(seq.Content) {
		return seq.Content[i], seq.Content[i].Line
	}
	return nil, 0
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// textualLine finds `name: <name>` after `kind: <kind>` in the same
// document, line by line.
func textualLine(data []byte, kind, name string) int {
	if !utf8.ValidString(kind) || !utf8.ValidString(name) {
		return 0 // regexp refuses invalid UTF-8, even quoted
	}
	kindRE := regexp.MustCompile(`^kind:\s*["']?` + regexp.QuoteMeta(kind) + `["']?\s*(#.*)?$`)
	nameRE := regexp.MustCompile(`^\s+name:\s*["']?` + regexp.QuoteMeta(name) + `["']?\s*(#.*)?$`)
	inKind := false
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "---"):
			inKind = false
		case kindRE.MatchString(line):
			inKind = true
		}
		if nameRE.MatchString(line) && (inKind || kind == "") {
			return i + 1
		}
	}
	return 0
}

// testEntryLine finds the line of a Kyverno test result naming policy
// (and, preferably, rule and resource nearby) in a test file.
func testEntryLine(data []byte, policy, rule, resource string) int {
	if !utf8.ValidString(policy) {
		return 0 // regexp refuses invalid UTF-8, even quoted
	}
	if !utf8.ValidString(rule) {
		rule = ""
	}
	lines := strings.Split(string(data), "\n")
	field := func(key, value string) *regexp.Regexp {
		return regexp.MustCompile(`^\s*(-\s+)?` + key + `:\s*["']?` + regexp.QuoteMeta(value) + `["']?\s*(#.*)?$`)
	}
	polRE := field("policy", policy)
	best, bestScore := 0, -1
	for i, l := range lines {
		if !polRE.MatchString(strings.TrimRight(l, "\r")) {
			continue
		}
		score := 0
		lo, hi := max(0, i-6), min(len(lines), i+7)
		near := strings.Join(lines[lo:hi], "\n")
		if rule != "" && regexp.MustCompile(`(?m)^\s*(-\s+)?rule:\s*["']?`+regexp.QuoteMeta(rule)+`["']?\s*$`).MatchString(near) {
			score += 2
		}
		if resource != "" {
			rn := resource
			if k := strings.LastIndexAny(rn, " /"); k >= 0 {
				rn = rn[k+1:]
			}
			if rn != "" && strings.Contains(near, rn) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = i+1, score
		}
	}
	return best
}

// Locate fills in the Line of every finding and witness that has a File
// and none yet, reading the files through repo (the run's view of the
// repository). Files outside it, missing or unreadable leave the line
// unknown.
func Locate(repo *repofs.Root, fs []report.Finding) {
	if repo == nil {
		return
	}
	cache := map[string][]byte{}
	read := func(rel string) []byte {
		if b, ok := cache[rel]; ok {
			return b
		}
		cache[rel] = nil
		if filepath.IsAbs(rel) {
			return nil
		}
		b, err := repo.ReadFile(rel)
		if err != nil || len(b) > maxSourceBytes {
			return nil
		}
		cache[rel] = b
		return b
	}
	for j := range fs {
		f := &fs[j]
		if f.File != "" && f.Line == 0 {
			if data := read(f.File); data != nil {
				f.Line = FindingLine(data, f)
			}
		}
		if o := f.Origin; o != nil && o.ObjectFile != "" && o.ObjectLine == 0 {
			if data := read(o.ObjectFile); data != nil {
				o.ObjectLine = ObjectLine(data, f.Subject.BareKind(), f.Subject.Namespace, f.Subject.Name)
			}
		}
		if w := f.Witness; w != nil && w.File != "" && w.Line == 0 {
			if data := read(w.File); data != nil {
				kind := w.Kind
				if w.Template != "" {
					kind = "Pod" // the declared Pod the witness was derived from
				}
				w.Line = ObjectLine(data, kind, w.Namespace, w.Name)
			}
		}
	}
}

// FindingLine returns the line of f in data, its source file: for a
// Kubernetes object, the line of f's field in the object (Field, else the
// rule's entry in spec.rules for a finding naming a Rule) when the file
// has it, else of the object's metadata.name; the result entry for a test
// finding ("policy <name>"); 0 when unknown.
func FindingLine(data []byte, f *report.Finding) int {
	s := f.Subject
	switch {
	case s.Kind == report.SubjectTestPolicy:
		return testEntryLine(data, s.Name, f.Rule, f.Resource)
	case s.Kind == report.SubjectTest:
		return ObjectLine(data, report.SubjectTest, "", s.Name)
	case s.Kind != "" && s.Name != "":
		root, line := objectDoc(data, s.BareKind(), s.Namespace, s.Name)
		field := f.Field
		if field == "" && f.Rule != "" && f.Gate != report.GateTest {
			field = RuleField(f.Rule)
		}
		if root != nil && field != "" {
			if l := fieldLine(root, ParseField(field)); l > 0 {
				return l
			}
		}
		return line
	}
	return 0
}
