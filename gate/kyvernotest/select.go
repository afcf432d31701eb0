package kyvernotest

import (
	"errors"
	"strings"

	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/apis/v1alpha1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/test/filter"
	"github.com/kyverno/kyverno/ext/wildcard"
)

// DefaultSelector is `kyverno test --test-case-selector`'s default: every
// result.
const DefaultSelector = "policy=*,rule=*,resource=*"

// Selection picks test results as `kyverno test --test-case-selector`
// does ("policy=<pattern>,rule=<pattern>,resource=<pattern>", each key
// optional, * and ? as wildcards): a result is kept when its policy, rule
// and one of its resources match (a result that names no rule or resource
// matches any). Upstream then replaces a kept result's resources with the
// resource pattern and matches it as a plain name (so resource=pod-* checks
// every resource); here the pattern narrows the resources checked instead,
// and a selected name that is not among the test's resources is no typo.
type Selection struct {
	filter    filter.Filter
	resources []string
	all       bool
}

// ParseSelector parses a selector with upstream's parser. Upstream prints
// a malformed part and runs as if it were absent; here it is an error.
func ParseSelector(s string) (*Selection, error) {
	f, errs := filter.ParseFilter(s)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	sel := &Selection{filter: f, resources: filter.ExtractResourceFilters(s)}
	sel.all = strings.TrimSpace(s) == "" || s == DefaultSelector
	return sel, nil
}

// Apply returns the suites with only the selected results, leaving out the
// suites that have none left (upstream does not run them), and how many it
// left out. A suite that did not load is kept: upstream fails on it.
func (sel *Selection) Apply(suites []*Suite) (kept []*Suite, dropped int) {
	if sel == nil || sel.all {
		return suites, 0
	}
	for _, s := range suites {
		if s.Test == nil || s.Err != nil {
			kept = append(kept, s)
			continue
		}
		var results []v1alpha1.TestResult
		for _, r := range s.Test.Results {
			if sel.filter.Apply(r) {
				results = append(results, r)
			}
		}
		if len(results) == 0 {
			dropped++
			continue
		}
		t := *s.Test
		t.Results = results
		c := *s
		c.Test = &t
		c.Resources = sel.resources
		kept = append(kept, &c)
	}
	return kept, dropped
}

// selected reports whether a resource (as a result names it, "name" or
// "namespace/name") matches the suite's resource patterns.
func (s *Suite) selected(namespace, name string) bool {
	if len(s.Resources) == 0 {
		return true
	}
	for _, p := range s.Resources {
		if wildcard.Match(p, name) || namespace != "" && wildcard.Match(p, namespace+"/"+name) {
			return true
		}
	}
	return false
}
