package baseline

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/render"
)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

var when = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func commitAll(t *testing.T, repo *git.Repository, msg string) plumbing.Hash {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	when = when.Add(time.Minute)
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: when}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// history is a git repository whose kyverno-gate root is the folder
// "policies" inside it (a monorepo), with three commits:
//
//	c0: only a README (the policy folder does not exist yet)
//	c1: the fixture repo; production enforces check-team      (tag v1)
//	c2: production stops patching the action (Audit)          (HEAD, origin/main)
type history struct {
	top, root  string
	repo       *git.Repository
	c0, c1, c2 plumbing.Hash
}

func newHistory(t *testing.T) *history {
	t.Helper()
	h := &history{top: t.TempDir()}
	h.root = filepath.Join(h.top, "policies")
	repo, err := git.PlainInit(h.top, false)
	if err != nil {
		t.Fatal(err)
	}
	h.repo = repo
	writeFile(t, filepath.Join(h.top, "README.md"), "monorepo\n")
	h.c0 = commitAll(t, repo, "c0")
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), h.root)
	h.c1 = commitAll(t, repo, "c1")
	if _, err := repo.CreateTag("v1", h.c1, nil); err != nil {
		t.Fatal(err)
	}
	kust := filepath.Join(h.root, "overlays", "production", "kustomization.yaml")
	data, _ := os.ReadFile(kust)
	writeFile(t, kust, strings.Split(string(data), "patches:")[0])
	h.c2 = commitAll(t, repo, "c2")
	if err := repo.Storer.SetReference(plumbing.NewHashReference("refs/remotes/origin/main", h.c2)); err != nil {
		t.Fatal(err)
	}
	return h
}

// action returns the failureAction of the first rule of the ClusterPolicy
// in res.
func action(t *testing.T, res *render.Result) string {
	t.Helper()
	for _, r := range res.Resources {
		if r.Kind == "ClusterPolicy" {
			rules := r.Object["spec"].(map[string]any)["rules"].([]any)
			return rules[0].(map[string]any)["validate"].(map[string]any)["failureAction"].(string)
		}
	}
	t.Fatal("no ClusterPolicy")
	return ""
}

func TestResolveGit(t *testing.T) {
	h := newHistory(t)
	short1, short2 := h.c1.String()[:7], h.c2.String()[:7]
	for _, tc := range []struct {
		rev, action, name string
	}{
		{"HEAD", "Audit", "git:HEAD (" + short2 + ")"},
		{"HEAD~1", "Enforce", "git:HEAD~1 (" + short1 + ")"},
		{"HEAD^", "Enforce", ""},
		{"master", "Audit", ""},
		{"origin/main", "Audit", "git:origin/main (" + short2 + ")"},
		{"refs/remotes/origin/main", "Audit", ""},
		{"v1", "Enforce", "git:v1 (" + short1 + ")"},
		{h.c1.String(), "Enforce", ""},
		{h.c1.String()[:9], "Enforce", ""},
		{short1, "Enforce", ""},
	} {
		t.Run(tc.rev, func(t *testing.T) {
			res, name, err := Resolve("git:"+tc.rev, h.root, "overlays/production", render.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := action(t, res); got != tc.action {
				t.Errorf("action %s, want %s", got, tc.action)
			}
			if tc.name != "" && name != tc.name {
				t.Errorf("name %q, want %q", name, tc.name)
			}
			if res.Dir != "overlays/production" {
				t.Errorf("Dir %q", res.Dir)
			}
			// Sources are relative to the (equivalent) root.
			for _, r := range res.Resources {
				if r.Kind == "PolicyException" && r.Source != "overlays/production/exception.yaml" {
					t.Errorf("source %q", r.Source)
				}
			}
			if len(res.Resources) != 2 {
				t.Errorf("%d resources", len(res.Resources))
			}
		})
	}
}

func TestResolveGitRootIsRepoRoot(t *testing.T) {
	top := t.TempDir()
	repo, err := git.PlainInit(top, false)
	if err != nil {
		t.Fatal(err)
	}
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), top)
	c := commitAll(t, repo, "c")
	res, name, err := Resolve("git:HEAD", top, filepath.Join(top, "overlays", "production"), render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if action(t, res) != "Enforce" || name != "git:HEAD ("+c.String()[:7]+")" {
		t.Fatalf("%s %s", action(t, res), name)
	}
}

