// Package suggest finds the "did you mean" for a mistyped name: a field of
// a policy, a command, a flag.
package suggest

import (
	"sort"
	"strings"
)

// Nearest returns the candidate closest to word, "" when none is close
// enough to be a plausible typo: within a third of word's length plus one
// edit (case ignored), or one that word is the beginning of ("gen" for
// "generate"). Ties go to the first in sorted order, so the answer is
// deterministic.
func Nearest(word string, candidates []string) string {
	sorted := append([]string{}, candidates...)
	sort.Strings(sorted)
	w := strings.ToLower(word)
	best, bestDist := "", len(word)/3+2
	for _, c := range sorted {
		lc := strings.ToLower(c)
		d := levenshtein(w, lc)
		if len(w) >= 2 && strings.HasPrefix(lc, w) {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
