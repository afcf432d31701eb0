package witness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	kyvernov2 "github.com/kyverno/kyverno/api/kyverno/v2"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
	clires "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/resource"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/store"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/userinfo"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/variables"
	extyaml "github.com/kyverno/kyverno/ext/yaml"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// maxFileBytes bounds one candidate file.
const maxFileBytes = 4 << 20

// candidate is one resource that may be a witness.
type candidate struct {
	idx  int
	file string // relative to the root, slash-separated
	obj  *unstructured.Unstructured
	env  *env
	// policies are the names of the policies the suites that list this
	// file test (empty for samples).
	policies map[string]bool
	sample   bool
	// from is the Pod this controller was derived from (see derive.go);
	// pattern says which rule's pattern it was made from (pattern.go);
	// both unset for a declared resource.
	from    *candidate
	pattern string
}

// rank orders candidates: declared, then derived from declared Pods, then
// made from patterns (and their controllers).
func (c *candidate) rank() int {
	switch {
	case c.pattern != "" || (c.from != nil && c.from.pattern != ""):
		return 2
	case c.from != nil:
		return 1
	}
	return 0
}

func (c *candidate) ref() string {
	id := c.obj.GetKind() + " " + displayName(c.obj.GetNamespace(), c.obj.GetName())
	if c.from != nil {
		id += ", derived: the Pod in its template"
	}
	if c.pattern != "" {
		return id + ", made from " + c.pattern
	}
	return c.file + " (" + id + ")"
}

// env is what a resource is evaluated with: its suite's values (namespace
// labels, variables, request.operation) and user info.
type env struct {
	vars  *variables.Variables
	user  *kyvernov2.RequestInfo
	store *store.Store
}

func newEnv(vars *variables.Variables, user *kyvernov2.RequestInfo) *env {
	st := &store.Store{}
	st.SetLocal(true)
	vars.SetInStore(st)
	return &env{vars: vars, user: user, store: st}
}

func defaultEnv() *env {
	vars, _ := variables.New(io.Discard, nil, "", "", nil)
	return newEnv(vars, nil)
}

// fileInfo is a resource file and what refers to it.
type fileInfo struct {
	abs, rel string
	env      *env
	policies map[string]bool
	sample   bool
}

