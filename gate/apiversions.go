package gate

import (
	"context"
	"fmt"
	"strings"
)

// APIVersions warns about rendered kinds that the destination cluster does
// not serve, from Argo CD's KUBE_API_VERSIONS: syncing them fails (or, for
// policies whose CRDs come from another app, must wait for it).
type APIVersions struct{}

func (APIVersions) Name() string { return "api-versions" }

func (APIVersions) Check(_ context.Context, in *Input) ([]Finding, error) {
	served := in.Settings.App.KubeAPIVersions
	if len(served) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(served))
	for _, v := range served {
		set[v] = true
	}
	var out []Finding
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
		out = append(out, Finding{Gate: "api-versions", Severity: Warning, Object: r.ID(),
			Message: fmt.Sprintf("the destination cluster does not serve %s (KUBE_API_VERSIONS)", gvk),
			Hint:    "install or upgrade the CRDs first (for Kyverno: its Helm chart), or sync them in an earlier wave"})
	}
	return out, nil
}

func hasKindEntries(served []string, gv string) bool {
	for _, v := range served {
		if strings.HasPrefix(v, gv+"/") {
			return true
		}
	}
	return false
}
