//go:build linux && (amd64 || arm64)

package main

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const canDiverge = true

// divergeThread gives one thread a seccomp filter of its own, so that the
// network filter (TSYNC) cannot be installed: a kernel refusal, for the
// fail-closed test.
func divergeThread() {
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // for good: the thread keeps its filter
		unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
		prog := unix.SockFprog{Len: 1, Filter: &allow[0]}
		unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog)))
		close(ready)
		select {}
	}()
	<-ready
}
