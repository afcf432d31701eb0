package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/fuzzseed"
)

// FuzzRender writes the fuzzed bytes as the kustomization.yaml of one
// folder of a copy of the example repository (the folder picked by the
// first argument) and renders that folder (and, for a base, the production
// overlay):
// whatever the kustomization says, Render does not panic, returns either
// resources or an error with a message, never reads the file kept beside
// the repository root (reachable through a link in the repository, by ..,
// or by absolute path), never runs git or helm, and never makes an HTTP
// request (allow-remote and enable-helm are off). The scan of the
// kustomization graph (scanKustomizations, readKustomization, isRemote) is
// what must refuse remote references first. Seeded with the example
// repository's and the corpus's kustomization files. See docs/fuzzing.md.
func FuzzRender(f *testing.F) {
	outer := f.TempDir()
	root := filepath.Join(outer, "repo")
	if err := copyDir(filepath.Join(fuzzseed.ModuleRoot(f), "examples", "policy-repo"), root); err != nil {
		f.Fatal(err)
	}
	const marker = "outside-marker-7f3a"
	secret := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + marker + "\ndata:\n  token: " + marker + "\n"
	if err := os.WriteFile(filepath.Join(outer, "secret.yaml"), []byte(secret), 0o644); err != nil {
		f.Fatal(err)
	}
	for name, target := range map[string]string{"out": "..", "secret-link.yaml": "../secret.yaml", "abs-secret.yaml": filepath.Join(outer, "secret.yaml")} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			f.Fatal(err)
		}
	}
	// Folders to write the kustomization into.
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "kustomization.yaml")); err == nil {
				dirs = append(dirs, p)
			}
		}
		return nil
	})
	sort.Strings(dirs)
	dirs = append(dirs, filepath.Join(root, "overlays", "fuzz"))
	if err := os.MkdirAll(dirs[len(dirs)-1], 0o755); err != nil {
		f.Fatal(err)
	}
	originals := map[string][]byte{}
	for _, d := range dirs {
		originals[d], _ = os.ReadFile(filepath.Join(d, "kustomization.yaml"))
	}

	// git and helm on PATH record that they ran; HTTP requests through
	// the default transport are recorded and fail.
	bin := filepath.Join(outer, "bin")
	ran := filepath.Join(outer, "ran")
	if err := os.Mkdir(bin, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, prog := range []string{"git", "helm"} {
		script := fmt.Sprintf("#!/bin/sh\necho %s >> %q\nexit 1\n", prog, ran)
		if err := os.WriteFile(filepath.Join(bin, prog), []byte(script), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	f.Setenv("PATH", bin)
	rt := &recordingTransport{}
	saved := http.DefaultTransport
	http.DefaultTransport = rt
	f.Cleanup(func() { http.DefaultTransport = saved })

	for i, d := range dirs {
		if originals[d] != nil {
			f.Add(uint8(i), originals[d])
		}
	}
	for _, file := range fuzzseed.Files(f, fuzzseed.Named("kustomization.yaml", "kustomization.yml", "Kustomization")) {
		f.Add(uint8(len(dirs)-1), file.Data)
	}
	for _, s := range []string{
		"resources: [../../out/secret.yaml]\n", "resources: [../../secret-link.yaml]\n", "resources: [../../abs-secret.yaml]\n",
		"resources: [" + filepath.Join(outer, "secret.yaml") + "]\n", "resources: [../../../secret.yaml]\n",
		"resources: [https://example.com/x.yaml]\n", "resources: [github.com/kyverno/policies//pod-security?ref=main]\n",
		"resources: [git@github.com:kyverno/policies.git]\n", "resources: [HTTPS://example.com/x.yaml]\n",
		"resources: [file:///etc]\n", "patches: [{path: 'https://example.com/p.yaml'}]\n",
		"configMapGenerator: [{name: x, files: [../../out/secret.yaml]}]\n",
		"helmCharts: [{name: x, repo: https://charts.example.com}]\n",
		"generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: x}\n  files: [https://example.com/a]\n",
		"resources: [../../base]\nnamePrefix: p-\n", "a: &a [*a]\n", "resources: [.]\n",
		"&0", "buildMetadata: &0\n", "buildMetadata: [&x originAnnotations]\n", "- a\n",
	} {
		f.Add(uint8(len(dirs)-1), []byte(s))
	}

	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := dirs[int(which)%len(dirs)]
		kfile := filepath.Join(dir, "kustomization.yaml")
		if err := os.WriteFile(kfile, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.WriteFile(kfile, originals[dir], 0o644)
		targets := []string{dir}
		if strings.HasPrefix(dir, filepath.Join(root, "base")) { // a base: render an overlay of it too
			targets = append(targets, filepath.Join(root, "overlays", "production"))
		}
		for _, target := range targets {
			res, err := Render(target, Options{Root: root})
			if err != nil {
				if res != nil || err.Error() == "" {
					t.Fatalf("result %v with error %q", res, err)
				}
				var re *Error
				if errors.As(err, &re) && re.Msg == "" {
					t.Fatalf("render.Error without a message: %#v", re)
				}
			} else {
				for _, r := range res.Resources {
					if r.Kind == "" || r.Name == "" || r.Object == nil {
						t.Fatalf("resource %+v", r)
					}
					if strings.HasPrefix(r.Source, "..") || filepath.IsAbs(r.Source) {
						t.Fatalf("%s: source %q outside the root", r.ID(), r.Source)
					}
					if bytes.Contains(r.YAML, []byte(marker)) && !bytes.Contains(data, []byte(marker)) {
						t.Fatalf("%s: rendered the file outside the repository root", r.ID())
					}
				}
			}
			if b, err := os.ReadFile(ran); err == nil {
				os.Remove(ran)
				t.Fatalf("rendering ran %s", bytes.TrimSpace(b))
			}
			if reqs := rt.take(); len(reqs) > 0 {
				t.Fatalf("rendering made HTTP requests: %v", reqs)
			}
		}
	})
}

// recordingTransport fails and records every request.
type recordingTransport struct{ reqs []string }

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.reqs = append(rt.reqs, r.Method+" "+r.URL.String())
	return nil, errors.New("no network in this test")
}

func (rt *recordingTransport) take() []string {
	r := rt.reqs
	rt.reqs = nil
	return r
}

// copyDir copies regular files and folders of src into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
}

// FuzzRenderPlain writes the fuzzed bytes as a manifest of a plain folder
// (no kustomization) and renders it: no panic, an error with a message or
// named objects, the same twice. See docs/fuzzing.md.
func FuzzRenderPlain(f *testing.F) {
	for _, file := range fuzzseed.Files(f, fuzzseed.YAML) {
		f.Add(file.Data)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "manifest.yaml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Render(dir, Options{Root: dir})
		res2, err2 := Render(dir, Options{Root: dir})
		if fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if res != nil || err.Error() == "" {
				t.Fatalf("result %v with error %q", res, err)
			}
			return
		}
		if len(res.Resources) != len(res2.Resources) {
			t.Fatal("not deterministic")
		}
		for i, r := range res.Resources {
			if r.Kind == "" || r.Name == "" || r.APIVersion == "" || r.Object == nil || r.Source != "manifest.yaml" {
				t.Fatalf("resource %+v", r)
			}
			if r.Namespace != "" && IsClusterScopedKyvernoKind(r.APIVersion, r.Kind) {
				t.Fatalf("%s keeps namespace %q", r.ID(), r.Namespace)
			}
			if string(r.YAML) != string(res2.Resources[i].YAML) {
				t.Fatal("not deterministic")
			}
		}
	})
}
