package witness

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	kyvernov1 "github.com/kyverno/kyverno/api/kyverno/v1"

	"github.com/kyverno-gate/kyverno-gate/gate/diff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Candidates made from a baseline rule's pattern, for when the repository
// declares no resource that shows a weakening: one resource per leaf of
// the pattern, satisfying every other leaf and violating that one (a
// missing required field, a value outside what the leaf allows). The old
// rule denies each (when it is enforced); a successor that dropped the
// leaf's condition admits it. Patterns with anchors or operators this does
// not model (conditional, global, existence and add anchors; anyPattern)
// give no candidates, so nothing here guesses.

// maxPatternLeaves bounds the resources made from one rule.
const maxPatternLeaves = 64

// patternKinds are the kinds a pattern resource can be made for.
var patternKinds = map[string]string{
	"Pod": "v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1", "Namespace": "v1", "ServiceAccount": "v1",
	"PersistentVolumeClaim": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
	"Job": "batch/v1", "CronJob": "batch/v1", "Ingress": "networking.k8s.io/v1",
}

// fromPattern returns the resources made from rule's pattern (every
// validate rule of p when rule is ""), each with how it was made.
func fromPattern(p kyvernov1.PolicyInterface, rule string) []*candidate {
	if p == nil {
		return nil
	}
	var out []*candidate
	for _, r := range p.GetSpec().Rules {
		if (rule != "" && r.Name != rule) || r.Validation == nil || r.Validation.RawPattern == nil {
			continue
		}
		kind := ""
		for _, f := range append(append(kyvernov1.ResourceFilters{}, r.MatchResources.Any...), r.MatchResources.All...) {
			if len(f.Kinds) > 0 {
				kind = f.Kinds[0]
				break
			}
		}
		if kind == "" && len(r.MatchResources.Kinds) > 0 {
			kind = r.MatchResources.Kinds[0]
		}
		apiVersion, ok := patternKinds[kind]
		if !ok {
			continue
		}
		var pattern any
		if err := json.Unmarshal(r.Validation.RawPattern.Raw, &pattern); err != nil {
			continue
		}
		good, ok := satisfy(pattern)
		if !ok {
			continue
		}
		var leaves []violation
		violations(pattern, nil, &leaves)
		for i, v := range leaves {
			if i == maxPatternLeaves {
				break
			}
			obj, ok := withViolation(good, pattern, v.path, v.value, v.remove).(map[string]any)
			if !ok {
				continue
			}
			obj["apiVersion"], obj["kind"] = apiVersion, kind
			meta, _ := obj["metadata"].(map[string]any)
			if meta == nil {
				meta = map[string]any{}
				obj["metadata"] = meta
			}
			meta["name"] = fmt.Sprintf("%s-%d", r.Name, i+1)
			if kind != "Namespace" {
				meta["namespace"] = "default"
			}
			if kind == "Pod" {
				spec, _ := obj["spec"].(map[string]any)
				if spec == nil {
					spec = map[string]any{}
					obj["spec"] = spec
				}
				if _, has := spec["containers"]; !has {
					spec["containers"] = []any{map[string]any{"name": "app", "image": "registry.example.com/app:1.0"}}
				}
			}
			what := "violating " + strings.ReplaceAll(strings.Join(v.path, "."), ".[0]", "[0]")
			out = append(out, &candidate{obj: &unstructured.Unstructured{Object: obj}, env: defaultEnv(),
				pattern: fmt.Sprintf("%s %s rule %s's pattern, %s", p.GetKind(), p.GetName(), r.Name, what)})
		}
	}
	return out
}

type violation struct {
	path   []string // keys, "[0]" for the array element
	value  any
	remove bool
}

// patternKey splits a pattern key into its name and anchor ("", "=", "X").
func patternKey(k string) (name, anchor string, ok bool) {
	for _, a := range []string{"=", "X"} {
		if strings.HasPrefix(k, a+"(") && strings.HasSuffix(k, ")") {
			return k[len(a)+1 : len(k)-1], a, true
		}
	}
	if strings.ContainsAny(k, "()<>^+") {
		return "", "", false // anchors this does not model
	}
	return k, "", true
}

// satisfy returns a value that matches pattern.
func satisfy(pattern any) (any, bool) {
	switch t := pattern.(type) {
	case map[string]any:
		out := map[string]any{}
		for _, k := range sortedKeys(t) {
			name, anchor, ok := patternKey(k)
			if !ok {
				return nil, false
			}
			if anchor == "X" {
				continue // must be absent
			}
			v, ok := satisfy(t[k])
			if !ok {
				return nil, false
			}
			out[name] = v
		}
		return out, true
	case []any:
		if len(t) != 1 {
			return nil, false
		}
		v, ok := satisfy(t[0])
		return []any{v}, ok
	case string:
		return satisfyString(t)
	}
	return pattern, true // numbers, booleans, null: themselves
}

