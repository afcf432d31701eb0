package kyvernotest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// Gate runs the repository's Kyverno tests against the rendered overlay.
type Gate struct{}

func (Gate) Name() string { return "test" }

func (g Gate) Check(ctx context.Context, in *gate.Input) ([]gate.Finding, error) {
	_, findings, err := g.Evaluate(ctx, in)
	return findings, err
}

// Evaluate is Check with the details: the result of every suite, for
// reports. Without the tests parameter it searches the whole repository
// (SearchWhole); with it, the folders it names (Discover).
func (Gate) Evaluate(_ context.Context, in *gate.Input) ([]*SuiteResult, []gate.Finding, error) {
	repo, err := in.Repository()
	if err != nil {
		return nil, nil, err
	}
	found, err := Search(repo, in)
	if err != nil {
		return nil, nil, fmt.Errorf("finding tests: %w", err)
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
	results := Run(found.Suites, ov)
	ran := 0
	var skipped []string
	for _, r := range results {
		if r.Skipped != "" {
			skipped = append(skipped, r.Suite.Rel)
			continue
		}
		ran++
	}
	findings := Findings(results)
	if ran == 0 && !in.Settings.AllowNoTests {
		findings = append(findings, gate.Finding{Gate: "test", Severity: gate.Error,
			Message: "no Kyverno test covers a policy of this overlay: " + found.Describe(in.Settings.TestFileName, skipped),
			Hint:    "add kyverno test suites for its policies (in any folder), point parameter tests at them, or set allow-no-tests=true"})
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
	return results, findings, nil
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
func Findings(results []*SuiteResult) []gate.Finding {
	var out []gate.Finding
	for _, r := range results {
		file := r.Suite.Rel
		if r.Err != nil {
			hint := "fix the test file or the files it names"
			var crash *CrashError
			if errors.As(r.Err, &crash) {
				hint = "this is a bug of Kyverno or kyverno-gate, not necessarily of the test: please report it with the suite"
			}
			out = append(out, gate.Finding{Gate: "test", Severity: gate.Error, File: file, Object: "Test " + r.Suite.Name(),
				Message: "could not run: " + r.Err.Error(), Hint: hint})
			continue
		}
		for _, row := range r.Rows {
			if !row.Failed() {
				continue
			}
			f := gate.Finding{Gate: "test", Severity: gate.Error, File: file, Object: "policy " + row.Policy,
				Rule: row.Rule, Resource: row.Resource}
			if row.Strict != "" {
				f.Message = row.Strict
				f.Hint = "kyverno test would pass this; fix the policy or the test so that the rule really acts on the resource"
			} else {
				f.Message = fmt.Sprintf("expected %s: %s", row.Expected, row.Reason)
				if row.Message != "" && row.Message != row.Reason {
					f.Message += " (" + firstLine(row.Message) + ")"
				}
				f.Hint = "the rendered policy no longer behaves as the test expects; fix the overlay or update the test"
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

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Counts sums results the way `kyverno test` reports them, and how
// kyverno-gate judges them.
type Counts struct {
	Suites, Skipped, Errors                 int
	Results, UpstreamPassed, UpstreamFailed int
	Failed                                  int // kyverno-gate's failures (rows and suites)
}

// Count returns the totals over results.
func Count(results []*SuiteResult) Counts {
	var c Counts
	for _, r := range results {
		c.Suites++
		if r.Skipped != "" {
			c.Skipped++
			continue
		}
		if r.Err != nil {
			c.Errors++
			c.Failed++
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
			}
		}
	}
	return c
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
