package render

import (
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// scanKustomizations walks the kustomization graph reachable from dir before
// kustomize runs, because kustomize fetches remote bases (by exec'ing git) and
// remote files (over HTTP) as soon as it meets them: the refusal has to come
// first. It also turns a disabled Helm into a message naming our parameter.
func scanKustomizations(fs *repofs.Root, dir string, opts Options) (notes []string, err error) {
	seen := map[string]bool{}
	var visit func(dir string) error
	visit = func(dir string) error {
		real, err := fs.Resolve(dir)
		if err != nil {
			return err
		}
		if seen[real] {
			return nil
		}
		seen[real] = true
		file, k, err := readKustomization(fs, dir)
		if err != nil || k == nil {
			return err
		}
		deprecated := k.CheckDeprecatedFields()
		k.FixKustomization()
		rel := fs.Rel(file)
		if deprecated != nil {
			for _, m := range *deprecated {
				notes = append(notes, rel+": "+strings.TrimPrefix(m, "# Warning: "))
			}
		}
		refuse := func(field, ref string) error {
			return &Error{File: rel, Msg: fmt.Sprintf("%s entry %q is remote", field, ref),
				Hint: "remote bases and resources are disabled: vendor them into the repository, or set parameter allow-remote=true"}
		}
		if !opts.EnableHelm && (len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0) {
			return &Error{File: rel, Msg: "helmCharts are disabled",
				Hint: "set parameter enable-helm=true to inflate Helm charts (the chart must be vendored unless allow-remote=true)"}
		}
		// Entries kustomize may load as another kustomization root.
		for _, entries := range []struct {
			field string
			refs  []string
		}{{"resources", k.Resources}, {"components", k.Components},
			{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
			field := entries.field
			for _, ref := range entries.refs {
				if isRemote(ref) {
					if opts.AllowRemote {
						continue
					}
					return refuse(field, ref)
				}
				if strings.Contains(ref, "\n") { // inline generator/transformer config
					continue
				}
				sub := ref
				if !filepath.IsAbs(sub) {
					sub = filepath.Join(dir, ref)
				}
				if fs.IsDir(sub) {
					if err := visit(sub); err != nil {
						return err
					}
				} else if _, err := fs.Resolve(sub); err != nil {
					return &Error{File: rel, Msg: fmt.Sprintf("%s entry %q: %v", field, ref, err),
						Hint: "every file a kustomization reads must be inside the repository"}
				}
			}
		}
		// Entries kustomize only reads as files (HTTP when they are URLs).
		files := append(append([]string{}, k.Crds...), k.Configurations...)
		for _, p := range k.Patches {
			files = append(files, p.Path)
		}
		for _, p := range k.PatchesJson6902 {
			files = append(files, p.Path)
		}
		for _, p := range k.PatchesStrategicMerge {
			files = append(files, string(p))
		}
		for _, r := range k.Replacements {
			files = append(files, r.Path)
		}
		for _, g := range k.ConfigMapGenerator {
			files = append(append(files, g.FileSources...), g.EnvSources...)
		}
		for _, g := range k.SecretGenerator {
			files = append(append(files, g.FileSources...), g.EnvSources...)
		}
		files = append(files, k.OpenAPI["path"])
		for _, f := range files {
			if isHTTP(f) && !opts.AllowRemote {
				return refuse("file", f)
			}
		}
		return nil
	}
	return notes, visit(dir)
}

// readKustomization returns the kustomization file in dir, or nil when dir
// has none.
func readKustomization(fs *repofs.Root, dir string) (string, *types.Kustomization, error) {
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file := filepath.Join(dir, name)
		if !fs.Exists(file) {
			continue
		}
		data, err := fs.ReadFile(file)
		if err != nil {
			return file, nil, err
		}
		var k types.Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			return file, nil, &Error{File: fs.Rel(file), Msg: "not a valid kustomization: " + err.Error()}
		}
		return file, &k, nil
	}
	return "", nil, nil
}

func isHTTP(ref string) bool {
	return strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://")
}

// isRemote reports whether kustomize would fetch ref over the network: an
// HTTP URL, or anything its git URL parser accepts (resource.Origin.Append
// runs that parser and records a repo for such references).
func isRemote(ref string) bool {
	if isHTTP(ref) {
		return true
	}
	return (&resource.Origin{}).Append(ref).Repo != ""
}
