package repofs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The boundary is one mechanism only if nothing else reads the
// repository: this test fails on a direct file read (os.ReadFile, os.Open,
// a walk, ...) in the packages that handle repository content, so a new
// read path that bypasses repofs cannot land unnoticed.
func TestNoReadBypassesRepofs(t *testing.T) {
	read := regexp.MustCompile(`\bos\.(ReadFile|Open|OpenFile|ReadDir|DirFS)\(|\bfilepath\.(Walk|WalkDir|Glob)\(|\bioutil\.`)
	// Code that does not read the repository: the process's own limits,
	// scratch folder and result cache (entries it wrote itself), benchmarks and their generator, the e2e module,
	// fuzz seeds read from the shared corpus in tests only, and the live
	// cluster harness and its tools module (files of the test cluster).
	skip := []string{"repofs/", "internal/sandbox/", "internal/scratch/", "internal/cache/", "internal/largerepo/", "internal/fuzzseed/", "internal/kubetest/", "internal/repotest/", "bench/", "e2e/", "live/"}
	// Allowed, with why.
	allowed := map[string]string{
		"render/render.go: os.OpenFile(os.DevNull": "kustomize's stderr goes to /dev/null while it builds",
	}
	root := filepath.Join("..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != root || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			for _, s := range skip {
				if rel+"/" == s {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
	lines:
		for i, line := range strings.Split(string(data), "\n") {
			if m := read.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "//") {
				for k := range allowed {
					if file, call, _ := strings.Cut(k, ": "); file == rel && strings.Contains(line, call) {
						continue lines
					}
				}
				t.Errorf("%s:%d reads files directly (%s); read repository content through repofs", rel, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
