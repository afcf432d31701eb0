// Package repotest is the one harness for tests that need a policy
// repository on disk: write files or copy a tree (the bundled example),
// edit them, commit them with git, the way a user's repository changes
// between two generations. Tests of every package use it instead of their
// own copies of the same helpers; it is test support, never linked into
// the binary.
package repotest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a repository in a test's temporary folder.
type Repo struct {
	t   testing.TB
	Dir string // the absolute root
	git *git.Repository
}

// New writes files (relative path -> content) into a new temporary folder.
func New(t testing.TB, files map[string]string) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: t.TempDir()}
	r.WriteAll(files)
	return r
}

// Copy copies the regular files and folders of src into a new temporary
// folder (symbolic links and .git are left out).
func Copy(t testing.TB, src string) *Repo {
	t.Helper()
	r := &Repo{t: t, Dir: t.TempDir()}
	CopyTree(t, src, r.Dir)
	return r
}

// WriteTree writes files into a new temporary folder and returns it.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	return New(t, files).Dir
}

// CopyTree copies the regular files and folders of src into dst, leaving
// out symbolic links and .git.
func CopyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := fs.WalkDir(os.DirFS(src), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		switch {
		case d.IsDir() && d.Name() == ".git":
			return fs.SkipDir
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(p)))
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Path is rel (slash-separated) under the root.
func (r *Repo) Path(rel string) string { return filepath.Join(r.Dir, filepath.FromSlash(rel)) }

// Write writes one file, making its folders.
func (r *Repo) Write(rel, content string) {
	r.t.Helper()
	p := r.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// WriteAll writes several files.
func (r *Repo) WriteAll(files map[string]string) {
	r.t.Helper()
	for rel, content := range files {
		r.Write(rel, content)
	}
}

// Read returns one file's content.
func (r *Repo) Read(rel string) string {
	r.t.Helper()
	b, err := os.ReadFile(r.Path(rel))
	if err != nil {
		r.t.Fatal(err)
	}
	return string(b)
}

// Edit replaces the first old in rel by new; old must be there, so that
// a fixture that changed under the test fails it instead of testing
// nothing.
func (r *Repo) Edit(rel, old, new string) {
	r.t.Helper()
	s := r.Read(rel)
	if !strings.Contains(s, old) {
		r.t.Fatalf("%s does not contain %q", rel, old)
	}
	r.Write(rel, strings.Replace(s, old, new, 1))
}

// Commit commits every file (git init on the first call) and returns the
// commit's hash. Commits are dated one second apart from a fixed time, so
// the hashes are the same on every run.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	if r.git == nil {
		g, err := git.PlainInit(r.Dir, false)
		if err != nil {
			r.t.Fatal(err)
		}
		r.git = g
	}
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	n := 0
	if head, err := r.git.Head(); err == nil {
		if c, err := r.git.CommitObject(head.Hash()); err == nil {
			n = int(c.Author.When.Sub(epoch) / time.Second)
		}
		n++
	}
	sig := &object.Signature{Name: "test", Email: "test@example.com", When: epoch.Add(time.Duration(n) * time.Second)}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// At is the harness for an existing folder (one a test made itself).
func At(t testing.TB, dir string) *Repo { return &Repo{t: t, Dir: dir} }