func TestResolveGitNotThere(t *testing.T) {
	h := newHistory(t)
	// c0: the kyverno-gate root did not exist.
	res, name, err := Resolve("git:"+h.c0.String(), h.root, "overlays/production", render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.Resources) != 0 || !strings.Contains(name, "policies did not exist then, so everything is new") {
		t.Fatalf("%v %q", res, name)
	}
	// An overlay added after the revision.
	writeFile(t, filepath.Join(h.root, "overlays", "qa", "kustomization.yaml"), "resources: [../../base]\n")
	commitAll(t, h.repo, "qa")
	res, name, err = Resolve("git:HEAD~1", h.root, "overlays/qa", render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || len(res.Resources) != 0 || res.Dir != "overlays/qa" || !strings.Contains(name, "overlays/qa did not exist then") {
		t.Fatalf("%v %q", res, name)
	}
	if res, _, err := Resolve("git:HEAD", h.root, "overlays/qa", render.Options{}); err != nil || len(res.Resources) != 1 {
		t.Fatalf("%v %v", res, err)
	}
}

func TestResolveGitErrors(t *testing.T) {
	h := newHistory(t)
	noGit := t.TempDir()
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), noGit)

	for _, tc := range []struct {
		name, root, rev, want string
	}{
		{"no .git", noGit, "HEAD", "no git history"},
		{"no .git hint", noGit, "HEAD", "Argo CD may exclude .git; use baseline auto with a lock file"},
		{"unknown branch", h.root, "nope", `unknown revision "nope"`},
		{"unknown remote", h.root, "upstream/main", `unknown revision "upstream/main"`},
		{"too far back", h.root, "HEAD~9", "unknown revision"},
		{"unknown sha", h.root, strings.Repeat("ab", 20), "unknown revision"},
		{"bad syntax", h.root, "HEAD~~^{", "unknown revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Resolve("git:"+tc.rev, tc.root, "overlays/production", render.Options{})
			var be *Error
			if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) || be.Spec != "git:"+tc.rev {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestResolveGitShallow turns the history into a shallow clone of depth 1
// (as `git clone --depth 1` leaves it: .git/shallow lists the cut-off
// commit and the older objects are absent).
func TestResolveGitShallow(t *testing.T) {
	h := newHistory(t)
	if err := h.repo.Storer.SetShallow([]plumbing.Hash{h.c2}); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(h.top, ".git", "objects", h.c1.String()[:2], h.c1.String()[2:])
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Resolve("git:HEAD", h.root, "overlays/production", render.Options{}); err != nil {
		t.Fatalf("HEAD is present: %v", err)
	}
	for _, rev := range []string{"HEAD~1", h.c1.String(), "v1"} {
		_, _, err := Resolve("git:"+rev, h.root, "overlays/production", render.Options{})
		if err == nil || !strings.Contains(err.Error(), "shallow clone: fetch the history or use a lock file") {
			t.Errorf("%s: got %v", rev, err)
		}
	}
}

func TestResolveGitBounds(t *testing.T) {
	h := newHistory(t)
	_, _, err := Resolve("git:HEAD", h.root, "overlays/production", render.Options{MaxTotalBytes: 100})
	if err == nil || !strings.Contains(err.Error(), "exceed 100 bytes") {
		t.Fatalf("got %v", err)
	}
	// A big file the rendering does not need is never read.
	writeFile(t, filepath.Join(h.root, "docs", "big.bin"), strings.Repeat("x", 5000))
	commitAll(t, h.repo, "big")
	res, _, err := Resolve("git:HEAD", h.root, "overlays/production", render.Options{MaxFileBytes: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Resources) == 0 {
		t.Fatal("rendered nothing")
	}
}

// storeTree writes a tree object with the given entries, as raw bytes so
// that go-git's own checks on names and order do not stop a hostile tree,
// and returns it.
func storeTree(t *testing.T, repo *git.Repository, entries []object.TreeEntry) *object.Tree {
	t.Helper()
	o := repo.Storer.NewEncodedObject()
	o.SetType(plumbing.TreeObject)
	w, _ := o.Writer()
	for _, e := range entries {
		fmt.Fprintf(w, "%o %s", e.Mode, e.Name)
		w.Write([]byte{0})
		w.Write(e.Hash[:])
	}
	w.Close()
	h, err := repo.Storer.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := repo.TreeObject(h)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func storeBlob(t *testing.T, repo *git.Repository, content string) plumbing.Hash {
	t.Helper()
	o := repo.Storer.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	w, _ := o.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := repo.Storer.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestGitTreeHostile feeds the in-memory view of a revision trees no honest
// git would write: nothing outside the tree is ever read, and nothing is
// written anywhere.
func TestGitTreeHostile(t *testing.T) {
	repo, err := git.PlainInit(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "x"), "secret\n")
	blob := storeBlob(t, repo, "pwned\n")
	link := storeBlob(t, repo, outside)
	up := storeBlob(t, repo, "../../..")
	inner := storeTree(t, repo, []object.TreeEntry{{Name: "x", Mode: filemode.Regular, Hash: blob}})
	for _, tc := range []struct {
		name    string
		entries []object.TreeEntry
		read    string
	}{
		{"dotdot", []object.TreeEntry{{Name: "..", Mode: filemode.Dir, Hash: inner.Hash}}, "../x"},
		{"slash", []object.TreeEntry{{Name: "a/../../x", Mode: filemode.Regular, Hash: blob}}, "a/../../x"},
		{"absolute link", []object.TreeEntry{{Name: "a", Mode: filemode.Symlink, Hash: link}}, "a/x"},
		{"relative link up", []object.TreeEntry{{Name: "a", Mode: filemode.Symlink, Hash: up}}, "a/x"},
		{"symlink then dir", []object.TreeEntry{
			{Name: "a", Mode: filemode.Symlink, Hash: link},
			{Name: "a", Mode: filemode.Dir, Hash: inner.Hash},
		}, "a/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := storeTree(t, repo, tc.entries)
			shown := filepath.Join(t.TempDir(), "root")
			v := repofs.FromGit(shown, tree, repofs.Limits{})
			data, err := v.ReadFile(tc.read)
			if strings.Contains(string(data), "secret") {
				t.Fatalf("read outside the tree: %q", data)
			}
			if err == nil && string(data) != "pwned\n" {
				t.Fatalf("read %q", data)
			}
			if _, err := os.Stat(shown); err == nil {
				t.Fatal("wrote the tree to disk")
			}
		})
	}
}

// TestResolveGitSymlinkOutside: a committed symlink to a file outside the
// root is refused by the view of the revision.
func TestResolveGitSymlinkOutside(t *testing.T) {
	top := t.TempDir()
	repo, err := git.PlainInit(top, false)
	if err != nil {
		t.Fatal(err)
	}
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), top)
	secret := filepath.Join(t.TempDir(), "secret.yaml")
	writeFile(t, secret, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n")
	if err := os.Symlink(secret, filepath.Join(top, "base", "leak.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(top, "base", "kustomization.yaml"), "resources: [require-labels.yaml, leak.yaml]\n")
	commitAll(t, repo, "leak")
	// Either the link is refused as leaving the root or it dangles in the
	// materialized tree; the secret is never rendered.
	res, _, err := Resolve("git:HEAD", top, "overlays/production", render.Options{})
	if err == nil {
		for _, r := range res.Resources {
			if r.Kind == "Secret" {
				t.Fatalf("the baseline rendered the file outside the root")
			}
		}
		t.Fatalf("a symlink leaving the root rendered without error")
	}
}

func TestLockRoundTrip(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), root)
	dir := "overlays/production"
	res, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}

	// auto without a lock: no baseline.
	got, name, err := Resolve("auto", root, dir, render.Options{})
	if err != nil || got != nil || name != "none (no overlays/production/kyverno-gate.lock.yaml)" {
		t.Fatalf("%v %q %v", got, name, err)
	}

	lock, err := WriteLock(root, dir, res)
	if err != nil {
		t.Fatal(err)
	}
	if lock != "overlays/production/kyverno-gate.lock.yaml" {
		t.Fatalf("lock %q", lock)
	}
	first, err := os.ReadFile(filepath.Join(root, lock))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(first, []byte("# kyverno-gate lock: the vetted rendering of overlays/production.\n")) ||
		!bytes.Contains(first, []byte("#   kyverno-gate lock overlays/production\n")) {
		t.Fatalf("header:\n%s", first)
	}
	if n := bytes.Count(first, []byte("\n---\n")); n != len(res.Resources) {
		t.Fatalf("%d separators for %d resources:\n%s", n, len(res.Resources), first)
	}

	got, name, err = Resolve("auto", root, dir, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if name != "lock overlays/production/kyverno-gate.lock.yaml" || got.Dir != dir {
		t.Fatalf("name %q dir %q", name, got.Dir)
	}
	if len(got.Resources) != len(res.Resources) {
		t.Fatalf("%d resources, want %d", len(got.Resources), len(res.Resources))
	}
	for i, r := range res.Resources {
		g := got.Resources[i]
		if g.APIVersion != r.APIVersion || g.Kind != r.Kind || g.Namespace != r.Namespace || g.Name != r.Name {
			t.Errorf("%d: %s, want %s", i, g.ID(), r.ID())
		}
		if !reflect.DeepEqual(g.Object, r.Object) {
			t.Errorf("%d: object differs:\n%v\n%v", i, g.Object, r.Object)
		}
		if !bytes.Equal(g.YAML, r.YAML) {
			t.Errorf("%d: YAML differs:\n%s\n%s", i, g.YAML, r.YAML)
		}
		if g.Source != lock {
			t.Errorf("%d: source %q", i, g.Source)
		}
	}

	// Deterministic: locking what was read from the lock gives the same bytes.
	if _, err := WriteLock(root, dir, got); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(root, lock))
	if !bytes.Equal(first, second) {
		t.Fatalf("lock changed on rewrite:\n%s\n---\n%s", first, second)
	}
	// The lock in the overlay folder does not change the kustomize rendering.
	again, err := render.Render(filepath.Join(root, dir), render.Options{Root: root})
	if err != nil || len(again.Resources) != len(res.Resources) {
		t.Fatalf("%v %v", again, err)
	}
	// file: reads the same stream.
	got2, name, err := Resolve("file:"+lock, root, dir, render.Options{})
	if err != nil || name != "file:"+lock || len(got2.Resources) != len(res.Resources) {
		t.Fatalf("%v %q %v", got2, name, err)
	}
}

func TestWriteLockRefusals(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), root)
	res := &render.Result{}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x"), filepath.Join(root, "overlays", "staging", LockFile)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{"../x", "outside the repository root"},
		{"out", "leads outside the repository root"},
		{"missing", "does not exist"},
		{"overlays/staging", "not a regular file"},
	} {
		if _, err := WriteLock(root, tc.dir, res); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.dir, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside: %v", entries)
	}
}

