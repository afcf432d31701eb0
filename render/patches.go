package render

import (
	"bytes"
	"errors"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/resid"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// Patch origins. Kustomize's origin annotation names the file that declared
// an object, not the overlay that changed it. To point a finding at the
// overlay that introduced it, the rendering also records, for every object,
// the patches of its kustomization chain that target it: the kustomization
// that lists the object's file, the one that includes that, and so on up to
// the rendered one (components included), in the order kustomize applies
// them (innermost first; within one kustomization components, then
// patchesStrategicMerge, patches, patchesJson6902). Each patch says what it
// sets, as JSON pointers with their lines, so that a finding about one field
// can be traced to the last patch that set it (see package output/attribute).
//
// Target selection follows kustomize: group, version, kind, name and
// namespace as anchored regular expressions, matched against every name and
// namespace the object had during the build (kustomize matches the original
// and the current one), label and annotation selectors against the rendered
// object; a strategic merge patch without a target applies to the object with
// its own apiVersion, kind, name and namespace. Best effort: the rendering
// has already succeeded, so a patch that cannot be read here is left out
// rather than reported, and labels added by an outer overlay count for a
// selector of an inner one.

// Patch types.
const (
	PatchJSON6902       = "json6902"
	PatchStrategicMerge = "strategicMerge"
)

// PatchSource is one patch (one document of a strategic merge patch) that
// applies to a rendered object.
type PatchSource struct {
	// Kustomization is the kustomization (or component) file listing the
	// patch, relative to the root; Field the list it is in (patches,
	// patchesStrategicMerge, patchesJson6902), Entry its 0-based position
	// there and EntryLine that entry's 1-based line in Kustomization.
	Kustomization string
	Field         string
	Entry         int
	EntryLine     int
	// File holds the patch text, relative to the root: Kustomization for
	// an inline patch, else the patch file. Line is the patch's line in
	// File: the entry for an inline JSON patch, the patched object's
	// metadata.name (else the document's first line) for a strategic
	// merge document, 1 for a JSON patch file.
	File string
	Line int
	// Type is PatchJSON6902 or PatchStrategicMerge.
	Type string
	// Sets is what the patch sets, in patch order.
	Sets []PatchSet
}

// PatchSet is one thing a patch sets (or tests).
type PatchSet struct {
	// Op is the JSON patch operation (add, replace, remove, move, copy,
	// test) of a JSON patch, each also given for every field inside an
	// operation's value; for a strategic merge patch, merge (a scalar or
	// empty map is merged in), replace (a list, replaced whole on custom
	// resources, or $patch: replace) or delete (null, $patch: delete).
	Op string
	// Path is the field as a JSON pointer into the object, with list
	// indexes as the patch has them ("/spec/rules/0/validate/failureAction",
	// "/spec/rules/-").
	Path string
	// From is the source of a move or copy.
	From string
	// Value is the value when it is a scalar (used to tell which list item
	// an index meant: a test of /spec/rules/0/name says so).
	Value string
	// Line is the 1-based line in the PatchSource's File of what sets it:
	// the value, else the path.
	Line int
}

// kustNode is one kustomization (or component) of the chain.
type kustNode struct {
	file, rel  string          // real path and root-relative path of the kustomization file
	prefix     string          // namePrefix
	suffix     string          // nameSuffix
	namespace  string          // namespace
	lists      map[string]bool // real paths of the resource files it lists
	children   []*kustNode     // kustomizations among its resources
	components []*kustNode     // its components, in order
	patches    []*patchEntry   // its own patches, in the order kustomize applies them
}

// patchEntry is one entry of a patch list: a target (nil when none) and
// its documents.
type patchEntry struct {
	target *types.SelectorRegex
	sel    *types.Selector
	docs   []patchDoc
}

// patchDoc is one document of a patch; id is the document's own identity,
// which selects the object when the entry has no target (strategic merge).
type patchDoc struct {
	src PatchSource
	id  *resid.ResId
}

// patchWalker reads the kustomization graph of one rendering.
type patchWalker struct {
	fs    *repofs.Root
	nodes map[string]*kustNode // by real directory
	files map[string][]docMeta // declaring files' documents, by real path
}

// identity is what target selection looks at in a rendered object: its
// group, version and kind, every name and namespace (effective, as
// kustomize compares them) it may have had during the build, and the
// object as rendered for label and annotation selectors. Kustomize drops
// its record of previous names at the end of a build, so the names are
// rebuilt from the chain's namePrefix/nameSuffix and the namespaces from
// the chain's namespace fields and the declaring document.
type identity struct {
	gvk        resid.Gvk
	names      []string
	namespaces []string
	node       *kyaml.RNode
}

// identityIn returns the identity of r declared in real (a real path)
// through chain (outermost first).
func (w *patchWalker) identityIn(r *kyaml.RNode, real string, chain []*kustNode) identity {
	id := identity{gvk: resid.GvkFromNode(r), node: r}
	name := r.GetName()
	id.names = []string{name}
	for _, n := range chain {
		if n.prefix != "" && strings.HasPrefix(name, n.prefix) {
			name = strings.TrimPrefix(name, n.prefix)
		}
		if n.suffix != "" && strings.HasSuffix(name, n.suffix) {
			name = strings.TrimSuffix(name, n.suffix)
		}
		id.names = appendNew(id.names, name)
	}
	eff := func(ns string) string {
		return resid.NewResIdWithNamespace(id.gvk, name, ns).EffectiveNamespace()
	}
	id.namespaces = []string{eff(r.GetNamespace())}
	for _, n := range chain {
		if n.namespace != "" {
			id.namespaces = appendNew(id.namespaces, eff(n.namespace))
		}
	}
	declared := ""
	for _, d := range w.declared(real) {
		if d.kind == id.gvk.Kind && contains(id.names, d.name) {
			declared = d.namespace
			break
		}
	}
	id.namespaces = appendNew(id.namespaces, eff(declared))
	return id
}

// docMeta is the identity of one document of a declaring file.
type docMeta struct{ kind, name, namespace string }

// declared returns the documents of the file real, read once.
func (w *patchWalker) declared(real string) []docMeta {
	if ds, ok := w.files[real]; ok {
		return ds
	}
	var out []docMeta
	if data, err := w.fs.ReadFile(real); err == nil {
		dec := kyaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc kyaml.Node
			if err := dec.Decode(&doc); err != nil {
				break
			}
			root := &doc
			if root.Kind == kyaml.DocumentNode && len(root.Content) == 1 {
				root = root.Content[0]
			}
			meta := mapValue(root, "metadata")
			out = append(out, docMeta{kind: scalar(mapValue(root, "kind")), name: scalar(mapValue(meta, "name")),
				namespace: scalar(mapValue(meta, "namespace"))})
		}
	}
	w.files[real] = out
	return out
}

