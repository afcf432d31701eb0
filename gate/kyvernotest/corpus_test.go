package kyvernotest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	testcmd "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/commands/test"
)

// corpus is the public kyverno/policies repository, shared beside the
// project's checkout (see README).
const corpus = "../../../shared/corpus/kyverno-policies"

// knownStrict lists, per test file, how many results kyverno-gate fails by
// design where upstream passes them (docs/strictness.md explains each).
var knownStrict = map[string]int{
	// Expects fail on Namespaces the rule's match no longer selects:
	// upstream reports "Excluded" and passes.
	"istio/enforce-ambient-mode-namespace/.kyverno-test/kyverno-test.yaml": 3,
}

// fixtures holds suites the corpus lacks, in the corpus's layout: suites
// that declare CRDs in their cluster resources (testdata/agreement/README.md).
const fixtures = "testdata/agreement"

// TestAgreesWithUpstreamOnCorpus runs every suite of the corpus, and of
// the fixtures, with kyverno-gate and with upstream `kyverno test`
// (in-process, the pinned v1.19.1), and compares them result by result.
// The fixtures run in -short mode too.
func TestAgreesWithUpstreamOnCorpus(t *testing.T) {
	t.Run("fixtures", func(t *testing.T) {
		if n := agreeWithUpstream(t, fixtures, nil); n < 2 {
			t.Errorf("upstream ran only %d test files of %s", n, fixtures)
		}
	})
	t.Run("corpus", func(t *testing.T) {
		if testing.Short() {
			t.Skip("runs the whole corpus twice")
		}
		if _, err := os.Stat(corpus); err != nil {
			t.Skipf("corpus not present: %v", err)
		}
		if n := agreeWithUpstream(t, corpus, knownStrict); n < 400 {
			t.Fatalf("upstream ran only %d test files", n)
		}
	})
}

// agreeWithUpstream runs every suite under dir with kyverno-gate and with
// upstream, compares them, and returns how many test files upstream ran.
// known lists the strict failures expected per test file.
func agreeWithUpstream(t *testing.T, dir string, known map[string]int) int {
	t.Helper()
	root, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := repofs.Open(root, repofs.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	suites, err := Discover(repo, []string{"."}, "kyverno-test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string][]string{}
	strict := map[string]int{}
	for _, r := range Run(suites, nil) {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Suite.Rel, r.Err)
			continue
		}
		for _, row := range r.Rows {
			ours[r.Suite.Rel] = append(ours[r.Suite.Rel], rowKey(row.Policy, row.Rule, lastPart(strings.ReplaceAll(row.Resource, " ", "/")), row.Upstream != "fail"))
			if row.Strict != "" {
				strict[r.Suite.Rel]++
			}
		}
	}
	upstream := runUpstream(t, root)
	for file, rows := range upstream {
		if !equalMultiset(rows, ours[file]) {
			t.Errorf("%s:\n  upstream %v\n  ours     %v", file, rows, ours[file])
		}
	}
	for file, rows := range ours {
		if _, ok := upstream[file]; !ok && len(rows) > 0 {
			t.Errorf("%s: kyverno-gate ran %d results, upstream none", file, len(rows))
		}
	}
	for file, n := range strict {
		if known[file] != n {
			t.Errorf("%s: %d strict failures, want %d (update knownStrict and docs/strictness.md if this is by design)", file, n, known[file])
		}
	}
	for file, n := range known {
		if strict[file] != n {
			t.Errorf("%s: %d strict failures, want %d", file, strict[file], n)
		}
	}
	return len(upstream)
}

func rowKey(policy, rule, resource string, pass bool) string {
	return fmt.Sprintf("%s|%s|%s|%v", policy, rule, resource, pass)
}

func equalMultiset(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

var loadingRE = regexp.MustCompile(`^Loading test .* \( (.*) \) \.\.\.$`)

// runUpstream runs upstream's test command over root and returns its rows
// per test file (relative to root). Upstream sometimes adds a passing
// "Excluded" row for a resource next to its real result, depending on map
// order; those rows are dropped.
func runUpstream(t *testing.T, root string) map[string][]string {
	t.Helper()
	cmd := testcmd.Command()
	cmd.SetArgs([]string{root, "--remove-color", "-o", "json"})
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("upstream kyverno test: %v", err)
	}
	type row struct{ POLICY, RULE, RESOURCE, RESULT, REASON string }
	result := map[string][]string{}
	var file string
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if m := loadingRE.FindStringSubmatch(line); m != nil {
			file, _ = filepath.Rel(root, m[1])
			continue
		}
		if line != "[" {
			continue
		}
		var buf strings.Builder
		buf.WriteString(line)
		for sc.Scan() {
			buf.WriteString(sc.Text())
			if sc.Text() == "]" {
				break
			}
		}
		var rows []row
		if err := json.Unmarshal([]byte(buf.String()), &rows); err != nil {
			t.Fatalf("parsing upstream output for %s: %v", file, err)
		}
		real := map[string]bool{}
		for _, r := range rows {
			if r.REASON != "Excluded" {
				real[r.POLICY+"|"+r.RESOURCE] = true
			}
		}
		for _, r := range rows {
			if r.REASON == "Excluded" && real[r.POLICY+"|"+r.RESOURCE] {
				continue
			}
			result[file] = append(result[file], rowKey(r.POLICY, r.RULE, lastPart(r.RESOURCE), r.RESULT != "Fail"))
		}
	}
	return result
}
