// Package gate decides whether a rendering may be synced. A Gate looks at the
// rendered resources and returns findings; Run runs the gates in order under
// one deadline, turns a panic into an evaluation error, and sums the findings
// into a verdict. The gates themselves live in sub-packages so that only the
// ones that need Kyverno link it.
package gate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// Severity of a finding.
type Severity string

const (
	// Error findings reject the rendering.
	Error Severity = "error"
	// Warning findings are reported and do not reject.
	Warning Severity = "warning"
)

// Finding is one problem a gate found, phrased for the person who must fix it.
type Finding struct {
	Gate     string   `json:"gate"`
	Severity Severity `json:"severity"`
	File     string   `json:"file,omitempty"`     // source file, relative to the repository root
	Object   string   `json:"object,omitempty"`   // e.g. "ClusterPolicy require-labels"
	Rule     string   `json:"rule,omitempty"`     // policy rule or validation
	Resource string   `json:"resource,omitempty"` // a resource involved, e.g. a test resource
	// Field is the field of Object the finding is about, as a dotted path
	// with list items in brackets, by name when they have one, else by
	// index ("spec.rules[check-team].validate.failureAction",
	// "metadata.annotations[approve.kyverno-gate.io/3f2a9c1b0d4e]"); ""
	// when it is about the whole object. Reports use it to find the patch
	// that introduced the finding.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"` // what to do next
}

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

// Gate judges a rendering. An error means the gate could not evaluate; a
// rejection is expressed as Error findings.
type Gate interface {
	Name() string
	Check(ctx context.Context, in *Input) ([]Finding, error)
}

// Report is the outcome of Run.
type Report struct {
	Findings []Finding
	Timings  map[string]time.Duration
}

// Rejected reports whether any finding is an error.
func (r *Report) Rejected() bool {
	for _, f := range r.Findings {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// Count returns the number of findings of severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
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

// Run runs gates in order over in and collects their findings. The findings
// are sorted so that the report is the same on every run.
func Run(ctx context.Context, in *Input, gates ...Gate) (*Report, error) {
	rep := &Report{Timings: map[string]time.Duration{}}
	for _, g := range gates {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		findings, err := check(ctx, g, in)
		rep.Timings[g.Name()] = time.Since(start)
		if err != nil {
			return nil, err
		}
		rep.Findings = append(rep.Findings, findings...)
	}
	order := map[string]int{}
	for i, g := range gates {
		order[g.Name()] = i
	}
	SortFindings(rep.Findings, order)
	return rep, nil
}

// check runs one gate, turning a panic into an error naming the gate.
func check(ctx context.Context, g Gate, in *Input) (findings []Finding, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Gate: g.Name(), Value: v, Stack: debug.Stack()}
		}
	}()
	if in.Stage != nil {
		in.Stage(g.Name() + " gate")
	}
	return g.Check(ctx, in)
}

// SortFindings orders findings errors first, then by gate (in the order
// given; unknown gates last), then by place.
func SortFindings(fs []Finding, gateOrder map[string]int) {
	rank := func(g string) int {
		if r, ok := gateOrder[g]; ok {
			return r
		}
		return len(gateOrder)
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Severity != b.Severity {
			return a.Severity == Error
		}
		if ra, rb := rank(a.Gate), rank(b.Gate); ra != rb {
			return ra < rb
		}
		for _, p := range [][2]string{{a.Gate, b.Gate}, {a.File, b.File}, {a.Object, b.Object}, {a.Rule, b.Rule}, {a.Resource, b.Resource}, {a.Message, b.Message}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
}