func appendNew(xs []string, x string) []string {
	if contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// patchOrigins returns, for each resource of m (in order), the patches of
// the kustomization chain rooted at dir that apply to it. sources are the
// resources' declaring files relative to the root.
func patchOrigins(fs *repofs.Root, dir string, resources []*resource.Resource, sources []string) [][]PatchSource {
	w := &patchWalker{fs: fs, nodes: map[string]*kustNode{}, files: map[string][]docMeta{}}
	top := w.node(dir)
	out := make([][]PatchSource, len(resources))
	if top == nil {
		return out
	}
	chains := map[string][][]*kustNode{}
	for i, r := range resources {
		if sources[i] == "" {
			continue
		}
		real, err := fs.Resolve(filepath.Join(fs.Dir(), sources[i]))
		if err != nil {
			continue
		}
		cs, ok := chains[real]
		if !ok {
			cs = top.chains(real, nil, map[*kustNode]bool{})
			chains[real] = cs
		}
		seen := map[*patchDoc]bool{}
		for _, chain := range cs {
			id := w.identityIn(&r.RNode, real, chain)
			for j := len(chain) - 1; j >= 0; j-- {
				for _, d := range chain[j].applicable(id) {
					if !seen[d] {
						seen[d] = true
						out[i] = append(out[i], d.src)
					}
				}
			}
		}
	}
	return out
}

// node reads the kustomization in dir (a real path), nil when there is none.
func (w *patchWalker) node(dir string) *kustNode {
	real, err := w.fs.Resolve(dir)
	if err != nil {
		return nil
	}
	if n, ok := w.nodes[real]; ok {
		return n
	}
	file, k, err := readKustomization(w.fs, real)
	if err != nil || k == nil {
		w.nodes[real] = nil
		return nil
	}
	k.FixKustomization()
	n := &kustNode{file: file, rel: w.fs.Rel(file), lists: map[string]bool{}, prefix: k.NamePrefix, suffix: k.NameSuffix,
		namespace: k.Namespace}
	w.nodes[real] = n
	for _, ref := range k.Resources {
		if isRemote(ref) || strings.Contains(ref, "\n") {
			continue
		}
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(real, ref)
		}
		if w.fs.IsDir(p) {
			if c := w.node(p); c != nil {
				n.children = append(n.children, c)
			}
			continue
		}
		if rp, err := w.fs.Resolve(p); err == nil {
			n.lists[rp] = true
		}
	}
	for _, ref := range k.Components {
		if isRemote(ref) {
			continue
		}
		p := ref
		if !filepath.IsAbs(p) {
			p = filepath.Join(real, ref)
		}
		if c := w.node(p); c != nil {
			n.components = append(n.components, c)
		}
	}
	data, err := w.fs.ReadFile(file)
	if err != nil {
		return n
	}
	root := firstDocument(data)
	if root == nil {
		return n
	}
	// The order of kustomize's builtin transformers.
	for i, e := range k.PatchesStrategicMerge {
		item := seqItem(root, "patchesStrategicMerge", i)
		n.patches = append(n.patches, w.entry(real, n, "patchesStrategicMerge", i, item, nil, string(e), "", item))
	}
	for i, p := range k.Patches {
		item := seqItem(root, "patches", i)
		n.patches = append(n.patches, w.entry(real, n, "patches", i, item, p.Target, p.Path, p.Patch, mapValue(item, "patch")))
	}
	for i, p := range k.PatchesJson6902 {
		item := seqItem(root, "patchesJson6902", i)
		n.patches = append(n.patches, w.entry(real, n, "patchesJson6902", i, item, p.Target, p.Path, p.Patch, mapValue(item, "patch")))
	}
	return n
}

