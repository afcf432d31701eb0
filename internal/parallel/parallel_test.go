package parallel

import (
	"runtime"
	"testing"
)

func TestEachVisitsEveryIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 1000} {
		seen := make([]int, n)
		Each(n, func(i int) { seen[i]++ })
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
	}
}

func TestEachRaisesAPanicInTheCaller(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(1) })
	}
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v, want the worker's panic", v)
		}
	}()
	Each(100, func(i int) {
		if i == 42 {
			panic("boom")
		}
	})
	t.Error("Each returned after a panic")
}
