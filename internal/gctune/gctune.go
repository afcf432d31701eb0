// Package gctune sets the garbage collector for kyverno-gate's short,
// allocation-heavy runs: GOGC=400 under a soft memory limit that follows the
// live heap.
//
// A fixed limit fails both ways: 300 MiB keeps a run of the 505-policy
// repository under 512 MB, but a 3,535-policy one has ~300 MiB live, so
// with the heap at the limit the collector ran all the time (70% of the
// samples of the 7x generate, which took 630 s; issue 18). After each
// collection the limit is set to twice the live heap (GOGC=100's target),
// within [Floor, Cap], and at least Headroom above the live heap: small runs
// keep the old behaviour, large ones collect once per live heap of
// allocation instead of continuously, and the limit stays at or below half
// the memory ceiling (SetMax; the default ceiling is 768 MiB of RSS), as
// cmd/kyverno-gate's confine wants: only live data should reach it.
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
	Floor    = 300 << 20 // the limit of small runs (kept under 512 MB RSS)
	Cap      = 384 << 20 // the most the limit grows to: half the default memory ceiling
	Headroom = 64 << 20  // allocation between collections past Cap
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

var ceiling atomic.Int64 // SetMax's bound, 0 for none

// SetMax bounds the limit for the rest of the process (confine sets half
// the memory ceiling), below Floor too.
func SetMax(n int64) {
	ceiling.Store(n)
	if cur := debug.SetMemoryLimit(-1); cur > n {
		debug.SetMemoryLimit(n)
	}
}

// Limit is the limit for a live heap of live bytes.
func Limit(live uint64) int64 {
	l := int64(live)
	lim := max(min(max(2*l, Floor), Cap), l+Headroom)
	if c := ceiling.Load(); c > 0 && lim > c {
		lim = c
	}
	return lim
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