// entry reads one patch list entry: pathOrInline is a patch file (or, in
// patchesStrategicMerge, possibly an inline patch), inline the inline
// patch text whose node is inlineNode.
func (w *patchWalker) entry(dir string, n *kustNode, field string, index int, item *kyaml.Node,
	target *types.Selector, path, inline string, inlineNode *kyaml.Node) *patchEntry {
	e := &patchEntry{}
	if target != nil {
		sr, err := types.NewSelectorRegex(target)
		if err != nil {
			return e
		}
		e.target, e.sel = sr, target
	}
	base := PatchSource{Kustomization: n.rel, Field: field, Entry: index}
	if item != nil {
		base.EntryLine = item.Line
	}
	var (
		text   []byte
		offset int // line in File of the text's line 0
	)
	switch {
	case field == "patchesStrategicMerge" && path != "" && (strings.Contains(path, "\n") || !w.fs.Exists(filepath.Join(dir, path))):
		inline, inlineNode, path = path, item, ""
		fallthrough
	case inline != "":
		text, base.File = []byte(inline), n.rel
		offset = blockOffset(inlineNode)
	case path != "" && !isHTTP(path):
		p := path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, path)
		}
		data, err := w.fs.ReadFile(p)
		if err != nil {
			return e
		}
		real, err := w.fs.Resolve(p)
		if err != nil {
			return e
		}
		text, base.File = data, w.fs.Rel(real)
	default:
		return e
	}
	dec := kyaml.NewDecoder(bytes.NewReader(text))
	for {
		var doc kyaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return e
		}
		root := &doc
		if root.Kind == kyaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		src := base
		switch root.Kind {
		case kyaml.SequenceNode:
			src.Type = PatchJSON6902
			src.Line = 1 + offset
			if src.File == n.rel && base.EntryLine > 0 {
				src.Line = base.EntryLine
			}
			src.Sets = jsonPatchSets(root, offset)
			e.docs = append(e.docs, patchDoc{src: src})
		case kyaml.MappingNode:
			src.Type = PatchStrategicMerge
			src.Line = root.Line + offset
			if meta := mapValue(root, "metadata"); meta != nil {
				if k := mapKey(meta, "name"); k != nil {
					src.Line = k.Line + offset
				}
			}
			src.Sets = mergeSets(root, offset)
			e.docs = append(e.docs, patchDoc{src: src, id: docID(root)})
		}
	}
	return e
}

