// Package witness backs findings of the weakening gate with evidence: a
// resource from the repository's test suites (or from folders of sample
// resources; or one of their Pods in a pod controller's template, tried
// after them, see derive.go) that the baseline policy set denies and the head policy set
// admits, proven by running both through Kyverno's own engine — the CLI's
// PolicyProcessor for ClusterPolicy and Policy (with the PolicyExceptions of
// the same rendering), the CEL engine for ValidatingPolicy and
// NamespacedValidatingPolicy (with the CEL PolicyExceptions).
//
// "Denies" means what Kyverno's admission webhook blocks: a rule result
// fail whose effective failure action is Enforce (Kyverno's own
// EngineResponse.HasEnforcedFailure, which resolves rule-level actions,
// overrides and autogen), or a ValidatingPolicy validation failing with Deny
// among its validationActions. A policy whose admission processing is off
// denies nothing. "Admits" means that nothing in the head set blocks:
// no enforced failure, no failing Deny validation, and no engine error
// (an error might block in a cluster, so it never counts as admission).
//
// A witness is searched per finding in three steps, cheapest first:
//
//  1. the baseline policy alone (with the baseline's exceptions) denies the
//     candidate with the finding's rule;
//  2. the change alone admits it: for a rule-level change, the baseline
//     policy with that one rule taken from the head; for another change of
//     a policy, the head policy; for an exception, the baseline policy with
//     that one exception taken from the head (exceptions are always those
//     of the baseline otherwise, so that each finding is tested with its
//     own change);
//  3. confirmation on whole renderings: every baseline policy (mutations
//     included, as the webhook applies them first) denies it with the
//     finding's policy and rule, and every head policy admits it.
//
// The search is bounded: only findings passed in are searched, at most
// Options.MaxCandidates resources are considered, and it stops when
// Options.Budget is spent. It never fails: errors are logged and a panic
// inside Kyverno is recovered. Results are deterministic: candidates are
// tried in sorted file order (the suites that test the finding's policy
// first, then the other suites, then the samples) and the first witness
// wins.
package witness

import (
	"context"
	"fmt"
	"github.com/kyverno-gate/kyverno-gate/repofs"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/kyverno-gate/kyverno-gate/gate/kyvernotest"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
)

// Defaults for Options.
const (
	DefaultMaxCandidates = 500
	DefaultBudget        = 10 * time.Second
)

// Kinds of targets as the weakening gate names them (diff.Change.Kind).
const (
	KindClusterPolicy              = "ClusterPolicy"
	KindPolicy                     = "Policy"
	KindValidatingPolicy           = "ValidatingPolicy"
	KindNamespacedValidatingPolicy = "NamespacedValidatingPolicy"
	KindLegacyException            = "PolicyException.kyverno.io"
	KindCELException               = "PolicyException.policies.kyverno.io"
)

// Target is a finding to find a witness for, named the way the weakening
// gate names its changes.
type Target struct {
	Kind   string // see the Kind constants; other kinds are not searched
	Policy string // "name" or "namespace/name"
	Rule   string // rule name; "" for policy-level changes
	// Field is the changed field, e.g. "spec.rules[check-team].exclude"; for
	// exceptions "spec.exceptions[<policyName>]" or
	// "spec.policyRefs[<Kind>/<name>]", which names the exempted policy.
	Field string
	// Migration says the policy was replaced by policies of the new kinds:
	// then resources are also made from its rules' patterns (pattern.go),
	// since a migration rewrites every condition, and the repository may
	// hold no resource that shows the one it lost.
	Migration bool
}

// Witness is a resource the baseline denies and the head admits.
type Witness struct {
	// File is where the resource is declared, relative to the repository
	// root, with forward slashes.
	File                              string
	APIVersion, Kind, Namespace, Name string
	// PolicyKind, Policy ("name" or "namespace/name") and Rule name what
	// denied it in the baseline (for an exception finding, the exempted
	// policy); Message is the baseline's failure message.
	PolicyKind, Policy, Rule, Message string
	// Template, when set, says the witness is not declared as such: it is
	// the Pod it names (declared in File) in the template of a controller
	// of Kind, derived by the search (derive.go).
	Template string
	// Pattern, when set, says the search made the witness from a rule's
	// pattern (pattern.go), e.g. "ClusterPolicy a rule r's pattern,
	// violating metadata.labels.team"; File is "" then.
	Pattern string
	// Exclusive is true when the witness proves this finding on its own:
	// the change was tested in isolation (see the package comment) and no
	// other target changes the part of the policy the isolated test
	// included. Only then does an unknown finding become weaker.
	Exclusive bool
}

// ID names the resource the way kubectl does, e.g. "Pod apps/pod-no-team".
func (w *Witness) ID() string {
	if w.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name)
	}
	return w.Kind + " " + w.Name
}

