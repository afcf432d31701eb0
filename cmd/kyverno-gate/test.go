package main

import (
	"encoding/json"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/output"
)

func testCommand(stdout, stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run Kyverno test suites as written, strictly",
		ArgsUsage: "[DIR...]",
		Description: `Runs every Kyverno test file (cli.kyverno.io/v1alpha1 Test, default name
kyverno-test.yaml) under each DIR (default: the working directory) with Kyverno's
own engine, like 'kyverno test', but strictly: an invalid policy, a test file that
does not load, or an expected fail/warn/error on a resource the rule did not apply
to is a failure. For repositories without overlays, and for CI.

Examples:
   kyverno-gate test tests/
   kyverno-gate test . --output json > results.json`,
		Flags: append(paramFlags(), &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text",
			Usage: "text (a report on stderr) or json (every result on stdout)"}),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			s, err := resolve(c, environ)
			if err != nil {
				output.Text(stderr, "test", output.Failed, nil, 0, err.Error())
				return exitError{2}
			}
			format := c.String("output")
			if format != "text" && format != "json" {
				output.Text(stderr, "test", output.Failed, nil, 0, fmt.Sprintf("unknown output format %q (text, json)", format))
				return exitError{2}
			}
			logger := newLogger(stderr, s.LogLevel)
			dirs := c.Args().Slice()
			if len(dirs) == 0 {
				dirs = []string{"."}
			}
			var results []*kyvernotest.SuiteResult
			for _, d := range dirs {
				// Test files name paths relative to themselves, often
				// ../policies: the root is the repository's, as for
				// generate, and nothing outside it is read.
				root, err := s.Root(d)
				var repo *repofs.Root
				if err == nil {
					repo, err = repofs.Open(root, repofs.Limits{})
				}
				abs, _ := filepath.Abs(d)
				if err == nil && !repo.IsDir(abs) {
					err = fmt.Errorf("%s is not a folder (or does not exist)", d)
				}
				if err != nil {
					output.Text(stderr, d, output.Failed, nil, 0, err.Error())
					return exitError{2}
				}
				suites, err := kyvernotest.Discover(repo, []string{abs}, s.TestFileName)
				if err != nil {
					output.Text(stderr, d, output.Failed, nil, 0, err.Error())
					return exitError{2}
				}
				results = append(results, kyvernotest.Run(suites, nil)...)
			}
			counts := kyvernotest.Count(results)
			logger.Infof("%d suites, %d results", counts.Suites, counts.Results)
			if format == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(testReport(results, counts)); err != nil {
					return exitError{2}
				}
			}
			findings := kyvernotest.Findings(results)
			label := fmt.Sprintf("tests in %v", dirs)
			if len(dirs) == 1 {
				label = "tests in " + dirs[0]
			}
			detail := fmt.Sprintf("[%d suites, %d results, %d failed; kyverno test would report %d passed, %d failed]",
				counts.Suites, counts.Results, counts.Failed, counts.UpstreamPassed, counts.UpstreamFailed)
			switch {
			case counts.Suites == 0 && !s.AllowNoTests:
				output.Text(stderr, label, output.Rejected, []gate.Finding{{Gate: "test", Severity: gate.Error,
					Message: "no " + s.TestFileName + " found", Hint: "pass the folders that hold the tests, or set --allow-no-tests"}}, s.MaxProblems, "")
				return exitError{1}
			case len(findings) > 0:
				output.Text(stderr, label, output.Rejected, findings, s.MaxProblems, detail)
				return exitError{1}
			}
			output.Text(stderr, label, output.Vetted, nil, 0, detail)
			return nil
		},
	}
}

// testReport is the JSON form of a test run (schema version 1).
func testReport(results []*kyvernotest.SuiteResult, c kyvernotest.Counts) any {
	type row struct {
		Policy   string `json:"policy"`
		Rule     string `json:"rule,omitempty"`
		Resource string `json:"resource"`
		Expected string `json:"expected"`
		Got      string `json:"got,omitempty"`
		Upstream string `json:"upstream"`
		Reason   string `json:"reason"`
		Message  string `json:"message,omitempty"`
		Strict   string `json:"strict,omitempty"`
		Failed   bool   `json:"failed"`
	}
	type suite struct {
		File    string `json:"file"`
		Name    string `json:"name"`
		Skipped string `json:"skipped,omitempty"`
		Error   string `json:"error,omitempty"`
		Rows    []row  `json:"results"`
	}
	out := struct {
		Version int                `json:"version"`
		Counts  kyvernotest.Counts `json:"counts"`
		Suites  []suite            `json:"suites"`
	}{Version: 1, Counts: c}
	for _, r := range results {
		su := suite{File: r.Suite.Rel, Name: r.Suite.Name(), Skipped: r.Skipped, Rows: []row{}}
		if r.Err != nil {
			su.Error = r.Err.Error()
		}
		for _, x := range r.Rows {
			su.Rows = append(su.Rows, row{x.Policy, x.Rule, x.Resource, x.Expected, x.Got, x.Upstream, x.Reason, x.Message, x.Strict, x.Failed()})
		}
		out.Suites = append(out.Suites, su)
	}
	return out
}
