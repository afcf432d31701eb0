// Package scratch gives a kyverno-gate process one private temporary
// folder and removes it on every exit path it controls. Whatever the
// process or a program it starts (git for a remote base, helm) writes to
// the temporary directory lands there, because TMPDIR points at it.
//
// Argo CD SIGKILLs the plugin at its deadline, and nothing survives that
// but the folder: so each run first removes the folders of earlier runs
// whose process is gone. The sidecar's /tmp is small and shared with every
// checkout; nothing may pile up in it.
package scratch

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// prefix names every scratch folder; the pid follows it.
const prefix = "kyverno-gate-"

// legacy is the prefix of the git-baseline checkouts of versions before
// the in-memory baseline; they are swept when older than staleAfter.
const legacy = "kyverno-gate-baseline-"

const staleAfter = time.Hour

var (
	mu   sync.Mutex
	dir  string
	base string // the temporary directory dir is in
)

// Setup makes the folder, points TMPDIR at it and sweeps the leftovers of
// dead runs. It returns the folder.
func Setup() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		return dir, nil
	}
	b := os.TempDir()
	Sweep(b)
	d, err := os.MkdirTemp(b, fmt.Sprintf("%s%d-", prefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	if err := os.Setenv("TMPDIR", d); err != nil {
		os.RemoveAll(d)
		return "", err
	}
	dir, base = d, b
	return d, nil
}

// Base is the temporary directory as the process found it, before Setup
// pointed TMPDIR at the scratch folder: the place for what must outlive a
// run (the result cache).
func Base() string {
	mu.Lock()
	defer mu.Unlock()
	if base != "" {
		return base
	}
	return os.TempDir()
}

// Cleanup removes the folder; safe to call more than once and from any
// exit path (the memory watchdog exits on its own).
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		return
	}
	os.RemoveAll(dir)
	dir = ""
}

// Sweep removes, in base, the scratch folders of processes that no longer
// run, and legacy baseline checkouts older than an hour.
func Sweep(base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, prefix) {
			continue
		}
		p := filepath.Join(base, name)
		if strings.HasPrefix(name, legacy) {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleAfter {
				os.RemoveAll(p)
			}
			continue
		}
		pidText, _, ok := strings.Cut(strings.TrimPrefix(name, prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if pid != os.Getpid() && !alive(pid) {
			os.RemoveAll(p)
		}
	}
}

// alive reports whether pid is a running kyverno-gate (a pid reused by
// another program does not keep a folder).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return false
	}
	cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return true // cannot tell (EPERM, no /proc): keep it
	}
	return strings.Contains(string(cmd), "kyverno-gate") || strings.Contains(string(cmd), ".test")
}
