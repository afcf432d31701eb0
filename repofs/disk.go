package repofs

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

var osStat = os.Stat

// disk is a checkout on disk.
type disk struct{ root string }

func (d disk) path(rel string) string { return filepath.Join(d.root, filepath.FromSlash(rel)) }

func (d disk) lstat(rel string) (fs.FileInfo, error) { return os.Lstat(d.path(rel)) }

func (d disk) readlink(rel string) (string, error) { return os.Readlink(d.path(rel)) }

func (d disk) readDir(rel string) ([]string, error) {
	entries, err := os.ReadDir(d.path(rel))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// readFile opens without following a final symlink and without blocking on
// a FIFO that replaced the file since it was checked, then confirms it is
// still a regular file.
func (d disk) readFile(rel string, max int64) ([]byte, error) {
	f, err := os.OpenFile(d.path(rel), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &NotRegularError{Path: rel}
	}
	return io.ReadAll(io.LimitReader(f, max+1))
}
