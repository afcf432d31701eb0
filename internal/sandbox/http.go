package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// RemoteTooLargeError is a remote response over a limit.
type RemoteTooLargeError struct {
	URL   string // "" for the total of every response
	Limit int64
}

func (e *RemoteTooLargeError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("the remote files read exceed %d MiB", e.Limit>>20)
	}
	return fmt.Sprintf("remote file %s is larger than %d MiB", e.URL, e.Limit>>20)
}

// Remote is the transport LimitHTTP installs.
type Remote struct {
	next              http.RoundTripper
	maxFile, maxTotal int64
	timeout           time.Duration
	files, bytes      atomic.Int64
	violation         atomic.Pointer[RemoteTooLargeError]
}

// LimitHTTP makes http.DefaultTransport, which kustomize's loader and every
// http.Client without a transport use, read at most maxFile bytes of one
// response body and maxTotal of all of them (0: no total), failing the read
// with a *RemoteTooLargeError beyond, and end every request, body
// included, after timeout (0: none). It returns the installed transport,
// which counts what was read. Install it once, before any request.
func LimitHTTP(maxFile, maxTotal int64, timeout time.Duration) *Remote {
	r := newRemote(http.DefaultTransport, maxFile, maxTotal, timeout)
	http.DefaultTransport = r
	return r
}

func newRemote(next http.RoundTripper, maxFile, maxTotal int64, timeout time.Duration) *Remote {
	return &Remote{next: next, maxFile: maxFile, maxTotal: maxTotal, timeout: timeout}
}

// Read returns how many responses were read from and their bytes.
func (r *Remote) Read() (files int, bytes int64) { return int(r.files.Load()), r.bytes.Load() }

// Violation returns the first response refused for its size, or nil.
// Callers such as kustomize bury the error in a longer message; this is
// the reason to report.
func (r *Remote) Violation() *RemoteTooLargeError { return r.violation.Load() }

func (r *Remote) refuse(url string, limit int64) error {
	e := &RemoteTooLargeError{URL: url, Limit: limit}
	r.violation.CompareAndSwap(nil, e)
	return e
}

// RoundTrip implements http.RoundTripper.
func (r *Remote) RoundTrip(req *http.Request) (*http.Response, error) {
	cancel := context.CancelFunc(func() {})
	if r.timeout > 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(req.Context(), r.timeout)
		req = req.WithContext(ctx)
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.ContentLength > r.maxFile {
		resp.Body.Close()
		cancel()
		return nil, r.refuse(req.URL.Redacted(), r.maxFile)
	}
	r.files.Add(1)
	resp.Body = &cappedBody{body: resp.Body, cancel: cancel, r: r, url: req.URL.Redacted()}
	return resp, nil
}

type cappedBody struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	r      *Remote
	url    string
	read   int64
	err    error
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// Never read more than one byte past the limit.
	if room := b.r.maxFile - b.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.body.Read(p)
	b.read += int64(n)
	total := b.r.bytes.Add(int64(n))
	switch {
	case b.read > b.r.maxFile:
		b.err = b.r.refuse(b.url, b.r.maxFile)
	case b.r.maxTotal > 0 && total > b.r.maxTotal:
		b.err = b.r.refuse("", b.r.maxTotal)
	}
	if b.err != nil {
		return n, b.err
	}
	return n, err
}

func (b *cappedBody) Close() error {
	err := b.body.Close()
	b.cancel()
	return err
}
