package main

import (
	"strings"

	"github.com/kyverno-gate/kyverno-gate/settings"
)

// normalizeArgs moves flags that follow a subcommand's positional arguments
// in front of them, so `generate overlays/prod --timeout 30s` works as with
// go and kubectl (urfave/cli stops parsing flags at the first argument).
func normalizeArgs(args []string) []string {
	sub := -1
	for i := 1; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			sub = i
			break
		}
	}
	if sub < 0 {
		return args
	}
	out := append([]string{}, args[:sub+1]...)
	var positional []string
	rest := args[sub+1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			out = append(out, a)
			if takesValue(a) && i+1 < len(rest) {
				out = append(out, rest[i+1])
				i++
			}
		default:
			positional = append(positional, a)
		}
	}
	return append(out, positional...)
}

// takesValue reports whether flag a (without =value) consumes the next
// argument.
func takesValue(a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	if p, ok := settings.Lookup(name); ok {
		return p.Type != settings.Bool
	}
	return valueFlags[name]
}

// valueFlags are the non-parameter flags that take a value (the test
// command's include kyverno test's: -o/--output-format, -f/--file-name,
// -t/--test-case-selector).
var valueFlags = map[string]bool{"output": true, "o": true,
	"output-format": true, "file-name": true, "f": true, "test-case-selector": true, "t": true,
	// export and drift (clusterFlags)
	"kubeconfig": true, "context": true, "kyverno-namespace": true, "kyverno-configmap": true, "cluster-timeout": true}
