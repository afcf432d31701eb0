package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
	"github.com/kyverno-gate/kyverno-gate/report"
)

func checkCommand(stdout, stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "vet one or many overlays and report on them (for CI and reviews); never prints manifests",
		ArgsUsage: "[PATH...]",
		Description: `Renders each PATH and runs every gate exactly as generate does, then writes one
report: the verdict of each overlay, its findings (with the approval to add for each
weakening), its Kyverno test results and the posture matrix (the effective action
of every rule in every environment, marked against the baseline).

Default PATHs: every environment of the repository's .kyverno-gate.yaml, else every
overlays/* folder of the repository root.

--output FORMAT[=FILE], repeatable, chooses the formats: text, json, markdown, sarif,
junit, github (see docs/check-report.md). Without =FILE a format goes to stdout
(one at most). Without any --output, the text report goes to stderr beside the
logs; --output text sends it to stdout.

Exit codes as generate: 0 every overlay vetted, 1 some overlay rejected, 2 some
overlay could not be evaluated.

Examples:
   kyverno-gate check
   kyverno-gate check --baseline git:$(git merge-base origin/main HEAD) \
     --output sarif=check.sarif --output markdown=comment.md
   kyverno-gate check overlays/production --output json > report.json
   kyverno-gate check --output text > report.txt`,
		Flags: append(paramFlags(), &cli.StringSliceFlag{Name: "output", Aliases: []string{"o"},
			Usage: "FORMAT or FORMAT=FILE, repeatable; formats: " + strings.Join(output.Names(), ", ") + " (default: text on stderr)"}),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			fail := func(msg string) error {
				output.Failure(stderr, "check", msg)
				return exitError{2}
			}
			s, err := resolve(c, environ)
			if err != nil {
				return fail(err.Error())
			}
			targets, err := checkTargets(c.StringSlice("output"), environ)
			if err != nil {
				return fail(err.Error())
			}
			logger := newLogger(stderr, s.LogLevel)
			dirs := c.Args().Slice()
			if len(dirs) == 0 {
				if dirs, err = pipeline.DefaultOverlays(s); err != nil {
					return fail(err.Error())
				}
			}
			ctx, stop := signal.NotifyContext(limits, syscall.SIGTERM, os.Interrupt)
			defer stop()
			// Overlays share bases, so the same note (a deprecated field in a
			// base) would be logged once per overlay: log each line once.
			seen := map[string]bool{}
			logf := func(format string, args ...any) {
				if msg := fmt.Sprintf(format, args...); !seen[msg] {
					seen[msg] = true
					logger.Info(msg)
				}
			}
			rep := pipeline.Check(ctx, dirs, s, report.DefaultTool(version), logf, func(err error) string { return explain(err, logger) })
			for _, o := range rep.Overlays {
				if o.Error != "" {
					logger.Errorf("%s: could not evaluate: %s", o.Label(), o.Error)
				}
			}
			var failed bool
			for _, t := range targets {
				if err := writeTarget(t, rep, stdout, stderr); err != nil {
					logger.Errorf("%v", err)
					failed = true
				}
			}
			if failed {
				return exitError{2}
			}
			if rep.ExitCode != 0 {
				return exitError{rep.ExitCode}
			}
			return nil
		},
	}
}

// toStderr is the File of the text report written when no --output asked
// for text.
const toStderr = "\x00stderr"

// checkTargets parses the --output values. At most one format may write to
// stdout (a target without a file). Without a text target, text goes to
// stderr.
func checkTargets(specs []string, environ []string) ([]output.Target, error) {
	var out []output.Target
	stdout, text := "", false
	for _, spec := range specs {
		t, err := output.ParseTarget(spec)
		if err != nil {
			return nil, err
		}
		if t.Format.Name() == "text" {
			text = true
		}
		if t.File == "" {
			// Asked for by name, text goes to stdout like any other
			// format, so that `> report.txt` holds it.
			if stdout != "" {
				return nil, fmt.Errorf("--output %s and --output %s both write to stdout; give one of them a file (FORMAT=FILE)", stdout, spec)
			}
			stdout = spec
		}
		out = append(out, t)
	}
	if !text {
		// Not asked for: the report for the person at the terminal,
		// on stderr beside the logs.
		out = append(out, output.Target{Format: &output.TextFormat{}, File: toStderr})
	}
	getenv := lookupEnv(environ)
	for _, t := range out {
		if tf, ok := t.Format.(*output.TextFormat); ok {
			tf.Colour = func(w io.Writer) bool { return output.Colour(w, getenv) }
		}
	}
	return out, nil
}

// lookupEnv is os.Getenv over environ ("NAME=value" entries).
func lookupEnv(environ []string) func(string) string {
	return func(name string) string {
		v := ""
		for _, e := range environ {
			if k, val, ok := strings.Cut(e, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
}

// writeTarget writes r in t's format to t's file, else to stdout (stderr
// for the default text report).
func writeTarget(t output.Target, r *report.Report, stdout, stderr io.Writer) error {
	switch t.File {
	case "":
		return t.Format.Write(stdout, r)
	case toStderr:
		return t.Format.Write(stderr, r)
	}
	var b bytes.Buffer
	if err := t.Format.Write(&b, r); err != nil {
		return fmt.Errorf("writing the %s report: %w", t.Format.Name(), err)
	}
	if err := os.WriteFile(t.File, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the %s report: %w", t.Format.Name(), err)
	}
	return nil
}
