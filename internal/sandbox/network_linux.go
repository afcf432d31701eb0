//go:build linux && (amd64 || arm64)

package sandbox

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	denyOnce sync.Once
	denyErr  error
)

// DenyNetwork installs, for every thread of the process and every process
// it starts, a seccomp filter under which socket(2) fails with EACCES for
// any address family other than AF_UNIX and AF_NETLINK (so IPv4, IPv6,
// packet and every other family that can leave the host), and io_uring
// (which can create and connect sockets without socket(2)) is unavailable.
// A system call of another ABI (i386 or x32 on amd64, arm32 on arm64)
// kills the process: their numbers differ, so the filter could not judge
// them. The filter cannot be removed. Calling DenyNetwork again does
// nothing and returns the first call's result.
func DenyNetwork() error {
	denyOnce.Do(func() {
		denyErr = installFilter(networkFilter())
		if denyErr == nil {
			networkDenied.Store(true)
		}
	})
	return denyErr
}

// Offsets in struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6].
// Both architectures are little-endian, so the low 32 bits of an argument
// (an int such as socket's family) are at its offset.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16
)

func networkFilter() []unix.SockFilter {
	const (
		ld   = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret  = unix.BPF_RET | unix.BPF_K
		kill = unix.SECCOMP_RET_KILL_PROCESS
		// socket(2) of a refused family.
		eacces = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
		// io_uring: "not implemented", so that a library falls back to
		// ordinary system calls instead of failing.
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, K: k, Jt: jt, Jf: jf}
	}
	var f []unix.SockFilter
	// Foreign ABI: kill (jump over the kill when the arch matches).
	f = append(f,
		stmt(ld, offArch),
		jump(jeq, auditArch, 1, 0),
		stmt(ret, kill),
		stmt(ld, offNr),
	)
	if x32Bit != 0 {
		// On amd64 the x32 ABI shares AUDIT_ARCH_X86_64 and sets bit 30
		// of the number: x32's socket is 0x40000000+41.
		f = append(f, jump(jge, x32Bit, 0, 1), stmt(ret, kill))
	}
	f = append(f,
		jump(jeq, unix.SYS_IO_URING_SETUP, 0, 1), stmt(ret, enosys),
		jump(jeq, unix.SYS_SOCKET, 1, 0), stmt(ret, unix.SECCOMP_RET_ALLOW),
		// socket(family, ...)
		stmt(ld, offArg0),
		jump(jeq, unix.AF_UNIX, 2, 0),
		jump(jeq, unix.AF_NETLINK, 1, 0),
		stmt(ret, eacces),
		stmt(ret, unix.SECCOMP_RET_ALLOW),
	)
	return f
}

func installFilter(filter []unix.SockFilter) error {
	// no_new_privs is per thread; seccomp(TSYNC) copies it, with the
	// filter, to every other thread. Both calls must run on one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	switch {
	case errno != 0:
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	case r != 0:
		// TSYNC names the thread that could not take the filter.
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): thread %d could not be synchronized", r)
	}
	return nil
}