// String is the file and the resource, e.g.
// "tests/require-labels/resource.yaml (Pod apps/pod-no-team)".
func (w *Witness) String() string {
	id := w.ID()
	if w.Template != "" {
		id += ": the " + w.Template + " in its template"
	}
	if w.Pattern != "" {
		return id + ", made from " + w.Pattern
	}
	return w.File + " (" + id + ")"
}

// Options says where candidates come from and how much work to do.
type Options struct {
	// Repo is the repository; every file is read through it.
	Repo *repofs.Root
	// TestDirs are the folders searched for test files (relative to Root,
	// with {overlay} already replaced), TestFileName their file name: the
	// resources of every suite found are candidates.
	TestDirs     []string
	TestFileName string
	// Suites, when set, finds the suites instead (TestDirs unused): the
	// test gate's own search, so that both read the same suites.
	Suites func() ([]*kyvernotest.Suite, error)
	// Samples are folders (relative to Root) of extra candidate resources.
	Samples []string
	// MaxCandidates bounds how many distinct resources are considered;
	// 0 means DefaultMaxCandidates.
	MaxCandidates int
	// Budget bounds the search's time (never more than a third of what is
	// left before ctx's deadline); 0 means DefaultBudget.
	Budget time.Duration
	// Logf reports progress and problems; nil discards them.
	Logf func(format string, args ...any)
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Search looks for a witness of every target: out[i] is targets[i]'s
// witness, nil when none was found. base and head are the loaded baseline
// and head renderings.
func Search(ctx context.Context, opts Options, base, head []*kyverno.Object, targets []Target) (out []*Witness) {
	out = make([]*Witness, len(targets))
	if len(targets) == 0 {
		return out
	}
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			opts.logf("witness search crashed and was abandoned: %v\n%s", v, debug.Stack())
		}
	}()
	if opts.MaxCandidates <= 0 {
		opts.MaxCandidates = DefaultMaxCandidates
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	deadline := start.Add(opts.Budget)
	if d, ok := ctx.Deadline(); ok {
		if share := start.Add(time.Until(d) / 3); share.Before(deadline) {
			deadline = share
		}
	}
	s := &searcher{ctx: ctx, opts: &opts, deadline: deadline, logged: map[string]bool{}}
	plans := make([]*plan, len(targets))
	any := false
	for i, t := range targets {
		if !searchable(t) {
			continue
		}
		plans[i] = &plan{target: t}
		any = true
	}
	if !any {
		return out
	}
	if s.expired() {
		opts.logf("witness search skipped: no time left")
		return out
	}
	s.base, s.head = s.loadSide("baseline", base), s.loadSide("head", head)
	for i, p := range plans {
		if p != nil && !s.plan(p) {
			plans[i] = nil
		}
	}
	s.cands = loadCandidates(&opts)
	// Resources made from migrated rules' patterns, at most MaxCandidates
	// in all (a large migration must not fill memory).
	made, budget := map[string]bool{}, opts.MaxCandidates
	moved := false
	for _, p := range plans {
		if p != nil && p.target.Migration && !moved {
			// The declared resources in the namespaces the head excludes.
			moved = true
			for _, c := range withNamespaces(declared(s.cands), s.excludedNamespaces()) {
				if c.pattern == "" {
					continue // the original, already a candidate
				}
				for _, d := range append([]*candidate{c}, derive(c)...) {
					if budget--; budget < 0 {
						break
					}
					d.idx = len(s.cands)
					s.cands = append(s.cands, d)
				}
			}
		}
		if p == nil || !p.target.Migration || made[p.key] || budget <= 0 {
			continue
		}
		made[p.key] = true
		for _, c := range withNamespaces(fromPattern(s.base.legacy[p.key], p.rule), s.excludedNamespaces()) {
			for _, d := range append([]*candidate{c}, derive(c)...) {
				if budget--; budget < 0 {
					break
				}
				d.idx = len(s.cands)
				s.cands = append(s.cands, d)
			}
		}
	}
	if len(s.cands) == 0 {
		opts.logf("witness search: no candidate resources (test suite resources or samples)")
		return out
	}
	exclusivity(plans)
	found, stopped := 0, false
	for i, p := range plans {
		if p == nil {
			continue
		}
		if stopped = s.expired(); stopped {
			break
		}
		for _, c := range s.order(p) {
			if stopped = s.expired(); stopped {
				break
			}
			w, err := s.check(p, c)
			if err != nil {
				s.logOnce(fmt.Sprintf("witness search: %s %s: %s: %v", p.target.Kind, p.target.Policy, c.ref(), err))
				continue
			}
			if w != nil {
				out[i] = w
				found++
				break
			}
		}
		if stopped {
			break
		}
	}
	if stopped {
		opts.logf("witness search stopped after %s (budget); later findings were not searched", time.Since(start).Round(time.Millisecond))
	}
	opts.logf("witness search: %d of %d finding(s) proven by a resource the baseline denied and the head admits (%d candidate resources, %s)",
		found, len(targets), len(s.cands), time.Since(start).Round(time.Millisecond))
	return out
}

