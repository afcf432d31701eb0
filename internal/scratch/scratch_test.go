package scratch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestSweep(t *testing.T) {
	base := t.TempDir()
	// A process that has exited: its pid is free.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(base, prefix+strconv.Itoa(cmd.Process.Pid)+"-123")
	mine := filepath.Join(base, prefix+strconv.Itoa(os.Getpid())+"-456")
	oldLegacy := filepath.Join(base, legacy+"789")
	newLegacy := filepath.Join(base, legacy+"790")
	other := filepath.Join(base, "someone-else")
	for _, d := range []string{dead, mine, oldLegacy, newLegacy, other} {
		if err := os.MkdirAll(filepath.Join(d, "root"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * staleAfter)
	os.Chtimes(oldLegacy, past, past)
	Sweep(base)
	for d, want := range map[string]bool{dead: false, mine: true, oldLegacy: false, newLegacy: true, other: true} {
		_, err := os.Stat(d)
		if (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

func TestSetupAndCleanup(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	d, err := Setup()
	if err != nil {
		t.Fatal(err)
	}
	if os.TempDir() != d {
		t.Errorf("TMPDIR is %s, want %s", os.TempDir(), d)
	}
	if err := os.WriteFile(filepath.Join(d, "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	Cleanup()
	Cleanup()
	if _, err := os.Stat(d); err == nil {
		t.Errorf("%s left behind", d)
	}
}
