package main

import (
	"io"

	"github.com/urfave/cli/v2"

	"github.com/kyverno-gate/kyverno-gate/settings"
)

func pluginConfigCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "plugin-config",
		Usage: "print the Argo CD plugin.yaml for this version",
		Description: `Prints the ConfigManagementPlugin definition that announces every parameter.
The repository's plugin.yaml and examples/install are this output.

Example:
   kyverno-gate plugin-config > plugin.yaml`,
		Action: func(*cli.Context) error {
			_, err := stdout.Write(settings.PluginYAML())
			return err
		},
	}
}
