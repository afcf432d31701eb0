package diff

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

const corpus = "../../../shared/corpus/kyverno-policies"

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/corpus-migrations.txt")

// The migrations kyverno/policies ships (a policy folder of best-practices,
// pod-security and other, and of their -cel variants (legacy validate.cel),
// next to the same folder in the -vpol variant),
// each classified as a repository that moved from one to the other would
// see it. The verdicts are kept in testdata/corpus-migrations.txt (also
// the table docs/migrations.md refers to), so that a change of the
// classification shows in review.
func TestCorpusMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus")
	}
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("no corpus: %v", err)
	}
	var lines []string
	for _, pair := range [][2]string{{"best-practices", "best-practices-vpol"}, {"pod-security", "pod-security-vpol"}, {"other", "other-vpol"},
		{"best-practices-cel", "best-practices-vpol"}, {"pod-security-cel", "pod-security-vpol"}, {"other-cel", "other-vpol"}} {
		matches, _ := filepath.Glob(filepath.Join(corpus, pair[1], "*", "*.yaml"))
		more, _ := filepath.Glob(filepath.Join(corpus, pair[1], "*", "*", "*.yaml"))
		for _, newFile := range append(matches, more...) {
			rel, _ := filepath.Rel(filepath.Join(corpus, pair[1]), newFile)
			if strings.Contains(rel, ".kyverno-test") || strings.HasPrefix(filepath.Base(rel), "artifacthub") || filepath.Base(filepath.Dir(rel)) != strings.TrimSuffix(filepath.Base(rel), ".yaml") {
				continue
			}
			oldFile := filepath.Join(corpus, pair[0], rel)
			oldText, err := os.ReadFile(oldFile)
			if err != nil {
				continue // no ClusterPolicy of that name
			}
			newText, err := os.ReadFile(newFile)
			if err != nil {
				t.Fatal(err)
			}
			base := loadCorpus(t, oldFile, string(oldText), "")
			var head []*kyverno.Object
			if base != nil {
				// The folder pairs them: name the old policy as a user
				// would where the names differ.
				head = loadCorpus(t, newFile, string(newText), "ClusterPolicy/"+base[0].Resource.Name)
			}
			if base == nil || head == nil {
				lines = append(lines, fmt.Sprintf("%s/%s: does not load", pair[1], rel))
				continue
			}
			verdict := "no change of the old policy"
			for _, c := range Diff(base, head) {
				if c.Kind == base[0].Resource.Kind && c.Policy == base[0].Resource.Name {
					_, notes, _ := strings.Cut(c.Message, ": ")
					verdict = notes
				}
			}
			lines = append(lines, fmt.Sprintf("%s -> %s/%s: %s", filepath.Join(pair[0], rel), pair[1], rel, verdict))
		}
	}
	sort.Strings(lines)
	if len(lines) < 10 {
		t.Fatalf("only %d pairs: the corpus layout changed", len(lines))
	}
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "corpus-migrations.txt")
	if *updateCorpus {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := os.ReadFile(golden)
	if string(want) != got {
		t.Errorf("the corpus migrations are classified differently (go test ./gate/diff -run TestCorpusMigrations -update-corpus, and review):\n%s", got)
	}
}

// loadCorpus loads a corpus file's Kyverno objects; nil when one does not
// load.
func loadCorpus(t *testing.T, file, text, replaces string) []*kyverno.Object {
	t.Helper()
	res := repotest.Resources(t, text, file)
	for _, r := range res {
		if meta, ok := r.Object["metadata"].(map[string]any); ok && replaces != "" && r.Kind != "ClusterPolicy" {
			ann, _ := meta["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				meta["annotations"] = ann
			}
			if r.Name != strings.TrimPrefix(replaces, "ClusterPolicy/") {
				ann[ReplacesAnnotation] = replaces
			}
		}
	}
	objs, err := kyverno.Load(res)
	if err != nil || len(objs) == 0 {
		return nil
	}
	for _, o := range objs {
		if o.Err != nil {
			return nil
		}
	}
	return objs
}