// loadCandidates reads the resources of every test suite and sample folder,
// in file order, up to opts.MaxCandidates distinct resources.
func loadCandidates(opts *Options) []*candidate {
	repo := opts.Repo
	if repo == nil {
		opts.logf("witness search: no repository view")
		return nil
	}
	// inside names a file by its resolved path relative to the root; a
	// file that resolves outside it is not read.
	inside := func(abs string) (string, bool) {
		real, err := repo.Resolve(abs)
		if err != nil || !repo.Exists(real) {
			return "", false
		}
		return filepath.ToSlash(repo.Rel(real)), true
	}

	files := map[string]*fileInfo{}
	var suiteFiles []*fileInfo
	if opts.Suites != nil || opts.TestFileName != "" && len(opts.TestDirs) > 0 {
		var suites []*kyvernotest.Suite
		var err error
		if opts.Suites != nil {
			suites, err = opts.Suites()
		} else {
			suites, err = kyvernotest.Discover(repo, opts.TestDirs, opts.TestFileName)
		}
		if err != nil {
			opts.logf("witness search: finding tests: %v", err)
		}
		for _, st := range suites {
			if st.Err != nil || st.Test == nil || len(st.Test.Resources) == 0 {
				continue
			}
			t, dir := st.Test, st.Dir()
			var e *env
			vars, err := variables.New(io.Discard, nil, dir, t.Variables, t.Values)
			if err != nil {
				opts.logf("witness search: %s: values: %v (its resources are evaluated without them)", st.Rel, err)
				vars, _ = variables.New(io.Discard, nil, "", "", nil)
			}
			var user *kyvernov2.RequestInfo
			if t.UserInfo != "" {
				if info, err := userinfo.Load(nil, t.UserInfo, dir); err == nil {
					user = &info.RequestInfo
				} else {
					opts.logf("witness search: %s: userinfo: %v", st.Rel, err)
				}
			}
			e = newEnv(vars, user)
			names := map[string]bool{}
			for _, r := range t.Results {
				names[baseName(r.Policy)] = true
			}
			for _, p := range path.GetFullPaths(t.Resources, dir, false) {
				if strings.Contains(p, "://") {
					continue
				}
				mfiles, err := kyvernotest.ManifestFiles(repo, p)
				if err != nil {
					opts.logf("witness search: %s: resources: %v", st.Rel, err)
					continue
				}
				for _, f := range mfiles {
					rel, ok := inside(f)
					if !ok {
						opts.logf("witness search: %s: resource file %s is outside the repository; skipped", st.Rel, f)
						continue
					}
					fi := files[rel]
					if fi == nil {
						fi = &fileInfo{abs: f, rel: rel, env: e, policies: map[string]bool{}}
						files[rel] = fi
						suiteFiles = append(suiteFiles, fi)
					}
					for n := range names {
						fi.policies[n] = true
					}
				}
			}
		}
	}
	sort.Slice(suiteFiles, func(i, j int) bool { return suiteFiles[i].rel < suiteFiles[j].rel })

	var sampleFiles []*fileInfo
	var sampleEnv *env
	for _, d := range opts.Samples {
		if filepath.IsAbs(d) {
			opts.logf("witness search: samples folder %s must be relative to the repository root; skipped", d)
			continue
		}
		abs := repo.Abs(filepath.FromSlash(d))
		if _, ok := inside(abs); !ok {
			opts.logf("witness search: samples folder %s is missing or outside the repository; skipped", d)
			continue
		}
		_ = repo.Walk(abs, func(p string, info fs.FileInfo) error {
			if info.IsDir() {
				if p != abs && strings.HasPrefix(info.Name(), ".") {
					return repofs.SkipDir
				}
				return nil
			}
			if !info.Mode().IsRegular() || info.Name() == opts.TestFileName {
				return nil
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
			default:
				return nil
			}
			rel, ok := inside(p)
			if !ok || files[rel] != nil {
				return nil
			}
			if sampleEnv == nil {
				sampleEnv = defaultEnv()
			}
			fi := &fileInfo{abs: p, rel: rel, env: sampleEnv, sample: true}
			files[rel] = fi
			sampleFiles = append(sampleFiles, fi)
			return nil
		})
	}
	sort.Slice(sampleFiles, func(i, j int) bool { return sampleFiles[i].rel < sampleFiles[j].rel })

	var out []*candidate
	seen := map[string]bool{}
	for _, fi := range append(suiteFiles, sampleFiles...) {
		objs, err := readResources(repo, fi.abs)
		if err != nil {
			opts.logf("witness search: %s: %v", fi.rel, err)
		}
		for _, o := range objs {
			if len(out) >= opts.MaxCandidates {
				opts.logf("witness search: only the first %d candidate resources are considered", opts.MaxCandidates)
				return out
			}
			data, err := json.Marshal(o.Object)
			if err != nil || seen[string(data)] {
				continue
			}
			seen[string(data)] = true
			out = append(out, &candidate{idx: len(out), file: fi.rel, obj: o, env: fi.env, policies: fi.policies, sample: fi.sample})
		}
	}
	declared := len(out)
	for _, c := range out[:declared] {
		for _, d := range derive(c) {
			if len(out) >= declared+opts.MaxCandidates {
				return out
			}
			d.idx = len(out)
			out = append(out, d)
		}
	}
	return out
}

// readResources reads the Kubernetes resources of one file the way the test
// command reads resources; documents that are not resources (Kyverno's own
// kinds, test and values files, kustomizations, lists) are skipped, and a
// document that does not parse skips only itself.
func readResources(repo *repofs.Root, file string) ([]*unstructured.Unstructured, error) {
	info, err := repo.Stat(file)
	if err != nil {
		return nil, err
	}
	if info.Size() > maxFileBytes {
		return nil, fmt.Errorf("larger than %d bytes; skipped", maxFileBytes)
	}
	data, err := repo.ReadFile(file)
	if err != nil {
		return nil, err
	}
	objs, err := clires.GetUnstructuredResources(data)
	var firstErr error
	if err != nil {
		objs = nil
		docs, serr := extyaml.SplitDocuments(data)
		if serr != nil {
			return nil, serr
		}
		for _, d := range docs {
			o, err := clires.YamlToUnstructured(d)
			if err != nil {
				if firstErr == nil {
					msg, _, _ := strings.Cut(err.Error(), "\n") // not the document itself
					firstErr = errors.New(msg)
				}
				continue
			}
			objs = append(objs, o)
		}
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o == nil || o.Object == nil || o.GetKind() == "" || o.GetName() == "" || !isResource(o) {
			continue
		}
		out = append(out, o)
	}
	return kyvernotest.NormalizeNumbers(out), firstErr
}

func isResource(o *unstructured.Unstructured) bool {
	group := o.GroupVersionKind().Group
	if strings.HasSuffix(group, "kyverno.io") || group == "kustomize.config.k8s.io" {
		return false
	}
	return !strings.HasSuffix(o.GetKind(), "List")
}
