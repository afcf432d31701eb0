// Package cache keeps results across runs of kyverno-gate (issue 18): a
// typical commit changes one or two policies, and a re-generation should
// not pay again for what did not change.
//
// It is only a store. Exactness is the caller's: a result goes in under a
// key that covers every input that can change it (Hasher), and only for
// work whose result cannot depend on the clock or the network. Entries are
// files named by their key in one folder outside the run's scratch folder
// (the sidecar's /tmp, beside the checkouts), written whole to a temporary
// name and renamed, so concurrent generations never read half an entry;
// the folder is bounded in size (Trim drops the least recently used).
package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DirName is the cache's folder in the temporary directory. It does not
// look like a scratch folder (kyverno-gate-<pid>-...), which runs sweep.
const DirName = "kyverno-gate-cache"

// DefaultMaxBytes bounds the folder (entries' sizes): the 505-policy
// repository's suites and verdicts take 2.4 MB in 966 entries, so the
// 3,535-policy one about 17 MB.
const DefaultMaxBytes = 128 << 20

// maxEntry is the largest entry read back: anything bigger was not
// written by Put (which refuses it) and is ignored.
const maxEntry = 8 << 20

// Store is one cache folder.
type Store struct {
	dir string
	max int64

	hits, misses, puts atomic.Int64
}

// Open opens (making it if needed) the cache folder dir, bounded to max
// bytes. The folder must be a real folder owned by this user and private
// to it: a folder someone else made or can write to could feed this
// process results it did not compute.
func Open(dir string, max int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", dir)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return nil, fmt.Errorf("%s belongs to another user", dir)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is open to other users (mode %v); it must be 0700", dir, info.Mode().Perm())
	}
	return &Store{dir: dir, max: max}, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Key names an entry: a SHA-256 over everything its result depends on.
type Key [sha256.Size]byte

func (k Key) String() string { return hex.EncodeToString(k[:]) }

func (s *Store) path(k Key) string {
	h := k.String()
	return filepath.Join(s.dir, h[:2], h)
}

// Get decodes the entry under k into v and reports whether there was one.
// An entry that does not decode counts as a miss.
func (s *Store) Get(k Key, v any) bool {
	if s == nil {
		return false
	}
	p := s.path(k)
	f, err := os.Open(p)
	if err == nil {
		var data []byte
		data, err = io.ReadAll(io.LimitReader(f, maxEntry+1))
		f.Close()
		if err == nil && len(data) <= maxEntry && json.Unmarshal(data, v) == nil {
			now := time.Now()
			os.Chtimes(p, now, now) // recently used: Trim keeps it
			s.hits.Add(1)
			return true
		}
	}
	s.misses.Add(1)
	return false
}

// Put stores v under k. Errors are ignored: the cache only saves time.
func (s *Store) Put(k Key, v any) {
	if s == nil {
		return
	}
	data, err := json.Marshal(v)
	if err != nil || len(data) > maxEntry {
		return
	}
	p := s.path(k)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".put-*")
	if err != nil {
		return
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return
	}
	s.puts.Add(1)
}

// Stats are what a store did in this process.
type Stats struct{ Hits, Misses, Puts int64 }

func (s *Store) Stats() Stats {
	if s == nil {
		return Stats{}
	}
	return Stats{s.hits.Load(), s.misses.Load(), s.puts.Load()}
}

// Trim removes the least recently used entries while the folder holds more
// than its bound, down to three quarters of it, and temporary files of
// interrupted writes older than a minute. A run that wrote nothing skips
// it (the walk stats every entry).
func (s *Store) Trim() {
	if s == nil || s.puts.Load() == 0 {
		return // nothing written: the folder did not grow
	}
	type entry struct {
		path string
		size int64
		used time.Time
	}
	var (
		all   []entry
		total int64
	)
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".put-") {
			if time.Since(info.ModTime()) > time.Minute {
				os.Remove(p)
			}
			return nil
		}
		all = append(all, entry{p, info.Size(), info.ModTime()})
		total += info.Size()
		return nil
	})
	if total <= s.max {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i].used.Before(all[j].used) })
	for _, e := range all {
		if total <= s.max/4*3 {
			break
		}
		if os.Remove(e.path) == nil {
			total -= e.size
		}
	}
}

// Hasher builds a Key. Every part is written with its length, so that no
// two different sequences of parts give the same bytes.
type Hasher struct{ h hash.Hash }

// NewHasher starts a key with the binary's identity (Binary).
func NewHasher(purpose string) *Hasher {
	h := &Hasher{h: sha256.New()}
	h.String(purpose)
	h.String(Binary())
	return h
}

// Bytes adds one part.
func (h *Hasher) Bytes(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.h.Write(n[:])
	h.h.Write(b)
}

// String adds one part.
func (h *Hasher) String(s string) { h.Bytes([]byte(s)) }

// JSON adds the JSON encoding of v (maps in key order), or fails.
func (h *Hasher) JSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h.Bytes(b)
	return nil
}

// Key is the key of the parts added so far.
func (h *Hasher) Key() Key {
	var k Key
	copy(k[:], h.h.Sum(nil))
	return k
}

var (
	binaryOnce sync.Once
	binaryID   string
)

// Binary identifies the running binary: its build information (module
// versions and sums, VCS revision and state, build settings) and the
// executable file's path, size, modification time and inode, so that any
// rebuild is a new binary even from a modified work tree; as a SHA-256.
var Binary = func() string {
	binaryOnce.Do(func() {
		var b strings.Builder
		if info, ok := debug.ReadBuildInfo(); ok {
			b.WriteString(info.String())
		}
		exe, err := os.Executable()
		if err == nil {
			var info fs.FileInfo
			if info, err = os.Stat(exe); err == nil {
				fmt.Fprintf(&b, "\n%s %d %d", exe, info.Size(), info.ModTime().UnixNano())
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					fmt.Fprintf(&b, " %d:%d", st.Dev, st.Ino)
				}
			}
		}
		if err != nil {
			// Cannot tell this binary from the next: a key that never
			// repeats (nothing will hit).
			fmt.Fprintf(&b, "\nunknown %d %d", os.Getpid(), time.Now().UnixNano())
		}
		// Its digest: every key starts with it, and the build
		// information alone is ~20 KB.
		sum := sha256.Sum256([]byte(b.String()))
		binaryID = hex.EncodeToString(sum[:])
	})
	return binaryID
}