func TestResolveFile(t *testing.T) {
	root := t.TempDir()
	repotest.CopyTree(t, filepath.Join("testdata", "repo"), root)
	outside := filepath.Join(t.TempDir(), "baseline.yaml")
	writeFile(t, outside, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
	if err := os.Symlink(outside, filepath.Join(root, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "saved", "prod.yaml"), `# a saved generate output
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: a
  namespace: kyverno
spec: {}
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata:
  name: b
  namespace: kyverno
spec: {}
`)
	writeFile(t, filepath.Join(root, "saved", "bad.yaml"), "apiVersion: v1\nkind: ConfigMap\n")
	writeFile(t, filepath.Join(root, "saved", "garbage.yaml"), "a: [\n")

	res, name, err := Resolve("file:saved/prod.yaml", root, "overlays/production", render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if name != "file:saved/prod.yaml" || len(res.Resources) != 2 {
		t.Fatalf("%q %d", name, len(res.Resources))
	}
	if a := res.Resources[0]; a.Namespace != "" || a.Source != "saved/prod.yaml" {
		t.Fatalf("ClusterPolicy keeps namespace %q (source %q)", a.Namespace, a.Source)
	}
	if b := res.Resources[1]; b.Namespace != "kyverno" {
		t.Fatalf("PolicyException lost its namespace")
	}
	if _, _, err := Resolve("file:"+filepath.Join(root, "saved", "prod.yaml"), root, "overlays/production", render.Options{}); err != nil {
		t.Fatalf("absolute path inside the root: %v", err)
	}

	for _, tc := range []struct{ spec, want string }{
		{"file:../x.yaml", "outside the repository root"},
		{"file:saved/../../x.yaml", "outside the repository root"},
		{"file:" + outside, "outside the repository root"},
		{"file:/etc/passwd", "outside the repository root"},
		{"file:link.yaml", "link.yaml is outside the repository root"},
		{"file:saved/missing.yaml", "does not exist"},
		{"file:saved", "saved is a directory"},
		{"file:saved/bad.yaml", "document 1 is not a Kubernetes object"},
		{"file:saved/garbage.yaml", "not a valid YAML stream"},
		{"bogus", "not auto, none"},
	} {
		_, _, err := Resolve(tc.spec, root, "overlays/production", render.Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.spec, err, tc.want)
		}
	}
	if _, _, err := Resolve("file:saved/prod.yaml", root, "../elsewhere", render.Options{}); err == nil {
		t.Error("a dir outside the root is refused")
	}
	if res, name, err := Resolve("none", root, "overlays/production", render.Options{}); res != nil || name != "none" || err != nil {
		t.Errorf("none: %v %q %v", res, name, err)
	}
	if _, _, err := Resolve("file:saved/prod.yaml", root, "overlays/production", render.Options{MaxFileBytes: 10}); err == nil ||
		!strings.Contains(err.Error(), "over the 10-byte limit") {
		t.Errorf("size bound: %v", err)
	}
}

// Documents kyaml's getters cannot read are refused, not a crash (found by
// gate/diff's FuzzDiff: "metadata:\n-").
func TestParseUnreadableDocuments(t *testing.T) {
	for _, doc := range []string{
		"[0]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n-\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: [a, b, c]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: [a]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations: 3\n",
	} {
		if _, err := Parse([]byte(doc), "lock.yaml"); err == nil || !strings.Contains(err.Error(), "not a Kubernetes object") {
			t.Errorf("%q: %v", doc, err)
		}
	}
	if _, err := Parse([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels:\n"), "lock.yaml"); err != nil {
		t.Errorf("empty labels: %v", err)
	}
}
