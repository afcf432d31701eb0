package cache

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPutGetAndTrim(t *testing.T) {
	dir := filepath.Join(t.TempDir(), DirName)
	s, err := Open(dir, 4000)
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) Key { h := NewHasher("test"); h.String(strings.Repeat("k", i)); return h.Key() }
	var got []string
	if s.Get(key(0), &got) {
		t.Fatal("a hit in an empty cache")
	}
	// Concurrent writers of the same entry (two generations at once) leave
	// one whole entry.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Put(key(0), []string{"row"}) }()
	}
	wg.Wait()
	if !s.Get(key(0), &got) || len(got) != 1 || got[0] != "row" {
		t.Fatalf("got %v", got)
	}
	// Entries of ~1 KB: the bound of 4,000 bytes keeps the recently used.
	old := time.Now().Add(-time.Hour)
	for i := 1; i <= 10; i++ {
		s.Put(key(i), []string{strings.Repeat("x", 1000)})
		os.Chtimes(s.path(key(i)), old.Add(time.Duration(i)*time.Second), old.Add(time.Duration(i)*time.Second))
	}
	s.Get(key(1), &got) // used now: kept
	s.Trim()
	var total int64
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	if total > 3000 {
		t.Errorf("%d bytes after Trim, want at most 3/4 of the 4000 bound", total)
	}
	if !s.Get(key(1), &got) || !s.Get(key(10), &got) || s.Get(key(2), &got) {
		t.Error("Trim did not drop the least recently used first")
	}
}

func TestKeysDifferByPartBoundaries(t *testing.T) {
	a, b := NewHasher("x"), NewHasher("x")
	a.String("ab")
	a.String("c")
	b.String("a")
	b.String("bc")
	if a.Key() == b.Key() {
		t.Error("parts \"ab\",\"c\" and \"a\",\"bc\" give the same key")
	}
}

func TestOpenRefusesFoldersOthersControl(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o770)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(base, "link")
	os.Symlink(t.TempDir(), link)
	for _, d := range []string{open, file, link} {
		if _, err := Open(d, DefaultMaxBytes); err == nil {
			t.Errorf("%s: opened", filepath.Base(d))
		}
	}
}
