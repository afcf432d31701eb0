package kyverno

import "strings"

// ReplacesAnnotation, on a policy of a policies.kyverno.io kind, names the
// kyverno.io policy it replaces: "ClusterPolicy/<name>",
// "Policy/<namespace>/<name>", with "#<rule>" when it replaces one rule
// (a policy split into one new policy per rule). Several, comma-separated.
// The weakening gate compares the two as a migration; the test gate runs
// the old policy's test results against the new one (docs/migrations.md).
const ReplacesAnnotation = "kyverno-gate.io/replaces"

// Replaced is one policy, or one rule of it, that an annotation names.
type Replaced struct {
	Kind, Namespace, Name string
	Rule                  string // "" for the whole policy
}

// Replaces parses a ReplacesAnnotation value; malformed items are skipped.
func Replaces(v string) []Replaced {
	var out []Replaced
	for _, item := range strings.Split(v, ",") {
		ref, rule, _ := strings.Cut(strings.TrimSpace(item), "#")
		parts := strings.Split(ref, "/")
		switch {
		case len(parts) == 2 && parts[0] == "ClusterPolicy" && parts[1] != "":
			out = append(out, Replaced{Kind: "ClusterPolicy", Name: parts[1], Rule: strings.TrimSpace(rule)})
		case len(parts) == 3 && parts[0] == "Policy" && parts[1] != "" && parts[2] != "":
			out = append(out, Replaced{Kind: "Policy", Namespace: parts[1], Name: parts[2], Rule: strings.TrimSpace(rule)})
		}
	}
	return out
}
