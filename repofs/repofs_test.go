package repofs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// tree lays out a repository inside an outer folder that also holds a
// secret, so that every escape has something real to reach.
func tree(t *testing.T) (outer, root string) {
	t.Helper()
	outer = t.TempDir()
	root = filepath.Join(outer, "repo")
	files := map[string]string{
		"secret.yaml":            "token: s3cr3t\n",
		"repo/base/policy.yaml":  "kind: ClusterPolicy\n",
		"repo/overlays/a/k.yaml": "resources: [../../base]\n",
		"repo/big.yaml":          strings.Repeat("x", 2048),
		"repo/clean/a.yaml":      "a: 1\n",
	}
	for p, c := range files {
		f := filepath.Join(outer, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"repo/in-rel":        "base/policy.yaml",
		"repo/in-abs":        filepath.Join(root, "base", "policy.yaml"),
		"repo/out-rel":       "../secret.yaml",
		"repo/out-abs":       filepath.Join(outer, "secret.yaml"),
		"repo/out-dir":       "..",
		"repo/chain":         "in-rel",
		"repo/chain-out":     "out-rel",
		"repo/loop-a":        "loop-b",
		"repo/loop-b":        "loop-a",
		"repo/base/up":       "../..",
		"repo/overlays/a/up": "../../base",
		"repo/etc":           "/etc",
		"repo/clean/l":       "../in-rel",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(outer, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	return outer, root
}

func TestReadFile(t *testing.T) {
	_, root := tree(t)
	r, err := Open(root, Limits{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path    string
		want    string // content, or
		wantErr any    // the error type
	}{
		{path: "base/policy.yaml", want: "kind: ClusterPolicy\n"},
		{path: filepath.Join(root, "base/policy.yaml"), want: "kind: ClusterPolicy\n"},
		{path: "in-rel", want: "kind: ClusterPolicy\n"},
		{path: "in-abs", want: "kind: ClusterPolicy\n"},
		{path: "chain", want: "kind: ClusterPolicy\n"},
		{path: "overlays/a/up/policy.yaml", want: "kind: ClusterPolicy\n"},
		{path: "overlays/a/../../base/policy.yaml", want: "kind: ClusterPolicy\n"},
		{path: "out-rel", wantErr: &OutsideError{}},
		{path: "out-abs", wantErr: &OutsideError{}},
		{path: "out-dir/secret.yaml", wantErr: &OutsideError{}},
		{path: "chain-out", wantErr: &OutsideError{}},
		{path: "base/up/secret.yaml", wantErr: &OutsideError{}},
		{path: "../secret.yaml", wantErr: &OutsideError{}},
		{path: "base/../../secret.yaml", wantErr: &OutsideError{}},
		{path: "missing/../../secret.yaml", wantErr: &OutsideError{}},
		{path: filepath.Join(filepath.Dir(root), "secret.yaml"), wantErr: &OutsideError{}},
		{path: "/etc/passwd", wantErr: &OutsideError{}},
		{path: "etc/passwd", wantErr: &OutsideError{}},
		{path: "fifo.yaml", wantErr: &NotRegularError{}},
		{path: "big.yaml", wantErr: &TooLargeError{}},
		{path: "loop-a", wantErr: "too many levels"},
		{path: "nothing.yaml", wantErr: fs.ErrNotExist},
	} {
		t.Run(tc.path, func(t *testing.T) {
			done := make(chan struct{})
			var data []byte
			go func() { data, err = r.ReadFile(tc.path); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second): // only a blocking open (a FIFO) gets here
				t.Fatal("ReadFile blocked")
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil || string(data) != tc.want {
					t.Fatalf("got %q, %v; want %q", data, err, tc.want)
				}
			case string:
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, want an error with %q", err, want)
				}
			case error:
				if !errors.Is(err, want) && !sameType(err, want) {
					t.Fatalf("got %T %v, want %T", err, err, want)
				}
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("message carries the outside file's content: %v", err)
			}
		})
	}
}

func sameType(err error, want error) bool {
	switch want.(type) {
	case *OutsideError:
		var e *OutsideError
		return errors.As(err, &e)
	case *NotRegularError:
		var e *NotRegularError
		return errors.As(err, &e)
	case *TooLargeError:
		var e *TooLargeError
		return errors.As(err, &e)
	}
	return false
}

func TestCheckTreeAndWalk(t *testing.T) {
	_, root := tree(t)
	r, err := Open(root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckTree("clean"); err != nil {
		t.Errorf("clean: %v", err)
	}
	// base/up leaves the repository, overlays/a/up leads to it, and the
	// root holds out-rel.
	for _, p := range []string{"base", "overlays", "."} {
		var outside *OutsideError
		if err := r.CheckTree(p); !errors.As(err, &outside) {
			t.Errorf("%s: got %v, want an outside error", p, err)
		}
	}
	var seen []string
	if err := r.Walk("overlays", func(p string, info fs.FileInfo) error {
		seen = append(seen, r.Rel(p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, ","); got != "overlays,overlays/a,overlays/a/k.yaml,overlays/a/up" {
		t.Errorf("walk saw %s", got)
	}
}

func TestTotalLimit(t *testing.T) {
	_, root := tree(t)
	r, _ := Open(root, Limits{MaxTotalBytes: 30})
	if _, err := r.ReadFile("base/policy.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFile("base/policy.yaml"); !sameType(err, &TooLargeError{}) {
		t.Fatalf("second read: %v", err)
	}
	if r.Violation() == nil {
		t.Error("the violation was not kept")
	}
}

// A git tree is read from the object store with the same confinement.
func TestFromGit(t *testing.T) {
	outer, root := tree(t)
	os.Remove(filepath.Join(root, "fifo.yaml"))
	repo, err := git.PlainInit(root, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if err := wt.AddGlob("."); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("c", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@t", When: time.Unix(0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := repo.CommitObject(h)
	tr, _ := c.Tree()
	// Shown at another path: nothing may be read from disk there.
	shown := filepath.Join(outer, "elsewhere")
	g := FromGit(shown, tr, Limits{MaxFileBytes: 1024})
	for path, want := range map[string]string{
		"base/policy.yaml": "kind: ClusterPolicy\n", "in-rel": "kind: ClusterPolicy\n",
		"overlays/a/up/policy.yaml": "kind: ClusterPolicy\n",
		"out-rel":                   "outside", "out-abs": "outside", "in-abs": "outside", "base/up/secret.yaml": "outside",
		"big.yaml": "limit", "loop-a": "too many",
	} {
		data, err := g.ReadFile(path)
		if strings.HasPrefix(want, "kind") {
			if err != nil || string(data) != want {
				t.Errorf("%s: got %q, %v", path, data, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
	}
	names, err := g.ReadDir("overlays/a")
	if err != nil || strings.Join(names, ",") != "k.yaml,up" {
		t.Errorf("ReadDir: %v %v", names, err)
	}
	if !g.IsDir(filepath.Join(shown, "base")) || g.Exists(filepath.Join(shown, "nothing")) {
		t.Error("IsDir/Exists disagree with the tree")
	}
}

// Reads for the result cache's keys do not count toward the total that
// bounds what parsers see: with the cache on, a run must read exactly what
// it could read with it off.
func TestReadForDigestIsNotCounted(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(strings.Repeat("a", 60)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir, Limits{MaxTotalBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := r.ReadForDigest(filepath.Join(dir, "a.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.ReadFile(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatalf("a read after digests failed: %v", err)
	}
	if _, err := r.ReadFile(filepath.Join(dir, "a.yaml")); err == nil {
		t.Fatal("the total is not enforced, so this test proves nothing")
	}
}
