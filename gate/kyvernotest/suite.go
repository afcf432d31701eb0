package kyvernotest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/parallel"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/deprecations"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/exception"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/test"
	extyaml "github.com/kyverno/kyverno/ext/yaml"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Suite is one Test document of a test file.
type Suite struct {
	Repo *repofs.Root // the repository every path of the suite must stay in
	Path string       // the test file
	Rel  string       // Path relative to the repository root, for messages
	Test *v1alpha1.Test
	// Err is why the file did not load, or names a path of it that leaves
	// the repository (then nothing it names is read, and Refused is set).
	Err     error
	Refused bool
	// Resources, when set, are the patterns of a test case selector's
	// resource= (see Selection): only the resources they match are checked.
	Resources []string
}

// Dir is the folder the suite's relative paths start from.
func (s *Suite) Dir() string { return filepath.Dir(s.Path) }

// Name is the suite's name for messages.
func (s *Suite) Name() string {
	if s.Test != nil && s.Test.Name != "" {
		return s.Test.Name
	}
	if s.Test != nil && s.Test.GetName() != "" {
		return s.Test.GetName()
	}
	return s.Rel
}

// Discover finds the test files called fileName under dirs (relative to the
// repository root unless absolute; missing folders are skipped; a folder
// outside the repository is an error) and loads them through the
// repository's confined view. Symlinks are not followed. Each suite's paths
// are checked before anything reads them (see confine).
func Discover(repo *repofs.Root, dirs []string, fileName string) ([]*Suite, error) {
	seen := map[string]bool{}
	var files []string
	for _, d := range dirs {
		abs := repo.Abs(d)
		real, err := repo.Resolve(abs)
		if err != nil {
			return nil, fmt.Errorf("test folder %q: %w", d, err)
		}
		if !repo.IsDir(real) {
			continue
		}
		err = repo.Walk(real, func(p string, info fs.FileInfo) error {
			if info.IsDir() && p != real && strings.HasPrefix(info.Name(), ".") && info.Name() != ".kyverno-test" {
				return repofs.SkipDir
			}
			if info.Mode().IsRegular() && info.Name() == fileName && !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(files)
	return loadSuites(repo, files)
}

// loadSuites loads test files (absolute paths, each inside the repository)
// through the repository's confined view, and checks each suite's paths.
func loadSuites(repo *repofs.Root, files []string) ([]*Suite, error) {
	var suites []*Suite
	for _, f := range files {
		rel := repo.Rel(f)
		data, err := repo.ReadFile(f)
		if err != nil {
			suites = append(suites, &Suite{Repo: repo, Path: f, Rel: rel, Err: err})
			continue
		}
		mfs := memfs.New()
		if err := writeMemFile(mfs, f, data); err != nil {
			return nil, err
		}
		for _, tc := range test.LoadTest(mfs, f) {
			s := &Suite{Repo: repo, Path: f, Rel: rel, Test: tc.Test, Err: tc.Err}
			if s.Err == nil && s.Test != nil {
				s.Err = s.confine()
				s.Refused = s.Err != nil
			}
			suites = append(suites, s)
		}
	}
	return suites, nil
}

// writeMemFile puts data at name in an in-memory filesystem, for Kyverno
// loaders that read only from a filesystem or from the disk.
func writeMemFile(mfs billy.Filesystem, name string, data []byte) error {
	f, err := mfs.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Close()
}

// Object identifies a policy or exception across files and renderings.
type Object struct{ Kind, Namespace, Name string }

// Overlay substitutes rendered objects for the ones a suite's files declare,
// so that the suite runs against what Argo CD would sync.
type Overlay struct {
	Entries []Entry
}

// Entry is one rendered object an overlay offers.
type Entry struct {
	Object
	Source string // absolute path of the file that declared it, "" if unknown
	Doc    []byte // rendered YAML
}

// lookup finds the rendered version of o, declared in file: by kind and
// name (a namespace stamped by the overlay does not prevent a match); else,
// when kustomize renamed it (namePrefix, nameSuffix), by kind and source
// file if exactly one object of that kind came from that file — renamed
// back, so that the suite's results still name it.
func (ov *Overlay) lookup(o Object, file string) ([]byte, bool) {
	if ov == nil {
		return nil, false
	}
	for _, e := range ov.Entries {
		if e.Object == o {
			return e.Doc, true
		}
	}
	for _, e := range ov.Entries {
		if e.Kind == o.Kind && e.Name == o.Name && (o.Namespace == "" || e.Namespace == "") {
			return e.Doc, true
		}
	}
	var found *Entry
	for i, e := range ov.Entries {
		if e.Kind == o.Kind && e.Source != "" && e.Source == file {
			if found != nil {
				return nil, false
			}
			found = &ov.Entries[i]
		}
	}
	if found == nil {
		return nil, false
	}
	var obj map[string]any
	if err := yaml.Unmarshal(found.Doc, &obj); err != nil {
		return nil, false
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		meta["name"] = o.Name
	}
	doc, err := yaml.Marshal(obj)
	return doc, err == nil
}

// SuiteResult is the outcome of one suite.
type SuiteResult struct {
	Suite *Suite
	Rows  []Row
	// Err is why the suite could not run; it counts as a failure.
	Err error
	// Skipped says why the suite was not run (none of its policies are in
	// the overlay).
	Skipped string
	// Substituted lists the objects taken from the overlay.
	Substituted []Object
	// CarriedOver lists the migrations whose old policy's results the
	// suite ran against the new one ("ClusterPolicy a → ValidatingPolicy
	// b", see carry.go).
	CarriedOver []string
	// UpstreamStop, when set, says why upstream `kyverno test` would stop
	// at this suite and fail as a whole (not report results); Err is set
	// then. UpstreamStopsEarly: it would stop while loading the test
	// files, before running any suite.
	UpstreamStop       string
	UpstreamStopsEarly bool
	// Cached: Rows are a earlier run's, under a key that covers every
	// input (Cache).
	Cached bool
}

// CrashError is a panic inside Kyverno while running a suite: not the test
// file's fault.
type CrashError struct{ Value any }

func (e *CrashError) Error() string {
	return fmt.Sprintf("Kyverno crashed while running this suite: %v", e.Value)
}

// Failed reports whether the suite fails kyverno-gate.
func (r *SuiteResult) Failed() bool {
	if r.Err != nil {
		return true
	}
	for _, row := range r.Rows {
		if row.Failed() {
			return true
		}
	}
	return false
}

// Run runs suites in parallel and returns their results in input order.
// With an overlay, each suite's policies and exceptions are replaced by the
// rendered ones of the same kind and name, and a suite none of whose
// policies is in the overlay is skipped.
func Run(suites []*Suite, ov *Overlay) []*SuiteResult { return RunCached(suites, ov, nil) }

// RunCached is Run keeping each suite's rows in c across runs (c may be
// nil: off).
func RunCached(suites []*Suite, ov *Overlay, c *Cache) []*SuiteResult {
	results := make([]*SuiteResult, len(suites))
	parallel.Each(len(suites), func(i int) { results[i] = runSuite(suites[i], ov, c) })
	return results
}

func runSuite(s *Suite, ov *Overlay, c *Cache) (res *SuiteResult) {
	res = &SuiteResult{Suite: s}
	// Upstream fails as a whole on most errors of a suite.
	stop := func(why string) { res.UpstreamStop = why }
	defer func() {
		if v := recover(); v != nil {
			res.Err = &CrashError{Value: v}
			stop("it crashes")
			res.Rows = nil
		}
	}()
	if s.Err != nil {
		res.Err = fmt.Errorf("the test file does not load: %w", s.Err)
		if !s.Refused { // a refused path: upstream would read it
			stop("it cannot load the test file")
			res.UpstreamStopsEarly = true
		}
		return res
	}
	if deprecations.CheckTest(io.Discard, s.Path, s.Test) {
		res.Err = fmt.Errorf("the test file uses a deprecated schema; migrate it as `kyverno test` explains")
		stop("the test file uses a deprecated schema")
		return res
	}
	if len(s.Test.Results) == 0 {
		return res
	}
	docs, subs, err := substitute(s.Repo, path.GetFullPaths(s.Test.Policies, s.Dir(), false), ov)
	if err != nil {
		res.Err = fmt.Errorf("policies: %w", err)
		stop("it fails to load the policies")
		return res
	}
	if ov != nil && len(subs) == 0 {
		res.Skipped = "none of its policies is in this overlay"
		return res
	}
	// Exceptions are read before the policies load, for the cache key;
	// their errors still come after the policies' (as upstream's).
	excs, esubs, excErr := suiteExceptions(s, ov)
	var key cache.Key
	keyed := false
	if excErr == nil {
		key, keyed = c.key(s, docs, excs)
	}
	var entry cached
	if keyed && c.Store.Get(key, &entry) {
		res.Substituted = append(subs, esubs...)
		res.Rows, res.CarriedOver, res.Cached = entry.Rows, entry.CarriedOver, true
		return res
	}
	pols, err := loadPolicies(docs)
	if err != nil {
		res.Err = err
		var dropped *droppedError
		if !errors.As(err, &dropped) { // upstream prints ERROR and goes on
			stop("it fails to load the policies")
		}
		return res
	}
	if t, notes := carryOver(s.Test, pols); len(notes) > 0 {
		cp := *s // suites are shared between overlays
		cp.Test = t
		s, res.CarriedOver = &cp, notes
	}
	if excErr != nil {
		res.Err = excErr
		stop("it fails to load the exceptions")
		return res
	}
	res.Substituted = append(subs, esubs...)
	ev, err := evaluate(s, pols, excs)
	if err != nil {
		res.Err = err
		stop("it fails to run the test")
		return res
	}
	res.Rows = check(s, ev)
	if keyed && cacheable(s, res.Rows) {
		c.Store.Put(key, cached{Rows: res.Rows, CarriedOver: res.CarriedOver})
	}
	return res
}

// cached is a suite's cache entry: what evaluating it gave. The key is
// taken before its policies load (Kyverno's loader is a tenth of a suite's
// time), so the carry-over that loading decides is kept too.
type cached struct {
	Rows        []Row
	CarriedOver []string
}

// loadPolicies loads the documents of a suite's policy files (overlay
// objects already substituted). Any document Kyverno's loader drops is an
// error here.
func loadPolicies(docs [][]byte) (*Policies, error) {
	// Upstream's loader records any other document (a kustomization in a
	// policy folder, say) as a non-fatal error and ignores it; only policy
	// documents go to the loader here, so that its errors can be fatal.
	var kept [][]byte
	for _, d := range docs {
		if isPolicyDoc(d) {
			kept = append(kept, d)
		}
	}
	pols, err := loadPolicyDocs(bytes.Join(kept, []byte("\n---\n")))
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if len(pols.NonFatalErrors) > 0 {
		var msgs []string
		for _, e := range pols.NonFatalErrors {
			msgs = append(msgs, e.Error.Error())
		}
		return nil, &droppedError{msgs}
	}
	return pols, nil
}

// droppedError is a policy document Kyverno's loader dropped.
type droppedError struct{ msgs []string }

func (e *droppedError) Error() string {
	return "policies: Kyverno's loader dropped a document (upstream `kyverno test` would silently skip it): " + strings.Join(e.msgs, "; ")
}

func suiteExceptions(s *Suite, ov *Overlay) (*Exceptions, []Object, error) {
	paths := path.GetFullPaths(s.Test.PolicyExceptions, s.Dir(), false)
	if ov == nil {
		excs, err := loadExceptions(paths)
		if err != nil {
			return nil, nil, fmt.Errorf("exceptions: %w", err)
		}
		return excs, nil, nil
	}
	docs, subs, err := substitute(s.Repo, paths, ov)
	if err != nil {
		return nil, nil, fmt.Errorf("exceptions: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, d := range docs {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(d, &u.Object); err != nil {
			return nil, nil, fmt.Errorf("exceptions: %w", err)
		}
		objs = append(objs, &u)
	}
	res := exception.SelectFrom(objs)
	return &Exceptions{Legacy: res.Exceptions, CEL: res.CELExceptions}, subs, nil
}

// isPolicyDoc reports whether a document belongs to an API group whose kinds
// `kyverno test` loads as policies.
func isPolicyDoc(doc []byte) bool {
	var meta struct {
		APIVersion string `json:"apiVersion"`
	}
	if yaml.Unmarshal(doc, &meta) != nil {
		return true // let the loader report it
	}
	group, _, _ := strings.Cut(meta.APIVersion, "/")
	switch group {
	case "kyverno.io", "policies.kyverno.io", "admissionregistration.k8s.io":
		return true
	}
	return false
}

// substitute reads the documents of paths (files or folders, read as
// upstream's loader reads them), replacing each one the overlay renders (ov
// may be nil).
func substitute(repo *repofs.Root, paths []string, ov *Overlay) ([][]byte, []Object, error) {
	var (
		docs [][]byte
		subs []Object
	)
	for _, p := range paths {
		files, err := ManifestFiles(repo, p)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			data, err := repo.ReadFile(f)
			if err != nil {
				return nil, nil, err
			}
			split, err := extyaml.SplitDocuments(data)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", repo.Rel(f), firstLineErr(err))
			}
			for _, d := range split {
				var meta struct {
					Kind     string `json:"kind"`
					Metadata struct {
						Name      string `json:"name"`
						Namespace string `json:"namespace"`
					} `json:"metadata"`
				}
				if err := yaml.Unmarshal(d, &meta); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", repo.Rel(f), firstLineErr(err))
				}
				if meta.Kind == "" {
					continue
				}
				o := Object{Kind: meta.Kind, Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name}
				if r, ok := ov.lookup(o, f); ok {
					d = r
					subs = append(subs, o)
				}
				docs = append(docs, d)
			}
		}
	}
	return docs, subs, nil
}

// firstLineErr keeps a parser error's message but none of the repository
// content parsers append to it (see repofs.Redact).
func firstLineErr(err error) error {
	return errors.New(repofs.Redact(err.Error()))
}

// ManifestFiles lists the files a policy or resource path stands for, as
// upstream's loader does: a file, or every .yaml/.yml file below a folder,
// skipping names that start with a dot.
func ManifestFiles(repo *repofs.Root, p string) ([]string, error) {
	info, err := repo.Stat(p)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(filepath.Base(p), ".") && p != "." {
		return nil, nil
	}
	if !info.IsDir() {
		if isYAML(p) {
			return []string{p}, nil
		}
		return nil, nil
	}
	var out []string
	err = repo.Walk(p, func(f string, info fs.FileInfo) error {
		if f != p && strings.HasPrefix(info.Name(), ".") {
			if info.IsDir() {
				return repofs.SkipDir
			}
			return nil
		}
		if !info.IsDir() && isYAML(f) {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

func isYAML(f string) bool {
	ext := filepath.Ext(f)
	return ext == ".yaml" || ext == ".yml"
}