// blockOffset is the line in the file of line 0 of a scalar's text: a
// block scalar's text starts on the line after its indicator; a flow
// scalar is taken to be on one line.
func blockOffset(n *kyaml.Node) int {
	if n == nil {
		return 0
	}
	if n.Style&(kyaml.LiteralStyle|kyaml.FoldedStyle) != 0 {
		return n.Line
	}
	return n.Line - 1
}

// docID is a strategic merge document's own identity.
func docID(root *kyaml.Node) *resid.ResId {
	kind := scalar(mapValue(root, "kind"))
	meta := mapValue(root, "metadata")
	name := scalar(mapValue(meta, "name"))
	if kind == "" || name == "" {
		return nil
	}
	g, v := resid.ParseGroupVersion(scalar(mapValue(root, "apiVersion")))
	id := resid.NewResIdWithNamespace(resid.NewGvk(g, v, kind), name, scalar(mapValue(meta, "namespace")))
	return &id
}

// jsonPatchSets lists the operations of a JSON patch, and every field
// inside each operation's value.
func jsonPatchSets(seq *kyaml.Node, offset int) []PatchSet {
	var out []PatchSet
	for _, item := range seq.Content {
		if item.Kind != kyaml.MappingNode {
			continue
		}
		s := PatchSet{Op: scalar(mapValue(item, "op")), Path: scalar(mapValue(item, "path")), From: scalar(mapValue(item, "from")),
			Line: item.Line + offset}
		if k := mapKey(item, "path"); k != nil {
			s.Line = k.Line + offset
		}
		val := mapValue(item, "value")
		if k := mapKey(item, "value"); k != nil {
			s.Line = k.Line + offset
		}
		if val != nil && val.Kind == kyaml.ScalarNode {
			s.Value = val.Value
		}
		out = append(out, s)
		if val != nil && s.Op != "test" {
			out = descend(out, val, s.Path, s.Op, offset)
		}
	}
	return out
}

// descend lists every field inside a JSON patch operation's value.
func descend(out []PatchSet, n *kyaml.Node, path, op string, offset int) []PatchSet {
	switch n.Kind {
	case kyaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path + "/" + escapePointer(k.Value)
			out = append(out, PatchSet{Op: op, Path: p, Value: scalar(v), Line: k.Line + offset})
			out = descend(out, v, p, op, offset)
		}
	case kyaml.SequenceNode:
		for i, v := range n.Content {
			p := path + "/" + strconv.Itoa(i)
			out = append(out, PatchSet{Op: op, Path: p, Value: scalar(v), Line: v.Line + offset})
			out = descend(out, v, p, op, offset)
		}
	}
	return out
}

