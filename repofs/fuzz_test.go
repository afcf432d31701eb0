package repofs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
)

// Fuzz targets of the confined view of the repository. See docs/fuzzing.md.

// FuzzCheckYAML checks the alias-bomb pre-scan against a plain count of the
// nodes each document expands to (every alias followed, no sharing): it
// refuses exactly the documents that expand past maxExpandedNodes, the same
// way twice. Seeded with the example repository's and the corpus's YAML.
func FuzzCheckYAML(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		f.Add(file.Data)
	}
	for _, s := range []string{
		"a: &a [1, 2]\nb: *a\n",
		"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
		"base: &b {x: 1}\nthing:\n  <<: *b\n  y: 2\n",
		"---\na: &a 1\n---\nb: *a\n", // an alias to another document's anchor
		"a: &a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckYAML(data)
		if err2 := CheckYAML(data); (err2 == nil) != (err == nil) {
			t.Fatal("not deterministic")
		}
		over := false
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for !over {
			var doc yaml.Node
			if dec.Decode(&doc) != nil {
				break
			}
			budget := maxExpandedNodes
			over = !countNodes(&doc, &budget, 0)
		}
		if over && err == nil {
			t.Fatalf("expands past %d nodes, but CheckYAML accepts it", maxExpandedNodes)
		}
		if !over && err != nil {
			t.Fatalf("expands to at most %d nodes, but CheckYAML refuses it: %v", maxExpandedNodes, err)
		}
	})
}

// countNodes takes one from budget per node of the expansion of n and
// reports whether the budget (and the depth limit of expandedSize) held.
func countNodes(n *yaml.Node, budget *int, depth int) bool {
	if depth > 10_000 {
		return false
	}
	if *budget--; *budget < 0 {
		return false
	}
	if n.Kind == yaml.AliasNode {
		return n.Alias != nil && countNodes(n.Alias, budget, depth+1)
	}
	for _, c := range n.Content {
		if !countNodes(c, budget, depth+1) {
			return false
		}
	}
	return true
}

// FuzzResolve checks path resolution inside a repository whose links point
// in, out, absolutely, in chains and in loops, plus one link "l" whose
// target is fuzzed: whatever the path and the target, a path Resolve
// returns resolves, by the operating system, inside the root; ReadFile
// never returns the secret beside the root; and the answers are the same
// twice.
func FuzzResolve(f *testing.F) {
	outer := f.TempDir()
	root := filepath.Join(outer, "repo")
	const secret = "token: s3cr3t\n"
	for p, c := range map[string]string{
		"secret.yaml": secret, "repo/base/policy.yaml": "kind: ClusterPolicy\n", "repo/overlays/a/kustomization.yaml": "resources: [../../base]\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(outer, p)), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(outer, p), []byte(c), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for p, target := range map[string]string{
		"repo/in-rel": "base/policy.yaml", "repo/in-abs": filepath.Join(root, "base"), "repo/out-rel": "../secret.yaml",
		"repo/out-abs": filepath.Join(outer, "secret.yaml"), "repo/out-dir": "..", "repo/chain": "in-rel", "repo/loop": "loop",
		"repo/base/up": "../..", "repo/etc": "/etc",
	} {
		if err := os.Symlink(target, filepath.Join(outer, p)); err != nil {
			f.Fatal(err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"base/policy.yaml", "base"}, {"in-rel", "x"}, {"l/policy.yaml", "base"}, {"l", "out-rel"}, {"l", "../secret.yaml"},
		{"out-dir/secret.yaml", ""}, {"base/up/secret.yaml", ""}, {"overlays/a/../../base", "a/../out-dir"},
		{"l", "nothing/../base/policy.yaml"}, {"l/secret.yaml", "base/up"}, {root + "/in-abs/policy.yaml", "/etc"},
		{"missing/../out-rel", "loop"}, {"l", "missing/x"}, {"l", "missing/../in-rel"},
	} {
		f.Add(s[0], s[1])
	}
	link := filepath.Join(root, "l")
	f.Fuzz(func(t *testing.T, p, target string) {
		if strings.ContainsRune(target, 0) || len(target) > 512 || len(p) > 512 {
			return
		}
		_ = os.Remove(link)
		if target != "" {
			if err := os.Symlink(target, link); err != nil {
				return
			}
		}
		r, err := Open(root, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Resolve(p)
		got2, err2 := r.Resolve(p)
		if got != got2 || (err == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %q %v / %q %v", got, err, got2, err2)
		}
		if err == nil {
			if !within(realRoot, got) {
				t.Fatalf("Resolve(%q) = %q, outside %s", p, got, realRoot)
			}
			if real := osResolve(got); !within(realRoot, real) {
				t.Fatalf("link l -> %q: Resolve(%q) = %q, which the system resolves to %q, outside the root", target, p, got, real)
			}
		}
		if data, err := r.ReadFile(p); err == nil && string(data) == secret {
			t.Fatalf("link l -> %q: ReadFile(%q) read the secret outside the root", target, p)
		}
	})
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// osResolve resolves the symlinks of the longest existing prefix of abs, as
// the system would when opening it, and appends the rest.
func osResolve(abs string) string {
	rest := ""
	for cur := abs; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return abs // a loop or worse: the system would not open it either
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
