package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/cluster"
	"github.com/kyverno-gate/kyverno-gate/internal/sandbox"
	"github.com/kyverno-gate/kyverno-gate/output"
)

// clusterFlags are the flags of the commands that read a cluster.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig file (default: KUBECONFIG, else ~/.kube/config)"},
		&cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: its current context)"},
		&cli.StringFlag{Name: "kyverno-namespace", Value: "kyverno", Usage: "namespace of Kyverno's ConfigMap"},
		&cli.StringFlag{Name: "kyverno-configmap", Value: "kyverno", Usage: "name of Kyverno's ConfigMap"},
		&cli.DurationFlag{Name: "cluster-timeout", Value: time.Minute, Usage: "give up reading the cluster after this long"},
	}
}

// readCluster takes the snapshot; with closeNetwork, it then closes the
// network when the process is confined (main). Commands that go on to read
// a repository leave that to its confinement (confine), which honours
// allow-remote.
func readCluster(c *cli.Context, closeNetwork bool) (*cluster.Snapshot, error) {
	client, err := cluster.Connect(cluster.Source{Kubeconfig: c.String("kubeconfig"), Context: c.String("context")})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Duration("cluster-timeout"))
	defer cancel()
	snap, err := client.Read(ctx, cluster.Options{KyvernoNamespace: c.String("kyverno-namespace"), KyvernoConfigMap: c.String("kyverno-configmap")})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("context %s: no answer from %s within %s (raise --cluster-timeout or check the connection)", client.Context, client.Server, c.Duration("cluster-timeout"))
		}
		var ae *cluster.AccessError
		var ne *cluster.NotInstalledError
		if !errors.As(err, &ae) && !errors.As(err, &ne) {
			err = fmt.Errorf("context %s (%s): %v", client.Context, client.Server, err)
		}
		return nil, err
	}
	if closeNetwork && confine != nil {
		if err := sandbox.DenyNetwork(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return nil, fmt.Errorf("the network could not be closed after reading the cluster: %v", err)
		}
	}
	return snap, nil
}

func exportCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "back up the Kyverno policies a cluster enforces, as a folder kustomize renders",
		ArgsUsage: " ",
		Description: `Reads, with get and list only, every Kyverno policy kind of both API groups
(ClusterPolicy, Policy, both PolicyExceptions, the cleanup policies,
GlobalContextEntry, ValidatingPolicy and the other CEL kinds with their Namespaced
variants) and writes one file per object and a kustomization listing them:
<group>/<resource>/[<namespace>/]<name>.yaml. What the server owns (status,
managedFields, uid, resourceVersion, generation, creationTimestamp, the
last-applied annotation) and fields holding their CRD default are left out, so an
export diffs cleanly against the repository. Kyverno's ConfigMap and its webhooks'
failure policies are recorded under kyverno-config/ where readable (not listed in
the kustomization: a restore leaves them to Kyverno).

The bytes depend only on what the cluster holds. A kind that cannot be listed
fails the export (exit 2, naming it) and nothing is written.

Restore: kubectl apply --server-side -k DIR

Examples:
   kyverno-gate export --context production --output backup/
   kyverno-gate export --output backups --dated     # backups/2026-12-01/
   kyverno-gate export --output - > policies.yaml`,
		Flags: append(clusterFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "folder to write (new or empty), or - for one YAML stream on stdout", Required: true},
			&cli.BoolFlag{Name: "dated", Usage: "write into a folder named by today's date (UTC, YYYY-MM-DD) inside --output"},
		),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			label := "export"
			if c.NArg() > 0 {
				output.Failure(stderr, label, "export takes no arguments (give the folder with --output)")
				return exitError{2}
			}
			snap, err := readCluster(c, true)
			if err != nil {
				output.Failure(stderr, label, err.Error())
				return exitError{2}
			}
			label = "export of context " + snap.Context
			out := c.String("output")
			if out == "-" {
				if c.Bool("dated") {
					output.Failure(stderr, label, "--dated needs a folder, not --output -")
					return exitError{2}
				}
				data, err := cluster.Stream(snap)
				if err != nil {
					output.Failure(stderr, label, err.Error())
					return exitError{2}
				}
				if _, err := stdout.Write(data); err != nil {
					return exitError{2}
				}
			} else {
				if c.Bool("dated") {
					out = filepath.Join(out, time.Now().UTC().Format("2006-01-02"))
				}
				files, err := cluster.Layout(snap)
				if err == nil {
					err = cluster.WriteLayout(out, files)
				}
				if err != nil {
					output.Failure(stderr, label, err.Error())
					return exitError{2}
				}
			}
			for _, n := range snap.Notes {
				fmt.Fprintf(stderr, "kyverno-gate: note: %s\n", n)
			}
			where := out
			if out == "-" {
				where = "stdout"
			}
			fmt.Fprintf(stderr, "kyverno-gate: exported %d objects of context %s to %s\n", len(snap.Objects), snap.Context, strings.TrimSuffix(where, "/"))
			return nil
		},
	}
}
