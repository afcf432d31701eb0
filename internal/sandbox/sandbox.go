// Package sandbox holds the process-wide limits kyverno-gate puts on itself
// before it reads a repository, which is untrusted input (issue 11):
//
//   - DenyNetwork: a seccomp filter, for every thread, that makes socket(2)
//     fail with EACCES for every address family but AF_UNIX and AF_NETLINK,
//     and io_uring_setup(2) fail, so that nothing in the process (kustomize,
//     Kyverno, a library's init) nor a program it starts can open a
//     network connection. Linux on amd64 and arm64; elsewhere it returns an
//     error wrapping errors.ErrUnsupported.
//   - LimitHTTP: when remote content is allowed, every HTTP response read
//     through http.DefaultTransport (kustomize's loader uses it) is capped
//     like a local file, and every request ends with the time budget.
//   - WatchMemory: a watchdog that samples the resident set and reports,
//     once, when it passes a ceiling, so that the caller can stop with a
//     message instead of being OOM-killed without one.
//
// It imports neither Kyverno nor kustomize.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryError is the cause a run is stopped with when the memory ceiling is
// passed.
type MemoryError struct {
	Ceiling uint64 // bytes
	Used    uint64 // bytes, the sample that passed it
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("memory use passed the %d MiB ceiling", e.Ceiling>>20)
}

// WatchMemory samples the process's resident memory (Resident) every
// interval and calls over, once and from its own goroutine, with the first
// sample above ceiling. stop ends the watch; it does not wait for a running
// over.
func WatchMemory(ceiling uint64, interval time.Duration, over func(*MemoryError)) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if used, err := Resident(); err == nil && used > ceiling {
				over(&MemoryError{Ceiling: ceiling, Used: used})
				return
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

// DefaultCeiling is the memory ceiling when none is configured: fallback,
// or 75% of the cgroup v2 memory limit the process runs under when that is
// lower. The kernel kills the process at the limit, so the watchdog must
// stop it well before: a sample can come after a burst of allocation (a
// map or slice that doubles), and other processes of the container share
// the limit.
func DefaultCeiling(fallback uint64) uint64 {
	limit, ok := CgroupLimit()
	return ceilingFor(fallback, limit, ok)
}

func ceilingFor(fallback, limit uint64, ok bool) uint64 {
	if ok && limit/4*3 < fallback {
		return limit / 4 * 3
	}
	return fallback
}

// cgroupRoot is where the cgroup v2 hierarchy is mounted.
var cgroupRoot = "/sys/fs/cgroup"

// CgroupLimit returns the lowest memory.max of the process's cgroup v2 and
// its ancestors (a container sees its own as /sys/fs/cgroup/memory.max),
// and false when none is set or cgroup v2 is not mounted.
func CgroupLimit() (uint64, bool) {
	self, _ := os.ReadFile("/proc/self/cgroup")
	return cgroupLimit(cgroupRoot, string(self))
}

// cgroupLimit is CgroupLimit for the hierarchy mounted at root and the
// content of /proc/self/cgroup.
func cgroupLimit(root, self string) (uint64, bool) {
	rel := "/"
	for _, line := range strings.Split(self, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel = p
		}
	}
	root = filepath.Clean(root)
	var lowest uint64
	found := false
	for d := filepath.Join(root, filepath.Clean("/"+rel)); ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "memory.max")); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && (!found || n < lowest) {
				lowest, found = n, true
			}
		}
		if len(d) <= len(root) {
			break
		}
	}
	return lowest, found
}

// errUnsupported says the platform has no implementation of a guard.
func errUnsupported(what string) error {
	return fmt.Errorf("%w: %s", errors.ErrUnsupported, what)
}
