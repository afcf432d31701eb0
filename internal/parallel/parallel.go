// Package parallel runs independent work on every core.
package parallel

import (
	"runtime"
	"sync"
)

// Each calls fn(i) for every i in [0, n) on GOMAXPROCS goroutines and
// returns when all are done. fn must write only its own i's results. A
// panic in fn is raised again in the caller (the first one, after the
// others finished), so that a gate's recover still sees it.
func Each(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		panicked any
		next     = make(chan int)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				func() {
					defer func() {
						if v := recover(); v != nil {
							mu.Lock()
							if panicked == nil {
								panicked = v
							}
							mu.Unlock()
						}
					}()
					fn(i)
				}()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}
