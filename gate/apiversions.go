package gate

import (
	"context"
	"fmt"
	"strings"

	"github.com/kyverno-gate/kyverno-gate/report"
)

// APIVersions warns about rendered kinds that the destination cluster does
// not serve, from Argo CD's KUBE_API_VERSIONS: syncing them fails (or, for
// policies whose CRDs come from another app, must wait for it).
type APIVersions struct{}

func (APIVersions) Name() report.Gate { return report.GateAPIVersions }

func (APIVersions) Check(_ context.Context, in *Input, out *report.Overlay) error {
	served := in.Settings.App.KubeAPIVersions
	if len(served) == 0 {
		return nil
	}
	set := make(map[string]bool, len(served))
	for _, v := range served {
		set[v] = true
	}
	seen := map[string]bool{}
	for _, r := range in.Rendered.Resources {
		gvk := r.APIVersion + "/" + r.Kind
		if seen[gvk] {
			continue
		}
		seen[gvk] = true
		// Argo CD lists both group/version and group/version/kind; a
		// cluster that lists the kind serves it.
		if set[gvk] || (set[r.APIVersion] && !hasKindEntries(served, r.APIVersion)) {
			continue
		}
		out.Add(report.Finding{Gate: report.GateAPIVersions, Severity: report.Warning,
			Subject: r.Subject(),
			Message: fmt.Sprintf("the destination cluster does not serve %s (KUBE_API_VERSIONS)", gvk),
			Hint:    "install or upgrade the CRDs first (for Kyverno: its Helm chart), or sync them in an earlier wave"})
	}
	return nil
}

func hasKindEntries(served []string, gv string) bool {
	for _, v := range served {
		if strings.HasPrefix(v, gv+"/") {
			return true
		}
	}
	return false
}
