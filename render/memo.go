package render

import "sync"

// memoTable holds values derived from one rendering.
type memoTable struct {
	mu sync.Mutex
	m  map[any]*memoEntry
}

type memoEntry struct {
	once sync.Once
	v    any
	err  error
}

// Memo returns the value f computes for key on this rendering, calling f
// only the first time a key is asked for (concurrent callers wait for it).
// Gates use it to share work derived from the same rendering, such as
// loading Kyverno's typed objects, without depending on one another. Keys
// should be values of an unexported type of the caller's package. The value
// is shared: treat it as read-only. It depends on Resources as they were at
// the first call, so do not change Resources after gating has started.
func (r *Result) Memo(key any, f func() (any, error)) (any, error) {
	r.memo.mu.Lock()
	if r.memo.m == nil {
		r.memo.m = map[any]*memoEntry{}
	}
	e := r.memo.m[key]
	if e == nil {
		e = &memoEntry{}
		r.memo.m[key] = e
	}
	r.memo.mu.Unlock()
	e.once.Do(func() { e.v, e.err = f() })
	return e.v, e.err
}
