package kyvernotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Gate runs the repository's Kyverno tests against the rendered overlay.
type Gate struct{}

func (Gate) Name() report.Gate { return report.GateTest }

// Check implements gate.Gate: a finding per failed result or suite that
// could not run (or for no suite at all), and the overlay's Tests.
// Without the tests parameter it searches the whole repository
// (SearchWhole); with it, the folders it names (Discover).
func (Gate) Check(_ context.Context, in *gate.Input, out *report.Overlay) error {
	found, err := SearchFor(in)
	if err != nil {
		return err
	}
	ov := &Overlay{}
	for _, r := range in.Rendered.Resources {
		if kyverno.IsKyverno(r) {
			e := Entry{Object: Object{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}, Doc: r.YAML}
			if r.Source != "" {
				e.Source = filepath.Join(in.Root, r.Source)
			}
			ov.Entries = append(ov.Entries, e)
		}
	}
	c := openCache(in)
	results := RunCached(found.Suites, ov, c)
	ran, cached := 0, 0
	var skipped []string
	for _, r := range results {
		if r.Skipped != "" {
			skipped = append(skipped, r.Suite.Rel)
			continue
		}
		ran++
		if r.Cached {
			cached++
		}
		for _, c := range r.CarriedOver {
			in.Logf("test: %s: results written for %s (the migration's successor)", r.Suite.Rel, c)
		}
	}
	if c != nil {
		in.Logf("test: %d of %d suites' results from the cache (%s; parameter cache=false turns it off)", cached, ran, c.Store.Dir())
	}
	out.Add(Findings(results)...)
	out.Tests = Summary(results)
	if ran == 0 && !in.Settings.AllowNoTests {
		out.Add(NoTests("no Kyverno test covers a policy of this overlay: "+found.Describe(in.Settings.TestFileName, skipped),
			"add kyverno test suites for its policies (in any folder), point parameter tests at them, or set allow-no-tests=true"))
	} else {
		msg := fmt.Sprintf("ran %d test suites against %s", ran, in.Dir)
		if n := len(found.Unrelated) + len(skipped); n > 0 {
			msg += fmt.Sprintf("; %d %s no policy it renders", n, plural(n, "names", "name"))
		}
		if n := len(found.Elsewhere); n > 0 {
			msg += fmt.Sprintf("; %d %s to other overlays", n, plural(n, "belongs", "belong"))
		}
		in.Logf("%s", msg)
	}
	return nil
}

// openCache is the test gate's view of the run's result cache (nil: off).
func openCache(in *gate.Input) *Cache {
	st := in.Cache()
	if st == nil {
		return nil
	}
	s := in.Settings
	// The settings that decide what a run reads and renders; a suite's
	// rows depend on them only through its inputs, which the key covers
	// too, so this only errs on the side of a miss.
	salt, err := json.Marshal([]any{s.Baseline, s.Tests, s.Samples, s.TestFileName, s.AllowNoTests, s.AllowEmpty, s.EnableHelm})
	if err != nil {
		return nil
	}
	return &Cache{Store: st, Salt: salt}
}

// NoTests is the finding for a run that found no suite to run.
func NoTests(msg, hint string) report.Finding {
	return report.Finding{Gate: report.GateTest, Kind: report.KindNoTests, Severity: report.Error, Message: msg, Hint: hint}
}

// searchKey keys SearchFor's result in a rendering's memo.
type searchKey struct{}