func satisfyString(s string) (any, bool) {
	s = strings.TrimSpace(s)
	if alt, _, ok := strings.Cut(s, "|"); ok {
		return satisfyString(alt)
	}
	if alt, _, ok := strings.Cut(s, "&"); ok && !strings.ContainsAny(s, "><") {
		return satisfyString(alt)
	}
	switch {
	case s == "*" || s == "?*":
		return "x", true
	case strings.HasPrefix(s, "!"):
		if s[1:] == "kyverno-gate" {
			return "kyverno-gate-x", true
		}
		return "kyverno-gate", true
	case strings.HasPrefix(s, ">="), strings.HasPrefix(s, "<="):
		return number(s[2:])
	case strings.HasPrefix(s, ">"):
		n, ok := number(s[1:])
		if f, isF := n.(float64); ok && isF {
			return f + 1, true
		}
		return nil, false
	case strings.HasPrefix(s, "<"):
		n, ok := number(s[1:])
		if f, isF := n.(float64); ok && isF {
			return f - 1, true
		}
		return nil, false
	case strings.ContainsAny(s, "*?"):
		return strings.NewReplacer("*", "x", "?", "x").Replace(s), true
	case strings.Contains(s, "{{"):
		return nil, false
	}
	return s, true
}

func number(s string) (any, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil
}

// violations lists, per leaf of pattern, a change that makes it fail.
func violations(pattern any, path []string, out *[]violation) {
	switch t := pattern.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			name, anchor, ok := patternKey(k)
			if !ok {
				return
			}
			p := append(append([]string(nil), path...), name)
			switch anchor {
			case "X":
				*out = append(*out, violation{path: p, value: "present"})
				continue
			case "":
				if s, isS := t[k].(string); isS && (s == "*" || s == "?*") {
					*out = append(*out, violation{path: p, remove: true})
					continue
				}
			}
			violations(t[k], p, out)
		}
	case []any:
		if len(t) == 1 {
			violations(t[0], append(append([]string(nil), path...), "[0]"), out)
		}
	case string:
		if v, ok := violateString(t); ok {
			*out = append(*out, violation{path: path, value: v})
		}
	case bool:
		*out = append(*out, violation{path: path, value: !t})
	case float64:
		*out = append(*out, violation{path: path, value: t + 1})
	}
}

func violateString(s string) (any, bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "?*":
		return "", true
	case s == "*" || strings.Contains(s, "{{") || strings.Contains(s, "&"):
		return nil, false
	case strings.Contains(s, "|"):
		return "kyverno-gate-none-of-these", true
	case strings.HasPrefix(s, "!"):
		return s[1:], true
	case strings.HasPrefix(s, ">"), strings.HasPrefix(s, "<"):
		n, ok := number(strings.TrimLeft(s, "<>="))
		f, isF := n.(float64)
		if !ok || !isF {
			return nil, false
		}
		switch s[:2] {
		case ">=":
			return f - 1, true
		case "<=":
			return f + 1, true
		}
		return f, true // the bound itself is outside > and <
	case s == "true":
		return "false", true
	case s == "false":
		return "true", true
	case strings.ContainsAny(s, "*?"):
		return "kyverno-gate-no-match", true
	}
	return s + "-kyverno-gate", true
}

// withViolation returns a copy of good with the value at path replaced by
// value (or removed).
func withViolation(good, pattern any, path []string, value any, remove bool) any {
	c := runtime.DeepCopyJSONValue(good)
	if len(path) == 0 {
		return c
	}
	cur := c
	for i, k := range path {
		last := i == len(path)-1
		switch node := cur.(type) {
		case map[string]any:
			if last {
				if remove {
					delete(node, k)
				} else {
					node[k] = value
				}
				return c
			}
			next, ok := node[k]
			if !ok {
				next = map[string]any{}
				node[k] = next
			}
			cur = next
		case []any:
			if k != "[0]" || len(node) == 0 {
				return c
			}
			if last {
				node[0] = value
				return c
			}
			cur = node[0]
		default:
			return c
		}
	}
	return c
}

// excludedNamespaces are the namespaces the head's ValidatingPolicies
// leave out, one name per glob ("kube-*" gives "kube-x"), sorted.
func (s *searcher) excludedNamespaces() []string {
	seen := map[string]bool{}
	for _, k := range sortedKeys(s.head.vps) {
		vp := s.head.vps[k]
		for _, g := range diff.ExcludedNamespaces(vp.GetValidatingPolicySpec()) {
			seen[strings.NewReplacer("*", "x", "?", "x").Replace(g)] = true
		}
	}
	return sortedKeys(seen)
}

// withNamespaces returns cands and, for each namespaced one, a copy in
// each of namespaces: a migration that moved an exclusion into a wider
// one admits exactly such a resource.
func withNamespaces(cands []*candidate, namespaces []string) []*candidate {
	out := append([]*candidate(nil), cands...)
	for _, c := range cands {
		if c.obj.GetNamespace() == "" {
			continue
		}
		for _, ns := range namespaces {
			if ns == c.obj.GetNamespace() {
				continue
			}
			u := c.obj.DeepCopy()
			u.SetNamespace(ns)
			made := c.pattern + ", in namespace " + ns
			if c.pattern == "" { // a declared resource, moved
				made = "the " + c.obj.GetKind() + " " + displayName(c.obj.GetNamespace(), c.obj.GetName()) + " of " + c.file + ", in namespace " + ns
			}
			out = append(out, &candidate{obj: u, env: c.env, policies: c.policies, pattern: made})
		}
	}
	return out
}

// declared are the candidates the repository declares.
func declared(cands []*candidate) []*candidate {
	var out []*candidate
	for _, c := range cands {
		if c.rank() == 0 {
			out = append(out, c)
		}
	}
	return out
}
