package kyvernotest

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"sync/atomic"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/path"

	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// Cache keeps suites' rows across runs (issue 18): a re-generation after a
// commit that changes one policy evaluates only the suites that policy's
// documents reach. A nil Cache, or one without a Store, is off.
type Cache struct {
	Store *cache.Store
	// Salt covers the run's settings (the gate's caller decides which).
	Salt []byte

	digested atomic.Int64 // bytes read for keys in this run
}

// maxDigested bounds the bytes a run reads for keys, as the repository's
// total bounds what it parses (repofs.DefaultMaxTotalBytes): test files
// that each name a large folder could otherwise make keying cost more than
// the suites. Past it, suites run unkeyed.
const maxDigested = repofs.DefaultMaxTotalBytes

// volatile are texts that, in a suite's policies, make its results depend
// on the clock, on chance or on the network (JMESPath time_now*,
// time_since, random; CEL now() and the http and image-data libraries;
// context entries that call out or read live state; image verification).
// Such suites are always evaluated. Matching text anywhere in a policy (a
// message, a comment) only costs a cache miss.
var volatile = []string{
	"time_now", "time_since", "random(", "now(",
	"apiCall", "imageRegistry", "globalReference", "verifyImages", "ImageValidatingPolicy",
	"http.", "imagedata", "image.GetMetadata",
}

// key is the cache key of suite s about to be evaluated with the policy
// documents docs and the exceptions excs, or false when s must be
// evaluated anyway. It covers every input of evaluate and check: the binary
// (cache.NewHasher), the settings (Salt), the suite's test document (the
// carry-over is decided by it and the documents), its place in the
// repository, the rendered documents it runs, its exceptions, and the bytes
// of every other file and folder its test file names, read through the
// repository's confined view.
func (c *Cache) key(s *Suite, docs [][]byte, excs *Exceptions) (cache.Key, bool) {
	if c == nil || c.Store == nil || s.Repo == nil {
		return cache.Key{}, false
	}
	// The CRD files a clusterResources file lists are read by Kyverno
	// after it is loaded; such suites are rare, and not keyed.
	if len(s.Test.ClusterResources) > 0 {
		return cache.Key{}, false
	}
	h := cache.NewHasher("kyverno-gate test suite v1")
	h.Bytes(c.Salt)
	h.String(s.Rel)
	if h.JSON(s.Test) != nil || h.JSON(s.Resources) != nil || h.JSON(excs) != nil {
		return cache.Key{}, false
	}
	for _, d := range docs {
		for _, v := range volatile {
			if bytes.Contains(d, []byte(v)) {
				return cache.Key{}, false
			}
		}
		h.Bytes(d)
	}
	dir := s.Dir()
	for _, e := range s.named() {
		if e.field == "policies" || e.field == "exceptions" {
			continue // their documents are in the key already (docs, excs)
		}
		for _, p := range e.paths {
			if p == "" {
				continue
			}
			h.String(e.field + "=" + p)
			if !c.hashPath(h, s, path.GetFullPath(p, dir)) {
				return cache.Key{}, false
			}
		}
	}
	return h.Key(), true
}

// hashPath adds what p is: missing, a file's bytes, or a folder's names and
// files. A symlink inside a folder (which Kyverno's loaders would follow)
// or an unreadable file makes the suite unkeyed.
func (c *Cache) hashPath(h *cache.Hasher, s *Suite, p string) bool {
	info, err := s.Repo.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			h.String("missing")
			return true
		}
		return false
	}
	if !info.IsDir() {
		data, err := c.read(s, p)
		if err != nil {
			return false
		}
		h.String("file")
		h.Bytes(data)
		return true
	}
	ok := true
	err = s.Repo.Walk(p, func(f string, info fs.FileInfo) error {
		rel := strings.TrimPrefix(f, p)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			ok = false
			return fs.SkipAll
		case info.IsDir():
			h.String("dir " + rel)
		default:
			data, err := c.read(s, f)
			if err != nil {
				ok = false
				return fs.SkipAll
			}
			h.String("file " + rel)
			h.Bytes(data)
		}
		return nil
	})
	return ok && err == nil
}

// read reads a file for a key, within the run's bound.
func (c *Cache) read(s *Suite, p string) ([]byte, error) {
	data, err := s.Repo.ReadForDigest(p)
	if err != nil {
		return nil, err
	}
	if c.digested.Add(int64(len(data))) > maxDigested {
		return nil, errors.New("the run's bound on bytes read for cache keys is reached")
	}
	return data, nil
}

// cacheable reports whether rows may be stored: none may carry the
// checkout's absolute path, which changes from one generation to the next
// (Argo CD's CMP server unpacks every request into a new folder).
func cacheable(s *Suite, rows []Row) bool {
	root := s.Repo.Dir()
	for _, r := range rows {
		for _, f := range []string{r.Policy, r.Rule, r.Resource, r.Expected, r.Got, r.Upstream, r.Reason, r.Message, r.Strict} {
			if strings.Contains(f, root) {
				return false
			}
		}
	}
	return true
}
