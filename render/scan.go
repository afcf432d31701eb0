package render

import (
	"errors"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	iofs "io/fs"
	"net/url"
	"path/filepath"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
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
//
// absorbed reports a kustomization that declares what its parent's
// accumulator takes over (vars, configurations, crds, openapi), which rules
// out building in slices (chunk.go).
func scanKustomizations(fs *repofs.Root, dir string, opts Options) (notes []string, absorbed bool, err error) {
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
		if len(k.Vars) > 0 || len(k.Configurations) > 0 || len(k.Crds) > 0 || len(k.OpenAPI) > 0 {
			absorbed = true
		}
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
		if err := scanHelm(fs, dir, rel, k, opts); err != nil {
			return err
		}
		// Entries kustomize may load as another kustomization root.
		for _, entries := range []struct {
			field string
			refs  []string
		}{{"resources", k.Resources}, {"components", k.Components},
			{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
			field := entries.field
			for _, ref := range entries.refs {
				if isFileURL(ref) {
					return &Error{File: rel, Msg: fmt.Sprintf("%s entry %q reads outside the repository", field, ref),
						Hint: "file:// bases are never loaded; put the base inside the repository"}
				}
				if isRemote(ref) {
					if opts.AllowRemote {
						continue
					}
					return refuse(field, ref)
				}
				if strings.Contains(ref, "\n") { // inline generator/transformer config
					if err := scanPluginConfig(rel, field, []byte(ref), opts); err != nil {
						return err
					}
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
						Hint: "every file a kustomization reads must be inside the repository", Outside: isOutside(err)}
				} else if field != "resources" && field != "components" && fs.Exists(sub) {
					// A generator or transformer config file: its own
					// file references must stay local too.
					data, err := fs.ReadFile(sub)
					if err != nil {
						return &Error{File: rel, Msg: fmt.Sprintf("%s entry %q: %v", field, ref, err)}
					}
					if err := scanPluginConfig(fs.Rel(sub), field, data, opts); err != nil {
						return err
					}
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
	err = visit(dir)
	return notes, absorbed, err
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

// isHTTP reports whether kustomize's file loader would fetch ref: it asks
// url.Parse, which reads the scheme in any case ("HTTP://" too).
func isHTTP(ref string) bool {
	u, err := url.Parse(strings.TrimSpace(ref))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https")
}

// fileKeys are the fields of builtin generator and transformer configs that
// name files kustomize loads (a "key=path" item names path).
var fileKeys = map[string]bool{"path": true, "paths": true, "files": true, "envs": true, "env": true,
	"valuesFile": true, "additionalValuesFiles": true, "chartHome": true, "repo": true, "chartRepoUrl": true}

// scanPluginConfig refuses a generator or transformer config (inline or in
// file) that names a remote file, wherever in it the reference is.
func scanPluginConfig(file, field string, data []byte, opts Options) error {
	if opts.AllowRemote {
		return nil
	}
	docs, err := kio.FromBytes(data)
	if err != nil {
		return nil // kustomize reports the syntax error itself
	}
	var found string
	var walk func(key string, n *kyaml.Node)
	walk = func(key string, n *kyaml.Node) {
		if n == nil || found != "" {
			return
		}
		switch n.Kind {
		case kyaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i].Value, n.Content[i+1])
			}
		case kyaml.SequenceNode:
			for _, c := range n.Content {
				walk(key, c)
			}
		case kyaml.ScalarNode:
			if !fileKeys[key] {
				return
			}
			v := n.Value
			if _, after, ok := strings.Cut(v, "="); ok && !isHTTP(v) {
				v = after
			}
			if isHTTP(v) || (key == "repo" || key == "chartRepoUrl") && v != "" {
				found = v
			}
		}
	}
	for _, d := range docs {
		walk("", d.YNode())
	}
	if found == "" {
		return nil
	}
	return &Error{File: file, Msg: fmt.Sprintf("%s config names remote %q", field, found),
		Hint: "remote files are disabled: vendor them into the repository, or set parameter allow-remote=true"}
}

// scanHelm keeps Helm, when enabled, on vendored charts inside the
// repository: helm is a separate program that reads what kustomize passes it
// without our confinement, and pulls charts from their repo over the network
// when they are not vendored.
func scanHelm(fs *repofs.Root, dir, rel string, k *types.Kustomization, opts Options) error {
	type chart struct {
		name, version, repo, home string
		values                    []string
	}
	var charts []chart
	home := k.HelmGlobals
	for _, c := range k.HelmCharts {
		h := "charts"
		if home != nil && home.ChartHome != "" {
			h = home.ChartHome
		}
		charts = append(charts, chart{name: c.Name, version: c.Version, repo: c.Repo, home: h,
			values: append([]string{c.ValuesFile}, c.AdditionalValuesFiles...)})
	}
	for _, c := range k.HelmChartInflationGenerator {
		h := c.ChartHome
		if h == "" {
			h = "charts"
		}
		charts = append(charts, chart{name: c.ChartName, version: c.ChartVersion, repo: c.ChartRepoURL, home: h, values: []string{c.Values}})
	}
	if home != nil && home.ConfigHome != "" {
		return &Error{File: rel, Msg: "helmGlobals.configHome is set", Hint: "helm's configuration home is not taken from the repository; remove configHome"}
	}
	inside := func(what, p string) error {
		if p == "" {
			return nil
		}
		if isHTTP(p) {
			if opts.AllowRemote {
				return nil
			}
			return &Error{File: rel, Msg: fmt.Sprintf("helmCharts %s %q is remote", what, p),
				Hint: "vendor it into the repository, or set parameter allow-remote=true"}
		}
		full := p
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, p)
		}
		if err := fs.CheckTree(full); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			return &Error{File: rel, Msg: fmt.Sprintf("helmCharts %s %q: %v", what, p, err),
				Hint: "helm may only read files inside the repository", Outside: isOutside(err)}
		}
		return nil
	}
	for _, c := range charts {
		if err := inside("chartHome", c.home); err != nil {
			return err
		}
		for _, v := range c.values {
			if err := inside("valuesFile", v); err != nil {
				return err
			}
		}
		if opts.AllowRemote || c.repo == "" {
			continue
		}
		vendored := false
		for _, d := range []string{filepath.Join(c.home, c.name), filepath.Join(c.home, c.name+"-"+c.version, c.name)} {
			if fs.IsDir(filepath.Join(dir, d)) {
				vendored = true
			}
		}
		if !vendored {
			return &Error{File: rel, Msg: fmt.Sprintf("helmCharts entry %q would be pulled from %s", c.name, c.repo),
				Hint: "vendor the chart under " + c.home + "/, or set parameter allow-remote=true"}
		}
	}
	return nil
}

func isOutside(err error) bool {
	var o *repofs.OutsideError
	return errors.As(err, &o)
}

// isFileURL reports whether ref is a file:// URL, which kustomize clones
// with git from any local path.
func isFileURL(ref string) bool {
	return len(ref) >= 7 && strings.EqualFold(ref[:7], "file://")
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
