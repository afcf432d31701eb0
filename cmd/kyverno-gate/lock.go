package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/pipeline"
)

func lockCommand(stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "vet DIR and record its rendering as the baseline for later generations",
		ArgsUsage: "[DIR]",
		Description: `Runs every gate on DIR exactly as generate does, comparing with the current
baseline (by default the existing lock file), and only if everything passes writes
the vetted rendering to DIR/kyverno-gate.lock.yaml. Commit that file: Argo CD's
generate then compares every later revision with it, so a weakening stays rejected
until it is approved or reverted, however many commits come on top.

A weaker lock cannot be written: every weakening must carry its approval first.

Examples:
   kyverno-gate lock overlays/production
   kyverno-gate lock overlays/production --baseline git:origin/main`,
		Flags:        paramFlags(),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			dir := c.Args().First()
			if dir == "" {
				dir = "."
			}
			s, err := resolve(c, environ)
			if err != nil {
				output.Text(stderr, dir, output.Failed, nil, 0, err.Error())
				return exitError{2}
			}
			if s.Baseline == "none" {
				output.Text(stderr, dir, output.Failed, nil, 0,
					"lock compares with a baseline so that it never records an unapproved weakening; use auto, git:<rev> or file:<path>")
				return exitError{2}
			}
			logger := newLogger(stderr, s.LogLevel)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			out, err := pipeline.Run(ctx, dir, s, logger.Infof)
			if err != nil {
				output.Text(stderr, dir, output.Failed, nil, 0, explain(err, logger))
				return exitError{2}
			}
			if out.Report.Rejected() {
				output.Text(stderr, dir, output.Rejected, out.Report.Findings, s.MaxProblems, "(lock not written)")
				return exitError{1}
			}
			path, err := baseline.WriteLock(out.Root, out.Rendered.Dir, out.Rendered)
			if err != nil {
				output.Text(stderr, dir, output.Failed, nil, 0, "writing the lock: "+err.Error())
				return exitError{2}
			}
			output.Text(stderr, dir, output.Vetted, out.Report.Findings, s.MaxProblems, "")
			logger.Infof("wrote %s", path)
			return nil
		},
	}
}
