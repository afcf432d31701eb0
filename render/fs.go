package render

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// confinedFS is the only window kustomize gets onto the disk. The repository
// is untrusted, so every path is resolved (symlinks included) and must stay
// inside root; reads are limited to regular files of bounded size; writes are
// refused because a build has no business changing the checkout.
//
// Kustomize turns many filesystem errors into vague messages ("must be a
// directory"), so the first violation is remembered and reported instead.
type confinedFS struct {
	disk      filesys.FileSystem
	root      string // absolute, symlinks resolved
	maxFile   int64
	maxTotal  int64
	mu        sync.Mutex
	total     int64
	violation error
	// rewrite, when set, may change a file's content as kustomize reads it.
	rewrite func(real string, data []byte) ([]byte, error)
}

func newConfinedFS(root string, maxFile, maxTotal int64) (*confinedFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	return &confinedFS{disk: filesys.MakeFsOnDisk(), root: real, maxFile: maxFile, maxTotal: maxTotal}, nil
}

// errOutside is the violation kept for the final message.
type errOutside struct{ path, root string }

func (e *errOutside) Error() string {
	return fmt.Sprintf("%s is outside the repository root %s", e.path, e.root)
}

func (c *confinedFS) note(err error) error {
	c.mu.Lock()
	if c.violation == nil {
		c.violation = err
	}
	c.mu.Unlock()
	return err
}

func (c *confinedFS) firstViolation() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.violation
}

// resolve returns the absolute, symlink-free form of p, or an error when p
// (or what it points to) lies outside the root. A path that does not exist
// yet is judged by its deepest existing ancestor.
func (c *confinedFS) resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	real, err := evalExisting(abs)
	if err != nil {
		return "", err
	}
	if !within(c.root, real) {
		return "", c.note(&errOutside{path: c.rel(abs), root: c.root})
	}
	return real, nil
}

func (c *confinedFS) rel(abs string) string {
	if r, err := filepath.Rel(c.root, abs); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return abs
}

// evalExisting resolves symlinks in the longest existing prefix of abs and
// appends the rest unchanged.
func evalExisting(abs string) (string, error) {
	rest := ""
	cur := abs
	for {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !os.IsNotExist(err) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

func (c *confinedFS) refuseWrite(p string) error {
	return c.note(fmt.Errorf("kustomize tried to write %s; the repository is read-only while rendering", c.rel(p)))
}

func (c *confinedFS) Create(p string) (filesys.File, error) { return nil, c.refuseWrite(p) }
func (c *confinedFS) Mkdir(p string) error                  { return c.refuseWrite(p) }
func (c *confinedFS) MkdirAll(p string) error               { return c.refuseWrite(p) }
func (c *confinedFS) RemoveAll(p string) error              { return c.refuseWrite(p) }
func (c *confinedFS) WriteFile(p string, _ []byte) error    { return c.refuseWrite(p) }

func (c *confinedFS) Open(p string) (filesys.File, error) {
	real, err := c.checkRegular(p)
	if err != nil {
		return nil, err
	}
	return c.disk.Open(real)
}

func (c *confinedFS) IsDir(p string) bool {
	real, err := c.resolve(p)
	return err == nil && c.disk.IsDir(real)
}

func (c *confinedFS) Exists(p string) bool {
	real, err := c.resolve(p)
	return err == nil && c.disk.Exists(real)
}

func (c *confinedFS) ReadDir(p string) ([]string, error) {
	real, err := c.resolve(p)
	if err != nil {
		return nil, err
	}
	return c.disk.ReadDir(real)
}

// CleanedAbs must keep the caller's spelling of the path (kustomize compares
// roots by it) while refusing anything that resolves outside the root.
func (c *confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if _, err := c.resolve(p); err != nil {
		return "", "", err
	}
	return c.disk.CleanedAbs(p)
}

func (c *confinedFS) Glob(pattern string) ([]string, error) {
	if _, err := c.resolve(filepath.Dir(pattern)); err != nil {
		return nil, err
	}
	matches, err := c.disk.Glob(pattern)
	if err != nil {
		return nil, err
	}
	kept := matches[:0]
	for _, m := range matches {
		if _, err := c.resolve(m); err == nil {
			kept = append(kept, m)
		}
	}
	return kept, nil
}

func (c *confinedFS) Walk(p string, fn filepath.WalkFunc) error {
	if _, err := c.resolve(p); err != nil {
		return err
	}
	return c.disk.Walk(p, func(path string, info os.FileInfo, err error) error {
		if err == nil {
			if _, rerr := c.resolve(path); rerr != nil {
				return rerr
			}
		}
		return fn(path, info, err)
	})
}

func (c *confinedFS) ReadFile(p string) ([]byte, error) {
	real, err := c.checkRegular(p)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(real)
	if err != nil {
		return nil, err
	}
	if err := checkAliases(data); err != nil {
		return nil, c.note(fmt.Errorf("%s %v", c.rel(real), err))
	}
	if c.rewrite != nil {
		if data, err = c.rewrite(real, data); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.total += int64(len(data))
	over := c.total > c.maxTotal
	c.mu.Unlock()
	if over {
		return nil, c.note(fmt.Errorf("the repository files read while rendering exceed %d MiB; raise max-input-mb if this is intended", c.maxTotal>>20))
	}
	return data, nil
}

// checkRegular refuses devices, FIFOs and oversized files before they are
// opened: reading /dev/zero or a pipe placed in the repo must not hang or
// exhaust memory.
func (c *confinedFS) checkRegular(p string) (string, error) {
	real, err := c.resolve(p)
	if err != nil {
		return "", err
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		// kustomize probes every resource as a file before trying it as a
		// directory: not a violation.
		return "", fmt.Errorf("%s is a directory", c.rel(real))
	}
	if !info.Mode().IsRegular() {
		return "", c.note(fmt.Errorf("%s is not a regular file", c.rel(real)))
	}
	if info.Size() > c.maxFile {
		return "", c.note(fmt.Errorf("%s is %d MiB, over the %d MiB limit for one file", c.rel(real), info.Size()>>20, c.maxFile>>20))
	}
	return real, nil
}

var _ filesys.FileSystem = (*confinedFS)(nil)
