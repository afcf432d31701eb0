//go:build linux && (amd64 || arm64)

package sandbox

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func helperX32() {
	if os.Getenv("SANDBOX_DENY") == "1" {
		if err := DenyNetwork(); err != nil {
			println("deny:", err.Error())
			os.Exit(3)
		}
	}
	// socket(AF_INET, SOCK_STREAM, 0) through the x32 ABI.
	_, _, errno := unix.Syscall(x32Bit+unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_STREAM, 0)
	println("x32 socket returned:", errno.Error())
}

func TestDenyNetwork(t *testing.T) {
	tcp4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp4.Close()
	go acceptAll(tcp4)
	tcp6, err := net.Listen("tcp6", "[::1]:0")
	if err == nil {
		defer tcp6.Close()
		go acceptAll(tcp6)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	unixPath := filepath.Join(t.TempDir(), "s")
	ux, err := net.Listen("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ux.Close()
	go acceptAll(ux)

	probes := []string{
		"tcp4=tcp:" + tcp4.Addr().String(),
		"early-tcp4=tcp:" + tcp4.Addr().String(),
		"dns=dns:" + udp.LocalAddr().String(),
		"exec=exec:tcp:" + tcp4.Addr().String(),
		"unix=unix:" + unixPath,
	}
	if tcp6 != nil {
		probes = append(probes, "tcp6=tcp:"+tcp6.Addr().String())
	}
	const denied = "socket: permission denied"
	tests := []struct {
		name     string
		deny     bool
		seccomp  string            // line of /proc/self/status; "Seccomp: 2" is filter mode
		want     map[string]string // probe -> substring of its result
		dnsQuery bool              // the parent's UDP port gets a query
	}{
		{name: "without the filter", deny: false,
			want:     map[string]string{"tcp4": "ok", "early-tcp4": "ok", "dns": "ok", "exec": "ok", "unix": "ok", "tcp6": "ok"},
			dnsQuery: true},
		{name: "with the filter", deny: true, seccomp: "Seccomp: 2",
			want: map[string]string{"tcp4": denied, "early-tcp4": denied, "dns": denied, "exec": denied, "unix": "ok", "tcp6": denied}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deny := "0"
			if tt.deny {
				deny = "1"
			}
			queries := make(chan struct{}, 8)
			udp.SetReadDeadline(time.Time{})
			go func() {
				buf := make([]byte, 512)
				for {
					if _, _, err := udp.ReadFrom(buf); err != nil {
						return
					}
					queries <- struct{}{}
				}
			}()
			out, err := helper(t, "probe", "SANDBOX_DENY="+deny, "SANDBOX_PROBES="+strings.Join(probes, ","))
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			t.Logf("helper:\n%s", out)
			if !strings.Contains(out, tt.seccomp+"\n") {
				t.Errorf("want %q in /proc/self/status", tt.seccomp)
			}
			results := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(line, ": "); ok {
					results[k] = v
				}
			}
			for probe, want := range tt.want {
				if probe == "tcp6" && tcp6 == nil {
					continue
				}
				if got := results[probe]; !strings.Contains(got, want) {
					t.Errorf("%s: got %q, want %q", probe, got, want)
				}
			}
			time.Sleep(50 * time.Millisecond)
			udp.SetReadDeadline(time.Now())
			got := len(queries) > 0
			if got != tt.dnsQuery {
				t.Errorf("DNS query reached the parent: %v, want %v", got, tt.dnsQuery)
			}
		})
	}
}

// helperDiverged gives one thread a filter of its own, which TSYNC cannot
// reconcile, then tries DenyNetwork: the way a kernel refusal reaches the
// caller.
func helperDiverged() {
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // for good: the thread keeps its filter
		allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
		ready <- installOne(allow)
		select {}
	}()
	if err := <-ready; err != nil {
		println("setup:", err.Error())
		os.Exit(4)
	}
	if err := DenyNetwork(); err != nil {
		println("deny:", err.Error())
		os.Exit(3)
	}
}

// installOne installs filter on the calling thread only.
func installOne(filter []unix.SockFilter) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return errno
	}
	return nil
}

// A filter the kernel refuses is an error, not a silent pass.
func TestDenyNetworkReportsRefusal(t *testing.T) {
	_, err := helper(t, "diverged")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("helper ended with %v, want DenyNetwork to fail (exit 3)", err)
	}
}

// An x32 system call, which the filter could not read right, kills the
// process; without the filter the kernel answers it (ENOSYS where x32 is
// not built in).
func TestDenyNetworkKillsForeignABI(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an amd64 ABI")
	}
	for _, tt := range []struct {
		deny   string
		killed bool
	}{{"0", false}, {"1", true}} {
		t.Run("deny="+tt.deny, func(t *testing.T) {
			_, err := helper(t, "x32", "SANDBOX_DENY="+tt.deny)
			var ee *exec.ExitError
			killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGSYS
			if killed != tt.killed || (!killed && err != nil) {
				t.Fatalf("helper ended with %v, want killed by SIGSYS: %v", err, tt.killed)
			}
		})
	}
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
