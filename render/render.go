// Package render turns a directory of a policy repository into the list of
// Kubernetes resources Argo CD would apply: a kustomization is built in-process
// with the kustomize API, a plain directory contributes every manifest in it.
// The repository is untrusted input, so rendering never leaves the repository
// root, never execs, and never touches the network unless told to.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// Options says what a rendering may do beyond reading local files.
type Options struct {
	// Repo is the confined view every file is read through; when nil, one
	// is opened at Root with the limits below.
	Repo *repofs.Root
	// Root is the repository root when Repo is nil; it must contain Dir.
	Root string
	// AllowRemote lets kustomize fetch remote bases and files.
	AllowRemote bool
	// EnableHelm lets kustomize inflate helmCharts with the helm binary.
	EnableHelm bool
	// MaxFileBytes and MaxTotalBytes bound what one rendering reads.
	MaxFileBytes, MaxTotalBytes int64
}

// LockFile is the name of the vetted rendering kept next to an overlay as the
// weakening gate's baseline (see package baseline); it is never rendered.
const LockFile = "kyverno-gate.lock.yaml"

// Defaults for the read limits: far above any real policy repository, far
// below what would hurt a sidecar with a small memory limit.
const (
	DefaultMaxFileBytes  = repofs.DefaultMaxFileBytes
	DefaultMaxTotalBytes = repofs.DefaultMaxTotalBytes
)

// Resource is one rendered object.
type Resource struct {
	APIVersion, Kind, Namespace, Name string
	// Object is the decoded object, shared by every gate; do not modify.
	Object map[string]any
	// YAML is the object exactly as it is printed.
	YAML []byte
	// Source is the file that declared the object, relative to the root.
	Source string
	// Patches are the patches of the kustomization chain that apply to
	// the object, in the order kustomize applies them (see PatchSource);
	// none for a plain directory.
	Patches []PatchSource
}

// ID names the resource the way kubectl does, for messages.
func (r *Resource) ID() string {
	if r.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
	}
	return r.Kind + " " + r.Name
}

