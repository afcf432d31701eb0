package repofs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Kustomize returns the view as the filesystem kustomize builds from:
// read-only (a build has no business changing the checkout) and confined.
// Relative paths are relative to the root. rewrite, when set, may change a
// file's content as kustomize reads it (given its resolved absolute path).
func (r *Root) Kustomize(rewrite func(real string, data []byte) ([]byte, error)) filesys.FileSystem {
	return &kfs{r: r, rewrite: rewrite}
}

type kfs struct {
	r       *Root
	rewrite func(real string, data []byte) ([]byte, error)
}

var _ filesys.FileSystem = (*kfs)(nil)

func (k *kfs) refuseWrite(p string) error {
	return k.r.note(fmt.Errorf("kustomize tried to write %s; the repository is read-only while rendering", k.r.Rel(k.r.Abs(p))))
}

func (k *kfs) Create(p string) (filesys.File, error) { return nil, k.refuseWrite(p) }
func (k *kfs) Mkdir(p string) error                  { return k.refuseWrite(p) }
func (k *kfs) MkdirAll(p string) error               { return k.refuseWrite(p) }
func (k *kfs) RemoveAll(p string) error              { return k.refuseWrite(p) }
func (k *kfs) WriteFile(p string, _ []byte) error    { return k.refuseWrite(p) }

func (k *kfs) IsDir(p string) bool                { return k.r.IsDir(p) }
func (k *kfs) Exists(p string) bool               { return k.r.Exists(p) }
func (k *kfs) ReadDir(p string) ([]string, error) { return k.r.ReadDir(p) }

func (k *kfs) ReadFile(p string) ([]byte, error) {
	data, err := k.r.ReadFile(p)
	if err != nil || k.rewrite == nil {
		return data, err
	}
	real, err := k.r.Resolve(p)
	if err != nil {
		return nil, err
	}
	return k.rewrite(real, data)
}

func (k *kfs) Open(p string) (filesys.File, error) {
	data, err := k.ReadFile(p)
	if err != nil {
		return nil, err
	}
	info, err := k.r.Stat(p)
	if err != nil {
		return nil, err
	}
	return &roFile{Reader: bytes.NewReader(data), info: info}, nil
}

// CleanedAbs splits p into a confirmed folder and a file name, symlinks
// resolved, as kustomize's on-disk filesystem does.
func (k *kfs) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	real, err := k.r.Resolve(p)
	if err != nil {
		return "", "", err
	}
	info, err := k.r.Stat(real)
	if err != nil {
		return "", "", fmt.Errorf("evalsymlink failure on '%s' : %w", p, err)
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(real), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

// Glob supports patterns in the last path element, which is what
// kustomize's loaders pass.
func (k *kfs) Glob(pattern string) ([]string, error) {
	dir, base := filepath.Split(k.r.Abs(pattern))
	if strings.ContainsAny(dir, "*?[\\") {
		return nil, fmt.Errorf("glob %q: patterns are supported in the last path element only", k.r.Rel(pattern))
	}
	if !k.r.IsDir(dir) {
		return nil, nil
	}
	names, err := k.r.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		ok, err := filepath.Match(base, n)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out, nil
}

func (k *kfs) Walk(p string, fn filepath.WalkFunc) error {
	return k.r.Walk(k.r.Abs(p), func(q string, info fs.FileInfo) error {
		return fn(q, info, nil)
	})
}

type roFile struct {
	*bytes.Reader
	info os.FileInfo
}

func (f *roFile) Write([]byte) (int, error)  { return 0, fmt.Errorf("read-only") }
func (f *roFile) Close() error               { return nil }
func (f *roFile) Stat() (os.FileInfo, error) { return f.info, nil }
