package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/internal/gctune"
	"github.com/kyverno-gate/kyverno-gate/internal/sandbox"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// The process-wide limits on untrusted input (issue 11), applied by resolve
// once a command's settings are known, before any repository file is read.

// confine applies them. main sets it: in-process tests through run() stay
// unconfined, because the network filter cannot be undone and a watchdog
// would outlive the run.
var confine func(c *cli.Context, s *settings.Settings) error

// limits is the parent context of every run. The memory watchdog cancels
// it with a *sandbox.MemoryError as the cause; gate.Within then stops the
// run like the time budget does, naming the stage, and the command fails
// closed on its usual path (explain).
var limits, stopRun = context.WithCancelCause(context.Background())

const (
	// memoryInterval is how often the watchdog samples the resident set
	// (reading /proc/self/statm costs microseconds; a hostile repository
	// grew the set by up to 1.3 GB/s).
	memoryInterval = 20 * time.Millisecond
	// memoryGrace is how long the watchdog waits for the run to stop on
	// its usual path before it writes the message and exits itself (the
	// memory went outside gate.Within, such as the test command).
	memoryGrace = 500 * time.Millisecond
)

var (
	remote         *sandbox.Remote // with allow-remote
	confineOnce    sync.Once
	confineErr     error
	memoryReported atomic.Bool
)

// confineProcess: without allow-remote, no socket can reach the network;
// with it, remote files are capped like local ones. And a memory ceiling.
func confineProcess(c *cli.Context, s *settings.Settings, stderr io.Writer) error {
	confineOnce.Do(func() {
		// The one connection a repository run makes: a cluster baseline
		// is read now, before any repository file, and the network is
		// closed after it (baseline/cluster.go).
		if baseline.IsCluster(s.Baseline) {
			if confineErr = baseline.FetchCluster(s.Baseline); confineErr != nil {
				return
			}
		}
		if !s.AllowRemote {
			err := sandbox.DenyNetwork()
			// No seccomp outside Linux (a laptop): the renderer's own
			// refusal of remote URLs is then the only guard. On Linux,
			// where the sidecar runs, fail closed.
			if err != nil && !(runtime.GOOS != "linux" && errors.Is(err, errors.ErrUnsupported)) {
				confineErr = fmt.Errorf("the network could not be disabled (%v); parameter allow-remote=true would skip this guard", err)
				return
			}
		} else {
			// A request may last as long as the whole budget plus a
			// second, so that the budget's own message comes first.
			remote = sandbox.LimitHTTP(render.DefaultMaxFileBytes, render.DefaultMaxTotalBytes, s.Timeout+time.Second)
		}
		ceiling := uint64(s.MaxMemoryMB) << 20
		if ceiling == 0 {
			ceiling = sandbox.DefaultCeiling(settings.DefaultMaxMemoryMB << 20)
		}
		lowerSoftLimit(ceiling)
		dir := c.Args().First()
		if dir == "" {
			dir = "."
		}
		label := describe(dir, s)
		sandbox.WatchMemory(ceiling, memoryInterval, func(e *sandbox.MemoryError) {
			stopRun(e)
			time.AfterFunc(memoryGrace, func() {
				if !memoryReported.Load() {
					output.Failure(stderr, label, explainMemory(e))
				}
				os.Exit(2)
			})
		})
	})
	return confineErr
}

// lowerSoftLimit keeps Go's soft memory limit (tuneGC: 300 MiB up to twice
// the live heap) below the ceiling less what is resident besides Go's own
// memory (the binary's pages: gctune.Reserve), so that the collector works
// hard before the watchdog looks: only live data, not uncollected garbage,
// should pass the ceiling. A GOMEMLIMIT or GOGC from the
// environment is left alone.
func lowerSoftLimit(ceiling uint64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	gctune.ForCeiling(int64(ceiling)) // also for the limit gctune moves later
}

// explainLimit is the message for a run stopped by one of these limits, or
// "" for any other error.
func explainLimit(err error) string {
	// kustomize reports a refused remote file inside a long accumulation
	// error; the transport kept the reason.
	if remote != nil {
		if v := remote.Violation(); v != nil {
			return v.Error() + " (remote files have the limits of the repository's own; keep such a file in the repository, or make it smaller)"
		}
	}
	var me *sandbox.MemoryError
	if errors.As(err, &me) {
		return explainMemory(err) // with the stage (gate.LimitError)
	}
	// The run may have ended with another error (context.Canceled from a
	// gate) just as the watchdog stopped it.
	if errors.As(context.Cause(limits), &me) {
		return explainMemory(me)
	}
	return ""
}

// explainMemory is the message for the memory ceiling.
func explainMemory(err error) string {
	memoryReported.Store(true)
	return err.Error() + " (raise parameter max-memory-mb, keeping it below the sidecar's memory limit, or split the repository into smaller overlays)"
}
