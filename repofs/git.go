package repofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// FromGit returns a view of tree (one revision's root folder), known by
// the absolute path dir, read from the object store on demand: a baseline
// revision is never written to disk, so nothing can be left behind.
func FromGit(dir string, tree *object.Tree, lim Limits) *Root {
	return &Root{dir: filepath.Clean(dir), b: gitTree{tree: tree}, lim: lim.withDefaults()}
}

type gitTree struct{ tree *object.Tree }

func notExist(rel string, err error) error {
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrFileNotFound) {
		return &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
	}
	return err
}

func (g gitTree) entry(rel string) (*object.TreeEntry, error) {
	e, err := g.tree.FindEntry(rel)
	if err != nil {
		return nil, notExist(rel, err)
	}
	return e, nil
}

func (g gitTree) lstat(rel string) (fs.FileInfo, error) {
	if rel == "." {
		return fileInfo{name: ".", mode: fs.ModeDir | 0o755}, nil
	}
	e, err := g.entry(rel)
	if err != nil {
		return nil, err
	}
	name := path.Base(rel)
	switch e.Mode {
	case filemode.Dir:
		return fileInfo{name: name, mode: fs.ModeDir | 0o755}, nil
	case filemode.Symlink:
		return fileInfo{name: name, mode: fs.ModeSymlink | 0o777}, nil
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		f, err := g.tree.TreeEntryFile(e)
		if err != nil {
			return nil, err
		}
		return fileInfo{name: name, size: f.Size, mode: 0o644}, nil
	default: // a submodule: not part of this tree
		return nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
	}
}

func (g gitTree) blob(rel string, max int64) ([]byte, error) {
	e, err := g.entry(rel)
	if err != nil {
		return nil, err
	}
	f, err := g.tree.TreeEntryFile(e)
	if err != nil {
		return nil, err
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(io.LimitReader(rd, max+1))
}

func (g gitTree) readlink(rel string) (string, error) {
	b, err := g.blob(rel, 4096)
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%s: symlink target too long", rel)
	}
	return string(b), nil
}

func (g gitTree) readFile(rel string, max int64) ([]byte, error) { return g.blob(rel, max) }

func (g gitTree) readDir(rel string) ([]string, error) {
	t := g.tree
	if rel != "." {
		var err error
		if t, err = g.tree.Tree(rel); err != nil {
			return nil, notExist(rel, err)
		}
	}
	names := make([]string, 0, len(t.Entries))
	for _, e := range t.Entries {
		if e.Mode != filemode.Submodule {
			names = append(names, e.Name)
		}
	}
	return names, nil
}
