package kyvernotest

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"
)

// confine checks every path the suite's test file names, before anything
// reads it: each must resolve (symlinks included) inside the repository
// and be a regular file or a folder of them, within the size limits.
// Kyverno's loaders then read the same paths; a test file is untrusted, and
// without this a `resources: [/etc/...]` or a symlink to another tenant's
// checkout would be read and could be printed through a policy message.
// Remote paths, which Kyverno's loaders would fetch, are refused too.
func (s *Suite) confine() error {
	dir := s.Dir()
	check := func(field, p string, tree bool) error {
		if p == "" {
			return nil
		}
		if strings.Contains(p, "://") {
			return fmt.Errorf("%s entry %q is remote; a test file may only name files inside the repository", field, p)
		}
		full := path.GetFullPath(p, dir)
		var err error
		if tree {
			err = s.Repo.CheckTree(full)
		} else {
			err = s.Repo.CheckFile(full)
		}
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil // a missing file is Kyverno's to report
		}
		return fmt.Errorf("%s entry %q: %v", field, p, err)
	}
	for _, e := range s.named() {
		for _, p := range e.paths {
			if err := check(e.field, p, e.tree); err != nil {
				return err
			}
		}
	}
	return nil
}

// named is a field of the test file that names paths.
type named struct {
	field string
	paths []string
	tree  bool // a folder of files may stand for them
}

// named lists every path the suite's test file names, by field: what
// confine checks and the cache key covers (cachekey.go).
func (s *Suite) named() []named {
	t := s.Test
	entries := []named{
		{"policies", t.Policies, true}, {"resources", t.Resources, true}, {"exceptions", t.PolicyExceptions, true},
		{"targetResources", t.TargetResources, true}, {"paramResources", t.ParamResources, true},
		{"clusterResources", t.ClusterResources, false},
		{"variables", []string{t.Variables}, false}, {"userinfo", []string{t.UserInfo}, false},
		{"context", []string{t.Context}, false},
		{"jsonPayload", []string{t.JSONPayload}, false}, {"jsonPayloads", t.JSONPayloads, false},
		{"httpPayloads", t.HTTPPayloads, false}, {"envoyPayloads", t.EnvoyPayloads, false},
	}
	for _, g := range t.GlobalContextEntries {
		entries = append(entries, named{"globalContextEntries[" + g.Name + "].resourceFiles", g.ResourceFiles, false})
	}
	for i, r := range t.Results {
		field := fmt.Sprintf("results[%d]", i)
		entries = append(entries,
			named{field + ".patchedResources", []string{r.PatchedResources}, false},
			named{field + ".generatedResource", []string{r.GeneratedResource}, false},
			named{field + ".generatedResources", r.GeneratedResources, false},
			named{field + ".cloneSourceResource", []string{r.CloneSourceResource}, false})
	}
	return entries
}

// confineCRDs checks the CRD files a clusterResources file lists (read
// only once that file is loaded).
func (s *Suite) confineCRDs(crds []string) error {
	for _, p := range crds {
		if strings.Contains(p, "://") {
			return fmt.Errorf("clusterResources spec.crds entry %q is remote; a test file may only name files inside the repository", p)
		}
		if err := s.Repo.CheckFile(path.GetFullPath(p, s.Dir())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clusterResources spec.crds entry %q: %v", p, err)
		}
	}
	return nil
}
