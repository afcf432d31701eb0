package kyvernotest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
	extyaml "github.com/kyverno/kyverno/ext/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// Found is what a search for the suites of a rendering found.
type Found struct {
	Suites []*Suite
	// Where says where the search looked, for messages.
	Where string
	// Files is how many test files the search found.
	Files int
	// Unrelated are the test files (relative to the root) that name no
	// policy of the rendering: not loaded, not run.
	Unrelated []string
	// Elsewhere are the test files that lie in the folder of a
	// kustomization the rendering does not use (another overlay's tests):
	// left to that overlay.
	Elsewhere []string
}

// SearchWhole is the default search (parameter tests not given): every
// test file called fileName at any depth inside the repository, as
// `kyverno test DIR` finds them (folders whose name starts with a dot are
// skipped, except .kyverno-test). Of those it loads only the ones that may
// cover the rendering:
//
//   - a test file whose policies name no file or folder a rendered Kyverno
//     object comes from (see mayCover) does not test the rendering, so it
//     is not loaded (Unrelated). This reads only the test file itself;
//     loading every test file and its policies is what costs time on a
//     large repository;
//   - a test file that does, but lies inside a folder that holds a
//     kustomization the rendering did not use (no rendered object or patch
//     comes from it, and it is not the rendered folder or one above it),
//     belongs to that other rendering, typically another overlay's tests/
//     testing the shared policies with that overlay's exceptions
//     (Elsewhere).
//
// Everything is read through the repository's confined view.
func SearchWhole(repo *repofs.Root, fileName string, rendered *render.Result) (*Found, error) {
	root := repo.Dir()
	var files []string
	kustomizations := map[string]bool{} // folders (absolute) with a kustomization file
	err := repo.Walk(root, func(p string, info fs.FileInfo) error {
		if info.IsDir() && p != root && strings.HasPrefix(info.Name(), ".") && info.Name() != ".kyverno-test" {
			return repofs.SkipDir
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		switch info.Name() {
		case fileName:
			files = append(files, p)
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
			kustomizations[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	found := &Found{Where: "every folder of the repository", Files: len(files)}
	m := newMatcher(root, rendered)
	var load []string
	for _, f := range files {
		data, err := repo.ReadFile(f)
		switch {
		case err == nil && !m.mayCover(f, data):
			found.Unrelated = append(found.Unrelated, repo.Rel(f))
		case m.elsewhere(f, kustomizations):
			found.Elsewhere = append(found.Elsewhere, repo.Rel(f))
		default:
			load = append(load, f) // a file that does not read is reported by the loader
		}
	}
	found.Suites, err = loadSuites(repo, load)
	return found, err
}

// matcher knows what a rendering is made of. Its sets hold paths and
// every folder above them (up to the root), so that "is this a source, or
// a folder holding one" is one lookup, whatever the repository's size.
type matcher struct {
	root  string
	dir   string          // rendered folder, absolute
	names map[string]bool // names of the rendered Kyverno objects of no known file
	// sources: the absolute files the other rendered Kyverno objects come
	// from, and the folders above them.
	sources map[string]bool
	// used: the folders of every source file and kustomization the
	// rendering used, and the folders above them.
	used map[string]bool
}

func newMatcher(root string, rendered *render.Result) *matcher {
	m := &matcher{root: root, dir: root, names: map[string]bool{}, sources: map[string]bool{}, used: map[string]bool{}}
	if rendered == nil {
		return m
	}
	m.dir = filepath.Join(root, rendered.Dir)
	add := func(set map[string]bool, p string) {
		for ; !set[p] && within(p, root); p = filepath.Dir(p) {
			set[p] = true
			if p == root {
				break
			}
		}
	}
	for _, r := range rendered.Resources {
		if r.Source != "" {
			src := filepath.Join(root, r.Source)
			add(m.used, filepath.Dir(src))
			if r.IsKyverno() {
				add(m.sources, src)
			}
		} else if r.IsKyverno() {
			m.names[r.Name] = true
		}
		for _, p := range r.Patches {
			if p.Kustomization != "" {
				add(m.used, filepath.Dir(filepath.Join(root, p.Kustomization)))
			}
		}
	}
	return m
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
}

// elsewhere reports whether test file f lies in the folder of a
// kustomization the rendering does not use.
func (m *matcher) elsewhere(f string, kustomizations map[string]bool) bool {
	for d := filepath.Dir(f); d != m.root && within(d, m.root); d = filepath.Dir(d) {
		if kustomizations[d] && !within(m.dir, d) && !m.used[d] {
			return true
		}
	}
	return false
}

// mayCover reports whether test file f (its content data) covers the
// rendering: a policies entry names a file a rendered Kyverno object comes
// from, or a folder above one; for a rendered object of no known file (a
// remote base), a result names it. A suite that only shares a policy's name
// (its own copy, or another policy set's policy of that name) does not.
// A file that does not parse may: the loader reports it.
func (m *matcher) mayCover(f string, data []byte) bool {
	docs, err := extyaml.SplitDocuments(data)
	if err != nil {
		return true
	}
	dir := filepath.Dir(f)
	for _, d := range docs {
		var t struct {
			Policies []string `json:"policies"`
			Results  []struct {
				Policy string `json:"policy"`
			} `json:"results"`
		}
		if err := yaml.Unmarshal(d, &t); err != nil {
			return true
		}
		for _, r := range t.Results {
			if m.names[lastPart(r.Policy)] {
				return true
			}
		}
		for _, p := range t.Policies {
			if strings.Contains(p, "://") {
				continue
			}
			if m.sources[filepath.Clean(path.GetFullPath(p, dir))] {
				return true
			}
		}
	}
	return false
}

// Describe says where a search looked and what it left out, for the
// message that no test covers the rendering: skipped are the suites that
// were loaded but had none of their policies substituted.
func (f *Found) Describe(fileName string, skipped []string) string {
	var b strings.Builder
	if f.Files == 0 {
		fmt.Fprintf(&b, "looked for %s in %s and found none", fileName, f.Where)
		return b.String()
	}
	files := "test files"
	if f.Files == 1 {
		files = "test file"
	}
	fmt.Fprintf(&b, "looked for %s in %s and found %d %s", fileName, f.Where, f.Files, files)
	unrelated := append([]string{}, f.Unrelated...)
	seen := map[string]bool{}
	for _, s := range skipped {
		if !seen[s] { // one file, several suites
			seen[s] = true
			unrelated = append(unrelated, s)
		}
	}
	if n := len(unrelated); n > 0 {
		verb := "name"
		if n == 1 {
			verb = "names"
		}
		fmt.Fprintf(&b, "; %d %s no policy this overlay renders (%s)", n, verb, few(unrelated))
	}
	if n := len(f.Elsewhere); n > 0 {
		verb := "lie in the folder of a kustomization this overlay does not use, so belong"
		if n == 1 {
			verb = "lies in the folder of a kustomization this overlay does not use, so belongs"
		}
		fmt.Fprintf(&b, "; %d %s to another overlay (%s)", n, verb, few(f.Elsewhere))
	}
	return b.String()
}

// few lists up to three names, then how many more there are.
func few(names []string) string {
	const shown = 3
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:shown], ", "), len(names)-shown)
}
