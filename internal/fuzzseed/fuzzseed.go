// Package fuzzseed gives Go fuzz targets their seed inputs from the bundled
// example repository (examples/policy-repo) and, when it is present, the
// public kyverno/policies corpus ($KYVERNO_GATE_CORPUS, else
// ../shared/corpus/kyverno-policies beside the module root). The corpus is
// read when the test runs and never copied into this repository; without it
// the targets still run on the examples and their testdata/fuzz entries.
//
// A plain `go test` runs every seed once as a unit test, so it takes a small,
// evenly spread sample of the corpus; under `go test -fuzz` the sample is
// larger. The package imports only the standard library, so it adds nothing
// to the instrumented build of a fuzz binary.
package fuzzseed

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Sample sizes: corpus files per target in a plain test run and when fuzzing
// ($KYVERNO_GATE_FUZZ_SEEDS overrides the latter: every seed is run before
// fuzzing starts, within the target's -fuzztime, so a short run wants few).
const (
	TestSample = 12
	FuzzSample = 300
)

func fuzzSample() int {
	if n, err := strconv.Atoi(os.Getenv("KYVERNO_GATE_FUZZ_SEEDS")); err == nil && n >= 0 {
		return n
	}
	return FuzzSample
}

// MaxBytes bounds one seed: larger inputs only slow the mutator down.
const MaxBytes = 64 << 10

// File is one seed file. Path is "examples/<path in examples/policy-repo>" or
// "corpus/<path in the corpus>", with forward slashes.
type File struct {
	Path string
	Data []byte
}

// Fuzzing reports whether the test binary was started with -test.fuzz.
func Fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// ModuleRoot returns the folder of go.mod above the working directory.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("fuzzseed: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Corpus returns the corpus folder, or "" when it is absent.
func Corpus(tb testing.TB) string {
	tb.Helper()
	c := os.Getenv("KYVERNO_GATE_CORPUS")
	if c == "" {
		c = filepath.Join(ModuleRoot(tb), "..", "shared", "corpus", "kyverno-policies")
	}
	if info, err := os.Stat(c); err == nil && info.IsDir() {
		return filepath.Clean(c)
	}
	return ""
}

// Files returns the seed files whose slash path (relative to the example
// repository or the corpus) satisfies match: every matching file of the
// example repository, then a deterministic sample of the matching corpus
// files spread evenly over its sorted list (TestSample of them, FuzzSample
// or $KYVERNO_GATE_FUZZ_SEEDS when fuzzing). Files over MaxBytes, symlinks and unreadable files are
// skipped.
func Files(tb testing.TB, match func(rel string) bool) []File {
	tb.Helper()
	out := walk(filepath.Join(ModuleRoot(tb), "examples", "policy-repo"), "examples/", match, -1)
	if c := Corpus(tb); c != "" {
		n := TestSample
		if Fuzzing() {
			n = fuzzSample()
		}
		out = append(out, walk(c, "corpus/", match, n)...)
	}
	return out
}

// YAML matches files ending in .yaml or .yml.
func YAML(rel string) bool {
	return strings.HasSuffix(rel, ".yaml") || strings.HasSuffix(rel, ".yml")
}

// Named returns a matcher for files called one of names.
func Named(names ...string) func(string) bool {
	return func(rel string) bool {
		base := rel[strings.LastIndexByte(rel, '/')+1:]
		for _, n := range names {
			if base == n {
				return true
			}
		}
		return false
	}
}

func walk(dir, prefix string, match func(string) bool, limit int) []File {
	var paths []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		if rel = filepath.ToSlash(rel); match(rel) {
			paths = append(paths, rel)
		}
		return nil
	})
	sort.Strings(paths)
	if limit >= 0 && len(paths) > limit {
		picked := make([]string, 0, limit)
		for i := 0; i < limit; i++ {
			picked = append(picked, paths[i*len(paths)/limit])
		}
		paths = picked
	}
	var out []File
	for _, rel := range paths {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		info, err := os.Stat(p)
		if err != nil || info.Size() > MaxBytes {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		out = append(out, File{Path: prefix + rel, Data: data})
	}
	return out
}
