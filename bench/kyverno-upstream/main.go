// Command kyverno-upstream is the unmodified Kyverno CLI (v1.19.1, as pinned in
// go.mod), built from the module proxy so benchmarks and agreement checks can
// run upstream `kyverno test` side by side with kyverno-gate on the same data.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/commands"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/commands/apply"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/log"
)

func main() {
	cmd := commands.RootCommand(false)
	if err := log.Configure(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	cmd.PersistentFlags().AddGoFlagSet(flag.CommandLine)
	if err := cmd.Execute(); err != nil {
		if e, ok := err.(apply.WarnExitCodeError); ok {
			os.Exit(e.ExitCode)
		}
		os.Exit(1)
	}
}
