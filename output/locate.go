package output

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Source lines. Findings name a source file (relative to the repository
// root) and an object ("ClusterPolicy require-labels", "Policy ns/name");
// SARIF and GitHub annotations also want the line. The line is the one of
// the object's metadata.name in that file, found by parsing the file's YAML
// documents; when that fails, a textual search for `name: <name>` after
// `kind: <Kind>`. Best effort: 0 means unknown, and formats that need a
// line use 1.

// maxSourceBytes bounds what Locate reads of one file.
const maxSourceBytes = 16 << 20

// ParseObject splits a finding's Object, "Kind name" or "Kind ns/name".
func ParseObject(object string) (kind, namespace, name string) {
	kind, rest, ok := strings.Cut(strings.TrimSpace(object), " ")
	if !ok {
		return kind, "", ""
	}
	rest = strings.TrimSpace(rest)
	if ns, n, ok := strings.Cut(rest, "/"); ok {
		return kind, ns, n
	}
	return kind, "", rest
}

// ObjectLine returns the 1-based line of metadata.name of the object of
// this kind (and namespace, when both the object and the document say) and
// name in the YAML stream data, 0 when it cannot be found. When no
// document has that name (kustomize's namePrefix/nameSuffix rename objects
// after the source is read) but exactly one document has that kind, that
// document's name line is returned.
func ObjectLine(data []byte, kind, namespace, name string) int {
	type doc struct {
		kind, ns, name string
		line           int
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
		d := doc{}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if root.Kind != yaml.MappingNode {
			continue
		}
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
				return d.line
			}
		}
		if len(ofKind) == 1 {
			return ofKind[0].line
		}
		if parsed {
			return 0
		}
	}
	return textualLine(data, kind, name)
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
// and none yet, reading the files under root (the repository root). Files
// outside root, missing or unreadable leave the line unknown.
func (r *CheckReport) Locate(root string) {
	cache := map[string][]byte{}
	read := func(rel string) []byte {
		if b, ok := cache[rel]; ok {
			return b
		}
		cache[rel] = nil
		clean := path.Clean(filepath.ToSlash(rel))
		if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
			return nil
		}
		p := filepath.Join(root, filepath.FromSlash(clean))
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() || info.Size() > maxSourceBytes {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		cache[rel] = b
		return b
	}
	for i := range r.Overlays {
		for j := range r.Overlays[i].Findings {
			f := &r.Overlays[i].Findings[j]
			if f.File != "" && f.Line == 0 {
				if data := read(f.File); data != nil {
					f.Line = FindingLine(data, f)
				}
			}
			if w := f.Witness; w != nil && w.File != "" && w.Line == 0 {
				if data := read(w.File); data != nil {
					w.Line = ObjectLine(data, w.Kind, w.Namespace, w.Name)
				}
			}
		}
	}
}

// FindingLine returns the line of f's object in data, its source file: the
// object's metadata.name for Kubernetes objects, the result entry for a
// test finding ("policy <name>"); 0 when unknown.
func FindingLine(data []byte, f *Finding) int {
	kind, ns, name := ParseObject(f.Object)
	switch {
	case kind == "policy":
		return testEntryLine(data, name, f.Rule, f.Resource)
	case kind == "Test":
		return ObjectLine(data, "Test", "", name)
	case kind != "" && name != "":
		return ObjectLine(data, kind, ns, name)
	}
	return 0
}
