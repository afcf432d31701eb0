package main

import (
	"errors"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/baseline"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/settings"
)

func lockCommand(stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "vet DIR and record its rendering as the baseline for later generations",
		ArgsUsage: "[DIR...]",
		Description: `Runs every gate on each DIR exactly as generate does, comparing with the current
baseline (by default the existing lock file), and only if everything passes writes
the vetted rendering to DIR/kyverno-gate.lock.yaml. Commit that file: Argo CD's
generate then compares every later revision with it, so a weakening stays rejected
until it is approved or reverted, however many commits come on top.

A weaker lock cannot be written: every weakening must carry its approval first.
With several DIRs each is vetted and locked on its own; the exit code is the worst
of them (a rejected DIR keeps its old lock, the others are written).

Examples:
   kyverno-gate lock overlays/*
   kyverno-gate lock overlays/production
   kyverno-gate lock overlays/production --baseline git:origin/main`,
		Flags:        paramFlags(),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			dirs := c.Args().Slice()
			if len(dirs) == 0 {
				dirs = []string{"."}
			}
			worst := 0
			for _, dir := range dirs {
				if code := lockOne(c, dir, environ, stderr); code > worst {
					worst = code
				}
			}
			if worst != 0 {
				return exitError{worst}
			}
			return nil
		},
	}
}

// lockOne vets dir and writes its lock; it returns the exit code.
func lockOne(c *cli.Context, dir string, environ []string, stderr io.Writer) int {
	if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		// overlays/* may match a README next to the overlays.
		output.Failure(stderr, dir, "not a directory: lock takes overlay folders")
		return 2
	}
	v, err := vet(c, dir, environ, stderr, func(s *settings.Settings) error {
		if s.Baseline == "none" {
			return errors.New("lock compares with a baseline so that it never records an unapproved weakening; use auto, git:<rev> or file:<path>")
		}
		return nil
	})
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 2
	}
	defer v.logs.release()
	path, err := baseline.WriteLock(v.out.Root, v.out.Rendered.Dir, v.out.Rendered)
	if err != nil {
		output.Failure(stderr, v.label, "writing the lock: "+err.Error())
		return 2
	}
	output.Compact(stderr, v.label, v.out.Overlay, v.settings.MaxProblems, "")
	v.logger.Infof("wrote %s", path)
	return 0
}
