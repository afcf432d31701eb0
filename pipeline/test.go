package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

// TestRun is a finished run of test suites as written (the test command).
type TestRun struct {
	Overlay *report.Overlay // findings and Tests, finalized
	// Unselected counts the suites the selector left no result of.
	Unselected int
}

// PathError is a folder argument that does not name a folder.
type PathError struct{ Msg string }

func (e *PathError) Error() string { return e.Msg }

// TestOptions are the test command's own switches.
type TestOptions struct {
	// Selector keeps the results it matches (kyverno test's
	// --test-case-selector, written as SelectorText).
	Selector     *kyvernotest.Selection
	SelectorText string
	// RequireTests makes finding no suite a rejection even with
	// allow-no-tests.
	RequireTests bool
}

// Test runs every test file under dirs as written, strictly, with the
// selector's results only, within s.Timeout when the timeout was asked
// for (kyverno test has no budget, and a CI run of a whole repository
// takes its time).
func Test(ctx context.Context, dirs []string, s *settings.Settings, opts TestOptions) (*TestRun, error) {
	budget := time.Duration(0)
	if s.Origin["timeout"] != "default" {
		budget = s.Timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, budget)
		defer cancel()
	}
	run := &TestRun{}
	var results []*kyvernotest.SuiteResult
	stages := &gate.Stages{}
	err := gate.Within(ctx, budget, stages, func() error {
		var suites []*kyvernotest.Suite
		for _, d := range dirs {
			stages.Set("finding the tests in " + d)
			found, err := findTests(s.TestFileName, d, s.Root)
			if err != nil {
				return err
			}
			suites = append(suites, found...)
		}
		suites, run.Unselected = opts.Selector.Apply(suites)
		stages.Set("running " + report.Plural(len(suites), "test suite"))
		results = kyvernotest.Run(suites, nil)
		return nil
	})
	if err != nil {
		return nil, err
	}
	o := &report.Overlay{Findings: kyvernotest.Findings(results), Tests: kyvernotest.Summary(results)}
	if o.Tests.Suites == 0 && (!s.AllowNoTests || opts.RequireTests) {
		msg, hint := "no "+s.TestFileName+" found", "pass the folders that hold the tests, or set --allow-no-tests"
		if run.Unselected > 0 {
			msg = fmt.Sprintf("the test case selector %q picks no result of the %d suites found", opts.SelectorText, run.Unselected)
			hint = "check the selector's names and patterns, or set --allow-no-tests"
		}
		o.Findings = []report.Finding{kyvernotest.NoTests(msg, hint)}
	}
	o.Finalize()
	run.Overlay = o
	return run, nil
}

// findTests loads the test files under dir. Test files name paths
// relative to themselves, often ../policies: the root is the repository's,
// as for generate, and nothing outside it is read.
func findTests(fileName, dir string, rootOf func(string) (string, error)) ([]*kyvernotest.Suite, error) {
	root, err := rootOf(dir)
	var repo *repofs.Root
	if err == nil {
		repo, err = repofs.Open(root, repofs.Limits{})
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &PathError{dir + " does not exist"}
		}
		return nil, err
	}
	abs, _ := filepath.Abs(dir)
	info, err := repo.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &PathError{dir + " does not exist"}
	case err != nil:
		return nil, err
	case !info.IsDir():
		return nil, &PathError{fmt.Sprintf("%s is a file; kyverno-gate test, like kyverno test, takes folders and runs every %s below them (kyverno-gate test %s)", dir, fileName, filepath.Dir(dir))}
	}
	return kyvernotest.Discover(repo, []string{abs}, fileName)
}
