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
		{100 << 20, Floor},     // small runs: the fixed limit as before
		{150 << 20, Floor},     // the boundary
		{180 << 20, 360 << 20}, // a live heap's worth of room
		{250 << 20, Cap},       // the 7x repository: capped for the memory ceiling
		{500 << 20, 564 << 20}, // past the cap: some room, never at the live heap
	}
	for _, tt := range tests {
		if got := Limit(tt.live); got != tt.want {
			t.Errorf("Limit(%d MiB) = %d MiB, want %d MiB", tt.live>>20, got>>20, tt.want>>20)
		}
	}
}

func TestSetMaxBoundsTheLimit(t *testing.T) {
	t.Cleanup(func() { ceiling.Store(0) })
	ceiling.Store(200 << 20) // a small container's ceiling/2
	for _, live := range []uint64{0, 100 << 20, 500 << 20} {
		if got := Limit(live); got != 200<<20 {
			t.Errorf("Limit(%d MiB) = %d MiB under a 200 MiB bound", live>>20, got>>20)
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
