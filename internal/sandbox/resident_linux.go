package sandbox

import (
	"bytes"
	"errors"
	"os"
	"strconv"
)

var pageSize = uint64(os.Getpagesize())

// Resident returns the process's resident set size, what the kernel's OOM
// killer and the cgroup limit count (besides page cache), from
// /proc/self/statm.
func Resident() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, errors.New("/proc/self/statm: unexpected content")
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * pageSize, nil
}
