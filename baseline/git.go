package baseline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kyverno-gate/kyverno-gate/render"
)

// maxEntries bounds the number of files and directories materialized from
// one revision.
const maxEntries = 200_000

// findGit walks up from root to the nearest folder holding .git (a
// directory, or a file as in worktrees and submodules) and returns it.
func findGit(root string) (string, bool) {
	for d := root; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d, true
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// fromGit renders rel (relative to root) as it was at revision rev.
func fromGit(spec, rev, root, rel string, opts render.Options) (*render.Result, string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, "", &Error{Spec: spec, Msg: err.Error()}
	}
	top, ok := findGit(realRoot)
	if !ok {
		return nil, "", &Error{Spec: spec, Msg: "no git history: there is no .git in " + root + " or above it",
			Hint: "Argo CD may exclude .git; use baseline auto with a lock file (kyverno-gate lock " + rel + ")"}
	}
	repo, err := git.PlainOpenWithOptions(top, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, "", &Error{Spec: spec, Msg: fmt.Sprintf("cannot open the git repository at %s: %v", top, err),
			Hint: "use baseline auto with a lock file"}
	}
	// The kyverno-gate root may be a folder inside the git repository.
	sub, err := filepath.Rel(top, realRoot)
	if err != nil {
		return nil, "", &Error{Spec: spec, Msg: err.Error()}
	}
	sub = filepath.ToSlash(sub)

	commit, err := resolveCommit(repo, rev)
	if err != nil {
		return nil, "", withSpec(spec, err)
	}
	short := commit.Hash.String()[:7]
	name := fmt.Sprintf("git:%s (%s)", rev, short)
	tree, err := commit.Tree()
	if err != nil {
		return nil, "", withSpec(spec, missingObjects(repo, err))
	}

	// The root itself, then the rendered directory, may not exist yet at
	// that revision: then everything in head is new.
	rootTree := tree
	if sub != "." {
		rootTree, err = tree.Tree(sub)
		if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
			return &render.Result{Dir: rel}, fmt.Sprintf("git:%s (%s; %s did not exist then, so everything is new)", rev, short, sub), nil
		}
		if err != nil {
			return nil, "", withSpec(spec, missingObjects(repo, err))
		}
	}
	if rel != "." {
		e, err := rootTree.FindEntry(rel)
		if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) || (err == nil && e.Mode != filemode.Dir) {
			return &render.Result{Dir: rel}, fmt.Sprintf("git:%s (%s; %s did not exist then, so everything is new)", rev, short, rel), nil
		}
		if err != nil {
			return nil, "", withSpec(spec, missingObjects(repo, err))
		}
	}

	tmp, err := os.MkdirTemp("", "kyverno-gate-baseline-")
	if err != nil {
		return nil, "", &Error{Spec: spec, Msg: err.Error()}
	}
	defer os.RemoveAll(tmp)
	dest := filepath.Join(tmp, "root")
	if err := os.Mkdir(dest, 0o700); err != nil {
		return nil, "", &Error{Spec: spec, Msg: err.Error()}
	}
	skipped, err := materialize(rootTree, dest, opts.MaxFileBytes, opts.MaxTotalBytes)
	if err != nil {
		return nil, "", withSpec(spec, missingObjects(repo, err))
	}
	o := opts
	o.Root = dest
	res, err := render.Render(filepath.Join(dest, filepath.FromSlash(rel)), o)
	if err != nil {
		var re *render.Error
		if errors.As(err, &re) {
			return nil, "", &Error{Spec: spec, Msg: fmt.Sprintf("rendering %s at %s failed: %s", rel, short, re.Error()),
				Hint: "the baseline revision must render; choose another revision or use a lock file"}
		}
		return nil, "", &Error{Spec: spec, Msg: fmt.Sprintf("rendering %s at %s failed: %v", rel, short, err)}
	}
	for _, s := range skipped {
		res.Notes = append(res.Notes, fmt.Sprintf("baseline %s: skipped %s (larger than %d bytes)", name, s, opts.MaxFileBytes))
	}
	return res, name, nil
}