// Subject names the resource as findings do.
func (r *Resource) Subject() report.Subject {
	return report.Subject{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// Group returns the API group of the resource ("" for the core group).
func (r *Resource) Group() string {
	if i := strings.Index(r.APIVersion, "/"); i >= 0 {
		return r.APIVersion[:i]
	}
	return ""
}

// Result is a rendering.
type Result struct {
	// Dir is the rendered directory, relative to the root.
	Dir       string
	Resources []*Resource
	// Notes are things a reader should know, such as stripped namespaces.
	Notes []string

	memo memoTable // see Memo
	// builds is how many kustomize builds the rendering took (more than
	// one when a long list was built in slices, chunk.go); for tests.
	builds int
}

// Error is a rendering failure that can be shown to a person as is.
type Error struct {
	File string // relative to the root, when known
	Msg  string
	Hint string // what to do next
	// Outside says the error is a path that leaves the repository root.
	Outside bool
}

func (e *Error) Error() string {
	s := e.Msg
	if e.File != "" {
		s = e.File + ": " + s
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Render renders dir (absolute, or relative to the working directory),
// which must lie inside the repository.
func Render(dir string, opts Options) (*Result, error) {
	fs := opts.Repo
	if fs == nil {
		if opts.Root == "" {
			opts.Root = dir
		}
		var err error
		fs, err = repofs.Open(opts.Root, repofs.Limits{MaxFileBytes: opts.MaxFileBytes, MaxTotalBytes: opts.MaxTotalBytes})
		if err != nil {
			return nil, &Error{Msg: fmt.Sprintf("repository root %s: %v", opts.Root, err)}
		}
	}
	absDir, err := filepath.Abs(dir) // dir is the caller's, relative to the working directory
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	realDir, err := fs.Resolve(absDir)
	if err != nil {
		return nil, &Error{Msg: err.Error(), Hint: "the path to render must be inside the repository root", Outside: true}
	}
	info, err := fs.Stat(realDir)
	switch {
	case err != nil:
		return nil, &Error{File: fs.Rel(realDir), Msg: "does not exist", Hint: "give the path of an overlay or a folder of manifests"}
	case !info.IsDir():
		return nil, &Error{File: fs.Rel(realDir), Msg: "not a directory", Hint: "give the path of an overlay or a folder of manifests"}
	}
	res := &Result{Dir: fs.Rel(realDir)}

	var (
		docs    []*kyaml.RNode
		sources []string
		patches [][]PatchSource
	)
	if kustomizationName(fs, realDir) != "" {
		docs, sources, patches, err = build(fs, realDir, opts, res)
	} else {
		docs, sources, err = readPlainDir(fs, realDir, res)
	}
	if err != nil {
		return nil, err
	}
	stripped := map[string][]string{} // namespace -> objects
	for i, doc := range docs {
		r, ns, err := toResource(doc)
		if err != nil {
			file := sources[i]
			if file == "" {
				file = res.Dir
			}
			return nil, &Error{File: file, Msg: repofs.Redact(err.Error())}
		}
		if ns != "" {
			stripped[ns] = append(stripped[ns], r.Kind+" "+r.Name)
		}
		r.Source = sources[i]
		if i < len(patches) {
			r.Patches = patches[i]
		}
		res.Resources = append(res.Resources, r)
	}
	for _, ns := range sortedKeys(stripped) {
		res.Notes = append(res.Notes, fmt.Sprintf("removed metadata.namespace %q that kustomize stamped on %d cluster-scoped Kyverno objects (%s)",
			ns, len(stripped[ns]), strings.Join(stripped[ns], ", ")))
	}
	return res, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func build(fs *repofs.Root, dir string, opts Options, res *Result) ([]*kyaml.RNode, []string, [][]PatchSource, error) {
	notes, absorbed, err := scanKustomizations(fs, dir, opts)
	if err != nil {
		return nil, nil, nil, asError(fs, err)
	}
	res.Notes = append(res.Notes, notes...)
	ko := krusty.MakeDefaultOptions()
	// Same order as `kustomize build` and Argo CD: legacy sort unless the
	// kustomization asks for another.
	ko.Reorder = krusty.ReorderOptionUnspecified
	// Overlays reach ../../base; the confined filesystem, not kustomize's
	// root-only rule, is what keeps reads inside the repository.
	ko.LoadRestrictions = types.LoadRestrictionsNone
	// Builtins only: exec and containerized KRM functions and legacy
	// plugins are refused by kustomize itself.
	ko.PluginConfig = types.DisabledPluginConfig()
	if opts.EnableHelm {
		ko.PluginConfig.HelmConfig.Enabled = true
		ko.PluginConfig.HelmConfig.Command = "helm"
	}
	keepOrigin := false
	top := filepath.Join(dir, kustomizationName(fs, dir))
	if real, err := fs.Resolve(top); err == nil {
		top = real
	}
	// withOrigin wraps a slice's rewrite (nil: none) with the origin
	// annotations of the top kustomization.
	withOrigin := func(slice func(string, []byte) ([]byte, error)) func(string, []byte) ([]byte, error) {
		return func(real string, data []byte) ([]byte, error) {
			if slice != nil {
				var err error
				if data, err = slice(real, data); err != nil {
					return nil, err
				}
			}
			if real != top {
				return data, nil
			}
			var kept bool
			data, kept, err := withOriginAnnotations(data)
			keepOrigin = kept
			return data, err
		}
	}
	var (
		resources []*resource.Resource
		maps      []resmap.ResMap
	)
	err = runQuietly(func() error {
		if !opts.AllowRemote && !opts.EnableHelm {
			if plan := planChunks(fs, dir, absorbed); plan != nil {
				var parts [][]*resource.Resource
				for i := range plan.slices() {
					m, err := krusty.MakeKustomizer(ko).Run(fs.Kustomize(withOrigin(plan.rewriteFor(i))), dir)
					if err != nil {
						parts = nil
						break // the whole build says what is wrong
					}
					maps = append(maps, m)
					parts = append(parts, m.Resources())
				}
				if parts != nil {
					if all, err := plan.joinSlices(parts); err == nil {
						resources, res.builds = all, len(parts)
						return nil
					}
				}
				maps = nil
			}
		}
		m, err := krusty.MakeKustomizer(ko).Run(fs.Kustomize(withOrigin(nil)), dir)
		if err != nil {
			return err
		}
		maps, resources, res.builds = []resmap.ResMap{m}, m.Resources(), 1
		return nil
	})
	if err != nil {
		return nil, nil, nil, asError(fs, err)
	}
	docs := make([]*kyaml.RNode, 0, len(resources))
	sources := make([]string, 0, len(resources))
	for _, r := range resources {
		src := ""
		if o, err := r.GetOrigin(); err == nil && o != nil && o.Repo == "" {
			p := o.Path
			if p == "" {
				p = o.ConfiguredIn
			}
			if p != "" {
				src = fs.Rel(filepath.Join(dir, p))
			}
		}
		sources = append(sources, src)
	}
	// Read before the origin annotations go: selectors see the object as
	// kustomize left it.
	patches := patchOrigins(fs, dir, resources, sources)
	if !keepOrigin {
		for _, m := range maps {
			if err := m.RemoveOriginAnnotations(); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	for _, r := range resources {
		docs = append(docs, &r.RNode)
	}
	return docs, sources, patches, nil
}

// stderrMu serialises the swap of os.Stderr in runQuietly.
var stderrMu sync.Mutex

// runQuietly runs a kustomize build with os.Stderr pointed at /dev/null:
// kustomize prints deprecation warnings straight to os.Stderr, which would
// push the verdict off the first line of what Argo CD shows. The scan
// reports the same warnings as notes instead.
func runQuietly(build func() error) error {
	stderrMu.Lock()
	defer stderrMu.Unlock()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return build()
	}
	saved := os.Stderr
	os.Stderr = null
	defer func() {
		os.Stderr = saved
		null.Close()
	}()
	return build()
}

func kustomizationName(fs *repofs.Root, dir string) string {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if fs.Exists(filepath.Join(dir, name)) {
			return name
		}
	}
	return ""
}

// Readable reports whether kyaml's getters (GetName, GetNamespace,
// GetLabels, ...) can read n without panicking: they index a node's
// content in pairs, so n and its metadata, labels and annotations must be
// mappings where present ("[0]", "metadata: [x]" are not).
func Readable(n *kyaml.RNode) bool {
	if n == nil || n.YNode().Kind != kyaml.MappingNode {
		return false
	}
	meta := n.Field("metadata")
	if meta == nil {
		return true
	}
	if meta.Value.YNode().Kind != kyaml.MappingNode {
		return false
	}
	for _, f := range []string{"labels", "annotations"} {
		if m := meta.Value.Field(f); m != nil && m.Value.YNode().Kind != kyaml.MappingNode && m.Value.YNode().Tag != "!!null" {
			return false
		}
	}
	return true
}

// withOriginAnnotations asks kustomize to record where each object came
// from (buildMetadata: [originAnnotations]), so messages can name the file.
// It reports whether the kustomization asked for them itself, in which case
// they stay in the output.
func withOriginAnnotations(data []byte) ([]byte, bool, error) {
	n, err := kyaml.Parse(string(data))
	if err != nil || n.YNode().Kind != kyaml.MappingNode {
		return data, false, nil // kustomize reports the syntax error itself
	}
	meta, err := n.Pipe(kyaml.LookupCreate(kyaml.SequenceNode, "buildMetadata"))
	if err != nil || meta == nil {
		return data, false, nil // e.g. an anchor or alias where a list belongs
	}
	for _, e := range meta.YNode().Content {
		if e.Value == types.OriginAnnotations {
			return data, true, nil
		}
	}
	if err := meta.PipeE(kyaml.Append(kyaml.NewScalarRNode(types.OriginAnnotations).YNode())); err != nil {
		return data, false, err
	}
	out, err := n.String()
	return []byte(out), false, err
}

// asError prefers the confinement violation behind a kustomize error, since
// kustomize reports those as unrelated-looking failures.
func asError(fs *repofs.Root, err error) error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	if v := fs.Violation(); v != nil {
		var outside *repofs.OutsideError
		if errors.As(v, &outside) {
			return &Error{Msg: v.Error(), Hint: "a kustomization may only read files inside the repository", Outside: true}
		}
		return &Error{Msg: v.Error()}
	}
	msg := repofs.Redact(err.Error())
	switch {
	case strings.Contains(msg, "external plugins disabled"):
		return &Error{Msg: "kustomize: " + msg, Hint: "exec, containerized KRM functions and plugins are never run; use builtin generators and transformers"}
	case strings.Contains(msg, "must specify --enable-helm"):
		return &Error{Msg: "kustomize: a Helm chart generator is used but Helm is disabled", Hint: "set parameter enable-helm=true"}
	}
	return &Error{Msg: "kustomize: " + msg, Hint: "run `kustomize build` on this directory to see the same error"}
}

// readPlainDir reads every YAML or JSON manifest directly in dir, in name
// order, like an Argo CD directory source. Kyverno CLI files (tests, values)
// that live beside policies are not cluster objects and are left out.
func readPlainDir(fs *repofs.Root, dir string, res *Result) ([]*kyaml.RNode, []string, error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, nil, &Error{File: fs.Rel(dir), Msg: err.Error()}
	}
	sort.Strings(names)
	var (
		docs    []*kyaml.RNode
		sources []string
	)
	for _, name := range names {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		if name == LockFile {
			continue // the vetted baseline, not part of the overlay
		}
		if strings.HasPrefix(name, ".") {
			// Tool configuration (.kyverno-gate.yaml, .pre-commit-config.yaml,
			// CI files), never a cluster object.
			res.Notes = append(res.Notes, fmt.Sprintf("%s: skipped (a dot-file is configuration, not a cluster object)", fs.Rel(filepath.Join(dir, name))))
			continue
		}
		file := filepath.Join(dir, name)
		if fs.IsDir(file) {
			continue
		}
		data, err := fs.ReadFile(file)
		if err != nil {
			return nil, nil, &Error{File: fs.Rel(file), Msg: err.Error()}
		}
		nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
		if err != nil {
			return nil, nil, &Error{File: fs.Rel(file), Msg: "not valid YAML: " + repofs.Redact(err.Error())}
		}
		for i, n := range nodes {
			if !Readable(n) {
				return nil, nil, &Error{File: fs.Rel(file), Msg: fmt.Sprintf("document %d is not a Kubernetes object (needs apiVersion, kind and metadata.name)", i+1)}
			}
			if strings.HasPrefix(n.GetApiVersion(), "cli.kyverno.io/") {
				res.Notes = append(res.Notes, fmt.Sprintf("%s: skipped Kyverno CLI %s %q (not a cluster object)", fs.Rel(file), n.GetKind(), n.GetName()))
				continue
			}
			if n.GetKind() == "" || n.GetApiVersion() == "" || n.GetName() == "" {
				return nil, nil, &Error{File: fs.Rel(file), Msg: fmt.Sprintf("document %d is not a Kubernetes object (needs apiVersion, kind and metadata.name)", i+1)}
			}
			docs = append(docs, n)
			sources = append(sources, fs.Rel(file))
		}
	}
	return docs, sources, nil
}

// toResource decodes one rendered document and undoes kustomize's namespace
// stamp on Kyverno's cluster-scoped kinds, which kustomize cannot know are
// cluster-scoped. The API server would drop it silently; Kyverno's offline
// validation would reject the policy. It returns the namespace it removed.
func toResource(n *kyaml.RNode) (*Resource, string, error) {
	var stripped string
	if ns := n.GetNamespace(); ns != "" && IsClusterScopedKyvernoKind(n.GetApiVersion(), n.GetKind()) {
		if err := n.SetNamespace(""); err != nil {
			return nil, "", err
		}
		stripped = ns
	}
	text, err := n.String()
	if err != nil {
		return nil, "", err
	}
	// The gates judge what is printed, not kustomize's in-memory node: the
	// YAML encoder does not always print a string as it read it (a folded
	// ">-" block with more-indented lines gains a blank line), and a lock
	// file holds the printed text. Decoding the printed text keeps the
	// rendering, Argo CD's input and a lock file of it equal.
	printed, err := kyaml.Parse(text)
	if err != nil {
		return nil, "", fmt.Errorf("kustomize printed %s %s as YAML that does not read back: %v", n.GetKind(), n.GetName(), err)
	}
	obj, err := printed.Map()
	if err != nil {
		return nil, "", err
	}
	return &Resource{
		APIVersion: n.GetApiVersion(), Kind: n.GetKind(), Namespace: n.GetNamespace(), Name: n.GetName(),
		Object: obj, YAML: []byte(text),
	}, stripped, nil
}

// clusterScoped lists Kyverno's cluster-scoped kinds by API group.
var clusterScoped = map[string]map[string]bool{
	"kyverno.io": {"ClusterPolicy": true, "ClusterCleanupPolicy": true, "GlobalContextEntry": true},
	"policies.kyverno.io": {"ValidatingPolicy": true, "MutatingPolicy": true, "GeneratingPolicy": true,
		"ImageValidatingPolicy": true, "DeletingPolicy": true},
}

// IsKyverno reports whether r belongs to one of Kyverno's API groups (the
// keys of clusterScoped).
func (r *Resource) IsKyverno() bool {
	_, ok := clusterScoped[r.Group()]
	return ok
}

// IsClusterScopedKyvernoKind reports whether apiVersion/kind is one of
// Kyverno's cluster-scoped kinds.
func IsClusterScopedKyvernoKind(apiVersion, kind string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return clusterScoped[group][kind]
}
