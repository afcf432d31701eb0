// Package repofs is the one view kyverno-gate has of an untrusted policy
// repository. Every read of repository content — kustomize's, the Kyverno
// test files and every path they name, baselines, witnesses, the source
// lines reports quote — goes through a Root, which resolves each path itself
// (symlinks included, one component at a time) and refuses anything that
// lands outside the root before it is opened. Reads are limited to regular
// files of bounded size and a bounded total, and YAML whose aliases would
// expand without bound is refused.
//
// A Root is backed by the checkout on disk or by a git tree in memory (a
// git baseline is never written to disk); both share the same resolution.
// A read of repository content that does not go through a Root is a bug.
package repofs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Limits bound what one Root reads.
type Limits struct {
	MaxFileBytes  int64 // one file
	MaxTotalBytes int64 // every file read, added up
}

// Defaults: far above any real policy repository, far below what would hurt
// a sidecar with a small memory limit.
const (
	DefaultMaxFileBytes  = 16 << 20
	DefaultMaxTotalBytes = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	return l
}

// maxLinks bounds symlink hops in one resolution, as the kernel does.
const maxLinks = 40

// backend reads a tree by clean slash-separated paths relative to its root
// ("." is the root). It never follows symlinks: Root does.
type backend interface {
	lstat(rel string) (fs.FileInfo, error)
	readlink(rel string) (string, error)
	// readFile reads a regular file, at most max+1 bytes.
	readFile(rel string, max int64) ([]byte, error)
	readDir(rel string) ([]string, error)
}

// Root is a confined, read-only view of one repository.
type Root struct {
	dir string // absolute; for disk, symlinks resolved
	b   backend
	lim Limits

	mu        sync.Mutex
	total     int64
	violation error
}

// Open returns the view of the checkout at dir.
func Open(dir string, lim Limits) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	info, err := osStat(real)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return &Root{dir: real, b: disk{root: real}, lim: lim.withDefaults()}, nil
}

// Dir is the absolute path of the root.
func (r *Root) Dir() string { return r.dir }

// Limits are the read limits in force.
func (r *Root) Limits() Limits { return r.lim }

// WithDir returns a Root with the same contents and limits known by another
// absolute path (a git tree shown at the checkout's own path, so that
// messages read alike); it has its own read total.
func (r *Root) WithDir(dir string) *Root {
	return &Root{dir: filepath.Clean(dir), b: r.b, lim: r.lim}
}

// OutsideError is a path that resolves outside the root.
type OutsideError struct {
	Path string // as the repository spelt it, or relative to the root
	Root string
}

func (e *OutsideError) Error() string {
	return fmt.Sprintf("%s is outside the repository root %s", e.Path, e.Root)
}

// NotRegularError is a device, FIFO or socket where a file was expected.
type NotRegularError struct{ Path string }

func (e *NotRegularError) Error() string { return e.Path + " is not a regular file" }

// TooLargeError is a file or a total over the limits.
type TooLargeError struct {
	Path  string // "" for the total
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("the repository files read exceed %s, the limit for one run", size(e.Limit))
	}
	return fmt.Sprintf("%s is over the %s limit for one file", e.Path, sizeAdj(e.Limit))
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func sizeAdj(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d-byte", n)
}

// note keeps the first violation: callers such as kustomize turn filesystem
// errors into vague messages, so the real reason is reported instead.
func (r *Root) note(err error) error {
	r.mu.Lock()
	if r.violation == nil {
		r.violation = err
	}
	r.mu.Unlock()
	return err
}

// Violation is the first confinement or limit violation met, if any.
func (r *Root) Violation() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.violation
}

// Rel names p relative to the root for messages (p itself when outside).
func (r *Root) Rel(p string) string {
	if !filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if rel, err := filepath.Rel(r.dir, p); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return rel
	}
	return p
}

// Abs is the absolute path of rel (relative to the root).
func (r *Root) Abs(rel string) string {
	if filepath.IsAbs(rel) {
		return filepath.Clean(rel)
	}
	return filepath.Join(r.dir, rel)
}