// resolveCommit resolves rev (a branch, tag, remote branch such as
// origin/main, short or full hash, HEAD~N, ...) to a commit, telling a
// shallow clone apart from an unknown revision.
func resolveCommit(repo *git.Repository, rev string) (*object.Commit, error) {
	shallow, _ := repo.Storer.Shallow()
	h, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		if len(shallow) > 0 && (errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrReferenceNotFound)) {
			return nil, &Error{Msg: fmt.Sprintf("revision %q is not in this shallow clone (%v)", rev, err),
				Hint: "shallow clone: fetch the history or use a lock file"}
		}
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, &Error{Msg: fmt.Sprintf("revision %q names a commit whose objects are missing (%v)", rev, err),
				Hint: "fetch the history or use a lock file"}
		}
		return nil, &Error{Msg: fmt.Sprintf("unknown revision %q (%v)", rev, err),
			Hint: "use a branch, tag, commit hash, HEAD~N or a remote branch such as origin/main that this checkout has fetched"}
	}
	c, err := repo.CommitObject(*h)
	if err != nil {
		return nil, missingObjects(repo, err)
	}
	return c, nil
}

// missingObjects explains an object that cannot be read.
func missingObjects(repo *git.Repository, err error) error {
	var be *Error
	if errors.As(err, &be) {
		return be
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if shallow, _ := repo.Storer.Shallow(); len(shallow) > 0 {
			return &Error{Msg: "objects of the revision are missing: " + err.Error(), Hint: "shallow clone: fetch the history or use a lock file"}
		}
		return &Error{Msg: "objects of the revision are missing: " + err.Error(), Hint: "fetch the history or use a lock file"}
	}
	return &Error{Msg: err.Error()}
}

func withSpec(spec string, err error) error {
	var be *Error
	if errors.As(err, &be) {
		c := *be
		c.Spec = spec
		return &c
	}
	return &Error{Spec: spec, Msg: err.Error()}
}

// materialize writes the regular files and symlinks of tree under dest.
// Regular files are written first and symlinks last, so no write ever goes
// through a symlink; every path is checked to stay inside dest, and names
// git itself would refuse (.., .git, absolute) are rejected. Files larger
// than maxFile are skipped (and returned), and the total is bounded by
// maxTotal.
func materialize(tree *object.Tree, dest string, maxFile, maxTotal int64) (skipped []string, err error) {
	type link struct{ name, target string }
	var links []link
	var total int64
	entries := 0
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if entries++; entries > maxEntries {
			return nil, fmt.Errorf("the revision has more than %d files", maxEntries)
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		p := filepath.Join(dest, filepath.FromSlash(name))
		if !within(dest, p) || p == dest {
			return nil, fmt.Errorf("tree entry %q leads outside the checkout", name)
		}
		switch e.Mode {
		case filemode.Dir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			blob, err := tree.TreeEntryFile(&e)
			if err != nil {
				return nil, err
			}
			if blob.Size > maxFile {
				skipped = append(skipped, name)
				continue
			}
			if total += blob.Size; total > maxTotal {
				return nil, fmt.Errorf("the revision holds more than %d bytes of files", maxTotal)
			}
			if err := writeBlob(p, blob, maxFile); err != nil {
				return nil, err
			}
		case filemode.Symlink:
			blob, err := tree.TreeEntryFile(&e)
			if err != nil {
				return nil, err
			}
			if blob.Size > 4096 {
				return nil, fmt.Errorf("symlink %s has a %d-byte target", name, blob.Size)
			}
			target, err := blob.Contents()
			if err != nil {
				return nil, err
			}
			links = append(links, link{name, target})
		default:
			// submodules (gitlinks) and anything else: not materialized
		}
	}
	for _, l := range links {
		p := filepath.Join(dest, filepath.FromSlash(l.name))
		if err := realParents(dest, p); err != nil {
			return nil, err
		}
		// The renderer confines every read to the root; a link leading
		// outside it fails there with a clear message, so the target is
		// kept as is.
		if err := os.Symlink(l.target, p); err != nil {
			return nil, err
		}
	}
	return skipped, nil
}

// checkName rejects tree entry names a malicious repository could use to
// escape or to plant a .git directory.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return fmt.Errorf("tree entry %q has an invalid name", name)
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "" || part == "." || part == "..":
			return fmt.Errorf("tree entry %q has an invalid name", name)
		case strings.EqualFold(part, ".git"):
			return fmt.Errorf("tree entry %q is a .git folder, which git never commits", name)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("tree entry %q has an invalid name", name)
	}
	return nil
}

// realParents checks that every folder between dest and p is a real folder
// (not a symlink) inside dest.
func realParents(dest, p string) error {
	rel, err := filepath.Rel(dest, filepath.Dir(p))
	if err != nil {
		return err
	}
	cur := dest
	if rel == "." {
		return nil
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		info, err := os.Lstat(cur)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("%s is not a folder in the checkout", cur)
		}
	}
	return nil
}

func writeBlob(p string, blob *object.File, maxFile int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	r, err := blob.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, maxFile+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxFile {
		err = fmt.Errorf("%s is larger than %d bytes", p, maxFile)
	}
	return err
}
