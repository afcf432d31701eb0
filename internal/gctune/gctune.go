// Package gctune sets the garbage collector for kyverno-gate's short,
// allocation-heavy runs: GOGC=400 under a soft memory limit that follows the
// live heap.
//
// A fixed limit fails both ways: 300 MiB keeps a run of the 505-policy
// repository under 512 MB, but a 3,535-policy one has ~250 MiB live, so
// with the heap near the limit the collector ran all the time (70% of the
// samples of the 7x generate, which took 630 s; issue 18). After each
// collection the limit is set to twice the live heap (GOGC=100's target)
// plus Slack, up to the bound, once the live heap passes Floor/2: small runs
// keep the old fixed limit (the 505-policy run peaks at ~147 MB live), large
// ones collect about once per live heap of allocation instead of
// continuously. Slack because the limit counts all of Go's memory, not the
// heap alone: with the limit at twice the live heap, the heap's own goal was
// only ~100 MB above it and the 7x run collected every 200 ms (84 s; with
// Slack 63 s).
//
// The bound comes from the memory ceiling (ForCeiling; cmd/kyverno-gate's
// confine watches the resident set against it): the ceiling less Reserve,
// what is resident besides the Go runtime's own memory (the binary's
// file-backed pages, ~145 MB), so that garbage alone never takes a run
// past the ceiling. A bound of half the ceiling (384 MiB) cost the 7x run
// more than half its CPU in the collector (146 s wall; 65 s with the
// collector out of the way).
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	Floor   = 300 << 20         // the limit of small runs (kept under 512 MB RSS)
	Slack   = 128 << 20         // the limit counts all of Go's memory, not the heap alone: ~100 MB more
	Reserve = 256 << 20         // resident besides Go's memory: the binary's pages (~145 MB) and a margin
	Cap     = 768<<20 - Reserve // the bound under the default ceiling (768 MiB)
)

var once sync.Once

// Start applies the policy for the rest of the process, unless GOGC or
// GOMEMLIMIT is set in the environment (those take precedence).
func Start() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	once.Do(func() {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(Floor)
		arm()
	})
}

var bound atomic.Int64 // ForCeiling's bound, 0 for Cap

// ForCeiling bounds the limit for the rest of the process by a memory
// ceiling of ceiling bytes of RSS: the ceiling less Reserve, and never more
// than half of a ceiling so small that Reserve would leave less (below
// Floor too).
func ForCeiling(ceiling int64) {
	n := max(ceiling-Reserve, ceiling/2)
	bound.Store(n)
	if cur := debug.SetMemoryLimit(-1); cur > n {
		debug.SetMemoryLimit(n)
	}
}

// Limit is the limit for a live heap of live bytes.
func Limit(live uint64) int64 {
	l := int64(live)
	b := bound.Load()
	if b == 0 {
		b = Cap
	}
	if 2*l <= Floor {
		return min(Floor, b) // a small run: the fixed limit, under 512 MB RSS
	}
	return min(2*l+Slack, b)
}

// arm registers a finalizer on a fresh object: it runs after the first
// collection that finds the object unreachable, that is after each cycle.
func arm() {
	s := new(sentinel)
	runtime.SetFinalizer(s, func(*sentinel) {
		adjust()
		arm()
	})
}

// sentinel holds a pointer so that it is not batched with other tiny
// allocations (whose finalizers may be delayed).
type sentinel struct{ _ *int }

var sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

func adjust() {
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	debug.SetMemoryLimit(Limit(sample[0].Value.Uint64()))
}