// lexical turns p (absolute, or relative to the root) into a clean
// slash-separated path relative to the root, or fails when p is not below
// the root even before symlinks are considered.
func (r *Root) lexical(p string) (string, bool) {
	abs := r.Abs(p)
	if abs == r.dir {
		return ".", true
	}
	if !strings.HasPrefix(abs, r.dir+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(abs[len(r.dir)+1:]), true
}

// resolve follows p through the tree, symlinks included, and returns the
// clean relative path it ends at. A missing component ends the walk: the
// rest is appended unchanged (it cannot be a symlink, since it does not
// exist). Any step outside the root is a violation.
func (r *Root) resolve(p string) (string, error) {
	outside := func() error { return r.note(&OutsideError{Path: r.Rel(p), Root: r.dir}) }
	rel, ok := r.lexical(p)
	if !ok {
		return "", outside()
	}
	todo := splitPath(rel)
	var done []string // resolved components, each an existing non-link
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) == 0 {
				return "", outside()
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(append([]string{}, done...), c)...)
		info, err := r.b.lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			if slices.Contains(todo, "..") {
				// A later ".." climbs back out of the missing folder
				// (a link's target, e.g. "missing/../out/x", reaches
				// here uncleaned): keep resolving, so that a link it
				// leads through is followed and judged, not read by
				// the system behind our back.
				done = append(done, c)
				continue
			}
			rest := path.Join(append([]string{cur}, todo...)...)
			if rest == ".." || strings.HasPrefix(rest, "../") {
				return "", outside()
			}
			return rest, nil
		}
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", r.Rel(p))
		}
		target, err := r.b.readlink(cur)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			trel, ok := r.lexical(target)
			if !ok {
				return "", outside()
			}
			done = nil
			todo = append(splitPath(trel), todo...)
		} else {
			todo = append(splitPath(filepath.ToSlash(target)), todo...)
		}
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

