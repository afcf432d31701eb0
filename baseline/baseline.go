// Package baseline produces the rendering a head rendering is compared with
// by the weakening gate, from the `baseline` parameter:
//
//	none        no comparison
//	auto        the overlay's lock file <dir>/kyverno-gate.lock.yaml when it
//	            exists (written by `kyverno-gate lock <dir>`), else none
//	file:<path> a saved rendering (a YAML stream), relative to the root
//	git:<rev>   the same directory rendered at another revision of the
//	            repository, read in-process from its .git
//	cluster[:<context>]
//	            what a live cluster enforces now (cluster.go)
//
// Every input is untrusted: files are read through the repository's confined
// view (repofs), and a git revision is read from the object store into the
// same kind of view, in memory: it is never written to disk, so a run that
// is killed leaves nothing behind.
package baseline

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/kyverno-gate/kyverno-gate/render"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

// LockFile is the name of an overlay's lock file, next to its kustomization.
const LockFile = render.LockFile

// Error is a baseline that cannot be produced, phrased for a person.
type Error struct {
	Spec string // the baseline parameter, e.g. "git:origin/main"
	Msg  string
	Hint string // what to do next
}

func (e *Error) Error() string {
	s := "baseline " + e.Spec + ": " + e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// LockPath returns the lock file of dir, relative to the root, with forward
// slashes.
func LockPath(dir string) string {
	return path.Join(filepath.ToSlash(filepath.Clean(dir)), LockFile)
}

// Resolve produces the baseline rendering for spec. root is the repository
// root, dir the rendered directory relative to it (an absolute dir inside
// root is accepted too), opts the options the head was rendered with (its
// Root is replaced where needed). It returns nil and no error when there is
// no baseline (none, or auto without a lock file), and always a name for
// messages, e.g. "lock overlays/production/kyverno-gate.lock.yaml" or
// "git:origin/main (3f2a1bc)".
func Resolve(spec, root, dir string, opts render.Options) (*render.Result, string, error) {
	repo := opts.Repo
	if repo == nil {
		var err error
		repo, err = repofs.Open(root, repofs.Limits{MaxFileBytes: opts.MaxFileBytes, MaxTotalBytes: opts.MaxTotalBytes})
		if err != nil {
			return nil, "", &Error{Spec: spec, Msg: err.Error()}
		}
	}
	rel, err := relDir(repo.Dir(), dir)
	if err != nil {
		// dir may be spelt through a symlink to the root
		if real, rerr := filepath.EvalSymlinks(dir); rerr == nil {
			rel, err = relDir(repo.Dir(), real)
		}
		if err != nil {
			return nil, "", &Error{Spec: spec, Msg: err.Error()}
		}
	}
	switch {
	case spec == "none" || spec == "":
		return nil, "none", nil
	case spec == "auto":
		lock := LockPath(rel)
		res, err := readStream(repo, lock)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "none (no " + lock + ")", nil
		}
		if err != nil {
			return nil, "", &Error{Spec: spec, Msg: err.Error(), Hint: "regenerate it with `kyverno-gate lock " + rel + "`"}
		}
		res.Dir = rel
		return res, "lock " + lock, nil
	case strings.HasPrefix(spec, "file:") && len(spec) > len("file:"):
		p := strings.TrimPrefix(spec, "file:")
		res, err := readStream(repo, p)
		if err != nil {
			var outside *repofs.OutsideError
			if errors.As(err, &outside) {
				return nil, "", &Error{Spec: spec, Msg: err.Error(),
					Hint: "a baseline file must be inside the repository; give its path relative to the root"}
			}
			return nil, "", &Error{Spec: spec, Msg: err.Error()}
		}
		res.Dir = rel
		return res, spec, nil
	case strings.HasPrefix(spec, "git:") && len(spec) > len("git:"):
		return fromGit(spec, strings.TrimPrefix(spec, "git:"), repo, rel, opts)
	case IsCluster(spec):
		return fromCluster(spec, rel)
	}
	return nil, "", &Error{Spec: spec, Msg: "not auto, none, git:<rev>, file:<path> or cluster[:<context>]"}
}

// relDir returns dir relative to root, cleaned, with forward slashes; it
// must not leave the root.
func relDir(root, dir string) (string, error) {
	d := dir
	if filepath.IsAbs(d) {
		r, err := filepath.Rel(root, d)
		if err != nil {
			return "", err
		}
		d = r
	}
	d = filepath.ToSlash(filepath.Clean(d))
	if d == ".." || strings.HasPrefix(d, "../") || path.IsAbs(d) {
		return "", fmt.Errorf("%s is outside the repository root %s", dir, root)
	}
	return d, nil
}

