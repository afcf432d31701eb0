package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/drift"
	"github.com/kyverno-gate/kyverno-gate/output"
	"github.com/kyverno-gate/kyverno-gate/report"
)

func driftCommand(stdout, stderr io.Writer, environ []string) *cli.Command {
	return &cli.Command{
		Name:      "drift",
		Usage:     "compare what a cluster enforces with the vetted rendering of DIR, per policy",
		ArgsUsage: "[DIR]",
		Description: `Reads every Kyverno object of the cluster (get and list only, as export does),
then vets DIR exactly as generate does, and compares each policy:
equal, equivalent (other text, same enforcement), weaker live (loosened out of band:
an error, naming the field), stricter live, missing live (an error), extra live
(an error when it is an exception that loosens enforcement), and not Ready (an
error: Kyverno does not enforce it). Server defaults are no difference.

The cluster is read before the repository; then the network is closed as for
every repository run. Exit codes as every command: 0 no drift that enforces less,
1 such drift (or DIR rejected by a gate), 2 could not evaluate.

Examples:
   kyverno-gate drift overlays/production --context production
   kyverno-gate drift overlays/production --output sarif=drift.sarif`,
		Flags: append(append(paramFlags(), clusterFlags()...),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text",
				Usage: "FORMAT or FORMAT=FILE, the report format (text, json, markdown, sarif, junit, github); default text on stdout"}),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				output.Failure(stderr, "drift", fmt.Sprintf("drift takes one DIR, got %d", c.NArg()))
				return exitError{2}
			}
			target, err := output.ParseTarget(c.String("output"))
			if err != nil {
				output.Failure(stderr, "drift", err.Error())
				return exitError{2}
			}
			if tf, ok := target.Format.(*output.TextFormat); ok {
				tf.Colour = func(w io.Writer) bool { return output.Colour(w, lookupEnv(environ)) }
			}
			// The cluster first: vet closes the network.
			snap, err := readCluster(c, false)
			if err != nil {
				output.Failure(stderr, "drift", err.Error())
				return exitError{2}
			}
			v, err := vet(c, c.Args().First(), environ, stderr)
			if err != nil {
				return err
			}
			defer v.logs.release()
			results, err := drift.Compare(v.out.Rendered, snap)
			if err != nil {
				output.Failure(stderr, v.label, "comparing with the cluster: "+err.Error())
				return exitError{2}
			}
			rep := &report.Report{Tool: report.DefaultTool(version), Command: "drift", Overlays: []report.Overlay{{
				Path:     v.out.Rendered.Dir,
				Baseline: fmt.Sprintf("cluster %s (%s)", snap.Context, snap.Server),
				Findings: drift.Findings(results, snap.Context),
			}}}
			rep.Finalize()
			w := stdout
			if target.File != "" {
				f, err := os.Create(filepath.Clean(target.File))
				if err != nil {
					output.Failure(stderr, v.label, err.Error())
					return exitError{2}
				}
				defer f.Close()
				w = f
			}
			if err := target.Format.Write(w, rep); err != nil {
				output.Failure(stderr, v.label, "writing the report: "+err.Error())
				return exitError{2}
			}
			for _, n := range snap.Notes {
				v.logger.Infof("cluster: %s", n)
			}
			v.logger.Infof("drift of %s against context %s: %s", v.label, snap.Context, drift.Summary(results))
			if rep.ExitCode != 0 {
				return exitError{rep.ExitCode}
			}
			return nil
		},
	}
}
