// Package validate is Gate I's first half: every rendered Kyverno object must
// be one Kyverno's admission webhook would accept. It runs Kyverno's own
// schema check (unknown fields rejected, because the API server would prune
// them silently) and Kyverno's own per-kind validation, CEL compiled.
package validate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"
	"github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno/data"
	"github.com/kyverno/kyverno/pkg/cel/policies/dpol"
	"github.com/kyverno/kyverno/pkg/cel/policies/gpol"
	"github.com/kyverno/kyverno/pkg/cel/policies/mpol"
	"github.com/kyverno/kyverno/pkg/cel/policies/vpol"
	"github.com/kyverno/kyverno/pkg/config"
	"github.com/kyverno/kyverno/pkg/image/verification/evaluator"
	policyvalidation "github.com/kyverno/kyverno/pkg/validation/policy"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kyverno-gate/kyverno-gate/gate"
	"github.com/kyverno-gate/kyverno-gate/internal/cache"
	"github.com/kyverno-gate/kyverno-gate/internal/parallel"
	"github.com/kyverno-gate/kyverno-gate/kyverno"
	"github.com/kyverno-gate/kyverno-gate/report"
)

// Gate validates Kyverno objects.
type Gate struct{}

func (Gate) Name() report.Gate { return report.GateValidate }

func (Gate) Check(_ context.Context, in *gate.Input, out *report.Overlay) error {
	objs, err := kyverno.LoadResult(in.Rendered)
	if err != nil {
		return err
	}
	// Each object alone, on every core (Kyverno's validation compiles each
	// policy's CEL; the test gate already runs it from parallel suites).
	c := in.Cache()
	found := make([][]report.Finding, len(objs))
	parallel.Each(len(objs), func(i int) { found[i] = object(objs[i], c) })
	deprecatedKinds := map[string]int{}
	for i, o := range objs {
		out.Add(found[i]...)
		if o.GVK.Group == kyverno.GroupKyverno && o.GVK.Kind != "GlobalContextEntry" {
			deprecatedKinds[o.GVK.Kind]++
		}
	}
	if len(deprecatedKinds) > 0 {
		var names []string
		for k := range deprecatedKinds {
			names = append(names, k)
		}
		sort.Strings(names)
		var kinds []string
		for _, k := range names {
			kinds = append(kinds, fmt.Sprintf("%d %s", deprecatedKinds[k], k))
		}
		out.Add(report.Finding{Gate: report.GateValidate, Severity: report.Warning,
			Message: "kyverno.io policy kinds are deprecated in Kyverno 1.19 (" + strings.Join(kinds, ", ") + ")",
			Hint:    "plan the move to policies.kyverno.io kinds (ValidatingPolicy, MutatingPolicy, ...) before Kyverno 1.20"})
	}
	return nil
}

// Object validates one loaded object.
func Object(o *kyverno.Object) []report.Finding { return object(o, nil) }

// object is Object with Kyverno's verdict on the object kept in c (nil:
// none) across runs, keyed by the object as rendered: loading and Kyverno's
// validation are functions of it and of the binary alone (no cluster, no
// clock), and Kyverno's validation is most of this gate's time.
func object(o *kyverno.Object, c *cache.Store) []report.Finding {
	f := func(sev report.Severity, msg, hint string) report.Finding {
		return report.Finding{Gate: report.GateValidate, Severity: sev, File: o.Resource.Source, Subject: o.Resource.Subject(), Message: msg, Hint: hint}
	}
	if o.Err != nil {
		fe := f(report.Error, describeLoadError(o), "fix the field; the API server would drop an unknown field and Kyverno would ignore a bad value")
		if fields := kyverno.UnknownFields(o.Err.Error()); len(fields) > 0 {
			fe.Field = fields[0]
		}
		return []report.Finding{fe}
	}
	warnings, err := validateCached(o, c)
	var out []report.Finding
	if err != nil {
		out = append(out, f(report.Error, "Kyverno rejects it: "+err.Error(), "Kyverno's admission webhook would refuse this object; fix it as the message says"))
	}
	for _, w := range dedupe(warnings) {
		out = append(out, f(report.Warning, w, ""))
	}
	if o.Policy != nil {
		for _, d := range deprecatedFields(o.Resource.Object) {
			fd := f(report.Warning, d.msg, d.hint)
			fd.Field = d.field
			out = append(out, fd)
		}
	}
	return out
}

// verdict is a cache entry of validateCached.
type verdict struct {
	Warnings []string
	Err      *string
}

func validateCached(o *kyverno.Object, c *cache.Store) ([]string, error) {
	if c == nil {
		return validateTyped(o)
	}
	h := cache.NewHasher("kyverno-gate validate v1")
	h.String(serviceAccount()) // from the environment (validatePolicy)
	if h.JSON(o.Resource.Object) != nil {
		return validateTyped(o)
	}
	key := h.Key()
	var v verdict
	if c.Get(key, &v) {
		if v.Err != nil {
			return v.Warnings, errors.New(*v.Err)
		}
		return v.Warnings, nil
	}
	warnings, err := validateTyped(o)
	v = verdict{Warnings: warnings}
	if err != nil {
		msg := err.Error()
		v.Err = &msg
	}
	c.Put(key, v)
	return warnings, err
}

