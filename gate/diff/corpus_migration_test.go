package diff_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"github.com/kyverno-gate/kyverno-gate/gate/witness"
	"github.com/kyverno-gate/kyverno-gate/internal/repotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/repofs"
)

const corpus = "../../../shared/corpus/kyverno-policies"

var updateCorpus = flag.Bool("update-corpus", false, "rewrite docs/corpus-migrations.md")

// The migrations kyverno/policies ships (a policy folder of best-practices,
// pod-security and other, and of their -cel variants (legacy validate.cel),
// next to the same folder in the -vpol variant),
// each classified as a repository that moved from one to the other would
// see it, and each that blocks searched for a witness among both folders'
// test resources (and their Pods in each controller's template), as the
// weakening gate searches. The verdicts are kept in docs/corpus-migrations.md (also
// the table docs/migrations.md refers to), so that a change of the
// classification shows in review.
func TestCorpusMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus")
	}
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("no corpus: %v", err)
	}
	repo, err := repofs.Open(corpus, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	counts := map[string]int{}
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
				lines = append(lines, fmt.Sprintf("| `%s` | `%s/%s` | does not load | | |", filepath.Join(pair[0], rel), pair[1], rel))
				continue
			}
			verdict, class, found := "no change of the old policy", "", ""
			for _, c := range diff.Diff(base, head) {
				if c.Kind != base[0].Resource.Kind || c.Policy != base[0].Resource.Name {
					continue
				}
				_, verdict, _ = strings.Cut(c.Message, ": ")
				class = string(c.Class)
				if !c.Class.Blocks() {
					continue
				}
				blocks := false
				for _, ra := range diff.RuleActions(base) {
					blocks = blocks || ra.Blocks != diff.BlocksNone
				}
				// A policy that only audits blocks nothing, so nothing can
				// be admitted "now": search with both sides enforced, for
				// a resource the old one reported and the new one passes.
				b, h, how := base, head, ""
				if !blocks {
					b, h, how = loadCorpus(t, oldFile, enforced(string(oldText)), ""), loadCorpus(t, newFile, enforced(string(newText)), "ClusterPolicy/"+base[0].Resource.Name),
						" (both enforced: they audit)"
				}
				opts := witness.Options{Repo: repo, TestDirs: []string{filepath.Join(pair[0], filepath.Dir(rel)), filepath.Join(pair[1], filepath.Dir(rel))},
					TestFileName: "kyverno-test.yaml", Budget: time.Minute}
				w := witness.Search(context.Background(), opts, b, h, []witness.Target{{Kind: c.Kind, Policy: c.Policy, Migration: true}})[0]
				if w == nil {
					found = "none found" + how
				} else {
					found = "`" + w.String() + "`" + how
				}
			}
			_, rules, _ := strings.Cut(verdict, "; ")
			counts[class]++
			if found != "" && !strings.HasPrefix(found, "none") {
				counts["witnessed"]++
			}
			lines = append(lines, fmt.Sprintf("| `%s` | `%s/%s` | %s | %s | %s |", filepath.Join(pair[0], rel), pair[1], rel, class,
				strings.ReplaceAll(rules, "|", "\\|"), found))
		}
	}
	sort.Strings(lines)
	if len(lines) < 10 {
		t.Fatalf("only %d pairs: the corpus layout changed", len(lines))
	}
	got := fmt.Sprintf(`# The migrations kyverno/policies ships, classified

Written by gate/diff's TestCorpusMigrations (`+"`go test ./gate/diff -run TestCorpusMigrations -update-corpus`"+`), which
fails when a verdict here changes. Each kyverno.io policy folder of `+"`best-practices`, `pod-security` and `other`"+`
(patterns, deny conditions) and of their `+"`-cel`"+` variants (legacy `+"`validate.cel`"+`) is paired with the same
folder of the `+"`-vpol`"+` variant, as a repository moving from one to the other would see it (docs/migrations.md).
For every verdict that blocks, the witness is a resource of the two folders' test suites (or one of their Pods in
a controller's template) that the old policy denies and the new one admits; for a policy that only audits, both
are enforced for the search, so the witness is a resource the old policy reported and the new one passes.

%d pairs: %d equivalent, %d stricter, %d weaker, %d unknown; %d of the %d that block have a witness.

| old | new | verdict | per rule | witness |
| --- | --- | --- | --- | --- |
`, len(lines), counts["equivalent"], counts["stricter"], counts["weaker"], counts["unknown"], counts["witnessed"], counts["weaker"]+counts["unknown"]) +
		strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("..", "..", "docs", "corpus-migrations.md")
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

// enforced is a policy file with every validation enforced: Enforce for
// the kyverno.io kinds (overrides dropped), Deny for ValidatingPolicies.
func enforced(text string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		switch {
		case strings.HasPrefix(trimmed, "validationFailureAction:"), strings.HasPrefix(trimmed, "failureAction:"):
			key, _, _ := strings.Cut(trimmed, ":")
			line = indent + key + ": Enforce"
		case strings.HasPrefix(trimmed, "validationActions:"):
			line = indent + "validationActions: [Deny]"
		case strings.HasPrefix(trimmed, "- Audit"), strings.HasPrefix(trimmed, "- Warn"):
			continue // the list validationActions had
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
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
				ann[diff.ReplacesAnnotation] = replaces
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
