//go:build loop

package loop

import (
	"os"
	"testing"

	controller "github.com/argoproj/argo-cd/v3/cmd/argocd-application-controller/commands"
	cmpserver "github.com/argoproj/argo-cd/v3/cmd/argocd-cmp-server/commands"
	reposerver "github.com/argoproj/argo-cd/v3/cmd/argocd-repo-server/commands"
	"github.com/spf13/cobra"
)

// roleEnv makes the test binary act as one of Argo CD's components, as
// Argo CD's own binary is multi-call (ARGOCD_BINARY_NAME).
const roleEnv = "KYVERNO_GATE_LOOP_ROLE"

var roles = map[string]func() *cobra.Command{
	"argocd-cmp-server":             cmpserver.NewCommand,
	"argocd-repo-server":            reposerver.NewCommand,
	"argocd-application-controller": controller.NewCommand,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		cmd := roles[role]()
		cmd.SetArgs(os.Args[1:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