// readStream reads the YAML stream p (relative to the root), which must be
// a regular file inside the root.
func readStream(repo *repofs.Root, p string) (*render.Result, error) {
	data, err := repo.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return Parse(data, filepath.ToSlash(repo.Rel(repo.Abs(p))))
}

// confined returns the symlink-free absolute path of rel, refusing paths
// that lead outside root (through "..", an absolute path or a symlink).
// A path that does not exist yields an error wrapping fs.ErrNotExist.
func confined(root, rel string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s must be relative to the repository root", rel)
	}
	p := filepath.Join(realRoot, rel)
	if !within(realRoot, p) {
		return "", fmt.Errorf("%s is outside the repository root %s", rel, root)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
		}
		return "", err
	}
	if !within(realRoot, real) {
		return "", fmt.Errorf("%s leads outside the repository root %s", rel, root)
	}
	return real, nil
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// Parse reads a YAML stream of Kubernetes objects (a lock file or a saved
// `generate` output) into a rendering, in order. source names the file in
// messages and becomes every resource's Source. As in render, a namespace on
// one of Kyverno's cluster-scoped kinds is dropped.
func Parse(data []byte, source string) (*render.Result, error) {
	nodes, err := (&kio.ByteReader{Reader: bytes.NewReader(data), OmitReaderAnnotations: true}).Read()
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid YAML stream: %s", source, repofs.Redact(err.Error()))
	}
	res := &render.Result{}
	for i, n := range nodes {
		if !render.Readable(n) || n.GetKind() == "" || n.GetApiVersion() == "" || n.GetName() == "" {
			return nil, fmt.Errorf("%s: document %d is not a Kubernetes object (needs apiVersion, kind and metadata.name)", source, i+1)
		}
		if ns := n.GetNamespace(); ns != "" && render.IsClusterScopedKyvernoKind(n.GetApiVersion(), n.GetKind()) {
			if err := n.SetNamespace(""); err != nil {
				return nil, fmt.Errorf("%s: document %d: %v", source, i+1, err)
			}
		}
		obj, err := n.Map()
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", source, i+1, err)
		}
		text, err := n.String()
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", source, i+1, err)
		}
		res.Resources = append(res.Resources, &render.Resource{
			APIVersion: n.GetApiVersion(), Kind: n.GetKind(), Namespace: n.GetNamespace(), Name: n.GetName(),
			Object: obj, YAML: []byte(text), Source: source,
		})
	}
	return res, nil
}

// Stream returns resources as one deterministic YAML stream: each object's
// YAML as rendered, "---\n" before every document.
func Stream(resources []*render.Resource) []byte {
	var b bytes.Buffer
	for _, r := range resources {
		b.WriteString("---\n")
		y := bytes.TrimRight(r.YAML, "\n")
		b.Write(y)
		b.WriteString("\n")
	}
	return b.Bytes()
}

// LockHeader is the comment at the top of every lock file.
func LockHeader(dir string) string {
	return fmt.Sprintf(`# kyverno-gate lock: the vetted rendering of %[1]s.
# kyverno-gate compares every rendering of %[1]s with this file (parameter
# baseline=auto, the default) and rejects any change that weakens enforcement
# unless the change carries its approval annotation. Do not edit it by hand;
# after a vetted change, regenerate it with:
#
#   kyverno-gate lock %[1]s
#
# and commit it with the change.
`, dir)
}

// WriteLock writes res, the vetted rendering of dir, to dir's lock file and
// returns the file's path relative to root. The file is replaced
// atomically; it must stay inside root and may not be a symlink.
func WriteLock(root, dir string, res *render.Result) (string, error) {
	if res == nil {
		return "", errors.New("nothing to lock")
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	rel, err := relDir(absRoot, dir)
	if err != nil {
		return "", err
	}
	realDir, err := confined(absRoot, filepath.FromSlash(rel))
	if err != nil {
		return "", err
	}
	if info, err := os.Stat(realDir); err != nil || !info.IsDir() {
		return "", fmt.Errorf("%s is not a directory", rel)
	}
	lock := LockPath(rel)
	target := filepath.Join(realDir, LockFile)
	if info, err := os.Lstat(target); err == nil && !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s exists and is not a regular file; remove it first", lock)
	}
	data := append([]byte(LockHeader(rel)), Stream(res.Resources)...)
	tmp, err := os.CreateTemp(realDir, ".kyverno-gate.lock-*.tmp")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return "", err
	}
	return lock, nil
}