func splitPath(rel string) []string {
	var out []string
	for _, c := range strings.Split(rel, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// Resolve returns the absolute, symlink-free path of p (absolute, or
// relative to the root), or an *OutsideError. p need not exist.
func (r *Root) Resolve(p string) (string, error) {
	rel, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	return r.Abs(filepath.FromSlash(rel)), nil
}

// Stat follows symlinks (inside the root only).
func (r *Root) Stat(p string) (fs.FileInfo, error) {
	rel, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	return r.b.lstat(rel)
}

// IsDir reports whether p is a folder inside the root.
func (r *Root) IsDir(p string) bool {
	info, err := r.Stat(p)
	return err == nil && info.IsDir()
}

// Exists reports whether p exists inside the root.
func (r *Root) Exists(p string) bool {
	_, err := r.Stat(p)
	return err == nil
}

// ReadDir lists the names in folder p, sorted.
func (r *Root) ReadDir(p string) ([]string, error) {
	rel, err := r.resolve(p)
	if err != nil {
		return nil, err
	}
	names, err := r.b.readDir(rel)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// checkRegular resolves p and refuses folders, devices, FIFOs and oversized
// files before they are opened: reading /dev/zero or a pipe placed in the
// repository must not hang or exhaust memory.
func (r *Root) checkRegular(p string) (string, error) {
	rel, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	name := r.Rel(r.Abs(filepath.FromSlash(rel)))
	info, err := r.b.lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		// kustomize probes every resource as a file before trying it as a
		// folder: not a violation.
		return "", fmt.Errorf("%s is a directory", name)
	}
	if !info.Mode().IsRegular() {
		return "", r.note(&NotRegularError{Path: name})
	}
	if info.Size() > r.lim.MaxFileBytes {
		return "", r.note(&TooLargeError{Path: name, Limit: r.lim.MaxFileBytes})
	}
	return rel, nil
}

// CheckFile confirms that p is a regular file inside the root within the
// size limit, without reading it: for readers that must open the file
// themselves (Kyverno's loaders take paths).
func (r *Root) CheckFile(p string) error {
	_, err := r.checkRegular(p)
	return err
}

// ReadFile reads a regular file inside the root, within the limits.
func (r *Root) ReadFile(p string) ([]byte, error) {
	rel, err := r.checkRegular(p)
	if err != nil {
		return nil, err
	}
	name := r.Rel(r.Abs(filepath.FromSlash(rel)))
	data, err := r.b.readFile(rel, r.lim.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > r.lim.MaxFileBytes { // grew since the check
		return nil, r.note(&TooLargeError{Path: name, Limit: r.lim.MaxFileBytes})
	}
	r.mu.Lock()
	r.total += int64(len(data))
	over := r.total > r.lim.MaxTotalBytes
	r.mu.Unlock()
	if over {
		return nil, r.note(&TooLargeError{Limit: r.lim.MaxTotalBytes})
	}
	if err := CheckYAML(data); err != nil {
		return nil, r.note(fmt.Errorf("%s %v", name, err))
	}
	return data, nil
}

// ReadForDigest reads a regular file inside the root, within the size
// limit of one file, for a digest only (the result cache's keys): it does
// not count toward the total, which bounds what parsers are given, and the
// content is not checked as YAML, since nothing parses it. The caller
// bounds how much it digests.
func (r *Root) ReadForDigest(p string) ([]byte, error) {
	rel, err := r.checkRegular(p)
	if err != nil {
		return nil, err
	}
	data, err := r.b.readFile(rel, r.lim.MaxFileBytes)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > r.lim.MaxFileBytes {
		return nil, &TooLargeError{Path: r.Rel(r.Abs(filepath.FromSlash(rel))), Limit: r.lim.MaxFileBytes}
	}
	return data, nil
}

// WalkFunc is called for each entry below a walked folder with its path
// (absolute, as spelt from the walked folder) and what it is. Symlinks are
// reported as symlinks and not followed, so a walk never leaves the root.
type WalkFunc func(p string, info fs.FileInfo) error

// SkipDir, returned by a WalkFunc for a folder, skips its contents.
var SkipDir = fs.SkipDir

// Walk visits p and everything below it in name order.
func (r *Root) Walk(p string, fn WalkFunc) error {
	rel, err := r.resolve(p)
	if err != nil {
		return err
	}
	info, err := r.b.lstat(rel)
	if err != nil {
		return err
	}
	return r.walk(r.Abs(p), rel, info, fn, 0)
}

func (r *Root) walk(abs, rel string, info fs.FileInfo, fn WalkFunc, depth int) error {
	if depth > 256 {
		return fmt.Errorf("%s: folders nested more than 256 deep", r.Rel(abs))
	}
	if err := fn(abs, info); err != nil {
		if errors.Is(err, SkipDir) && info.IsDir() {
			return nil
		}
		return err
	}
	if !info.IsDir() {
		return nil
	}
	names, err := r.b.readDir(rel)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		crel := path.Join(rel, n)
		ci, err := r.b.lstat(crel)
		if err != nil {
			return err
		}
		if err := r.walk(filepath.Join(abs, n), crel, ci, fn, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// CheckTree confirms that p, and when it is a folder everything below it,
// resolves inside the root and is a folder or a regular file within the
// size limit: for readers that walk a folder themselves.
func (r *Root) CheckTree(p string) error {
	info, err := r.Stat(p)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return r.CheckFile(p)
	}
	real, err := r.Resolve(p)
	if err != nil {
		return err
	}
	return r.Walk(real, func(q string, info fs.FileInfo) error {
		if info.IsDir() {
			return nil
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := r.Stat(q)
			if err != nil {
				return err
			}
			if target.IsDir() {
				return r.CheckTree(q)
			}
		}
		return r.CheckFile(q)
	})
}

// fileInfo is a FileInfo for the in-memory backend.
type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return time.Time{} }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }
