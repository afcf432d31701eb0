package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// testParams are the parameters the test command uses; the others
// (baseline, tests, samples, allow-empty, enable-helm) concern renderings
// and are not offered.
var testParams = []string{"test-file-name", "allow-no-tests", "timeout", "max-memory-mb", "allow-remote", "log-level", "max-problems", "repo-root"}

func testCommand(stdout, stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run Kyverno test suites as written, strictly (a drop-in for kyverno test)",
		ArgsUsage: "[DIR...]",
		Description: `Runs every Kyverno test file (cli.kyverno.io/v1alpha1 Test, default name
kyverno-test.yaml) at any depth under each DIR (default: the working directory)
with Kyverno's own engine, like 'kyverno test', but strictly: an invalid policy, a
test file that does not load, or an expected fail/warn/error on a resource the rule
did not apply to is a failure (docs/strictness.md). For repositories without
overlays, and for CI: kyverno test's flags work the same (-f, -t, -o, --fail-only,
--detailed-results, --require-tests, --remove-color).

Output: without -o, a report on stderr (the failures; every result with
--detailed-results). With -o FORMAT, that format on stdout: text, json, yaml,
markdown or junit (one JUnit XML document).

Exit codes: 0 every suite passed, 1 a failure (or no test found), 2 could not
evaluate (a missing DIR, a bad flag, the timeout).

Examples:
   kyverno-gate test tests/
   kyverno-gate test . --detailed-results -o junit > junit.xml
   kyverno-gate test . -t policy=require-labels,resource=pod-*
   kyverno-gate test . --output json > results.json`,
		Flags:        testFlags(),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			fail := func(label, msg string) error {
				output.Failure(stderr, label, msg)
				return exitError{2}
			}
			s, err := resolve(c, environ)
			if err != nil {
				return fail("test", err.Error())
			}
			format := c.String("output") // "": the text report on stderr
			if format != "" && !slices.Contains(output.TestFormats, format) {
				return fail("test", fmt.Sprintf("unknown output format %q (%s)", format, strings.Join(output.TestFormats, ", ")))
			}
			sel, err := kyvernotest.ParseSelector(c.String("test-case-selector"))
			if err != nil {
				return fail("test", "--test-case-selector: "+err.Error())
			}
			logger := newLogger(stderr, s.LogLevel)
			dirs := c.Args().Slice()
			if len(dirs) == 0 {
				dirs = []string{"."}
			}
			label := "tests in " + strings.Join(dirs, ", ")
			ctx, stop := signal.NotifyContext(limits, syscall.SIGTERM, os.Interrupt)
			defer stop()
			res, err := pipeline.Test(ctx, dirs, s, pipeline.TestOptions{Selector: sel, SelectorText: c.String("test-case-selector"),
				RequireTests: c.Bool("require-tests")})
			if err != nil {
				var (
					te *gate.TimeoutError
					pe *pipeline.PathError
				)
				switch {
				case errors.As(err, &pe):
					return fail(label, pe.Error())
				case errors.As(err, &te):
					return fail(label, te.Error()+" (raise --timeout, or leave it out: the test command has no time budget unless asked)")
				}
				return fail(label, explain(err, logger))
			}
			run := &output.TestRun{Label: label, Overlay: res.Overlay, Unselected: res.Unselected,
				Detailed: c.Bool("detailed-results"), FailOnly: c.Bool("fail-only"), MaxProblems: s.MaxProblems}
			// Machine formats (and text when asked for by name) go to
			// stdout; the report for the person goes to stderr otherwise.
			if format != "" {
				if err := run.Write(stdout, format); err != nil {
					return fail(label, "writing the report: "+err.Error())
				}
			}
			if format != "text" {
				_ = run.Write(stderr, "text")
			}
			if res.Overlay.Verdict == report.Rejected {
				return exitError{1}
			}
			return nil
		},
	}
}

// testFlags are the test command's flags: the parameters it uses, and
// kyverno test's own.
func testFlags() []cli.Flag {
	var flags []cli.Flag
	for _, f := range paramFlags() {
		name := f.Names()[0]
		if !slices.Contains(testParams, name) {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			switch name {
			case "test-file-name":
				f.Aliases = []string{"file-name", "f"} // kyverno test -f
			case "timeout":
				f.Usage = "stop with a clear error after this long (PARAM_TIMEOUT); kyverno test has no time budget, so neither has this command unless asked"
				f.DefaultText = "none"
			}
		case *cli.BoolFlag:
			if name == "allow-no-tests" {
				f.Usage = "succeed when no test is found, as kyverno test does without --require-tests (PARAM_ALLOW_NO_TESTS)"
			}
		}
		flags = append(flags, f)
	}
	return append(flags,
		&cli.StringFlag{Name: "output", Aliases: []string{"o", "output-format"},
			Usage: "write the report in this format on stdout: " + strings.Join(output.TestFormats, ", ") + " (default: text on stderr)"},
		&cli.BoolFlag{Name: "detailed-results", Usage: "list every result with its message, not only the failures (text); add the message column (markdown, junit)"},
		&cli.BoolFlag{Name: "fail-only", Usage: "report the failed results only"},
		&cli.StringFlag{Name: "test-case-selector", Aliases: []string{"t"}, Value: kyvernotest.DefaultSelector,
			Usage: "run only the results that match, as kyverno test: policy=<pattern>,rule=<pattern>,resource=<pattern> (* and ? as wildcards)"},
		&cli.BoolFlag{Name: "require-tests", Usage: "fail when no test is found (the default; it overrides --allow-no-tests)"},
		&cli.BoolFlag{Name: "remove-color", Usage: "accepted for kyverno test's sake: the output has no colour"},
	)
}
