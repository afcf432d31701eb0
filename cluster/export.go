package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// ConfigDir is the folder of an export that records Kyverno's
// configuration. The kustomization does not list it: Kyverno owns its
// webhooks and its Helm release owns the ConfigMap, so a restore leaves
// them alone; the files are there to review and diff.
const ConfigDir = "kyverno-config"

// File is one file of an export, path relative to the export's folder.
type File struct {
	Path string
	Data []byte
}

var safeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

// ObjectPath is where an object goes in an export:
// <group>/<resource>/[<namespace>/]<name>.yaml.
func ObjectPath(o *Object) (string, error) {
	for _, n := range []string{o.Name(), o.Namespace()} {
		if n != "" && !safeName.MatchString(n) {
			return "", fmt.Errorf("%s %q: not a Kubernetes object name", o.Kind.Kind, n)
		}
	}
	if o.Name() == "" {
		return "", fmt.Errorf("%s without a name", o.Kind.Kind)
	}
	p := path.Join(o.Kind.Group, o.Kind.Resource)
	if o.Kind.Namespaced {
		p = path.Join(p, o.Namespace())
	}
	return path.Join(p, o.Name()+".yaml"), nil
}

// ObjectYAML is an object as an export writes it: keys sorted, no
// document separator.
func ObjectYAML(o *Object) ([]byte, error) {
	return yaml.Marshal(o.Object)
}

// Layout is the export of snap as files: one per object, a kustomization
// listing them, and Kyverno's configuration under ConfigDir (not listed).
// The bytes depend only on the snapshot: no time, no server address.
func Layout(snap *Snapshot) ([]File, error) {
	var files []File
	var resources []string
	counts := map[string]int{}
	for _, o := range snap.Objects {
		p, err := ObjectPath(o)
		if err != nil {
			return nil, err
		}
		data, err := ObjectYAML(o)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		files = append(files, File{Path: p, Data: data})
		resources = append(resources, p)
		counts[o.Kind.Kind+"."+o.Kind.Group]++
	}
	var k bytes.Buffer
	fmt.Fprintf(&k, "# kyverno-gate export of the Kyverno policies of context %s: %d objects.\n", snap.Context, len(snap.Objects))
	k.WriteString("# Restore: kubectl apply --server-side -k <this folder> (or sync it with Argo CD).\n")
	if snap.Config != nil && (snap.Config.ConfigMap != nil || snap.Config.Webhooks != nil) {
		k.WriteString("# " + ConfigDir + "/ records Kyverno's own configuration for review; it is not restored.\n")
	}
	for _, n := range snap.Notes {
		k.WriteString("# Note: " + n + "\n")
	}
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	if len(resources) == 0 {
		k.WriteString("resources: []\n")
	} else {
		k.WriteString("resources:\n")
		for _, r := range resources {
			k.WriteString("- " + r + "\n")
		}
	}
	files = append(files, File{Path: "kustomization.yaml", Data: k.Bytes()})
	if c := snap.Config; c != nil {
		if c.ConfigMap != nil {
			data, err := yaml.Marshal(c.ConfigMap)
			if err != nil {
				return nil, err
			}
			files = append(files, File{Path: ConfigDir + "/configmap.yaml", Data: data})
		}
		if c.Webhooks != nil {
			data, err := yaml.Marshal(map[string]any{"webhooks": c.Webhooks})
			if err != nil {
				return nil, err
			}
			head := "# The webhooks Kyverno registered, with their failure policies, as the cluster has them.\n" +
				"# Recorded for review; Kyverno manages them and a restore does not apply this file.\n"
			files = append(files, File{Path: ConfigDir + "/webhooks.yaml", Data: append([]byte(head), data...)})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Stream is the export of snap as one YAML stream of its objects, for
// `--output -` (Kyverno's configuration is not part of it).
func Stream(snap *Snapshot) ([]byte, error) {
	var b bytes.Buffer
	for _, o := range snap.Objects {
		data, err := ObjectYAML(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.Bytes(), nil
}

// WriteLayout writes files into dir, which must not exist or be empty, so
// that a backup never mixes with an older one. The files go to a
// temporary folder beside dir first, which is renamed into place: on any
// error nothing is left at dir.
func WriteLayout(dir string, files []File) error {
	if info, err := os.Stat(dir); err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s exists and is not a folder", dir)
		}
		// Only an empty folder can be removed: it is replaced below.
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("%s exists and is not empty; export into a new folder (or use --dated)", dir)
		}
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".kyverno-gate-export-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	for _, f := range files {
		if strings.Contains(f.Path, "..") || path.IsAbs(f.Path) {
			return fmt.Errorf("refusing to write %s", f.Path)
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	ok = true
	return nil
}
