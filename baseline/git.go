package baseline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

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
func fromGit(spec, rev string, head *repofs.Root, rel string, opts render.Options) (*render.Result, string, error) {
	realRoot, root := head.Dir(), head.Dir()
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

	// The revision is shown at the checkout's own path, so that messages
	// name files alike, but nothing is read from the disk there.
	o := opts
	o.Repo = repofs.FromGit(realRoot, rootTree, head.Limits())
	res, err := render.Render(filepath.Join(realRoot, filepath.FromSlash(rel)), o)
	if err != nil {
		var re *render.Error
		if errors.As(err, &re) {
			return nil, "", &Error{Spec: spec, Msg: fmt.Sprintf("rendering %s at %s failed: %s", rel, short, re.Error()),
				Hint: "the baseline revision must render; choose another revision or use a lock file"}
		}
		return nil, "", &Error{Spec: spec, Msg: fmt.Sprintf("rendering %s at %s failed: %v", rel, short, err)}
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