// mergeSets lists what a strategic merge document sets, leaving out its
// identity (apiVersion, kind, metadata.name and metadata.namespace).
func mergeSets(root *kyaml.Node, offset int) []PatchSet {
	var out []PatchSet
	var walk func(n *kyaml.Node, path string, line int, top bool)
	walk = func(n *kyaml.Node, path string, line int, top bool) {
		switch n.Kind {
		case kyaml.MappingNode:
			switch scalar(mapValue(n, "$patch")) {
			case "delete":
				out = append(out, PatchSet{Op: "delete", Path: path, Line: line})
				return
			case "replace":
				out = append(out, PatchSet{Op: "replace", Path: path, Line: line})
			}
			if len(n.Content) == 0 && !top {
				out = append(out, PatchSet{Op: "merge", Path: path, Line: line})
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if strings.HasPrefix(k.Value, "$") {
					continue
				}
				if top && (k.Value == "apiVersion" || k.Value == "kind") {
					continue
				}
				if path == "/metadata" && (k.Value == "name" || k.Value == "namespace") {
					continue
				}
				walk(v, path+"/"+escapePointer(k.Value), k.Line+offset, false)
			}
		case kyaml.SequenceNode:
			out = append(out, PatchSet{Op: "replace", Path: path, Line: line})
			for i, v := range n.Content {
				walk(v, path+"/"+strconv.Itoa(i), v.Line+offset, false)
			}
		case kyaml.ScalarNode:
			if n.Tag == "!!null" {
				out = append(out, PatchSet{Op: "delete", Path: path, Line: line})
				return
			}
			out = append(out, PatchSet{Op: "merge", Path: path, Value: n.Value, Line: line})
		case kyaml.AliasNode:
			out = append(out, PatchSet{Op: "merge", Path: path, Line: line})
		}
	}
	walk(root, "", root.Line+offset, true)
	return out
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// chains returns every path from n down to a kustomization that lists
// file (or is file, for generated objects), prefix being the path so far.
func (n *kustNode) chains(file string, prefix []*kustNode, onPath map[*kustNode]bool) [][]*kustNode {
	if onPath[n] {
		return nil
	}
	onPath[n] = true
	defer delete(onPath, n)
	path := append(append([]*kustNode{}, prefix...), n)
	var out [][]*kustNode
	if n.lists[file] || n.file == file || n.inComponents(file) {
		out = append(out, path)
	}
	for _, c := range n.children {
		out = append(out, c.chains(file, path, onPath)...)
	}
	return out
}

func (n *kustNode) inComponents(file string) bool {
	for _, c := range n.components {
		if c.lists[file] || c.file == file || c.inComponents(file) {
			return true
		}
	}
	return false
}

// applicable returns n's patch documents that apply to the object, in the
// order kustomize applies them: its components' first, then its own.
func (n *kustNode) applicable(id identity) []*patchDoc {
	var out []*patchDoc
	for _, c := range n.components {
		out = append(out, c.applicable(id)...)
	}
	for _, e := range n.patches {
		for i := range e.docs {
			d := &e.docs[i]
			switch {
			case e.target != nil:
				if !e.selects(id) {
					continue
				}
			case d.id == nil || d.src.Type != PatchStrategicMerge:
				continue // a JSON patch needs a target
			default:
				if !matchesID(id, *d.id) {
					continue
				}
			}
			out = append(out, d)
		}
	}
	return out
}

// selects reports whether e's target selects the object, as kustomize's
// ResMap.Select does, over every name and namespace the object had.
func (e *patchEntry) selects(id identity) bool {
	if !e.target.MatchGvk(id.gvk) {
		return false
	}
	name, ns := false, false
	for _, n := range id.names {
		name = name || e.target.MatchName(n)
	}
	for _, n := range id.namespaces {
		ns = ns || e.target.MatchNamespace(n)
	}
	if !name || !ns {
		return false
	}
	if e.sel.LabelSelector != "" {
		if ok, err := id.node.MatchesLabelSelector(e.sel.LabelSelector); err != nil || !ok {
			return false
		}
	}
	if e.sel.AnnotationSelector != "" {
		if ok, err := id.node.MatchesAnnotationSelector(e.sel.AnnotationSelector); err != nil || !ok {
			return false
		}
	}
	return true
}

// matchesID reports whether a strategic merge document without target
// applies to the object: same group, version and kind, and a name and
// namespace the object had.
func matchesID(id identity, doc resid.ResId) bool {
	return id.gvk.Equals(doc.Gvk) && contains(id.names, doc.Name) && contains(id.namespaces, doc.EffectiveNamespace())
}

// YAML node helpers.

func firstDocument(data []byte) *kyaml.Node {
	var doc kyaml.Node
	if err := kyaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil
	}
	root := &doc
	if root.Kind == kyaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != kyaml.MappingNode {
		return nil
	}
	return root
}

func mapKey(m *kyaml.Node, key string) *kyaml.Node {
	if m == nil || m.Kind != kyaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *kyaml.Node, key string) *kyaml.Node {
	if m == nil || m.Kind != kyaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func seqItem(m *kyaml.Node, key string, i int) *kyaml.Node {
	s := mapValue(m, key)
	if s == nil || s.Kind != kyaml.SequenceNode || i >= len(s.Content) {
		return nil
	}
	return s.Content[i]
}

func scalar(n *kyaml.Node) string {
	if n == nil || n.Kind != kyaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}
