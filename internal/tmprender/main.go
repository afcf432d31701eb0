// Throwaway: render a kustomize overlay like kyverno-gate would. DELETE ME.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func main() {
	dir, out := os.Args[1], os.Args[2]
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	all, _ := rm.AsYaml()
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "rendered.yaml"), all, 0o644)
	var pols, excs []string
	for _, r := range rm.Resources() {
		m, _ := r.Map()
		kind := r.GetKind()
		if kind == "ClusterPolicy" {
			if md, ok := m["metadata"].(map[string]any); ok {
				if ns, ok := md["namespace"]; ok {
					fmt.Printf("stripped namespace %v from ClusterPolicy %s\n", ns, r.GetName())
					delete(md, "namespace")
				}
			}
		}
		b, _ := yaml.Marshal(m)
		switch kind {
		case "ClusterPolicy", "Policy":
			pols = append(pols, string(b))
			spec := m["spec"].(map[string]any)
			for i, ru := range spec["rules"].([]any) {
				rule := ru.(map[string]any)
				fa := "-"
				if v, ok := rule["validate"].(map[string]any); ok {
					fa = fmt.Sprint(v["failureAction"])
				}
				fmt.Printf("%-28s rule[%d] %-26s failureAction=%s emitWarning=%v labels=%v\n", r.GetName(), i, rule["name"], fa, spec["emitWarning"], r.GetLabels())
			}
		case "PolicyException":
			excs = append(excs, string(b))
			fmt.Printf("PolicyException %s/%s\n", r.GetNamespace(), r.GetName())
		default:
			fmt.Printf("OTHER %s %s\n", kind, r.GetName())
		}
	}
	os.WriteFile(filepath.Join(out, "policies.yaml"), []byte(strings.Join(pols, "---\n")), 0o644)
	os.WriteFile(filepath.Join(out, "exceptions.yaml"), []byte(strings.Join(excs, "---\n")), 0o644)
}
