package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The filter and the watchdog are process-wide, so their tests run the test
// binary again as a helper process (SANDBOX_HELPER names what it does) and
// judge what it prints and how it ends.
func TestMain(m *testing.M) {
	switch os.Getenv("SANDBOX_HELPER") {
	case "":
		os.Exit(m.Run())
	case "probe":
		helperProbe()
	case "alloc":
		helperAlloc()
	case "x32":
		helperX32()
	case "diverged":
		helperDiverged()
	default:
		fmt.Println("unknown helper")
		os.Exit(99)
	}
	os.Exit(0)
}

// helper runs the test binary as helper name with env added.
func helper(t *testing.T, name string, env ...string) (stdout string, err error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"SANDBOX_HELPER=" + name}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if errb.Len() > 0 {
		t.Logf("helper %s stderr:\n%s", name, errb.String())
	}
	return out.String(), err
}

// helperProbe installs the filter when SANDBOX_DENY=1, then tries every
// address in SANDBOX_PROBES (name=network:address, comma-separated) and
// prints "name: ok" or "name: <error>" for each, and the Seccomp line of
// /proc/self/status.
func helperProbe() {
	// A thread that exists before the filter: TSYNC must cover it too.
	early := make(chan func(), 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		for f := range early {
			f()
			done <- struct{}{}
		}
	}()
	if os.Getenv("SANDBOX_DENY") == "1" {
		if err := DenyNetwork(); err != nil {
			fmt.Printf("deny: %v\n", err)
			os.Exit(3)
		}
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Seccomp:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	for _, p := range strings.Split(os.Getenv("SANDBOX_PROBES"), ",") {
		name, target, _ := strings.Cut(p, "=")
		network, addr, _ := strings.Cut(target, ":")
		var result string
		probe := func() { result = probeOne(network, addr) }
		if strings.HasPrefix(name, "early-") {
			early <- probe
			<-done
		} else {
			probe()
		}
		fmt.Printf("%s: %s\n", name, result)
	}
}

func probeOne(network, addr string) string {
	switch network {
	case "dns":
		// Go's own DNS client, sending its query to the parent's UDP port.
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := r.LookupHost(ctx, "policies.kyverno-gate.test"); err != nil && !isTimeout(err) {
			return err.Error()
		}
		return "ok" // sent; the parent checks that the query arrived
	case "exec":
		// A program the process starts inherits the filter.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "SANDBOX_HELPER=probe", "SANDBOX_DENY=0", "SANDBOX_PROBES=child="+addr)
		out, err := cmd.Output()
		if err != nil {
			return err.Error()
		}
		for _, line := range strings.Split(string(out), "\n") {
			if r, ok := strings.CutPrefix(line, "child: "); ok {
				return r
			}
		}
		return "no result"
	}
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return err.Error()
	}
	c.Close()
	return "ok"
}

// helperAlloc starts the watchdog with SANDBOX_CEILING_MIB, then allocates
// and touches SANDBOX_ALLOC_MIB in 8 MiB blocks. Over the ceiling it prints
// "over <used MiB> <Go-mapped MiB>" and exits 3; else "done".
func helperAlloc() {
	ceiling, _ := strconv.ParseUint(os.Getenv("SANDBOX_CEILING_MIB"), 10, 64)
	total, _ := strconv.Atoi(os.Getenv("SANDBOX_ALLOC_MIB"))
	debug.SetGCPercent(-1)
	WatchMemory(ceiling<<20, 20*time.Millisecond, func(e *MemoryError) {
		fmt.Printf("over %d %d %s\n", e.Used>>20, GoMapped()>>20, e)
		os.Exit(3)
	})
	var keep [][]byte
	for n := 0; n < total; n += 8 {
		b := make([]byte, 8<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
		time.Sleep(2 * time.Millisecond) // about 4 GiB/s at most
	}
	time.Sleep(100 * time.Millisecond) // give the watchdog its last look
	fmt.Printf("done %d\n", len(keep)*8)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