// searchable reports whether the target's kind is one the search handles.
func searchable(t Target) bool {
	switch t.Kind {
	case KindClusterPolicy, KindPolicy, KindValidatingPolicy, KindNamespacedValidatingPolicy:
		return true
	case KindLegacyException:
		return strings.HasPrefix(t.Field, "spec.exceptions[")
	case KindCELException:
		return strings.HasPrefix(t.Field, "spec.policyRefs[")
	}
	return false
}

// plan is how one target is searched.
type plan struct {
	target Target
	// key identifies the policy whose denial the baseline must show, rule
	// the rule ("" for any).
	key, rule string
	// policyName is the policy's name as test results name it, to try the
	// suites that test it first.
	policyName string
	// fb and fh are the isolated baseline and head sets (steps 1 and 2).
	fb, fh *policySet
	// scope says what part of the policy the isolated head includes:
	// "R" a single rule, "P" the whole policy, "E" one exception.
	scope     string
	exclusive bool
}

// exclusivity marks the plans whose isolated test includes no other
// target's change.
func exclusivity(plans []*plan) {
	for i, p := range plans {
		if p == nil {
			continue
		}
		p.exclusive = true
		for j, q := range plans {
			if i == j || q == nil || q.target.Kind != p.target.Kind || q.target.Policy != p.target.Policy {
				continue
			}
			switch p.scope {
			case "P": // the whole head policy: any change of it counts
				p.exclusive = false
			case "R":
				if q.scope == "R" && q.target.Rule == p.target.Rule {
					p.exclusive = false
				}
			case "E":
				if q.target.Field == p.target.Field {
					p.exclusive = false
				}
			}
		}
	}
}

// searcher holds one search's state.
type searcher struct {
	ctx        context.Context
	opts       *Options
	deadline   time.Time
	cands      []*candidate
	base, head *side
	eng        *engine
	sets       map[string]*policySet
	logged     map[string]bool
}

func (s *searcher) expired() bool {
	return s.ctx.Err() != nil || time.Now().After(s.deadline)
}

func (s *searcher) logOnce(msg string) {
	if !s.logged[msg] {
		s.logged[msg] = true
		s.opts.logf("%s", msg)
	}
}

// order returns the candidates for p: those of suites that test p's
// policy, then the other suites', then the samples, each in file order.
func (s *searcher) order(p *plan) []*candidate {
	out := make([]*candidate, 0, len(s.cands))
	for rank := 0; rank <= 2; rank++ {
		for _, c := range s.cands {
			if c.rank() == rank && !c.sample && c.policies[p.policyName] {
				out = append(out, c)
			}
		}
		for _, c := range s.cands {
			if c.rank() == rank && !c.sample && !c.policies[p.policyName] {
				out = append(out, c)
			}
		}
		for _, c := range s.cands {
			if c.rank() == rank && c.sample {
				out = append(out, c)
			}
		}
	}
	return out
}

// check runs the three steps for one candidate.
func (s *searcher) check(p *plan, c *candidate) (*Witness, error) {
	ob, err := s.run(p.fb, c)
	if err != nil {
		return nil, err
	}
	if _, _, ok := ob.deniedBy(p.key, p.rule); !ok {
		return nil, nil
	}
	oh, err := s.run(p.fh, c)
	if err != nil {
		return nil, err
	}
	if oh.blocks() {
		return nil, nil
	}
	ofb, err := s.run(s.base.full, c)
	if err != nil {
		return nil, err
	}
	rule, msg, ok := ofb.deniedBy(p.key, p.rule)
	if !ok {
		return nil, nil
	}
	ofh, err := s.run(s.head.full, c)
	if err != nil {
		return nil, err
	}
	if ofh.blocks() {
		return nil, nil
	}
	kind, policy, _ := strings.Cut(p.key, "\x00")
	w := &Witness{File: c.file, APIVersion: c.obj.GetAPIVersion(), Kind: c.obj.GetKind(), Namespace: c.obj.GetNamespace(), Name: c.obj.GetName(),
		PolicyKind: kind, Policy: policy, Rule: rule, Message: strings.TrimSpace(msg), Exclusive: p.exclusive}
	if c.from != nil {
		w.Template = "Pod " + displayName(c.from.obj.GetNamespace(), c.from.obj.GetName())
	}
	if c.pattern != "" {
		w.File, w.Pattern = "", c.pattern
	}
	return w, nil
}

// parseRef splits the exempted policy out of an exception target's field.
func parseRef(field, prefix string) (string, bool) {
	if !strings.HasPrefix(field, prefix) {
		return "", false
	}
	rest := strings.TrimPrefix(field, prefix)
	i := strings.IndexByte(rest, ']')
	if i < 0 {
		return "", false
	}
	return rest[:i], true
}

func baseName(policy string) string {
	if i := strings.LastIndexByte(policy, '/'); i >= 0 {
		return policy[i+1:]
	}
	return policy
}

func sortedStrings(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
