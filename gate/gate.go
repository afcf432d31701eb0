// Package gate decides whether a rendering may be synced. A Gate looks at the
// rendered resources and appends findings (package report) to the overlay
// it judges; Run runs the gates in order, turns a panic into an evaluation
// error, and sorts the findings; Within bounds the whole run by one
// deadline. The gates themselves live in sub-packages so that only the
// ones that need Kyverno link it.
package gate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Input is what every gate sees.
type Input struct {
	Root string // absolute repository root (Repo.Dir())
	// Repo is the only way to read repository files; see Repository.
	Repo     *repofs.Root
	Dir      string         // rendered path, relative to Root
	Rendered *render.Result // the rendering under judgement
	// Baseline is the rendering to compare with for weakenings, nil when
	// the run has none (baseline none, or auto without a lock file).
	Baseline *render.Result
	// BaselineName says what Baseline is, e.g. "git:origin/main".
	BaselineName string
	Settings     *settings.Settings
	// Stage lets a gate name what it is doing, for timeout messages.
	Stage func(string)
	// Log reports progress to the person running the gate (stderr).
	Log func(format string, args ...any)

	cache       *cache.Store
	cacheOpened bool
}

// Cache is the run's result cache (issue 18), opened on first use, or nil:
// off by parameter cache=false, with allow-remote (a policy may then reach
// the network), in in-process runs (no Settings.CacheDir), or when the
// folder cannot be used (said in the log once; the run goes on without).
// Gates run one after another, so the first call needs no lock.
func (in *Input) Cache() *cache.Store {
	if in.cacheOpened {
		return in.cache
	}
	in.cacheOpened = true
	s := in.Settings
	if s == nil || !s.Cache || s.CacheDir == "" || s.AllowRemote {
		return nil
	}
	st, err := cache.Open(s.CacheDir, cache.DefaultMaxBytes)
	if err != nil {
		in.Logf("no result cache: %v", err)
		return nil
	}
	in.cache = st
	return st
}

// Repository returns in.Repo, opening it at Root first if the caller gave
// none (tests do); gates read repository files through it only. Gates
// run one after another, so the first call needs no lock.
func (in *Input) Repository() (*repofs.Root, error) {
	if in.Repo == nil {
		r, err := repofs.Open(in.Root, repofs.Limits{})
		if err != nil {
			return nil, err
		}
		in.Repo = r
	}
	return in.Repo, nil
}

// Logf logs through in.Log when set.
func (in *Input) Logf(format string, args ...any) {
	if in.Log != nil {
		in.Log(format, args...)
	}
}

// TestsEverywhere reports whether the tests parameter is not given: the
// test gate then searches every folder of the repository for test files
// and keeps those that name a rendered policy (kyvernotest.SearchWhole).
func (in *Input) TestsEverywhere() bool {
	return in.Settings != nil && len(in.Settings.Tests) == 0
}

// TestDirs expands the tests parameter: {overlay} is the rendered path;
// an entry with {policy-dirs} stands for one entry per folder that declares
// a rendered Kyverno policy (kyverno/policies keeps each policy's suite in
// <policy folder>/.kyverno-test), in order, without repeats. Without the
// parameter (TestsEverywhere) it is the repository root.
func (in *Input) TestDirs() []string {
	if in.Settings == nil {
		return nil
	}
	if in.TestsEverywhere() {
		return []string{"."}
	}
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, d := range in.Settings.Tests {
		d = strings.ReplaceAll(d, "{overlay}", in.Dir)
		if !strings.Contains(d, "{policy-dirs}") {
			add(d)
			continue
		}
		if in.Rendered == nil {
			continue
		}
		for _, r := range in.Rendered.Resources {
			if r.Source != "" && r.IsKyverno() {
				add(strings.ReplaceAll(d, "{policy-dirs}", filepath.Dir(r.Source)))
			}
		}
	}
	return out
}

// Gate judges a rendering: it appends its findings to out (a rejection is
// an Error finding) and fills its own section of out (the test gate Tests,
// the weaken gate Posture). An error means the gate could not evaluate.
// What several gates derive from one rendering hangs off that rendering
// (render.Result.Memo), never off a package variable.
type Gate interface {
	Name() report.Gate
	Check(ctx context.Context, in *Input, out *report.Overlay) error
}

// TimeoutError says the time budget ran out and what was running then.
type TimeoutError struct {
	Budget time.Duration
	Stage  string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("gave up after %s while %s", e.Budget, e.Stage)
}

// LimitError says a limit other than time stopped the run (the cause its
// context was cancelled with, such as the memory ceiling) and what was
// running then.
type LimitError struct {
	Err   error
	Stage string
}

func (e *LimitError) Error() string { return e.Err.Error() + " while " + e.Stage }
func (e *LimitError) Unwrap() error { return e.Err }

// PanicError is a panic inside a gate, reported instead of crashing.
type PanicError struct {
	Gate  string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error in the %s gate: %v", e.Gate, e.Value)
}

// Stages tracks the current stage of a run for timeout messages.
type Stages struct{ v atomic.Value }

// Set records the stage now running.
func (s *Stages) Set(stage string) { s.v.Store(stage) }

// Current returns the stage now running.
func (s *Stages) Current() string {
	if v, ok := s.v.Load().(string); ok {
		return v
	}
	return "starting"
}

// Within runs fn under ctx's deadline. Kustomize and Kyverno do not take a
// context, so fn runs in its own goroutine and is abandoned when the deadline
// passes: the caller reports the timeout and exits instead of being killed
// by Argo CD without a word.
func Within(ctx context.Context, budget time.Duration, stages *Stages, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- &PanicError{Gate: stages.Current(), Value: v, Stack: debug.Stack()}
			}
		}()
		done <- fn()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &TimeoutError{Budget: budget, Stage: stages.Current()}
		}
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return &LimitError{Err: cause, Stage: stages.Current()}
		}
		return fmt.Errorf("stopped by a signal while %s (Argo CD sends SIGTERM at its deadline: keep parameter timeout below the repo-server timeout)", stages.Current())
	}
}

// Run runs gates in order over in, into out, and sorts the findings so
// that the report is the same on every run.
func Run(ctx context.Context, in *Input, out *report.Overlay, gates ...Gate) error {
	if out.Timings == nil {
		out.Timings = map[report.Gate]time.Duration{}
	}
	for _, g := range gates {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		err := check(ctx, g, in, out)
		out.Timings[g.Name()] = time.Since(start)
		if err != nil {
			return err
		}
	}
	report.Sort(out.Findings)
	return nil
}

// check runs one gate, turning a panic into an error naming the gate.
func check(ctx context.Context, g Gate, in *Input, out *report.Overlay) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Gate: string(g.Name()), Value: v, Stack: debug.Stack()}
		}
	}()
	if in.Stage != nil {
		in.Stage(string(g.Name()) + " gate")
	}
	return g.Check(ctx, in, out)
}

// RunOne runs gates over in into a new overlay, for callers (and tests)
// that judge a rendering with some of the gates only.
func RunOne(ctx context.Context, in *Input, gates ...Gate) (*report.Overlay, error) {
	out := &report.Overlay{Path: in.Dir}
	if err := Run(ctx, in, out, gates...); err != nil {
		return nil, err
	}
	return out, nil
}
