package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWatchMemory(t *testing.T) {
	tests := []struct {
		name             string
		ceilingMiB       int
		allocMiB         int
		wantOver         bool
		wantUsedBelowMiB int // the sample that tripped it
	}{
		{name: "under the ceiling", ceilingMiB: 400, allocMiB: 64},
		{name: "past the ceiling", ceilingMiB: 128, allocMiB: 2048, wantOver: true, wantUsedBelowMiB: 128 + 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, err := helper(t, "alloc", fmt.Sprintf("SANDBOX_CEILING_MIB=%d", tt.ceilingMiB), fmt.Sprintf("SANDBOX_ALLOC_MIB=%d", tt.allocMiB))
			t.Logf("%s in %s", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
			var ee *exec.ExitError
			over := errors.As(err, &ee) && ee.ExitCode() == 3
			if !over && err != nil {
				t.Fatalf("helper: %v", err)
			}
			if over != tt.wantOver {
				t.Fatalf("stopped: %v, want %v (%s)", over, tt.wantOver, out)
			}
			if !over {
				return
			}
			var used, mapped int
			if _, err := fmt.Sscanf(out, "over %d %d", &used, &mapped); err != nil {
				t.Fatalf("helper said %q", out)
			}
			if used <= tt.ceilingMiB || used >= tt.wantUsedBelowMiB {
				t.Errorf("tripped at %d MiB, want between %d and %d", used, tt.ceilingMiB, tt.wantUsedBelowMiB)
			}
			if msg := fmt.Sprintf("memory use passed the %d MiB ceiling", tt.ceilingMiB); !strings.Contains(out, msg) {
				t.Errorf("message %q lacks %q", out, msg)
			}
		})
	}
}

func TestCgroupLimit(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string // under the cgroup root
		self   string            // /proc/self/cgroup
		want   uint64
		wantOK bool
	}{
		{name: "no cgroup v2", self: "4:memory:/x\n"},
		{name: "container's own, unlimited", files: map[string]string{"memory.max": "max\n"}, self: "0::/\n"},
		{name: "container's own", files: map[string]string{"memory.max": "1073741824\n"}, self: "0::/\n", want: 1 << 30, wantOK: true},
		{name: "lowest ancestor wins", self: "0::/pod/c\n", want: 512 << 20, wantOK: true,
			files: map[string]string{"pod/memory.max": "536870912\n", "pod/c/memory.max": "max\n"}},
		{name: "own below its parent", self: "0::/pod/c\n", want: 256 << 20, wantOK: true,
			files: map[string]string{"pod/memory.max": "536870912\n", "pod/c/memory.max": "268435456\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, c := range tt.files {
				os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
				if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := cgroupLimit(root, tt.self)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("cgroupLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDefaultCeiling(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		limit uint64
		ok    bool
		want  uint64
	}{
		{ok: false, want: 768 * mib},
		{limit: 1 << 30, ok: true, want: 768 * mib}, // the shipped sidecar
		{limit: 512 * mib, ok: true, want: 384 * mib},
		{limit: 4 << 30, ok: true, want: 768 * mib},
	}
	for _, tt := range tests {
		if got := ceilingFor(768*mib, tt.limit, tt.ok); got != tt.want {
			t.Errorf("ceilingFor(768 MiB, %d, %v) = %d MiB, want %d MiB", tt.limit, tt.ok, got/mib, tt.want/mib)
		}
	}
}

func TestRemoteLimits(t *testing.T) {
	const mib = 1 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(r.URL.Path, "/%d", &n)
		if strings.HasSuffix(r.URL.Path, "chunked") {
			// No Content-Length: the cap applies while reading.
			w.Header().Set("Transfer-Encoding", "chunked")
			for i := 0; i < n; i++ {
				w.Write([]byte(strings.Repeat("x", 1024)))
				w.(http.Flusher).Flush()
			}
			return
		}
		if strings.HasSuffix(r.URL.Path, "slow") {
			time.Sleep(500 * time.Millisecond)
		}
		w.Header().Set("Content-Length", fmt.Sprint(n*1024))
		w.Write([]byte(strings.Repeat("x", n*1024)))
	}))
	defer srv.Close()
	tests := []struct {
		name     string
		paths    []string // sizes in KiB
		maxTotal int64
		timeout  time.Duration
		wantErr  string // of the last path; "" for none
	}{
		{name: "small", paths: []string{"/100"}},
		{name: "at the limit", paths: []string{"/1024"}},
		{name: "over, Content-Length", paths: []string{"/1025"}, wantErr: "remote file " + srv.URL + "/1025 is larger than 1 MiB"},
		{name: "over, chunked", paths: []string{"/1025chunked"}, wantErr: "remote file " + srv.URL + "/1025chunked is larger than 1 MiB"},
		{name: "total", paths: []string{"/800", "/800"}, maxTotal: 1 * mib, wantErr: "the remote files read exceed 1 MiB"},
		{name: "deadline", paths: []string{"/1slow"}, timeout: 100 * time.Millisecond, wantErr: "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRemote(http.DefaultTransport, mib, tt.maxTotal, tt.timeout)
			hc := &http.Client{Transport: r}
			var err error
			for _, p := range tt.paths {
				// As kustomize's loader reads a remote file.
				var resp *http.Response
				if resp, err = hc.Get(srv.URL + p); err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// LimitHTTP caps a client that names no transport, as kustomize's does.
func TestLimitHTTPInstallsDefaultTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 3<<20))
	}))
	defer srv.Close()
	saved := http.DefaultTransport
	defer func() { http.DefaultTransport = saved }()
	r := LimitHTTP(2<<20, 0, 0)
	resp, err := (&http.Client{}).Get(srv.URL + "/x.yaml")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	var tl *RemoteTooLargeError
	if !errors.As(err, &tl) || tl.Limit != 2<<20 {
		t.Fatalf("got %v, want a RemoteTooLargeError", err)
	}
	if files, _ := r.Read(); files != 1 {
		t.Errorf("counted %d responses, want 1", files)
	}
	if v := r.Violation(); v == nil || v.URL != srv.URL+"/x.yaml" {
		t.Errorf("Violation() = %v, want the refused URL", v)
	}
}