// validateTyped runs Kyverno's validation for the object's kind.
func validateTyped(o *kyverno.Object) (warnings []string, err error) {
	switch {
	case o.Policy != nil:
		return validatePolicy(o.Policy)
	case o.Exception != nil:
		return nil, o.Exception.Validate().ToAggregate()
	case o.CELException != nil:
		return nil, o.CELException.Spec.Validate(field.NewPath("spec")).ToAggregate()
	case o.Validating != nil:
		return vpol.Validate(o.Validating)
	case o.Image != nil:
		return evaluator.Validate(o.Image, nil)
	case o.Mutating != nil:
		return mpol.Validate(o.Mutating)
	case o.Generating != nil:
		return gpol.Validate(o.Generating)
	case o.Deleting != nil:
		return dpol.Validate(o.Deleting)
	case o.Cleanup != nil:
		return nil, o.Cleanup.Validate(clusterScopedKinds()).ToAggregate()
	}
	return nil, nil // GlobalContextEntry: the schema check is all Kyverno does offline
}

// validatePolicy calls Kyverno's policy validation as `kyverno test` does,
// except that custom webhook matchConditions are checked separately: with no
// cluster client the validator dereferences nil on them.
func validatePolicy(p kyvernov1.PolicyInterface) ([]string, error) {
	p = p.CreateDeepCopy()
	var conditionsErr error
	if wc := p.GetSpec().WebhookConfiguration; wc != nil && len(wc.MatchConditions) > 0 {
		if err := policyvalidation.ValidateCustomWebhookMatchConditions(wc.MatchConditions); err != nil {
			conditionsErr = fmt.Errorf("spec.webhookConfiguration.matchConditions: %w", err)
		}
		wc.MatchConditions = nil
	}
	sa := serviceAccount()
	warnings, err := policyvalidation.Validate(p, nil, nil, true, sa, sa)
	return warnings, errors.Join(conditionsErr, err)
}

// serviceAccount is the user Kyverno's validation takes the webhook for.
func serviceAccount() string { return config.KyvernoUserName(config.KyvernoServiceAccountName()) }

// clusterScopedKinds lists cluster-scoped kinds for cleanup policy checks.
func clusterScopedKinds() sets.Set[string] {
	set := sets.New[string]()
	groups, err := data.APIGroupResources()
	if err != nil {
		return set
	}
	for _, g := range groups {
		for _, rs := range g.VersionedResources {
			for _, r := range rs {
				if !r.Namespaced {
					set.Insert(r.Kind)
				}
			}
		}
	}
	return set
}

// deprecation is a deprecated field, what to say about it and what to do.
type deprecation struct{ field, msg, hint string }

// deprecatedFields reports the Kyverno 1.19 field deprecations of a legacy
// policy, with what to use instead. It reads the object as written: the
// loader's CRD defaults would make every policy look as if it set
// spec.validationFailureAction.
func deprecatedFields(raw map[string]any) []deprecation {
	spec, _ := raw["spec"].(map[string]any)
	var out []deprecation
	for _, d := range []deprecation{
		{"validationFailureAction", "spec.validationFailureAction is deprecated",
			"set validate.failureAction on each rule; note that a rule-level failureAction always wins over it"},
		{"validationFailureActionOverrides", "spec.validationFailureActionOverrides is deprecated", "use validate.failureActionOverrides on each rule"},
		{"failurePolicy", "spec.failurePolicy is deprecated", "use spec.webhookConfiguration.failurePolicy"},
		{"webhookTimeoutSeconds", "spec.webhookTimeoutSeconds is deprecated", "use spec.webhookConfiguration.timeoutSeconds"},
	} {
		if _, ok := spec[d.field]; ok {
			d.field = "spec." + d.field
			out = append(out, d)
		}
	}
	rules, _ := spec["rules"].([]any)
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		validate, _ := rule["validate"].(map[string]any)
		if _, ok := validate["assert"]; ok {
			out = append(out, deprecation{field: fmt.Sprintf("spec.rules[%v].validate.assert", rule["name"]),
				msg:  fmt.Sprintf("rule %v: validate.assert has no effect in Kyverno 1.19", rule["name"]),
				hint: "express the check as pattern, anyPattern, deny or cel; this rule enforces nothing as written"})
		}
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// describeLoadError phrases a schema error; for unknown fields it names the
// field the author most likely meant.
func describeLoadError(o *kyverno.Object) string {
	msg := o.Err.Error()
	fields := kyverno.UnknownFields(msg)
	if len(fields) == 0 {
		return "invalid: " + msg
	}
	var parts []string
	for _, p := range fields {
		s := fmt.Sprintf("unknown field %q", p)
		if sug := kyverno.SuggestField(o.GVK.Group+"/"+o.GVK.Kind, p); sug != "" {
			s += fmt.Sprintf(" (did you mean %q?)", sug)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
