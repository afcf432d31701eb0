package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/gate/weaken"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/output/attribute"
	"github.com/kyverno-gate/kyverno-gate/output/collect"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
	"github.com/kyverno-gate/kyverno-gate/repoconfig"
	"github.com/kyverno-gate/kyverno-gate/settings"
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
				output.Text(stderr, "check", output.Failed, nil, 0, msg)
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
				if dirs, err = defaultOverlays(s); err != nil {
					return fail(err.Error())
				}
			}
			ctx, stop := signal.NotifyContext(limits, syscall.SIGTERM, os.Interrupt)
			defer stop()
			report := checkOverlays(ctx, dirs, s, logger)
			var failed bool
			for _, t := range targets {
				if err := writeTarget(t, report, stdout, stderr); err != nil {
					logger.Errorf("%v", err)
					failed = true
				}
			}
			if failed {
				return exitError{2}
			}
			if report.ExitCode != 0 {
				return exitError{report.ExitCode}
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
func writeTarget(t output.Target, r *output.CheckReport, stdout, stderr io.Writer) error {
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

// defaultOverlays are the paths check judges without arguments: every
// environment of the repository configuration, else every overlays/*
// folder of the repository root.
func defaultOverlays(s *settings.Settings) ([]string, error) {
	root, err := s.Root(".")
	if err != nil {
		return nil, err
	}
	cfg, err := repoconfig.Load(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	if cfg != nil && len(cfg.Environments) > 0 {
		for _, e := range cfg.Environments {
			dirs = append(dirs, filepath.Join(root, filepath.FromSlash(e.Path)))
		}
		return dirs, nil
	}
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		return nil, err
	}
	var names []string
	if repo.IsDir("overlays") {
		if names, err = repo.ReadDir("overlays"); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if p := filepath.Join(root, "overlays", n); !strings.HasPrefix(n, ".") && repo.IsDir(p) {
			dirs = append(dirs, p)
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("nothing to check: %s declares no environment and %s has no overlays/* folder (name the PATHs to check)",
			settings.ConfigFile, root)
	}
	return dirs, nil
}

// checkOverlays runs the pipeline on every dir and builds the finalized
// report. An overlay that cannot be evaluated is an overlay with an error,
// the others are still checked.
func checkOverlays(ctx context.Context, dirs []string, s *settings.Settings, logger *logrus.Logger) *output.CheckReport {
	report := &output.CheckReport{Tool: output.DefaultTool(version)}
	var cols []output.Column
	configs := map[string]*repoconfig.Config{}
	// Overlays share bases, so the same note (a deprecated field in a base)
	// would be printed once per overlay: print each line once.
	seen := map[string]bool{}
	logf := func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !seen[msg] {
			seen[msg] = true
			logger.Info(msg)
		}
	}
	for _, dir := range dirs {
		o, root, col := checkOverlay(ctx, dir, s, logger, logf, configs)
		// Lines are found per overlay: overlays named on the command line
		// may belong to different repository roots.
		if root != "" {
			one := &output.CheckReport{Overlays: []output.OverlayResult{o}}
			one.Locate(root)
			o = one.Overlays[0]
		}
		report.Overlays = append(report.Overlays, o)
		if col != nil {
			cols = append(cols, *col)
		}
	}
	if len(cols) > 0 {
		report.Posture = output.NewMatrix(cols...)
	}
	report.Finalize()
	return report
}

// checkOverlay judges one dir: its result, its repository root ("" when
// unknown) and its posture column (nil when it was not rendered).
func checkOverlay(ctx context.Context, dir string, s *settings.Settings, logger *logrus.Logger, logf func(string, ...any),
	configs map[string]*repoconfig.Config) (output.OverlayResult, string, *output.Column) {
	o := output.OverlayResult{Path: filepath.ToSlash(dir)}
	root, err := s.Root(dir)
	if err != nil {
		o.Error = err.Error()
		return o, "", nil
	}
	if abs, err := filepath.Abs(dir); err == nil {
		if rel, err := filepath.Rel(root, abs); err == nil {
			o.Path = filepath.ToSlash(rel)
		}
	}
	cfg, ok := configs[root]
	if !ok {
		// An unreadable configuration fails the floor gate; here it only
		// leaves the environment unnamed.
		cfg, _ = repoconfig.Load(root)
		configs[root] = cfg
	}
	if e := cfg.EnvironmentFor(o.Path); e != nil {
		o.Environment = e.Name
	}
	out, err := pipeline.Run(ctx, dir, s, logf)
	if err != nil {
		o.Error = explain(err, logger)
		logger.Errorf("%s: could not evaluate: %s", o.Label(), o.Error)
		return o, root, nil
	}
	o.Path = filepath.ToSlash(out.Rendered.Dir)
	if out.Baseline != nil {
		o.Baseline = out.BaselineName
	}
	var weakenItems, floorItems []weaken.Item
	if out.Weaken != nil {
		weakenItems = out.Weaken.Items
	}
	if out.Floor != nil {
		floorItems = out.Floor.Items
	}
	o.Findings = collect.Findings(out.Report.Findings, weakenItems, floorItems)
	// Point each finding at the patch (or declaration) that introduced it;
	// checkOverlays then finds the remaining lines.
	attribute.Findings(o.Findings, out.Rendered)
	if _, ran := out.Report.Timings["test"]; ran {
		o.Tests = collect.Tests(out.Tests)
	}
	head, err := kyverno.LoadResult(out.Rendered)
	if err != nil {
		logger.Warnf("%s: no posture: %v", o.Label(), err)
		return o, root, nil
	}
	var base []*kyverno.Object
	if out.Baseline != nil {
		if base, err = kyverno.LoadResult(out.Baseline); err != nil {
			logger.Warnf("%s: no posture: baseline: %v", o.Label(), err)
			return o, root, nil
		}
		if base == nil {
			base = []*kyverno.Object{} // a baseline with nothing in it
		}
	}
	col := collect.Column(o.Name(), head, base, weakenItems...)
	return o, root, &col
}
