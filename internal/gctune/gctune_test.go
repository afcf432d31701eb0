package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimitFollowsTheLiveHeap(t *testing.T) {
	tests := []struct {
		live uint64
		want int64
	}{
		{0, Floor},
		{100 << 20, Floor},           // small runs: the fixed limit as before
		{150 << 20, Floor},           // the boundary
		{151 << 20, 302<<20 + Slack}, // a live heap's worth of room, and Slack
		{180 << 20, 360<<20 + Slack}, // the 7x repository in its test gate
		{250 << 20, Cap},             // capped for the default memory ceiling
		{540 << 20, Cap},             // near the bound: the bound, never above it
	}
	for _, tt := range tests {
		if got := Limit(tt.live); got != tt.want {
			t.Errorf("Limit(%d MiB) = %d MiB, want %d MiB", tt.live>>20, got>>20, tt.want>>20)
		}
	}
}

func TestForCeilingBoundsTheLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { bound.Store(0); debug.SetMemoryLimit(old) })
	tests := []struct {
		ceiling, want int64
	}{
		{600 << 20, 344 << 20}, // a small container: the ceiling less Reserve
		{400 << 20, 200 << 20}, // smaller still: half the ceiling
		{2048 << 20, 2048<<20 - Reserve},
	}
	for _, tt := range tests {
		ForCeiling(tt.ceiling)
		for _, live := range []uint64{0, 100 << 20, 2000 << 20} {
			want := min(Floor, tt.want)
			if 2*int64(live) > Floor {
				want = min(2*int64(live)+Slack, tt.want)
			}
			if got := Limit(live); got != want {
				t.Errorf("ceiling %d MiB: Limit(%d MiB) = %d MiB, want %d MiB", tt.ceiling>>20, live>>20, got>>20, want>>20)
			}
		}
		if got := debug.SetMemoryLimit(-1); got > tt.want {
			t.Errorf("ceiling %d MiB: the current limit %d MiB is above the bound", tt.ceiling>>20, got>>20)
		}
	}
}

// TestStartAdjustsAfterACollection: after a collection with a large live
// heap, the limit has moved above the floor.
func TestStartAdjustsAfterACollection(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
	Start()
	live := make([][]byte, 0, 400)
	for range 400 { // 400 MiB live, above the floor
		live = append(live, make([]byte, 1<<20))
	}
	for i := 0; i < 50 && debug.SetMemoryLimit(-1) <= Floor; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // finalizers run on their own goroutine
	}
	if got := debug.SetMemoryLimit(-1); got <= Floor {
		t.Errorf("limit %d MiB with %d MiB live, want above %d MiB", got>>20, len(live), Floor>>20)
	}
	runtime.KeepAlive(live)
}
