// Command largerepo makes the large policy repository the benchmarks run on
// (see internal/largerepo): every policy and test suite of a corpus laid out
// as kyverno/policies, behind a base kustomization and a production overlay
// that patches everything to Enforce, with a saved baseline rendering.
//
//	go run ./bench/largerepo -corpus ../shared/corpus/kyverno-policies -o /tmp/large -scale 1
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

	"github.com/kyverno-gate/kyverno-gate/internal/largerepo"
)

func main() {
	corpus := flag.String("corpus", "../shared/corpus/kyverno-policies", "corpus laid out as kyverno/policies")
	out := flag.String("o", "", "repository to create (must not exist or be empty)")
	scale := flag.Int("scale", 1, "copies of the corpus (1, 2, 4, ...)")
	verbose := flag.Bool("v", false, "list the skipped files")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	sum, err := largerepo.Generate(largerepo.Options{Corpus: *corpus, Dir: *out, Scale: *scale})
	if err != nil {
		fmt.Fprintln(os.Stderr, "largerepo:", err)
		os.Exit(1)
	}
	var kinds []string
	for k := range sum.Kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(os.Stderr, "largerepo: %s: x%d, %d files, %d objects, %d test files; production patches %d policies (%d rule-level actions); baseline: %d Audit, %d absent; %d files skipped\n",
		*out, sum.Scale, sum.Files, sum.Objects, sum.Suites, sum.Patched, sum.PatchedRules, sum.BaselineAudit, sum.BaselineDropped, len(sum.Skipped))
	for _, k := range kinds {
		fmt.Fprintf(os.Stderr, "  %5d %s\n", sum.Kinds[k], k)
	}
	if *verbose {
		for _, s := range sum.Skipped {
			fmt.Fprintf(os.Stderr, "  skipped %s: %s\n", s.File, s.Reason)
		}
	}
}