// SearchFor is Search over in's repository, done once per rendering: the
// test gate and the weaken gate's witness search share the suites.
func SearchFor(in *gate.Input) (*Found, error) {
	v, err := in.Rendered.Memo(searchKey{}, func() (any, error) {
		repo, err := in.Repository()
		if err != nil {
			return nil, err
		}
		found, err := Search(repo, in)
		if err != nil {
			return nil, fmt.Errorf("finding tests: %w", err)
		}
		return found, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Found), nil
}

// Search finds the suites of in's rendering as the tests parameter says.
func Search(repo *repofs.Root, in *gate.Input) (*Found, error) {
	if in.TestsEverywhere() {
		return SearchWhole(repo, in.Settings.TestFileName, in.Rendered)
	}
	dirs := in.TestDirs()
	suites, err := Discover(repo, dirs, in.Settings.TestFileName)
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	for _, s := range suites {
		files[s.Path] = true
	}
	return &Found{Suites: suites, Where: strings.Join(dirs, ", "), Files: len(files)}, nil
}

// Findings turns failed suites and rows into findings, one per problem.
func Findings(results []*SuiteResult) []report.Finding {
	var out []report.Finding
	for _, r := range results {
		file := r.Suite.Rel
		if r.Err != nil {
			hint := "fix the test file or the files it names"
			var crash *CrashError
			if errors.As(r.Err, &crash) {
				hint = "this is a bug of Kyverno or kyverno-gate, not necessarily of the test: please report it with the suite"
			}
			out = append(out, report.Finding{Gate: report.GateTest, Kind: report.KindSuiteError, Severity: report.Error, File: file,
				Subject: report.Subject{Kind: report.SubjectTest, Name: r.Suite.Name()},
				Message: "could not run: " + r.Err.Error(), Hint: hint})
			continue
		}
		for _, row := range r.Rows {
			if !row.Failed() {
				continue
			}
			f := report.Finding{Gate: report.GateTest, Kind: report.KindFailed, Severity: report.Error, File: file,
				Subject: report.Subject{Kind: report.SubjectTestPolicy, Name: row.Policy},
				Rule:    row.Rule, Resource: row.Resource}
			if row.Strict != "" {
				f.Message = row.Strict
				f.Hint = "kyverno test would pass this; fix the policy or the test so that the rule really acts on the resource"
			} else {
				f.Message = fmt.Sprintf("expected %s: %s", row.Expected, row.Reason)
				if row.Message != "" && row.Message != row.Reason {
					f.Message += " (" + firstLine(row.Message) + ")"
				}
				f.Hint = "the rendered policy no longer behaves as the test expects; fix the overlay or update the test"
				if len(r.Substituted) == 0 { // run as written (kyverno-gate test)
					f.Hint = "the policy does not behave as the test expects; fix the policy or update the test"
				}
				if strings.Contains(row.Message+row.Reason, "socket: permission denied") {
					// The process's network filter refused a lookup.
					f.Hint = "kyverno-gate runs with the network off (parameter allow-remote=false), so a policy cannot look anything up during tests; answer the call in the test file (apiCallResponses, globalContextEntries)"
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// Summary summarises results for reports: the counts and one case per row
// (and per suite skipped or not run).
func Summary(results []*SuiteResult) *report.TestSummary {
	t := &report.TestSummary{TestCounts: Count(results)}
	for _, r := range results {
		suite, name := "", ""
		if r.Suite != nil {
			suite, name = r.Suite.Rel, r.Suite.Name()
		}
		switch {
		case r.Skipped != "":
			t.Cases = append(t.Cases, report.TestCase{Suite: suite, SuiteName: name, Status: "skip", Message: r.Skipped})
			continue
		case r.Err != nil:
			t.Cases = append(t.Cases, report.TestCase{Suite: suite, SuiteName: name, Status: "error", Message: r.Err.Error(),
				UpstreamStop: r.UpstreamStop})
		}
		for _, c := range r.CarriedOver {
			t.CarriedOver = append(t.CarriedOver, suite+": "+c)
		}
		for _, row := range r.Rows {
			status := "pass"
			switch {
			case row.Failed():
				status = "fail"
			case row.Upstream == "skip":
				status = "skip"
			}
			t.Cases = append(t.Cases, report.TestCase{Suite: suite, SuiteName: name, Policy: row.Policy, Rule: row.Rule,
				Resource: row.Resource, Expected: row.Expected, Got: row.Got, Status: status, Upstream: row.Upstream,
				Reason: row.Reason, Message: row.Message, Strict: row.Strict, UpstreamStop: r.UpstreamStop})
		}
	}
	return t
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Counts are the totals of a run, as reports show them.
type Counts = report.TestCounts

// Count returns the totals over results.
func Count(results []*SuiteResult) Counts {
	var c Counts
	var early, stop string
	for _, r := range results {
		c.Suites++
		if r.Skipped != "" {
			c.Skipped++
			continue
		}
		if r.UpstreamStop != "" {
			rel := ""
			if r.Suite != nil {
				rel = r.Suite.Rel
			}
			switch {
			case r.UpstreamStopsEarly && early == "":
				early = fmt.Sprintf("before running any suite: %s %s", r.UpstreamStop, rel)
			case !r.UpstreamStopsEarly && stop == "":
				stop = fmt.Sprintf("at %s: %s", rel, r.UpstreamStop)
			}
		}
		if r.Err != nil {
			c.Errors++
			c.Failed++
		}
		if r.Failed() {
			c.FailedSuites++
		}
		for _, row := range r.Rows {
			c.Results++
			if row.Upstream == "fail" {
				c.UpstreamFailed++
			} else {
				c.UpstreamPassed++
			}
			if row.Failed() {
				c.Failed++
				c.FailedResults++
			} else {
				c.PassedResults++
			}
		}
	}
	c.UpstreamStop = early
	if c.UpstreamStop == "" {
		c.UpstreamStop = stop
	}
	return c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
